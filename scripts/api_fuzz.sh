#!/usr/bin/env bash
# Schema-driven fuzzing of the client API: schemathesis (from PyPI) reads the
# OpenAPI description a node serves (/v1/openapi.json) and sends generated valid and
# invalid requests to every operation of a real 3-node cluster. It fails on any 5xx
# answer (a client's bad input must get a 4xx), and this script fails if a node died
# or stopped being ready. Run by scripts/test.sh after the cargo tests, briefly;
# longer by hand: CONCORD_API_FUZZ_EXAMPLES=500 ./scripts/api_fuzz.sh
#
# Membership changes and turning tokens on are left out: a random but valid
# "remove member 1" or "require tokens" is an operator's legitimate request that
# would leave the rest of the run testing a different cluster.
set -euo pipefail
cd "$(dirname "$0")/.."
examples=${CONCORD_API_FUZZ_EXAMPLES:-25}
seed=${CONCORD_API_FUZZ_SEED:-7}
schemathesis_version=4.32.5
target_dir=$(realpath -m "${CARGO_TARGET_DIR:-target}")
venv=$target_dir/api-fuzz-venv
bin=$target_dir/debug/concord

if [ ! -x "$venv/bin/st" ] || ! "$venv/bin/pip" show schemathesis 2>/dev/null | grep -q "^Version: $schemathesis_version$"; then
  if ! python3 -c 'import ensurepip, venv' >/dev/null 2>&1; then
    echo "api fuzz: python3's venv is missing; run ./scripts/setup.sh --test (or apt-get install python3-venv)" >&2
    exit 1
  fi
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q "schemathesis==$schemathesis_version"
fi
[ -x "$bin" ] || cargo build --bin concord

dir=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$dir"
}
trap cleanup EXIT

# Three free loopback ports, chosen by the kernel.
read -r p1 p2 p3 < <(python3 -c 'import socket
s=[socket.socket() for _ in range(3)]
[x.bind(("127.0.0.1",0)) for x in s]
print(*[x.getsockname()[1] for x in s])')
members="1=127.0.0.1:$p1,2=127.0.0.1:$p2,3=127.0.0.1:$p3"
for id in 1 2 3; do
  port_var="p$id"
  # Long polls end after 1 s, so a generated index= or wait_ms= does not stall the run.
  "$bin" serve --id "$id" --listen "127.0.0.1:${!port_var}" --data-dir "$dir/node-$id" \
    --initial-cluster "$members" --wait-ms-max 1000 >"$dir/node-$id.log" 2>&1 &
  pids+=($!)
done

ready() { python3 -c "import urllib.request,sys; urllib.request.urlopen('http://127.0.0.1:$1/ready', timeout=2)" 2>/dev/null; }
for _ in $(seq 1 150); do
  ready "$p1" && ready "$p2" && ready "$p3" && break
  sleep 0.2
done

status=0
# From the temporary directory: schemathesis keeps its own files in the working directory.
(cd "$dir" && "$venv/bin/st" run "http://127.0.0.1:$p1/v1/openapi.json" \
  --checks not_a_server_error --max-examples "$examples" --seed "$seed" --workers 2 \
  --request-timeout 10 --generation-database none --no-color \
  --exclude-operation-id cluster_add_member --exclude-operation-id cluster_remove_member \
  --exclude-operation-id auth_enable) || status=$?

for id in 1 2 3; do
  pid=${pids[$((id - 1))]}
  port_var="p$id"
  if ! kill -0 "$pid" 2>/dev/null; then
    echo "api fuzz: node $id died; its log:" >&2
    tail -50 "$dir/node-$id.log" >&2
    status=1
  elif ! { ready "${!port_var}" || { sleep 2 && ready "${!port_var}"; }; }; then
    echo "api fuzz: node $id is not ready after the run" >&2
    status=1
  fi
done
if grep -q "panicked" "$dir"/node-*.log; then
  echo "api fuzz: a node panicked:" >&2
  grep -h -A5 "panicked" "$dir"/node-*.log >&2
  status=1
fi
exit "$status"
