#!/usr/bin/env bash
# Redis's own load generator, redis-benchmark, against a 3-node Concord cluster's
# Redis door and against one redis-server, on this machine, in one run; and Concord's
# HTTP API for the same operations (`concord bench`), to show what the protocol costs.
#
# redis-server runs twice, with the append-only file fsynced on every write
# (`appendfsync always`, what Concord promises) and once a second (`everysec`,
# Redis's default when AOF is on), persistence otherwise off. Concord is a release
# build with default flags (every write replicated to a majority and fsynced). All on
# loopback; data, logs and results under $BENCH_DIR; every process it started is
# stopped at exit, by pid. redis-benchmark drives the leader's Redis port, random
# keys (-r), 3-byte values (its default), for each number of clients and pipeline
# depth. The table goes to stdout and to $BENCH_DIR/results.md.
#
# Usage: bench/compare-redis.sh            (as root it installs what is missing)
# Environment:
#   CLIENTS="1 64 256"     redis-benchmark -c
#   PIPELINES="1 16"       redis-benchmark -P
#   TESTS=set,get,incr,lpush,rpop   redis-benchmark -t
#   SECONDS_PER_RUN=5      each run's length, roughly (requests = expected rate x this)
#   BENCH_DIR=bench-runs/redis-<time>
#   CONCORD_BIN=...        a concord binary instead of building target/release/concord
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
CLIENTS=${CLIENTS:-"1 64 256"}
PIPELINES=${PIPELINES:-"1 16"}
TESTS=${TESTS:-set,get,incr,lpush,rpop}
SECONDS_PER_RUN=${SECONDS_PER_RUN:-5}
BENCH_DIR=${BENCH_DIR:-$ROOT/bench-runs/redis-$(date +%Y%m%d-%H%M%S)}
HTTP_PORTS=(27301 27302 27303)
RESP_PORTS=(26301 26302 26303)
REDIS_ALWAYS_PORT=26401
REDIS_EVERYSEC_PORT=26402

