#!/usr/bin/env bash
# The Consul door's tests with the clients Consul users have (docs/consul.md): a
# pytest suite (tests/consul/) drives python-consul 1.1 and py-consul (the maintained
# fork) against a real 3-node Concord cluster. The two libraries are both imported
# as `consul`, so each gets a virtualenv under target/ and the suite runs once per
# library. Run by scripts/test.sh; alone:
#   ./scripts/consul_tests.sh [pytest arguments]
# The last line sums both runs as pytest words it: "N passed, M failed in S s".
set -euo pipefail
cd "$(dirname "$0")/.."
pytest_version=9.2.0
target_dir=$(realpath -m "${CARGO_TARGET_DIR:-target}")

# A virtualenv under target/ holding `package` and pytest, made once.
venv_with() {
  local name=$1 package=$2 venv=$target_dir/consul-venv-$1
  if [ ! -x "$venv/bin/pytest" ] || ! "$venv/bin/pip" show "${package%%==*}" 2>/dev/null | grep -q "^Version: ${package##*==}$"; then
    rm -rf "$venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q "$package" "pytest==$pytest_version"
  fi
  echo "$venv"
}
old=$(venv_with python-consul "python-consul==1.1.0")
new=$(venv_with py-consul "py-consul==1.8.0")
# Built every time (a no-op when it is up to date), so the tests never run an old binary.
cargo build -q --bin concord
bin=$target_dir/debug/concord

status=0 passed=0 failed=0 seconds=0
for venv in "$old" "$new"; do
  log=$(mktemp)
  echo "== $(basename "$venv")"
  CONCORD_BIN=$bin "$venv/bin/pytest" -q -p no:cacheprovider tests/consul "$@" 2>&1 | tee "$log" || status=1
  read -r p f s < <(grep -E "(passed|failed|error).* in [0-9.]+s" "$log" | tail -1 | awk '{ for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p = $i; if ($(i+1) ~ /^failed/) f = $i; if ($i == "in") s = $(i+1) } } END { print p + 0, f + 0, s + 0 }')
  rm -f "$log"
  passed=$((passed + p)) failed=$((failed + f)) seconds=$(awk "BEGIN { print $seconds + $s }")
done
[ "$passed" -gt 0 ] || status=1
echo "$passed passed, $failed failed in ${seconds}s"
exit "$status"
