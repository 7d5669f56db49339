#!/usr/bin/env bash
# The Swift tests that need PostgreSQL (StorageTests' Postgres* suites: libpq's connection, the
# Migrator on migrations/postgres; then the Store* suites again, on PostgreSQL), against a
# throwaway cluster (scripts/lib/postgres.sh) in a temporary directory, removed afterwards. Uses
# the debug build that `swift build --build-tests` made (it builds nothing). Takes about 30 s.
#
# Usage: Tests/postgres/swift_tests.sh
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
LOG_TAG=postgres-swift-tests
source "$REPO/scripts/lib/postgres.sh"

ensure_postgres_packages
DIR="$(mktemp -d /tmp/mswift.XXXXXX)"
cleanup() {
    local status=$?
    stop_throwaway_postgres "$DIR" || status=1
    rm -rf "$DIR"
    ((status == 0)) && log "PASS" || log "FAIL (exit $status)"
    exit "$status"
}
trap cleanup EXIT
start_throwaway_postgres "$DIR" >/dev/null
# The tests create a database each as the superuser, owned by the app's role, and drop it.
cd "$REPO"
swift test --skip-build --filter 'StorageTests.Postgres'
# The Store's own suites once more, each test on a PostgreSQL database of its own
# (TestDatabase.migratedStore); what only SQLite has is disabled there.
STORE_TESTS_ON_POSTGRES=1 swift test --skip-build --filter 'StorageTests.Store'

# The binaries themselves: `FCGIApp migrate` applies migrations/postgres to DATABASE_URL (once:
# a second run applies nothing), and the servers name a database they cannot reach without its password.
BIN_DIR="$(swift build --show-bin-path)"
# With a password in the URL (the cluster trusts its socket and never asks for it), which no
# line may show.
SECRET=not-to-be-logged-$RANDOM
URL_WITH_PASSWORD=${PG_DATABASE_URL/postgres:\/\/messenger@/postgres://messenger:$SECRET@}
[[ $URL_WITH_PASSWORD == *"$SECRET"* ]] || die "cannot put a password into $PG_DATABASE_URL"
run_app() {
    env -u DATABASE_URL -u MIGRATIONS_DIR DATA_DIR="$DIR/data" DATABASE_URL="$URL_WITH_PASSWORD" \
        MIGRATIONS_DIR="$REPO/migrations" "$@"
}
out=$(run_app "$BIN_DIR/FCGIApp" migrate 2>&1) || die "FCGIApp migrate on PostgreSQL failed: $out"
[[ $out == *"applied=\"[1, 2, 3, 4, 5, 6, 7, 8, 9]\""* ]] || die "FCGIApp migrate did not apply 1-9: $out"
[[ $out != *"$SECRET"* ]] || die "FCGIApp migrate logged the password: $out"
out=$(run_app "$BIN_DIR/FCGIApp" migrate 2>&1) || die "a second FCGIApp migrate failed: $out"
[[ $out == *"applied=[] "* ]] || die "a second FCGIApp migrate applied something: $out"
version=$(env -u PGHOST -u PGPORT psql -X -At "$PG_DATABASE_URL" -c "SELECT max(version) FROM schema_migrations")
[[ $version == 9 ]] || die "schema_migrations is at version '$version' after FCGIApp migrate, not 9"
log "FCGIApp migrate applied migrations/postgres 001-009, once"
# A database the servers cannot reach: they exit saying so, without the password.
for bin in FCGIApp WSRelay; do
    if out=$(env -u DATABASE_URL DATA_DIR="$DIR/data" DATABASE_URL="${URL_WITH_PASSWORD/\/messenger\?//no_such_database?}" \
        timeout 10 "$BIN_DIR/$bin" 2>&1); then die "$bin served from a database that does not exist: $out"; fi
    [[ $out == *"no_such_database"* ]] || die "$bin did not say which database it could not reach: $out"
    [[ $out != *"$SECRET"* ]] || die "$bin logged the password: $out"
done
log "FCGIApp and WSRelay refuse a PostgreSQL database they cannot reach, without logging the password"
