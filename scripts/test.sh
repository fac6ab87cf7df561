#!/usr/bin/env bash
# The README's test command: installs build prerequisites, runs every test
# (unit, openraft storage suite, real multi-process clusters), and ends with one
# line of totals. A hung test cannot hang CI: the suite gets 75 minutes.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh

log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0
timeout 75m cargo test --workspace "$@" 2>&1 | tee "$log" || status=$?

# Totals over every test binary (awk, present on every Debian base system).
read -r passed failed < <(awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i } } END { print p + 0, f + 0 }' "$log")
echo
echo "tests: ${passed} passed, ${failed} failed"
exit "$status"
