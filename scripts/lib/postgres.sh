# PostgreSQL helpers for scripts/test (and scripts/bench): Debian's server packages, and a
# throwaway cluster in a directory of the caller's, on a Unix socket only. Source it; it defines
# functions only (it sources common.sh for log/die/ensure_packages if the caller has not).
# shellcheck shell=bash

if ! declare -F ensure_packages >/dev/null 2>&1; then
    # shellcheck source=common.sh
    source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
fi

# The Debian packages a PostgreSQL run needs: the server (initdb, pg_ctl, postgres and the
# contrib extensions the migrations create, btree_gin) and libpq's headers for the build.
# `postgresql` is Debian's "supported version" metapackage: it pulls postgresql-<major> and the
# client, whatever major version this Debian release ships.
# Note: installing it also makes postgresql-common create and start a `main` cluster on port
# 5432 where a service manager runs. Nothing here uses or stops that one; the throwaway
# clusters below listen on their own socket directories and never on TCP.
POSTGRES_PACKAGES=(postgresql libpq-dev)

# The system user a root caller runs the cluster as: the server refuses to run as root.
POSTGRES_SYSTEM_USER=messenger-pg
# Roles and database of a throwaway cluster. The app connects as a plain role that owns its
# database (it creates its own tables and the trusted extensions it needs), never as the
# superuser; scripts that need superuser powers use PG_ADMIN_URL.
POSTGRES_SUPERUSER=postgres
POSTGRES_ROLE=messenger
POSTGRES_DATABASE=messenger

# ensure_postgres_packages: installs the missing ones of POSTGRES_PACKAGES as root (or prints
# the command and exits 1, as ensure_packages does), then sets PG_BIN_DIR to the server's
# binaries. Dies with what to do if they are still not there (SKIP_INSTALL=1 on a machine
# without them).
ensure_postgres_packages() {
    ensure_packages "${POSTGRES_PACKAGES[@]}"
    PG_BIN_DIR="$(postgres_bin_dir)" \
        || die "no PostgreSQL server binaries under /usr/lib/postgresql/<major>/bin; install them with: sudo apt-get install -y ${POSTGRES_PACKAGES[*]}"
    export PG_BIN_DIR
}

