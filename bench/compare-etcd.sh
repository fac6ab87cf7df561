#!/usr/bin/env bash
# Concord and etcd side by side, on this machine, in one run, with one load generator.
#
# Starts a 3-member etcd 3.4 cluster (Debian's etcd-server, default flags, fsync on)
# and a 3-node Concord cluster (release build, default flags, fsync on), both on
# loopback with their data under $BENCH_DIR, and drives each system's leader with
# `wrk` and bench/kv.lua: etcd through its JSON gateway (/v3/kv/put, /v3/kv/range),
# Concord through its HTTP API. For each workload the two systems take turns (the
# one that goes first alternates), then one table with ratios is printed and saved
# as $BENCH_DIR/results.md. Every process it started is stopped at exit, by pid.
#
# Usage: bench/compare-etcd.sh            (as root it installs what is missing)
# Environment:
#   DURATION=20s       length of each measured run
#   WARMUP=5s          one unmeasured put run per system before the first measurement
#   CONNECTIONS="1 16 64 256"   put runs
#   READ_CONNECTIONS=64         the linearizable read run
#   VALUE_BYTES=100    value size
#   BENCH_DIR=bench-runs/<time> where data, logs and results go
#   CONCORD_BIN=...    a concord binary to use instead of building target/release/concord
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$(pwd)
DURATION=${DURATION:-20s}
WARMUP=${WARMUP:-5s}
CONNECTIONS=${CONNECTIONS:-"1 16 64 256"}
READ_CONNECTIONS=${READ_CONNECTIONS:-64}
VALUE_BYTES=${VALUE_BYTES:-100}
READ_KEYS=1000
BENCH_DIR=${BENCH_DIR:-$ROOT/bench-runs/$(date +%Y%m%d-%H%M%S)}
ETCD_CLIENT_PORTS=(23791 23792 23793)
ETCD_PEER_PORTS=(23801 23802 23803)
CONCORD_BASE_PORT=27101

