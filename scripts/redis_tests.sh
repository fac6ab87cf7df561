#!/usr/bin/env bash
# The Redis door's tests with the clients Redis users have (docs/redis.md): a pytest
# suite (tests/redis/) drives redis-py against a real 3-node Concord cluster, and a
# differential test sends the same commands to Concord and to a real redis-server
# (Debian's, started by the test on a free loopback port, persistence off) and
# compares the replies byte for byte. Run by scripts/test.sh; alone:
#   ./scripts/redis_tests.sh [pytest arguments]
# As root it installs what is missing (redis-server and redis-tools, without starting
# Debian's service); the Python packages go into a virtualenv under target/.
set -euo pipefail
cd "$(dirname "$0")/.."
redis_py_version=8.2.0
pytest_version=9.2.0
target_dir=$(realpath -m "${CARGO_TARGET_DIR:-target}")
venv=$target_dir/redis-venv

if ! command -v redis-server >/dev/null 2>&1 || ! command -v redis-cli >/dev/null 2>&1; then
  if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "redis tests: redis-server and redis-cli are missing; run: sudo apt-get install -y redis-server redis-tools" >&2
    exit 1
  fi
  # Debian starts a package's service on install unless policy-rc.d says no: the
  # tests start their own redis-server, and none may be left running.
  policy=/usr/sbin/policy-rc.d
  made_policy=
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod +x "$policy" && made_policy=1
  fi
  echo "installing redis-server redis-tools ..."
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server redis-tools >/dev/null || {
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server redis-tools >/dev/null
  }
  [ -n "$made_policy" ] && rm -f "$policy"
fi

if [ ! -x "$venv/bin/pytest" ] || ! "$venv/bin/pip" show redis 2>/dev/null | grep -q "^Version: $redis_py_version$"; then
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q "redis==$redis_py_version" "pytest==$pytest_version"
fi
# Built every time (a no-op when it is up to date), so the tests never run an old binary.
cargo build -q --bin concord
bin=$target_dir/debug/concord
CONCORD_BIN=$bin exec "$venv/bin/pytest" -q -p no:cacheprovider tests/redis "$@"
