#!/usr/bin/env bash
# Seeds for verifier_fuzz: every case of tests/verifier/*.cases assembled, behind a type byte.
#   fuzz/seed_verifier.sh BPFVM OUT_DIR
set -euo pipefail
BPFVM="$1"
OUT="$2"
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
mkdir -p "$OUT"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
n=0
for f in "$ROOT"/tests/verifier/*.cases; do
  # Split into one source file per case (the lines after "--" up to the next "==").
  awk -v dir="$tmp" '
    /^== / { if (out) close(out); n++; out = dir "/c" n ".s"; src = 0; next }
    /^--$/ && !src { src = 1; next }
    src && out { print > out }
  ' "$f"
  for s in "$tmp"/c*.s; do
    [ -e "$s" ] || continue
    n=$((n + 1))
    if "$BPFVM" asm --syntax kernel "$s" -o "$tmp/p.bin" 2>/dev/null; then
      { printf '\x01'; cat "$tmp/p.bin"; } > "$OUT/case$n"
    fi
    rm -f "$s"
  done
done
echo "seeded $(ls "$OUT" | wc -l) cases"
