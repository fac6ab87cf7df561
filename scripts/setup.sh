#!/usr/bin/env bash
# Installs what building Concord needs on Debian/Ubuntu, if it is missing:
# libclang (the rocksdb crate's bindgen), a C++ compiler, make; and for the Jepsen
# suite, iptables and iproute2 (ip, tc). With --test (scripts/test.sh), also
# python3 and its venv module, for the API fuzzer (scripts/api_fuzz.sh), and checks
# that cargo's fmt and clippy are there.
# As root it installs with apt-get; otherwise it prints the command to run.
set -euo pipefail

missing=()
have_pkg() { dpkg -s "$1" >/dev/null 2>&1; }
have_pkg libclang-dev || missing+=(libclang-dev)
command -v g++ >/dev/null 2>&1 || missing+=(g++)
command -v make >/dev/null 2>&1 || missing+=(make)
if [ "${1:-}" = "--test" ]; then
  command -v python3 >/dev/null 2>&1 || missing+=(python3)
  # Debian ships venv's pip bootstrap (ensurepip) in python3-venv.
  python3 -c 'import ensurepip, venv' >/dev/null 2>&1 || missing+=(python3-venv)
fi
# The Jepsen suite (jepsen/) partitions with iptables and slows links with tc. It
# needs root to run at all, so only root needs them.
if [ "$(id -u)" -eq 0 ]; then
  command -v iptables >/dev/null 2>&1 || missing+=(iptables)
  command -v tc >/dev/null 2>&1 || missing+=(iproute2)
  # A font for the text of its report's plots.
  have_pkg fonts-dejavu-core || missing+=(fonts-dejavu-core)
fi

if ! command -v cargo >/dev/null 2>&1; then
  echo "error: cargo is not installed; install Rust (https://rustup.rs) first" >&2
  exit 1
fi

# The test command checks formatting and lints: rustup's rustfmt and clippy
# components (in its default profile).
if [ "${1:-}" = "--test" ]; then
  for component in fmt clippy; do
    if ! cargo "$component" --version >/dev/null 2>&1; then
      echo "error: cargo $component is not installed; run: rustup component add ${component/fmt/rustfmt}" >&2
      exit 1
    fi
  done
fi

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
  echo "error: missing ${missing[*]}; install them with your package manager" >&2
  exit 1
fi

if [ "$(id -u)" -ne 0 ]; then
  echo "error: missing ${missing[*]}. Run:" >&2
  echo "  sudo apt-get update && sudo apt-get install -y ${missing[*]}" >&2
  exit 1
fi

echo "installing ${missing[*]} ..."
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq "${missing[@]}"
