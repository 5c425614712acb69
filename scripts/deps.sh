#!/usr/bin/env bash
# Installs, with apt-get, the Debian packages bpfvm builds and tests with; only those that are missing.
# Idempotent and quiet when everything is present. Needs root (or sudo) when something is missing.
set -euo pipefail

packages=(
  cmake ninja-build g++ clang clang-19 llvm make pkg-config
  libgtest-dev libgmock-dev libbenchmark-dev
  libfmt-dev nlohmann-json3-dev libelf-dev libdw-dev zlib1g-dev libbpf-dev linux-libc-dev
  libasmjit-dev libzydis-dev
  bpftool strace graphviz
  libbpf-tools systemtap-sdt-dev
  bpfcc-tools python3-bpfcc
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q '^install ok installed$'; then
    missing+=("$p")
  fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "deps: installing ${missing[*]}"
sudo=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "deps: need root to install: ${missing[*]}" >&2; exit 1; }
  sudo="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
# An update first: on a fresh machine the package lists may be empty or stale.
$sudo apt-get update -qq >/dev/null
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "deps: done"
