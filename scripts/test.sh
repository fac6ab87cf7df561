#!/usr/bin/env bash
# The README's test command: installs build prerequisites, checks the formatting
# (rustfmt.toml), lints (clippy, warnings as errors) and the crates' layering, runs every test (unit,
# openraft storage suite, real multi-process clusters, the CLI and the README's
# quickstart), fuzzes the HTTP API from its OpenAPI description (scripts/api_fuzz.sh),
# runs the Redis door's tests with redis-py and against a real redis-server
# (scripts/redis_tests.sh) and the Consul door's with python-consul and py-consul
# (scripts/consul_tests.sh), and ends with one line of totals. A hung step cannot hang
# CI: the cargo tests get 70 minutes, clippy 20, the fuzzer 10, each door's tests 10.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh --test

status=0
# Formatting first: it takes a second and needs no build.
if ! cargo fmt --all --check >/dev/null; then
  echo "format: FAILED (cargo fmt --all --check; run cargo fmt --all)"
  status=1
fi

# The layering the crates promise (docs/architecture.md): the core builds without
# HTTP, the client without RocksDB and openraft. Read from the dependency graph.
layering() {
  local crate=$1 forbidden=$2 tree found
  if ! tree=$(cargo tree -p "$crate" -e normal --prefix none 2>&1); then
    echo "layering: FAILED (cargo tree -p $crate: $tree)"
    status=1
    return
  fi
  found=$(printf '%s\n' "$tree" | { grep -oE "^($forbidden) " || true; } | sort -u | tr '\n' ' ')
  if [ -n "$found" ]; then
    echo "layering: FAILED ($crate depends on ${found})"
    status=1
  fi
}
layering concord-core "axum|hyper|reqwest"
layering concord-client "rocksdb|librocksdb-sys|openraft"

log=$(mktemp)
trap 'rm -f "$log"' EXIT
timeout 70m cargo test --workspace --no-fail-fast "$@" 2>&1 | tee "$log" || status=$?
# After the tests, so they run even when a lint fails; it reuses their build.
echo
echo "clippy (warnings are errors):"
if ! timeout 20m cargo clippy --workspace --all-targets -- -D warnings; then
  echo "clippy: FAILED"
  status=1
fi
fuzz_log=$(mktemp)
redis_log=$(mktemp)
consul_log=$(mktemp)
trap 'rm -f "$log" "$fuzz_log" "$redis_log" "$consul_log"' EXIT
# A step that says much: under `title`, the last `lines` lines of what it said
# (kept in `out`), or all of it if it failed; at most 10 minutes.
step() {
  local title=$1 lines=$2 out=$3
  shift 3
  echo
  echo "$title:"
  if timeout 10m "$@" >"$out" 2>&1; then
    tail -"$lines" "$out"
  else
    status=1
    cat "$out"
    echo "$title: FAILED"
  fi
}
# The HTTP API fuzzed from its OpenAPI description (schemathesis), about 2 minutes.
step "api fuzz (schemathesis against a 3-node cluster)" 14 "$fuzz_log" ./scripts/api_fuzz.sh
# The Redis door with the clients Redis users have, about 30 seconds.
step "redis door (redis-py, and a differential test against redis-server)" 1 "$redis_log" ./scripts/redis_tests.sh
# The Consul door with python-consul and py-consul, about 20 seconds.
step "consul door (python-consul and py-consul)" 1 "$consul_log" ./scripts/consul_tests.sh

# Totals over every test binary and the pytest suite (awk, present on every Debian
# base system): cargo's "test result: ok. N passed; M failed" lines and pytest's last
# line, "N passed, M failed in S s".
count='{ for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i } } END { print p + 0, f + 0 }'
read -r passed failed < <(awk "/^test result:/ $count" "$log")
read -r redis_passed redis_failed < <(tail -1 "$redis_log" | awk "/ in [0-9.]+s/ $count")
read -r consul_passed consul_failed < <(tail -1 "$consul_log" | awk "/ in [0-9.]+s/ $count")
passed=$((passed + redis_passed + consul_passed))
failed=$((failed + redis_failed + consul_failed))
echo
echo "tests: ${passed} passed, ${failed} failed"
exit "$status"
