# Helpers the comparison scripts source: the processes a script starts and stopping
# them by pid at exit, waiting for a condition, and reading a JSON field.

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
