# Helpers the comparison scripts source: the tools a script needs, the processes it
# starts and stopping them by pid at exit, waiting for a condition, and reading a
# JSON field.

need_tools() { # commands, each installed (as root) from the Debian package of its name
    local missing=()
    for tool in "$@"; do command -v "$tool" >/dev/null || missing+=("$tool"); done
    ((${#missing[@]})) || return 0
    if [[ $(id -u) -ne 0 ]]; then
        echo "missing: ${missing[*]}; run: sudo apt-get install -y ${missing[*]}" >&2
        exit 2
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y "${missing[@]}" >/dev/null
}

pids=()
stop_all() {
    for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
}
trap stop_all EXIT
trap 'exit 130' INT TERM

wait_for() { # description, command...
    local what=$1; shift
    for _ in $(seq 300); do
        if "$@" >/dev/null 2>&1; then return 0; fi
        sleep 0.1
    done
    echo "timed out waiting for $what" >&2
    exit 1
}

json_field() { # python expression over `d`, the JSON on stdin
    python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"
}
