#!/usr/bin/env bash
# How Concord behaves as its data set grows: loads a 3-node cluster (release build,
# fsync on) step by step to each size in SIZES (keys of VALUE_BYTES-byte values) and
# at each size records, into $BENCH_DIR/scale.md:
#   - RSS of each node and its on-disk size (log + state + snapshots);
#   - put and linearizable get throughput (`concord bench`, 64 connections, 10 s);
#   - restart-to-ready: all three nodes stopped (SIGTERM) and started again, until a
#     linearizable read of a loaded key answers;
#   - snapshot catch-up: the leader builds a snapshot (`POST /v1/cluster/snapshot`,
#     which purges its log behind it), then a fourth node joins empty, until it has
#     applied what the leader had when it joined (it is sent the snapshot, not the
#     log); then it is removed again.
# Nodes run with the default snapshot policy (SNAPSHOT_AFTER_ENTRIES=50000): a much
# smaller interval makes the load rewrite the whole, growing state over and over.
# Loopback only; every process it started is stopped at exit, by pid.
#
# Usage: bench/scale.sh   Environment: SIZES="100000 1000000 10000000" VALUE_BYTES=100
#   CACHE_MB=256 (--cache-mb of each node)  BENCH_DIR=bench-runs/scale-<time>
#   CONCORD_BIN=... (default: build target/release/concord)
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$(pwd)
SIZES=${SIZES:-"100000 1000000 10000000"}
VALUE_BYTES=${VALUE_BYTES:-100}
CACHE_MB=${CACHE_MB:-256}
SNAPSHOT_AFTER_ENTRIES=${SNAPSHOT_AFTER_ENTRIES:-50000}
BENCH_DIR=${BENCH_DIR:-$ROOT/bench-runs/scale-$(date +%Y%m%d-%H%M%S)}
BASE_PORT=27301
if [[ -z ${CONCORD_BIN:-} ]]; then
    ./scripts/setup.sh
    cargo build --release --bin concord
    CONCORD_BIN=$ROOT/target/release/concord
fi
command -v python3 >/dev/null || { echo "needs python3" >&2; exit 2; }
mkdir -p "$BENCH_DIR"
echo "data, logs and results: $BENCH_DIR"

declare -A pids=()
stop_node() { # id [signal]
    local pid=${pids[$1]:-}
    [[ -n $pid ]] || return 0
    kill -"${2:-TERM}" "$pid" 2>/dev/null || true
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    unset "pids[$1]"
}
stop_all() { for id in "${!pids[@]}"; do stop_node "$id"; done; }
trap stop_all EXIT
trap 'exit 130' INT TERM

