# Renders nginx/nginx.conf.template. Source after common.sh.
# shellcheck shell=bash

# render_nginx_conf TEMPLATE OUTPUT NAME=VALUE...: replaces every @@NAME@@ in TEMPLATE with
# VALUE and writes OUTPUT. Fails if a placeholder is left over. Values are inserted literally.
render_nginx_conf() {
    local template=$1 output=$2 pair name value text
    shift 2
    text="$(<"$template")"
    for pair in "$@"; do
        name="${pair%%=*}"
        value="${pair#*=}"
        text="${text//"@@${name}@@"/"$value"}"
    done
    if [[ $text =~ @@([A-Z_]+)@@ ]]; then
        die "nginx template placeholder @@${BASH_REMATCH[1]}@@ was not given a value"
    fi
    printf '%s\n' "$text" > "$output.tmp"
    mv -f "$output.tmp" "$output"
}

# metrics_allow_directives LIST: nginx `allow` lines for METRICS_ALLOW, a comma-separated list
# of IPv4/IPv6 addresses or CIDR blocks (spaces allowed), printed on one line; nothing for an
# empty list. Dies on an entry that is not an address, so nothing else lands in nginx.conf.
metrics_allow_directives() {
    local list=$1 entry out=
    local IFS=,
    for entry in $list; do
        entry="${entry//[[:space:]]/}"
        [[ -z $entry ]] && continue
        if [[ $entry =~ ^[0-9]{1,3}(\.[0-9]{1,3}){3}(/[0-9]{1,2})?$ || $entry =~ ^[0-9A-Fa-f:]*:[0-9A-Fa-f:.]*(/[0-9]{1,3})?$ ]]; then
            out+="allow $entry; "
        else
            die "METRICS_ALLOW: '$entry' is not an IPv4/IPv6 address or CIDR block"
        fi
    done
    printf '%s' "${out% }"
}

# nginx_limits: sets WORKER_CONNECTIONS and WORKER_RLIMIT_NOFILE from the open-files hard
# limit. 16384 connections and twice as many files when allowed; never more files than
# the hard limit (nginx cannot raise it past that, not even as root in a container).
nginx_limits() {
    WORKER_CONNECTIONS=16384
    WORKER_RLIMIT_NOFILE=32768
    local hard
    hard="$(ulimit -Hn)"
    if [[ $hard != unlimited ]] && (( hard < WORKER_RLIMIT_NOFILE )); then
        WORKER_RLIMIT_NOFILE=$hard
        if (( hard - 512 < WORKER_CONNECTIONS )); then
            WORKER_CONNECTIONS=$(( hard > 1536 ? hard - 512 : 1024 ))
            log "warning: open-files hard limit is $hard; nginx gets $WORKER_CONNECTIONS worker_connections"
        fi
    fi
}

# cors_config: from CORS_ORIGINS (exact origins such as https://app.example.com or
# http://localhost:5173, separated by spaces or commas; default none) sets CORS_ORIGIN_MAP
# (the entries of the template's `map $http_origin $cors_origin`), CORS_VARY ("Origin" when
# any origin is listed) and CORS_MAX_AGE (CORS_MAX_AGE, 600 s). Dies on anything that is
# not an origin: a scheme, a host, an optional port, nothing else ("*" is refused).
cors_config() {
    local origin
    CORS_ORIGIN_MAP="        # (CORS_ORIGINS is empty: no origin is allowed)"
    CORS_VARY=""
    CORS_MAX_AGE="${CORS_MAX_AGE:-600}"
    [[ $CORS_MAX_AGE =~ ^[0-9]{1,6}$ ]] || die "CORS_MAX_AGE must be a number of seconds, got '$CORS_MAX_AGE'"
    local -a origins=()
    local list="${CORS_ORIGINS:-}"
    read -r -a origins <<< "${list//,/ }"
    ((${#origins[@]} == 0)) && return 0
    CORS_ORIGIN_MAP=""
    for origin in "${origins[@]}"; do
        [[ $origin =~ ^https?://[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?(:[0-9]{1,5})?$ ]] \
            || die "CORS_ORIGINS: '$origin' is not an origin (scheme://host[:port], no path, no '*')"
        # Browsers send the origin in lower case, and nginx's map matches without case: the
        # answer is the listed origin itself, lower-cased, never the request's spelling.
        origin="${origin,,}"
        CORS_ORIGIN_MAP+="        \"$origin\" \"$origin\";"$'\n'
    done
    CORS_ORIGIN_MAP="${CORS_ORIGIN_MAP%$'\n'}"
    CORS_VARY="Origin"
}
