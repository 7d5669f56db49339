# Shared helpers for scripts/run and scripts/test. Source it; it defines functions only
# (plus REPO_ROOT).
# shellcheck shell=bash

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"

# The Debian packages the build and the stack need.
# sqlite3 (the CLI): scripts/backup and scripts/restore; libargon2-dev: password hashing;
# libpq-dev: PostgreSQL's client library, linked into both servers (DATABASE_URL=postgres://…).
REQUIRED_PACKAGES=(nginx libfcgi-dev libsqlite3-dev libssl-dev sqlite3 libargon2-dev libpq-dev)
# What scripts/test needs on top: headless Chromium and its WebDriver for the web client's
# browser tests (Tests/browser), and an emoji font so reactions render in its screenshots.
TEST_PACKAGES=(chromium chromium-driver fonts-noto-color-emoji)

log() { printf '[%s] %s\n' "${LOG_TAG:-scripts}" "$*" >&2; }
die() { log "error: $*"; exit 1; }

require_bash_5_1() {
    if (( BASH_VERSINFO[0] < 5 || (BASH_VERSINFO[0] == 5 && BASH_VERSINFO[1] < 1) )); then
        die "bash 5.1 or newer is required (this is $BASH_VERSION)"
    fi
}

# load_dotenv FILE: exports KEY=value lines of FILE for every KEY not already set in the
# environment (a variable set to the empty string counts as set). Understands `export KEY=`,
# `#` comments, and values in single or double quotes, like the apps' own .env reader. Never
# evaluates anything.
load_dotenv() {
    local file=$1 line key value
    [[ -f $file ]] || return 0
    while IFS= read -r line || [[ -n $line ]]; do
        line="${line%$'\r'}"
        line="${line#"${line%%[![:space:]]*}"}"          # trim leading space
        [[ -z $line || $line == \#* ]] && continue
        [[ $line == export\ * ]] && line="${line#export }"
        [[ $line == *=* ]] || continue
        key="${line%%=*}"; value="${line#*=}"
        key="${key//[[:space:]]/}"
        value="${value#"${value%%[![:space:]]*}"}"
        value="${value%"${value##*[![:space:]]}"}"       # trim surrounding space
        [[ $key =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]] || continue
        if [[ ${#value} -ge 2 && ( ( $value == \"*\" ) || ( $value == \'*\' ) ) ]]; then
            value="${value:1:${#value}-2}"
        elif [[ $value == *" #"* ]]; then
            value="${value%% #*}"
            value="${value%"${value##*[![:space:]]}"}"
        fi
        if [[ ! -v $key ]]; then
            export "$key=$value"
        fi
    done < "$file"
}

# ensure_packages [PACKAGE...]: installs the missing ones of PACKAGEs (default
# REQUIRED_PACKAGES) as root, or prints the command and exits 1. SKIP_INSTALL=1 skips the check.
ensure_packages() {
    if [[ ${SKIP_INSTALL:-0} == 1 ]]; then
        return 0
    fi
    local wanted=("$@")
    ((${#wanted[@]} > 0)) || wanted=("${REQUIRED_PACKAGES[@]}")
    if ! command -v dpkg >/dev/null 2>&1; then
        log "warning: no dpkg here; make sure these are installed: ${wanted[*]}"
        return 0
    fi
    local missing=() pkg
    for pkg in "${wanted[@]}"; do
        if ! dpkg -s "$pkg" 2>/dev/null | grep -q '^Status: install ok installed'; then
            missing+=("$pkg")
        fi
    done
    ((${#missing[@]} == 0)) && return 0
    if [[ $(id -u) -ne 0 ]]; then
        log "missing Debian packages: ${missing[*]}"
        log "install them with:"
        printf '    sudo apt-get update && sudo apt-get install -y %s\n' "${missing[*]}" >&2
        exit 1
    fi
    log "installing missing Debian packages: ${missing[*]}"
    apt-get update
    DEBIAN_FRONTEND=noninteractive apt-get install -y "${missing[@]}"
}

# resolve_bin_dir CONFIG: prints the SwiftPM bin dir for CONFIG (debug|release), or $BIN_DIR
# when the caller already knows it.
resolve_bin_dir() {
    local config=$1
    if [[ -n ${BIN_DIR:-} ]]; then
        printf '%s\n' "$BIN_DIR"
        return 0
    fi
    (cd "$REPO_ROOT" && swift build -c "$config" --show-bin-path)
}

# absolute_path PATH: PATH made absolute against the current directory (need not exist).
absolute_path() {
    local path=$1
    [[ $path == /* ]] || path="$PWD/$path"
    # Collapse "/./" and a trailing "/." and "//"; ".." is left to the OS.
    while [[ $path == *"/./"* ]]; do path="${path//\/.\//\/}"; done
    while [[ $path == *"//"* ]]; do path="${path//\/\//\/}"; done
    [[ $path == */. ]] && path="${path%/.}"
    [[ $path != / ]] && path="${path%/}"
    printf '%s\n' "$path"
}

# http_status HOST PORT PATH: prints the status code of a GET, or nothing if nobody answers
# within 2 s. Uses bash's /dev/tcp, so it needs no curl.
http_status() {
    local host=$1 port=$2 path=$3 line=
    (
        exec 3<>"/dev/tcp/$host/$port" || exit 1
        printf 'GET %s HTTP/1.0\r\nHost: localhost\r\nConnection: close\r\n\r\n' "$path" >&3
        IFS= read -r -t 2 line <&3 || exit 1
        line="${line%$'\r'}"
        [[ $line =~ ^HTTP/[0-9.]+\ ([0-9]{3}) ]] && printf '%s\n' "${BASH_REMATCH[1]}"
    ) 2>/dev/null || true
}