addr() { echo "127.0.0.1:$((BASE_PORT + $1 - 1))"; }
initial="1=$(addr 1),2=$(addr 2),3=$(addr 3)"
start_node() { # id [--join URL | default: the initial cluster]
    local id=$1; shift
    local membership=(--initial-cluster "$initial")
    (($#)) && membership=("$@")
    "$CONCORD_BIN" serve --id "$id" --listen "$(addr "$id")" --data-dir "$BENCH_DIR/node-$id" \
        --cache-mb "$CACHE_MB" --snapshot-after-entries "$SNAPSHOT_AFTER_ENTRIES" "${membership[@]}" >>"$BENCH_DIR/node-$id.log" 2>&1 &
    pids[$id]=$!
}
json() { python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }
cluster() { curl -sf --max-time 2 "http://$(addr "${1:-1}")/v1/cluster"; }
leader_addr() { cluster | json '[m["addr"] for m in d["members"] if m["role"] == "leader"][0]'; }
now_ms() { date +%s%3N; }
wait_until() { # what, command...: polls every 50 ms for at most 10 minutes (by the clock)
    local what=$1; shift
    local deadline=$(($(now_ms) + 600000))
    while (($(now_ms) < deadline)); do "$@" >/dev/null 2>&1 && return 0; sleep 0.05; done
    echo "timed out waiting for $what" >&2; exit 1
}
note() { echo "   $*" | tee -a "$BENCH_DIR/measurements.txt"; } # each figure as soon as it is taken
bench() { # workload connections extra... -> requests per second
    "$CONCORD_BIN" bench --endpoints "$(leader_addr)" --json --workload "$1" --connections "$2" "${@:3}" 2>/dev/null | json 'round(d["ops_per_s"])'
}

for id in 1 2 3; do start_node "$id"; done
wait_until "a leader" leader_addr
echo "| keys | load rate (puts/s) | RSS per node (MiB) | disk per node (MiB) | put req/s | get req/s | restart to ready (s) | snapshot build (s) | snapshot catch-up (s) |" >"$BENCH_DIR/scale.md"
echo "|---:|---:|---|---|---:|---:|---:|---:|---:|" >>"$BENCH_DIR/scale.md"
loaded=0
for size in $SIZES; do
    echo "== loading to $size keys"
    started=$(now_ms)
    "$CONCORD_BIN" bench --endpoints "$(leader_addr)" --workload put --connections 256 --ops $((size - loaded)) \
        --duration-s 100000 --key-prefix "load-$size" --value-bytes "$VALUE_BYTES" >"$BENCH_DIR/load-$size.txt"
    load_rate=$(((size - loaded) * 1000 / ($(now_ms) - started)))
    note "$size keys: load rate $load_rate puts/s"
    loaded=$size
    applied=$(cluster | json 'd["applied_index"]')
    for id in 1 2 3; do wait_until "node $id to apply" bash -c "[[ \$(curl -sf http://$(addr "$id")/v1/cluster?consistency=stale | python3 -c 'import json,sys; print(json.load(sys.stdin)[\"applied_index\"])') -ge $applied ]]"; done
    sleep 5 # let background flushes settle before reading memory and disk
    rss=$(for id in 1 2 3; do echo $(($(ps -o rss= -p "${pids[$id]}") / 1024)); done | paste -sd/)
    disk=$(for id in 1 2 3; do echo $(($(du -sk "$BENCH_DIR/node-$id" | cut -f1) / 1024)); done | paste -sd/)
    note "$size keys: RSS $rss MiB, disk $disk MiB"
    put_rate=$(bench put 64 --duration-s 10 --key-prefix "measure-$size" --value-bytes "$VALUE_BYTES")
    get_rate=$(bench get 64 --duration-s 10 --keys 1000)
    note "$size keys: $put_rate puts/s, $get_rate gets/s"

    echo "== restart"
    probe="load-$size/0/1"
    stop_all
    started=$(now_ms)
    for id in 1 2 3; do start_node "$id"; done
    wait_until "a linearizable read after restart" curl -sf --max-time 1 "http://$(addr 1)/v1/kv/$probe"
    restart_s=$(python3 -c "print(f'{($(now_ms) - $started) / 1000:.1f}')")
    note "$size keys: restart to ready $restart_s s"

    echo "== snapshot catch-up"
    wait_until "a leader" leader_addr
    target=$(cluster | json 'd["applied_index"]')
    snapshot_started=$(now_ms)
    curl -sf -X POST --max-time 60 "http://$(leader_addr)/v1/cluster/snapshot" >/dev/null
    wait_until "the leader's snapshot" bash -c "[[ \$(curl -sf http://$(leader_addr)/v1/cluster | python3 -c 'import json,sys; print(json.load(sys.stdin)[\"snapshot_index\"] or 0)') -ge $target ]]"
    snapshot_s=$(python3 -c "print(f'{($(now_ms) - $snapshot_started) / 1000:.1f}')")
    note "$size keys: snapshot build $snapshot_s s"
    rm -rf "$BENCH_DIR/node-4"
    [[ -f $BENCH_DIR/node-4.log ]] && mv "$BENCH_DIR/node-4.log" "$BENCH_DIR/node-4-before-$size.log"
    started=$(now_ms)
    start_node 4 --join "http://$(leader_addr)"
    wait_until "node 4 to catch up" bash -c "[[ \$(curl -sf http://$(addr 4)/v1/cluster?consistency=stale | python3 -c 'import json,sys; print(json.load(sys.stdin)[\"applied_index\"] or 0)') -ge $target ]]"
    catchup_s=$(python3 -c "print(f'{($(now_ms) - $started) / 1000:.1f}')")
    grep -q "installed snapshot" "$BENCH_DIR/node-4.log" || catchup_s="$catchup_s (by log, not snapshot)"
    curl -sf -X DELETE "http://$(leader_addr)/v1/cluster/members/4" >/dev/null
    stop_node 4
    rm -rf "$BENCH_DIR/node-4"

    row="| $size | $load_rate | $rss | $disk | $put_rate | $get_rate | $restart_s | $snapshot_s | $catchup_s |"
    echo "$row" | tee -a "$BENCH_DIR/scale.md"
done
echo
cat "$BENCH_DIR/scale.md"
