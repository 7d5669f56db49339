# Floor baselines: the same load through a second nginx to a stand-in that does the least
# the real app could do. Source from scripts/bench (after common.sh).
# shellcheck shell=bash
#
# The second nginx runs the stack's own rendered nginx.conf with a few changes: its port, its
# runtime directories, and one upstream. Everything else (worker count, proxy and FastCGI
# settings, the REST API behind it for logins and chat creation) is the same, so a figure and
# its floor differ by what the app does, not by how nginx was set up.

FLOOR_PIDS=         # everything started here, for floor_stop and scripts/bench's cleanup
FLOOR_PORT=         # the second nginx's port
FLOOR_NGINX_PID=    # its master

# floor_nginx_start DIR UPSTREAM: renders the second nginx's configuration into DIR, with
# UPSTREAM going to a socket in DIR (ws: /ws's upstream → DIR/floor.sock; fcgi: every FastCGI location
# → DIR/fcgi.sock), and starts it on FLOOR_PORT.
floor_nginx_start() {
    local dir=$1 upstream=$2 port pattern
    port="$(python3 "$REPO_ROOT/scripts/lib/bench_proc.py" free-port)"
    mkdir -p "$dir/nginx" "$dir/log"
    chmod 0755 "$WORK" "$dir" "$dir/nginx"
    case $upstream in
        ws) pattern="s#server unix:$DATA_DIR/run/relay.sock #server unix:$dir/floor.sock #" ;;
        fcgi) pattern="s#unix:$DATA_DIR/run/fcgi.sock\([ ;]\)#unix:$dir/fcgi.sock\1#" ;;
        *) die "floor_nginx_start: unknown upstream '$upstream'" ;;
    esac
    sed -e "s#listen 0.0.0.0:$PORT #listen 0.0.0.0:$port #" \
        -e "s#\"$DATA_DIR/nginx/#\"$dir/nginx/#g" \
        -e "s#\"$DATA_DIR/log/#\"$dir/log/#g" \
        -e "$pattern" \
        "$DATA_DIR/nginx/nginx.conf" >"$dir/nginx/nginx.conf"
    grep -q "unix:$dir/" "$dir/nginx/nginx.conf" || return 1
    setsid nginx -p "$dir/nginx/" -c "$dir/nginx/nginx.conf" -e "$dir/log/nginx_error.log" \
        >/dev/null 2>>"$dir/log/nginx_error.log" &
    FLOOR_NGINX_PID=$!
    FLOOR_PIDS+=" $!"
    FLOOR_PORT=$port
}

# floor_stop: stops everything floor_nginx_start and the stand-ins started.
floor_stop() {
    # shellcheck disable=SC2086  # a list of pids, split on purpose
    [[ -n ${FLOOR_PIDS// /} ]] && { kill -TERM $FLOOR_PIDS 2>/dev/null; wait $FLOOR_PIDS 2>/dev/null; }
    FLOOR_PIDS=
    return 0
}

# floor_wait_ready PORT SOCKET: true once SOCKET exists and the second nginx answers.
floor_wait_ready() {
    local port=$1 socket=$2 deadline=$(( SECONDS + 30 )) pid
    until [[ -S $socket ]] && curl -s -o /dev/null "http://127.0.0.1:$port/chats"; do
        for pid in $FLOOR_PIDS; do kill -0 "$pid" 2>/dev/null || return 1; done
        (( SECONDS < deadline )) || return 1
        sleep 0.2
    done
}

# ws_floor OUTPUT COPIES_TO SCENARIO LOADGEN_ARGS...: runs `LoadGen SCENARIO LOADGEN_ARGS`
# through a second nginx whose /ws goes to `LoadGen ws-floor --copies-to COPIES_TO` (a
# stand-in relay that answers like WSRelay and stores nothing) and writes its JSON line to
# OUTPUT, its exit status to OUTPUT without .json plus .rc (none if it could not start). The stand-in writes each answer at once, where WSRelay's group commit sends a
# round's frames for a socket together: a reference, not a strict ceiling.
ws_floor() {
    local output=$1 copies_to=$2 scenario=$3 dir watch pid rc=0
    shift 3
    dir="$WORK/floor-$(basename "$output" .json)"
    floor_nginx_start "$dir" ws \
        || { log "warning: could not point the floor nginx at its relay; no floor baseline"; return 0; }
    "$LOADGEN" ws-floor --socket "$dir/floor.sock" --copies-to "$copies_to" >/dev/null 2>"$dir/floor.log" &
    FLOOR_PIDS+=" $!"
    watch="floor:$!"
    if floor_wait_ready "$FLOOR_PORT" "$dir/floor.sock"; then
        for pid in $(pgrep -P "$FLOOR_NGINX_PID" -d ' '); do watch+=",nginx:$pid"; done
        log "LoadGen $scenario $* (floor: port $FLOOR_PORT)"
        "$LOADGEN" "$scenario" "$@" --port "$FLOOR_PORT" --watch "$watch" >"$output" 2>"$dir/loadgen.log" \
            || rc=$?
        printf '%s\n' "$rc" >"${output%.json}.rc"
        (( rc == 0 )) || log "warning: LoadGen $scenario against the floor exited with status $rc (see $dir/loadgen.log)"
        tail -n 1 "$dir/loadgen.log" >&2
    else
        log "warning: the floor relay or its nginx did not start (see $dir); no floor baseline"
    fi
    floor_stop
}

# fcgi_floor_start: compiles scripts/lib/fcgi_floor.c (a bare libfcgi responder, with as
# many threads as FCGIApp has workers) and starts it behind a second nginx on FLOOR_PORT;
# false if it could not. Stop it with floor_stop.
fcgi_floor_start() {
    local dir="$WORK/fcgi-floor" workers compiler
    mkdir -p "$dir"
    compiler="$(command -v cc || command -v clang)" || { log "warning: no C compiler for the FastCGI floor"; return 1; }
    "$compiler" -O2 -Wall -o "$dir/fcgi_floor" "$REPO_ROOT/scripts/lib/fcgi_floor.c" -lfcgi -lpthread 2>"$dir/cc.log" \
        || { log "warning: could not compile the bare FastCGI responder (see $dir/cc.log)"; return 1; }
    floor_nginx_start "$dir" fcgi || { log "warning: could not point the floor nginx at the responder"; return 1; }
    workers="$(nproc)"; workers=$(( workers * 2 < 4 ? 4 : workers * 2 ))   # FCGIApp's default
    "$dir/fcgi_floor" "$dir/fcgi.sock" "${FCGI_WORKERS:-$workers}" >/dev/null 2>"$dir/floor.log" &
    FLOOR_PIDS+=" $!"
    floor_wait_ready "$FLOOR_PORT" "$dir/fcgi.sock" && return 0
    log "warning: the bare FastCGI responder or its nginx did not start (see $dir)"
    floor_stop
    return 1
}
