#!/usr/bin/env bash
# Verification time and processed instructions, bpfvm beside the kernel's verifier (BPF_LOG_STATS), as
# ratios measured in one run: the shared bench programs (compiled as XDP programs when ../shared/bench
# is there), the project's test programs and the real-world corpus.
#   bench/verifier.sh BUILD_DIR
set -euo pipefail
BUILD="${1:-build}"
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
OUT="$BUILD/bench-objs"
mkdir -p "$OUT"
MULTIARCH="$(gcc -print-multiarch)"
objs=()
if [ -d "$ROOT/../shared/bench" ]; then
  for src in "$ROOT"/../shared/bench/*.c; do
    name="$(basename "$src" .c)"
    clang -O2 -g -target bpf -mcpu=v3 -DBENCH_XDP -I"/usr/include/$MULTIARCH" -c "$src" -o "$OUT/$name.o"
    objs+=("$OUT/$name.o")
  done
fi
for o in "$BUILD"/tests/progs/*.bpf.o; do
  case "$o" in *.clang*) continue ;; esac
  objs+=("$o")
done
exec "$BUILD/bin/verifier_bench" --runs 5 "${objs[@]}"
