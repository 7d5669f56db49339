# Sourced by scripts/test and scripts/soak (after common.sh): the Python modules their
# end-to-end tests and load scripts import, and how they get installed.

PYTHON="${PYTHON:-python3}"
PY_MODULES=(pytest requests websockets schemathesis openapi-core selenium hypothesis "psycopg[binary]")

# ensure_python_deps: makes PY_MODULES importable by $PYTHON: pip first (on a Debian python
# that refuses pip under PEP 668, as root, pip with --break-system-packages); with no pip at
# all, as root, the python3-* packages and python3-pip, then pip for schemathesis and
# openapi-core (Debian packages neither).
ensure_python_deps() {
    local check="import pytest, requests, websockets, schemathesis, openapi_core, selenium, hypothesis, psycopg"
    command -v "$PYTHON" >/dev/null 2>&1 || {
        if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
            apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y python3
        else
            die "python3 is required for the end-to-end tests (sudo apt-get install -y python3)"
        fi
    }
    "$PYTHON" -c "$check" 2>/dev/null && return 0
    log "installing python test dependencies: ${PY_MODULES[*]}"
    if "$PYTHON" -m pip --version >/dev/null 2>&1 \
        && "$PYTHON" -m pip install -q "${PY_MODULES[@]}"; then
        "$PYTHON" -c "$check" && return 0
    fi
    if [[ $(id -u) -eq 0 ]] && "$PYTHON" -m pip --version >/dev/null 2>&1 \
        && "$PYTHON" -m pip install -q --break-system-packages "${PY_MODULES[@]}"; then
        "$PYTHON" -c "$check" && return 0
    fi
    if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null 2>&1 \
        && [[ "$("$PYTHON" -c 'import sys; print(sys.prefix)')" == /usr ]]; then
        apt-get update
        DEBIAN_FRONTEND=noninteractive apt-get install -y python3-pytest python3-requests python3-websockets python3-selenium python3-hypothesis python3-psycopg python3-pip
        "$PYTHON" -m pip install -q --break-system-packages schemathesis openapi-core || true
        "$PYTHON" -c "$check" && return 0
    fi
    die "cannot install ${PY_MODULES[*]} for $PYTHON; install them and run again"
}