missing=()
command -v redis-server >/dev/null || missing+=(redis-server)
command -v redis-benchmark >/dev/null || missing+=(redis-tools)
command -v curl >/dev/null || missing+=(curl)
command -v python3 >/dev/null || missing+=(python3)
if ((${#missing[@]})); then
    if [[ $(id -u) -ne 0 ]]; then
        echo "missing: ${missing[*]}; run: sudo apt-get install -y ${missing[*]}" >&2
        exit 2
    fi
    # Debian starts redis-server's service on install unless policy-rc.d says no.
    made_policy=
    if [[ ! -e /usr/sbin/policy-rc.d ]]; then
        printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d && made_policy=1
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y "${missing[@]}" >/dev/null
    [[ -n $made_policy ]] && rm -f /usr/sbin/policy-rc.d
fi
if [[ -z ${CONCORD_BIN:-} ]]; then
    ./scripts/setup.sh
    cargo build --release --bin concord
    CONCORD_BIN=$ROOT/target/release/concord
fi
for port in "${HTTP_PORTS[@]}" "${RESP_PORTS[@]}" $REDIS_ALWAYS_PORT $REDIS_EVERYSEC_PORT; do
    if (echo >/dev/tcp/127.0.0.1/"$port") 2>/dev/null; then
        echo "port $port is in use; stop what holds it first" >&2
        exit 2
    fi
done

mkdir -p "$BENCH_DIR"
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
}
trap cleanup EXIT

members="1=127.0.0.1:${HTTP_PORTS[0]},2=127.0.0.1:${HTTP_PORTS[1]},3=127.0.0.1:${HTTP_PORTS[2]}"
for i in 0 1 2; do
    "$CONCORD_BIN" serve --id $((i + 1)) --listen "127.0.0.1:${HTTP_PORTS[i]}" --redis-listen "127.0.0.1:${RESP_PORTS[i]}" \
        --initial-cluster "$members" --data-dir "$BENCH_DIR/concord-$((i + 1))" >"$BENCH_DIR/concord-$((i + 1)).log" 2>&1 &
    pids+=($!)
done
for policy in always everysec; do
    port_var=REDIS_${policy^^}_PORT
    mkdir -p "$BENCH_DIR/redis-$policy"
    redis-server --port "${!port_var}" --bind 127.0.0.1 --save "" --appendonly yes --appendfsync "$policy" \
        --dir "$BENCH_DIR/redis-$policy" --daemonize no >"$BENCH_DIR/redis-$policy.log" 2>&1 &
    pids+=($!)
done
leader=
for _ in $(seq 1 150); do
    leader=$(curl -sf "http://127.0.0.1:${HTTP_PORTS[0]}/v1/cluster" | python3 -c 'import json,sys; print(json.load(sys.stdin).get("leader") or "")' 2>/dev/null || true)
    [[ -n $leader ]] && redis-cli -p "${RESP_PORTS[leader - 1]}" ping >/dev/null 2>&1 && break
    sleep 0.2
done
[[ -n $leader ]] || { echo "the Concord cluster elected no leader" >&2; exit 1; }
concord_resp=${RESP_PORTS[leader - 1]}
concord_http=127.0.0.1:${HTTP_PORTS[leader - 1]}

results=$BENCH_DIR/results.csv
echo "system,test,clients,pipeline,rps,p50_ms,p99_ms" >"$results"
# One redis-benchmark run; roughly SECONDS_PER_RUN long at `rate` requests a second.
measure() {
    local system=$1 port=$2 clients=$3 pipeline=$4 rate=$5
    local requests=$((rate * SECONDS_PER_RUN))
    ((requests < clients * 10)) && requests=$((clients * 10))
    redis-benchmark -h 127.0.0.1 -p "$port" -t "$TESTS" -c "$clients" -P "$pipeline" -n "$requests" -r 100000 --csv 2>/dev/null |
        python3 -c '
import csv, sys
system, clients, pipeline = sys.argv[1:4]
rows = list(csv.reader(sys.stdin))
head = rows[0]
for row in rows[1:]:
    r = dict(zip(head, row))
    print(",".join([system, r["test"], clients, pipeline, r["rps"], r["p50_latency_ms"], r["p99_latency_ms"]]))
' "$system" "$clients" "$pipeline" >>"$results"
}
for clients in $CLIENTS; do
    for pipeline in $PIPELINES; do
        echo "clients $clients, pipeline $pipeline"
        # Expected rates, only to size the runs: about 800 writes a second per
        # unpipelined client on Concord (one fsync each), far more on redis-server.
        measure concord-resp "$concord_resp" "$clients" "$pipeline" $((clients * pipeline * 800 < 20000 ? clients * pipeline * 800 : 20000))
        measure redis-always $REDIS_ALWAYS_PORT "$clients" "$pipeline" $((clients * pipeline * 5000 < 100000 ? clients * pipeline * 5000 : 100000))
        measure redis-everysec $REDIS_EVERYSEC_PORT "$clients" "$pipeline" 100000
    done
    # The same operations over Concord's HTTP API (no pipelining there).
    for workload in put get; do
        "$CONCORD_BIN" bench --endpoints "$concord_http" --workload "$workload" --connections "$clients" --duration-s "$SECONDS_PER_RUN" --value-bytes 3 --json 2>>"$BENCH_DIR/concord-bench.log" |
            python3 -c '
import json, sys
d = json.load(sys.stdin)
test = {"put": "SET", "get": "GET"}[sys.argv[1]]
lat = d.get("latency_ms", {})
print(",".join(["concord-http", test, sys.argv[2], "1", str(d["ops_per_s"]), str(lat.get("p50", "")), str(lat.get("p99", ""))]))
' "$workload" "$clients" >>"$results"
    done
done

python3 - "$results" <<'PY' | tee "$BENCH_DIR/results.md"
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
systems = ["concord-resp", "concord-http", "redis-always", "redis-everysec"]
keys = sorted({(r["test"], int(r["clients"]), int(r["pipeline"])) for r in rows}, key=lambda k: (k[0], k[1], k[2]))
by = {(r["system"], r["test"], int(r["clients"]), int(r["pipeline"])): r for r in rows}
print("| test | clients | pipeline | " + " | ".join(systems) + " |")
print("|---|---:|---:|" + "---:|" * len(systems))
for test, clients, pipeline in keys:
    cells = []
    for system in systems:
        r = by.get((system, test, clients, pipeline))
        cells.append(f"{float(r['rps']):,.0f} (p50 {float(r['p50_ms']):.2f} ms)" if r and r["p50_ms"] else (f"{float(r['rps']):,.0f}" if r else ""))
    print(f"| {test} | {clients} | {pipeline} | " + " | ".join(cells) + " |")
PY
