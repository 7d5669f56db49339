#!/usr/bin/env bash
# Used by test_deploy.py, inside `unshare -m` (a private mount namespace): runs scripts/install
# for real against copies of /etc, /opt, /var/lib, /var/log and /run bind-mounted over the
# originals, so the machine's own files are never touched; then starts what the systemd units
# would start (FCGIApp after `FCGIApp migrate`, WSRelay, both as `messenger` with
# /etc/messenger/env) and the stock nginx with the installed site, and waits for WORK/stop
# (WORK/backup-request: runs the installed backup into WORK/backup first).
#   deploy_namespace.sh WORK PORT BIN_DIR
set -euo pipefail
WORK=$1 PORT=$2 BIN=$3
REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"

mount --make-rprivate /
mkdir -p "$WORK/etc" "$WORK/opt" "$WORK/varlib/nginx" "$WORK/varlog/nginx" "$WORK/run"
cp -a /etc/. "$WORK/etc/"
# The stock default site would take port 80; this copy only serves the messenger.
rm -f "$WORK/etc/nginx/sites-enabled/default"
# A fresh /opt that still shows what else is there (the debug binaries need the Swift
# runtime, often under /opt/swift); only /opt/messenger is new.
for entry in /opt/*; do
    name="${entry##*/}"
    [[ -d $entry && $name != messenger ]] || continue
    mkdir -p "$WORK/opt/$name"
    mount --bind "$entry" "$WORK/opt/$name"
done
mount --rbind "$WORK/opt" /opt
mount --bind "$WORK/etc" /etc
mount --bind "$WORK/varlib" /var/lib
mount --bind "$WORK/varlog" /var/log
mount --bind "$WORK/run" /run

# An operator's env file written before the install (it must be kept, and read).
if [[ -f $WORK/env.pre ]]; then
    mkdir -p /etc/messenger
    install -m 0640 "$WORK/env.pre" /etc/messenger/env
fi

cd "$REPO_ROOT"
SKIP_BUILD=1 SKIP_INSTALL=1 BIN_DIR="$BIN" LISTEN_PORT="$PORT" SERVER_NAME="localhost" \
    CORS_ORIGINS= ./scripts/install > "$WORK/install.out" 2>&1 || { echo "install failed: $?" >> "$WORK/install.out"; exit 1; }

# What the units do, without systemd.
set -a
# shellcheck disable=SC1091
source /etc/messenger/env
set +a
cd /var/lib/messenger
runuser -u messenger -- /opt/messenger/bin/FCGIApp migrate >> "$WORK/apps.out" 2>&1
runuser -u messenger -- /opt/messenger/bin/FCGIApp >> "$WORK/apps.out" 2>&1 &
fcgi=$!
runuser -u messenger -- /opt/messenger/bin/WSRelay >> "$WORK/apps.out" 2>&1 &
relay=$!
nginx -g 'daemon off;' >> "$WORK/nginx.out" 2>&1 &
nginx_pid=$!
stop() {
    kill -TERM "$nginx_pid" "$fcgi" "$relay" 2>/dev/null || true
    wait "$nginx_pid" "$fcgi" "$relay" 2>/dev/null || true
}
trap stop EXIT
touch "$WORK/ready"
for _ in $(seq 1 600); do
    [[ -e $WORK/stop ]] && exit 0
    if [[ -e $WORK/backup-request ]]; then
        rm -f "$WORK/backup-request"
        rc=0
        DATA_DIR=/var/lib/messenger /opt/messenger/bin/backup "$WORK/backup" > "$WORK/backup.out" 2>&1 || rc=$?
        echo "$rc" > "$WORK/backup-done"
    fi
    kill -0 "$fcgi" "$relay" "$nginx_pid" 2>/dev/null || { echo "a process died" >> "$WORK/apps.out"; exit 1; }
    sleep 0.2
done
echo "never told to stop" >> "$WORK/apps.out"
exit 1
