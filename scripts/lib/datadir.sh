# DATA_DIR and database resolution for scripts/backup and scripts/restore. Source after
# common.sh.
# shellcheck shell=bash

# resolve_data_paths: sets DATA_DIR (absolute; `DATA_DIR`, default ./var, after .env), DB_PATH
# (from DATABASE_URL's sqlite:path forms, default $DATA_DIR/messenger.db) and UPLOADS_DIR, as
# the apps resolve them.
resolve_data_paths() {
    load_dotenv "$PWD/.env"
    DATA_DIR="$(absolute_path "${DATA_DIR:-./var}")"
    local url="${DATABASE_URL:-}"
    if [[ -z $url ]]; then
        DB_PATH="$DATA_DIR/messenger.db"
    elif [[ $url == sqlite:* ]]; then
        local path="${url#sqlite:}"
        [[ $path == //* ]] && path="${path#//}"
        path="${path%%\?*}"
        [[ -n $path ]] || die "DATABASE_URL '$url' names no file"
        DB_PATH="$(absolute_path "$path")"
    else
        die "DATABASE_URL '$url' is not sqlite:path; back up other databases with their own tools"
    fi
    UPLOADS_DIR="$DATA_DIR/uploads"
}

# db_in_use PATH: succeeds when a process (one this user may inspect) has PATH (or its WAL)
# open. One find over /proc/*/fd, not a readlink per descriptor.
db_in_use() {
    local path
    path="$(readlink -f "$1" 2>/dev/null || printf '%s' "$1")"
    # -lname takes a pattern: escape what would be special in one.
    path="$(sed 's/[][*?\\]/\\&/g' <<< "$path")"
    local found
    # find fails on processes that exit while it looks; only what it found counts.
    found="$(find /proc/[0-9]*/fd -mindepth 1 -maxdepth 1 \( -lname "$path" -o -lname "$path-wal" \) \
        -print -quit 2>/dev/null || true)"
    [[ -n $found ]]
}

# sqlite_check PATH: dies unless PRAGMA integrity_check of PATH says ok.
sqlite_check() {
    local result
    result="$(sqlite3 -readonly "$1" 'PRAGMA integrity_check;' 2>&1)" || die "cannot read $1: $result"
    [[ $result == ok ]] || die "$1 fails PRAGMA integrity_check: ${result:0:500}"
}
