# The floor baseline for the WS ingest row. Source from scripts/bench (after common.sh).
# shellcheck shell=bash

# ingest_floor OUTPUT LOADGEN_ARGS...: runs `LoadGen ws-ingest LOADGEN_ARGS` through a second
# nginx whose /ws goes to `LoadGen ws-floor` (a stand-in relay that answers like WSRelay and
# stores nothing) and writes its JSON line to OUTPUT.
#
# The second nginx runs the stack's own rendered nginx.conf with three changes: its port, its
# runtime directories, and the /ws upstream. Everything else — the REST API behind it (login,
# chat creation), worker count, proxy settings — is the same, so the two ingest figures differ
# by what the relay does (and how: the stand-in writes each answer at once, WSRelay a round's
# frames for a socket together).
ingest_floor() {
    local output=$1 dir="$WORK/floor" port floor_pid nginx_pid rc=0 deadline watch pid
    shift
    port="$(python3 "$REPO_ROOT/scripts/lib/bench_proc.py" free-port)"
    mkdir -p "$dir/nginx" "$dir/log"
    chmod 0755 "$WORK" "$dir" "$dir/nginx"
    sed -e "s#listen 0.0.0.0:$PORT #listen 0.0.0.0:$port #" \
        -e "s#\"$DATA_DIR/nginx/#\"$dir/nginx/#g" \
        -e "s#\"$DATA_DIR/log/#\"$dir/log/#g" \
        -e "s#unix:$DATA_DIR/run/relay.sock:#unix:$dir/floor.sock:#" \
        "$DATA_DIR/nginx/nginx.conf" >"$dir/nginx/nginx.conf"
    grep -q "unix:$dir/floor.sock:" "$dir/nginx/nginx.conf" \
        || { log "warning: could not point the floor nginx at its relay; no floor baseline"; return 0; }

    "$LOADGEN" ws-floor --socket "$dir/floor.sock" 2>"$dir/floor.log" &
    floor_pid=$!
    setsid nginx -p "$dir/nginx/" -c "$dir/nginx/nginx.conf" -e "$dir/log/nginx_error.log" 2>>"$dir/log/nginx_error.log" &
    nginx_pid=$!
    FLOOR_PIDS="$nginx_pid $floor_pid"   # for scripts/bench's cleanup if it is interrupted
    deadline=$(( SECONDS + 30 ))
    until [[ -S $dir/floor.sock ]] && curl -s -o /dev/null "http://127.0.0.1:$port/chats"; do
        if (( SECONDS >= deadline )) || ! kill -0 "$floor_pid" 2>/dev/null || ! kill -0 "$nginx_pid" 2>/dev/null; then
            log "warning: the floor relay or its nginx did not start (see $dir); no floor baseline"
            rc=1
            break
        fi
        sleep 0.2
    done
    if (( rc == 0 )); then
        watch="floor:$floor_pid"
        for pid in $(pgrep -P "$nginx_pid" -d ' '); do watch+=",nginx:$pid"; done
        log "LoadGen ws-ingest $* (floor: port $port)"
        "$LOADGEN" ws-ingest "$@" --port "$port" --watch "$watch" >"$output" 2>"$dir/loadgen.log" \
            || log "warning: LoadGen ws-ingest against the floor exited with an error (see $dir/loadgen.log)"
        tail -n 1 "$dir/loadgen.log" >&2
    fi
    kill -TERM "$nginx_pid" "$floor_pid" 2>/dev/null || true
    wait "$nginx_pid" "$floor_pid" 2>/dev/null || true
    FLOOR_PIDS=
    return 0
}