# --- what the run needs -------------------------------------------------------
missing=()
command -v etcd >/dev/null || missing+=(etcd-server)
command -v wrk >/dev/null || missing+=(wrk)
command -v curl >/dev/null || missing+=(curl)
command -v python3 >/dev/null || missing+=(python3)
if ((${#missing[@]})); then
    if [[ $(id -u) -ne 0 ]]; then
        echo "missing: ${missing[*]}; run: sudo apt-get install -y ${missing[*]}" >&2
        exit 2
    fi
    echo "installing ${missing[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get install -y "${missing[@]}" >/dev/null
fi
if [[ -z ${CONCORD_BIN:-} ]]; then
    ./scripts/setup.sh
    echo "building the release binary (the first build compiles RocksDB: about 10 minutes)"
    cargo build --release --bin concord
    CONCORD_BIN=$ROOT/target/release/concord
fi

for port in "${ETCD_CLIENT_PORTS[@]}" "${ETCD_PEER_PORTS[@]}" $CONCORD_BASE_PORT $((CONCORD_BASE_PORT + 1)) $((CONCORD_BASE_PORT + 2)); do
    if (echo >/dev/tcp/127.0.0.1/"$port") 2>/dev/null; then
        echo "port $port is in use; stop what holds it first" >&2
        exit 2
    fi
done

mkdir -p "$BENCH_DIR"
echo "data, logs and results: $BENCH_DIR"

# --- processes we start (stopped by pid at exit), waiting, JSON ----------------
source "$ROOT/bench/lib.sh"

# --- etcd ------------------------------------------------------------------------
initial=""
for i in 0 1 2; do initial+="${initial:+,}e$((i + 1))=http://127.0.0.1:${ETCD_PEER_PORTS[i]}"; done
for i in 0 1 2; do
    etcd --name "e$((i + 1))" --data-dir "$BENCH_DIR/etcd-$((i + 1))" \
        --listen-client-urls "http://127.0.0.1:${ETCD_CLIENT_PORTS[i]}" \
        --advertise-client-urls "http://127.0.0.1:${ETCD_CLIENT_PORTS[i]}" \
        --listen-peer-urls "http://127.0.0.1:${ETCD_PEER_PORTS[i]}" \
        --initial-advertise-peer-urls "http://127.0.0.1:${ETCD_PEER_PORTS[i]}" \
        --initial-cluster "$initial" --initial-cluster-state new \
        --initial-cluster-token "bench-$$" >"$BENCH_DIR/etcd-$((i + 1)).log" 2>&1 &
    pids+=($!)
done
etcd_status() { curl -sf -X POST "http://127.0.0.1:$1/v3/maintenance/status" -d '{}'; }
etcd_has_leader() { [[ $(etcd_status "$1" | json_field 'd.get("leader","0")') != 0 ]]; }
wait_for "etcd to elect a leader" etcd_has_leader "${ETCD_CLIENT_PORTS[0]}"
etcd_url=""
for port in "${ETCD_CLIENT_PORTS[@]}"; do
    if [[ $(etcd_status "$port" | json_field 'd["header"]["member_id"] == d["leader"]') == True ]]; then
        etcd_url="http://127.0.0.1:$port"
    fi
done
[[ -n $etcd_url ]] || { echo "cannot find etcd's leader" >&2; exit 1; }
echo "etcd $(etcd --version | head -1 | awk '{print $3}'): leader at $etcd_url"

# --- Concord -----------------------------------------------------------------------
"$CONCORD_BIN" dev --base-port $CONCORD_BASE_PORT --data-dir "$BENCH_DIR/concord" >"$BENCH_DIR/concord-dev.log" 2>&1 &
pids+=($!)
concord_has_leader() { [[ $(curl -sf "http://127.0.0.1:$CONCORD_BASE_PORT/v1/cluster" | json_field 'd["leader"]') != None ]]; }
wait_for "Concord to elect a leader" concord_has_leader
concord_url=$(curl -sf "http://127.0.0.1:$CONCORD_BASE_PORT/v1/cluster" |
    json_field '"http://" + [m["addr"] for m in d["members"] if m["role"] == "leader"][0]')
echo "concord $("$CONCORD_BIN" --version | awk '{print $2}'): leader at $concord_url"

# --- preload the keys the read run reads -----------------------------------------------
value=$(head -c "$VALUE_BYTES" /dev/zero | tr '\0' v)
value64=$(printf %s "$value" | base64 -w0)
# One curl config per system: `next` separates the requests (curl would otherwise join
# their bodies), and every request repeats its options because `next` resets them.
for i in $(seq 0 $((READ_KEYS - 1))); do
    ((i > 0)) && echo next
    key64=$(printf %s "read/$i" | base64 -w0)
    printf 'url = "%s/v3/kv/put"\ndata = "{\\"key\\":\\"%s\\",\\"value\\":\\"%s\\"}"\nsilent\nfail\noutput = /dev/null\n' \
        "$etcd_url" "$key64" "$value64"
done >"$BENCH_DIR/etcd-preload.curl"
for i in $(seq 0 $((READ_KEYS - 1))); do
    ((i > 0)) && echo next
    printf 'url = "%s/v1/kv/read/%s"\nrequest = PUT\ndata = "%s"\nsilent\nfail\noutput = /dev/null\n' "$concord_url" "$i" "$value"
done >"$BENCH_DIR/concord-preload.curl"
# (--parallel draws its own progress meter; the checks below report failures.)
curl -s --parallel --parallel-max 16 -K "$BENCH_DIR/etcd-preload.curl" 2>/dev/null || true
curl -s --parallel --parallel-max 16 -K "$BENCH_DIR/concord-preload.curl" 2>/dev/null || true
# The read run must find what it reads: check the last key in both systems.
last64=$(printf %s "read/$((READ_KEYS - 1))" | base64 -w0)
[[ $(curl -sf -X POST "$etcd_url/v3/kv/range" -d "{\"key\":\"$last64\"}" | json_field 'd["count"]') == 1 ]] ||
    { echo "etcd preload failed" >&2; exit 1; }
curl -sf "$concord_url/v1/kv/read/$((READ_KEYS - 1))" >/dev/null || { echo "Concord preload failed" >&2; exit 1; }

# --- the runs ----------------------------------------------------------------------------
results="$BENCH_DIR/results.txt"
: >"$results"
run() { # system url op connections duration -> appends "system op conns RESULT ..." to results
    local system=$1 url=$2 op=$3 conns=$4 duration=$5 threads=2
    ((conns == 1)) && threads=1
    local line
    line=$(SYSTEM=$system OP=$op VALUE_BYTES=$VALUE_BYTES READ_KEYS=$READ_KEYS \
        wrk -t"$threads" -c"$conns" -d"$duration" --timeout 10s -s "$ROOT/bench/kv.lua" "$url" | grep '^RESULT')
    echo "$system $op $conns $line" | tee -a "$results"
}

echo "warm-up ($WARMUP each)"
SYSTEM=etcd OP=put wrk -t2 -c16 -d"$WARMUP" -s bench/kv.lua "$etcd_url" >/dev/null
SYSTEM=concord OP=put wrk -t2 -c16 -d"$WARMUP" -s bench/kv.lua "$concord_url" >/dev/null

turn=0
measure() { # op connections: both systems, the first one alternating
    if ((turn % 2 == 0)); then
        run etcd "$etcd_url" "$1" "$2" "$DURATION"
        run concord "$concord_url" "$1" "$2" "$DURATION"
    else
        run concord "$concord_url" "$1" "$2" "$DURATION"
        run etcd "$etcd_url" "$1" "$2" "$DURATION"
    fi
    turn=$((turn + 1))
}
for conns in $CONNECTIONS; do measure put "$conns"; done
measure get "$READ_CONNECTIONS"

# --- the table -----------------------------------------------------------------------------
python3 - "$results" "$VALUE_BYTES" >"$BENCH_DIR/results.md" <<'EOF'
import sys
rows = {}
for line in open(sys.argv[1]):
    system, op, conns, _, *fields = line.split()
    rows[(op, int(conns), system)] = dict(f.split("=") for f in fields)
def ms(us): return f"{int(us) / 1000:.1f}"
print(f"| workload ({sys.argv[2]}-byte values) | etcd req/s | etcd p50 / p99 ms | Concord req/s | Concord p50 / p99 ms | throughput ratio | p99 ratio | errors etcd / Concord |")
print("|---|---:|---:|---:|---:|---:|---:|---:|")
for (op, conns) in sorted({(op, c) for (op, c, _) in rows}, key=lambda k: (k[0] != "put", k[1])):
    e, c = rows[(op, conns, "etcd")], rows[(op, conns, "concord")]
    name = "put" if op == "put" else "linearizable get"
    print(f"| {name}, {conns} conn{'s' if conns > 1 else ''} | {e['rps']} | {ms(e['p50_us'])} / {ms(e['p99_us'])} "
          f"| {c['rps']} | {ms(c['p50_us'])} / {ms(c['p99_us'])} "
          f"| {int(c['rps']) / max(int(e['rps']), 1):.2f}x | {int(c['p99_us']) / max(int(e['p99_us']), 1):.2f}x "
          f"| {e['errors']} / {c['errors']} |")
EOF
echo
cat "$BENCH_DIR/results.md"
echo
echo "throughput ratio = Concord / etcd (above 1: Concord faster); p99 ratio = Concord / etcd (below 1: Concord's tail shorter)"
