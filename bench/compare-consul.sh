#!/usr/bin/env bash
# Concord's Consul door against Concord's own HTTP API, on one cluster, in one run,
# with one load generator: what speaking Consul's dialect costs.
#
# Starts a 3-node Concord cluster (`concord dev`: release build, default flags, fsync
# on, the Consul door on every node) on loopback with its data under $BENCH_DIR, and
# drives the leader with `wrk` and bench/kv.lua, taking turns (the one that goes first
# alternates): puts of new keys, linearizable gets of preloaded ones, new sessions
# (Consul's `PUT /v1/session/create` against Concord's `POST /v1/leases`), and renewals
# of one session (`PUT /v1/session/renew/{id}` against `POST /v1/leases/{id}/keepalive`).
# One table goes to stdout and to $BENCH_DIR/results.md. Every process it started is
# stopped at exit, by pid.
#
# Usage: bench/compare-consul.sh            (as root it installs what is missing)
# Environment:
#   DURATION=10s       length of each measured run
#   ROUNDS=2           measured runs of each cell per side
#   CONNECTIONS="1 64" connections of each workload
#   VALUE_BYTES=100    value size
#   BENCH_DIR=bench-runs/consul-<time> where data, logs and results go
#   CONCORD_BIN=...    a concord binary to use instead of building target/release/concord
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
DURATION=${DURATION:-10s}
ROUNDS=${ROUNDS:-2}
CONNECTIONS=${CONNECTIONS:-"1 64"}
VALUE_BYTES=${VALUE_BYTES:-100}
READ_KEYS=1000
BENCH_DIR=${BENCH_DIR:-$ROOT/bench-runs/consul-$(date +%Y%m%d-%H%M%S)}
BASE_PORT=27201
CONSUL_PORT=$((BASE_PORT + 1500))

source "$ROOT/bench/lib.sh"
need_tools wrk curl python3
if [[ -z ${CONCORD_BIN:-} ]]; then
    ./scripts/setup.sh
    cargo build --release --bin concord
    CONCORD_BIN=$ROOT/target/release/concord
fi
mkdir -p "$BENCH_DIR"
echo "data, logs and results: $BENCH_DIR"

"$CONCORD_BIN" dev --base-port $BASE_PORT --data-dir "$BENCH_DIR/concord" >"$BENCH_DIR/concord-dev.log" 2>&1 &
pids+=($!)
has_leader() { [[ $(curl -sf "http://127.0.0.1:$BASE_PORT/v1/cluster" | json_field 'd["leader"]') != None ]]; }
wait_for "Concord to elect a leader" has_leader
leader=$(curl -sf "http://127.0.0.1:$BASE_PORT/v1/cluster" | json_field '[m for m in d["members"] if m["role"] == "leader"][0]["id"]')
concord_url="http://127.0.0.1:$((BASE_PORT + leader - 1))"
consul_url="http://127.0.0.1:$((CONSUL_PORT + leader - 1))"
wait_for "the Consul door" curl -sf "$consul_url/v1/status/leader"
echo "leader: $concord_url (Consul door $consul_url)"

# The keys the gets read, and the session and the lease the renewals keep alive.
value=$(head -c "$VALUE_BYTES" /dev/zero | tr '\0' v)
for i in $(seq 0 $((READ_KEYS - 1))); do
    ((i > 0)) && echo next
    printf 'url = "%s/v1/kv/read/%s"\nrequest = PUT\ndata = "%s"\nsilent\nfail\noutput = /dev/null\n' "$concord_url" "$i" "$value"
done >"$BENCH_DIR/preload.curl"
curl -s --parallel --parallel-max 16 -K "$BENCH_DIR/preload.curl" 2>/dev/null || true
curl -sf "$consul_url/v1/kv/read/$((READ_KEYS - 1))" >/dev/null || { echo "preload failed" >&2; exit 1; }
session=$(curl -sf -X PUT -d '{"TTL":"600s"}' "$consul_url/v1/session/create" | json_field 'd["ID"]')
lease=$(curl -sf -X POST -H 'content-type: application/json' -d '{"ttl_ms":600000}' "$concord_url/v1/leases" | json_field 'd["id"]')

results="$BENCH_DIR/results.txt"
: >"$results"
run() { # system url op connections
    local system=$1 url=$2 op=$3 conns=$4 threads=2 renew=$lease
    ((conns == 1)) && threads=1
    [[ $system == consul ]] && renew=$session
    local line
    line=$(SYSTEM=$system OP=$op VALUE_BYTES=$VALUE_BYTES READ_KEYS=$READ_KEYS RENEW_ID=$renew \
        wrk -t"$threads" -c"$conns" -d"$DURATION" --timeout 10s -s "$ROOT/bench/kv.lua" "$url" | grep '^RESULT')
    echo "$system $op $conns $line" | tee -a "$results"
}
echo "warm-up"
SYSTEM=concord OP=put wrk -t2 -c16 -d3s -s bench/kv.lua "$concord_url" >/dev/null
turn=0
for op in put get session renew; do
    for conns in $CONNECTIONS; do
        for _ in $(seq "$ROUNDS"); do
            if ((turn % 2 == 0)); then
                run concord "$concord_url" "$op" "$conns"; run consul "$consul_url" "$op" "$conns"
            else
                run consul "$consul_url" "$op" "$conns"; run concord "$concord_url" "$op" "$conns"
            fi
            turn=$((turn + 1))
        done
    done
done

python3 - "$results" >"$BENCH_DIR/results.md" <<'PY'
import sys
from collections import defaultdict
runs = defaultdict(list)
for line in open(sys.argv[1]):
    system, op, conns, _, *fields = line.split()
    runs[(op, int(conns), system)].append(dict(f.split("=") for f in fields))
names = {"put": "put", "get": "linearizable get", "session": "new session / lease", "renew": "renew / keep-alive"}
print("| workload | Concord API req/s (each run) | Consul door req/s (each run) | door / API (means) | p50 ms API / door | errors API / door |")
print("|---|---:|---:|---:|---:|---:|")
for (op, conns) in sorted({(op, c) for (op, c, _) in runs}, key=lambda k: (list(names).index(k[0]), k[1])):
    api, door = runs[(op, conns, "concord")], runs[(op, conns, "consul")]
    mean = lambda rs: sum(int(r["rps"]) for r in rs) / len(rs)
    each = lambda rs: " / ".join(f"{int(r['rps']):,}" for r in rs)
    p50 = lambda rs: sum(int(r["p50_us"]) for r in rs) / len(rs) / 1000
    errors = lambda rs: sum(int(r["errors"]) for r in rs)
    print(f"| {names[op]}, {conns} conn{'s' if conns > 1 else ''} | {each(api)} | {each(door)} | {mean(door) / max(mean(api), 1):.2f}x "
          f"| {p50(api):.2f} / {p50(door):.2f} | {errors(api)} / {errors(door)} |")
PY
echo
cat "$BENCH_DIR/results.md"