# postgres_bin_dir: prints the bin directory of the newest installed server major version
# (/usr/lib/postgresql/<major>/bin, the layout of Debian's packages: the binaries are not on
# PATH, only pg_wrapper's client links are), or fails if there is none. PG_BIN_DIR, when set,
# wins: a server installed elsewhere.
postgres_bin_dir() {
    if [[ -n ${PG_BIN_DIR:-} ]]; then
        [[ -x $PG_BIN_DIR/initdb && -x $PG_BIN_DIR/pg_ctl ]] || return 1
        printf '%s\n' "$PG_BIN_DIR"
        return 0
    fi
    local dir best=""
    # Sorted by version, not as text: 9.6 < 10 < 15.
    while IFS= read -r dir; do
        [[ -x $dir/initdb && -x $dir/pg_ctl && -x $dir/postgres ]] && best=$dir
    done < <(printf '%s\n' /usr/lib/postgresql/*/bin | sort -V)
    [[ -n $best ]] || return 1
    printf '%s\n' "$best"
}

# _pg_as_owner COMMAND...: runs COMMAND as the user that owns the cluster: the caller itself,
# or POSTGRES_SYSTEM_USER when the caller is root. From / : the caller's directory (/root, say)
# may be closed to that user, and initdb and the server complain when they cannot return to it.
_pg_as_owner() {
    if [[ $(id -u) -eq 0 ]]; then
        (cd / && runuser -u "$POSTGRES_SYSTEM_USER" -- "$@")
    else
        (cd / && "$@")
    fi
}

# _pg_ensure_system_user: as root, creates POSTGRES_SYSTEM_USER (a system account with no
# login shell and no home) if it is missing.
_pg_ensure_system_user() {
    [[ $(id -u) -eq 0 ]] || return 0
    id -u "$POSTGRES_SYSTEM_USER" >/dev/null 2>&1 && return 0
    log "creating system user $POSTGRES_SYSTEM_USER to run throwaway PostgreSQL clusters (the server refuses root)"
    useradd --system --user-group --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin "$POSTGRES_SYSTEM_USER" \
        || die "cannot create system user $POSTGRES_SYSTEM_USER"
}

# _pg_uri_escape TEXT: TEXT percent-encoded for a URI query value, '/' kept (libpq decodes
# every %XX; only characters outside RFC 3986's unreserved set and '/' are encoded).
_pg_uri_escape() {
    local text=$1 out="" char i
    local LC_ALL=C
    for ((i = 0; i < ${#text}; i++)); do
        char=${text:i:1}
        if [[ $char == [A-Za-z0-9._~/-] ]]; then
            out+=$char
        else
            out+=$(printf '%%%02X' "'$char")
        fi
    done
    printf '%s\n' "$out"
}

# _pg_psql ARGS...: psql as the superuser over DIR's socket (PG_SOCKET_DIR), no .psqlrc, no
# PG* environment of the caller's (PGHOST, PGDATABASE… would override or confuse the target).
_pg_psql() {
    env -u PGHOST -u PGPORT -u PGUSER -u PGDATABASE -u PGPASSWORD -u PGSERVICE -u PGOPTIONS \
        "$PG_BIN_DIR/psql" -X -q -v ON_ERROR_STOP=1 -h "$PG_SOCKET_DIR" -p "$PG_PORT" \
        -U "$POSTGRES_SUPERUSER" "$@"
}

# start_throwaway_postgres DIR: a PostgreSQL cluster for tests in DIR (created if missing):
# data in DIR/pgdata, the Unix socket and its lock file in DIR itself, the server's log in
# DIR/postgres.log. Initialised on the first call (initdb); a later call on the same DIR starts
# the existing cluster again (a stopped one keeps its data), and a call while it runs is a
# no-op. Creates role POSTGRES_ROLE and its database POSTGRES_DATABASE if missing. Exports:
#   PG_DATABASE_URL  postgres://messenger@/messenger?host=DIR (what DATABASE_URL takes; libpq
#                    reads a host starting with '/' as a socket directory; the slash is
#                    reserved in the URI's authority, hence the query parameter)
#   PG_ADMIN_URL     the same as the superuser, database postgres
#   PG_SOCKET_DIR, PG_PORT, PG_DATA_DIR, PG_BIN_DIR
# Also prints PG_DATABASE_URL on stdout. Runs as POSTGRES_SYSTEM_USER when called by root.
# PG_PORT (default 5432) names the socket file only (.s.PGSQL.<port>): with no TCP listener,
# clusters in different directories never clash, nor with a system cluster on 5432.
# PG_MAX_CONNECTIONS (default 200): every FastCGI worker and relay thread holds a connection,
# times FCGI_INSTANCES and RELAY_INSTANCES.
start_throwaway_postgres() {
    local dir=${1:?start_throwaway_postgres needs a directory}
    [[ -n ${PG_BIN_DIR:-} ]] || PG_BIN_DIR="$(postgres_bin_dir)" \
        || die "no PostgreSQL server binaries found; call ensure_postgres_packages first"
    dir="$(absolute_path "$dir")"
    # The directory is written into postgresql.conf as a quoted list entry.
    [[ $dir != *[\'\",\\]* ]] || die "the PostgreSQL directory $dir must not contain quotes, commas or backslashes"
    PG_PORT=${PG_PORT:-5432}
    # The socket's path must fit sun_path (108 bytes with its NUL, so 107): the server would
    # refuse to start with "Unix-domain socket path ... is too long".
    local socket="$dir/.s.PGSQL.$PG_PORT"
    ((${#socket} <= 107)) \
        || die "the PostgreSQL socket path $socket is ${#socket} bytes, over the 107 a Unix socket allows; use a shorter directory"
    _pg_ensure_system_user
    mkdir -p "$dir" || die "cannot create $dir"
    if [[ $(id -u) -eq 0 ]]; then
        chown "$POSTGRES_SYSTEM_USER:" "$dir" || die "cannot give $dir to $POSTGRES_SYSTEM_USER"
    fi
    # Others must reach the socket (apps run as the caller, the server as its owner); the data
    # directory itself stays 0700 (initdb makes it so, and the server insists).
    chmod 0755 "$dir"
    _pg_as_owner test -w "$dir" -a -x "$dir" \
        || die "$(id -un 2>/dev/null || id -u) cannot hand $dir to the cluster's user: ${POSTGRES_SYSTEM_USER} cannot write there (a parent directory closed to others, such as /root?); use a directory under /tmp"

    PG_SOCKET_DIR=$dir
    PG_DATA_DIR=$dir/pgdata
    if [[ ! -f $PG_DATA_DIR/PG_VERSION ]]; then
        log "initdb into $PG_DATA_DIR ($("$PG_BIN_DIR/postgres" --version))"
        # UTF8 with C ordering and C.UTF-8 character classes: text compares byte by byte, as
        # SQLite's BINARY collation does (same ORDER BY on names and times), while lower(),
        # regular expressions and full-text search know every script's letters and case
        # (migrations/postgres/001 refuses a database without both).
        _pg_as_owner "$PG_BIN_DIR/initdb" -D "$PG_DATA_DIR" -U "$POSTGRES_SUPERUSER" \
            --encoding=UTF8 --lc-collate=C --lc-ctype=C.UTF-8 --lc-messages=C \
            --lc-monetary=C --lc-numeric=C --lc-time=C \
            --auth-local=trust --auth-host=reject --no-instructions >"$dir/initdb.log" 2>&1 \
            || die "initdb failed; see $dir/initdb.log: $(tail -n 5 "$dir/initdb.log")"
        # Trust on the Unix socket only, which only processes on this machine that may enter
        # DIR reach; nothing at all over TCP (there is no TCP listener either).
        _pg_as_owner tee "$PG_DATA_DIR/pg_hba.conf" >/dev/null <<'EOF'
# Throwaway test cluster (scripts/lib/postgres.sh): trust on the Unix socket, nothing else.
local all all trust
EOF
        _pg_as_owner tee -a "$PG_DATA_DIR/postgresql.conf" >/dev/null <<EOF

# --- scripts/lib/postgres.sh: a throwaway cluster for tests ---
listen_addresses = ''
unix_socket_directories = '$dir'
port = $PG_PORT
max_connections = ${PG_MAX_CONNECTIONS:-200}
# FOR TESTS ONLY: no fsync and no full-page writes. A crash of the machine may corrupt this
# cluster, which nobody will ever open again; every test run starts a new one. Never copy these
# three lines to a database anyone keeps.
fsync = off
full_page_writes = off
synchronous_commit = off
# What a test may want to read when something goes wrong.
log_min_duration_statement = -1
log_lock_waits = on
log_line_prefix = '%m [%p] %q%u@%d '
EOF
    fi

    if _pg_as_owner "$PG_BIN_DIR/pg_ctl" -D "$PG_DATA_DIR" status >/dev/null 2>&1; then
        log "PostgreSQL already running in $PG_DATA_DIR"
    else
        # -w: return once it accepts connections (or fail), -t: give up after 60 s.
        _pg_as_owner "$PG_BIN_DIR/pg_ctl" -D "$PG_DATA_DIR" -l "$dir/postgres.log" -w -t 60 -s start \
            || die "PostgreSQL did not start in $PG_DATA_DIR; see $dir/postgres.log: $(tail -n 5 "$dir/postgres.log" 2>/dev/null)"
    fi

    # The role and its database, once. The database is created from template0 with the same
    # encoding and locales as the cluster (stated, not inherited, so that a cluster initialised
    # some other way still gives the database the migrations expect).
    if [[ -z $(_pg_psql -d postgres -Atc "SELECT 1 FROM pg_roles WHERE rolname = '$POSTGRES_ROLE'") ]]; then
        _pg_psql -d postgres -c "CREATE ROLE $POSTGRES_ROLE LOGIN" || die "cannot create role $POSTGRES_ROLE"
    fi
    if [[ -z $(_pg_psql -d postgres -Atc "SELECT 1 FROM pg_database WHERE datname = '$POSTGRES_DATABASE'") ]]; then
        _pg_psql -d postgres -c "CREATE DATABASE $POSTGRES_DATABASE OWNER $POSTGRES_ROLE TEMPLATE template0
            ENCODING 'UTF8' LC_COLLATE 'C' LC_CTYPE 'C.UTF-8'" || die "cannot create database $POSTGRES_DATABASE"
    fi

    local host
    host="$(_pg_uri_escape "$dir")"
    local port_part=""
    [[ $PG_PORT == 5432 ]] || port_part="&port=$PG_PORT"
    PG_DATABASE_URL="postgres://$POSTGRES_ROLE@/$POSTGRES_DATABASE?host=$host$port_part"
    PG_ADMIN_URL="postgres://$POSTGRES_SUPERUSER@/postgres?host=$host$port_part"
    export PG_DATABASE_URL PG_ADMIN_URL PG_SOCKET_DIR PG_PORT PG_DATA_DIR PG_BIN_DIR
    log "PostgreSQL ready: $PG_DATABASE_URL"
    printf '%s\n' "$PG_DATABASE_URL"
}

# stop_throwaway_postgres DIR: stops the cluster in DIR/pgdata (fast: open sessions are
# disconnected, transactions rolled back) and waits until it is down. A cluster that is already
# stopped, or a DIR with no cluster at all, is not an error. The data stays; remove DIR to
# forget it.
stop_throwaway_postgres() {
    local dir=${1:?stop_throwaway_postgres needs a directory}
    dir="$(absolute_path "$dir")"
    local data=$dir/pgdata
    [[ -f $data/PG_VERSION ]] || return 0
    [[ -n ${PG_BIN_DIR:-} ]] || PG_BIN_DIR="$(postgres_bin_dir)" || die "no PostgreSQL server binaries found"
    if ! _pg_as_owner "$PG_BIN_DIR/pg_ctl" -D "$data" status >/dev/null 2>&1; then
        return 0
    fi
    if ! _pg_as_owner "$PG_BIN_DIR/pg_ctl" -D "$data" -m fast -w -t 60 -s stop; then
        # It may have stopped by itself between the status and the stop: only a server still
        # running is a failure.
        if _pg_as_owner "$PG_BIN_DIR/pg_ctl" -D "$data" status >/dev/null 2>&1; then
            die "PostgreSQL in $data did not stop; see $dir/postgres.log"
        fi
    fi
    return 0
}
