#!/usr/bin/env bash
# make bench: every benchmark, one after the other in one go (so the ratios compare runs on the same
# machine in the same state), printed and written to bench/RESULTS.md with the date, the machine and the
# command of each section. The README's figures come from that file, never from prose.
#   bench/run_all.sh BUILD_DIR
set -uo pipefail
BUILD="${1:-build}"
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
OUT="$ROOT/bench/RESULTS.md"
TMP="$(mktemp)"
trap 'rm -f "$TMP"' EXIT

exec 3>&1  # the terminal: each section's output goes there and into the file
section() {  # section TITLE CMD...: runs CMD, shows its output, keeps it for the file
  local title="$1"
  shift
  echo "== $title: $*"
  {
    printf '\n## %s\n`%s`\n```\n' "$title" "$*"
    "$@" 2>&1 | tee /dev/fd/3
    printf '```\n'
  } >> "$TMP"
}

{
  echo "# Benchmark results"
  echo "Written by \`make bench\` (bench/run_all.sh) on $(date -u '+%Y-%m-%d %H:%M UTC'): $(nproc) CPUs,"
  echo "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), Linux $(uname -r), commit"
  echo "$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown). One run: runs on this kind of VM vary by 10-30%."
} > "$TMP"
section "JIT against native code and the kernel's JIT (ns per run, net of each engine's fixed cost)" \
  "$BUILD/bin/jit_bench" "$BUILD/bench-progs"
section "Interpreter" "$BUILD/bin/interpreter_bench" --benchmark_counters_tabular=true
section "Maps against std::unordered_map and the kernel's maps" "$BUILD/bin/maps_bench"
section "Verifier against the kernel's" "$ROOT/bench/verifier.sh" "$BUILD"
section "bpfvm trace against strace" "$ROOT/bench/trace_overhead.sh" "$BUILD"
section "Issue 18's target: a ring-buffer program on openat, 2 threads, a fork every 1000 rounds (kernel and bpfvm)" \
  "$ROOT/bench/openat_overhead.sh" "$BUILD"
section "Debian's libbpf-tools on the kernel and on bpfvm (bpfvm run -- TOOL)" "$ROOT/bench/libbpf_tools_overhead.sh" "$BUILD"
section "Uprobes: bpfvm's in-process agent against the kernel's uprobes (ns per hit)" \
  "$ROOT/bench/uprobe_overhead.sh" "$BUILD"
section "Verifier verdicts and times against the kernel's on objects built by others (test objects, libbpf-tools)" \
  env CORPUS_SPEED=1 "$ROOT/tests/cli/corpus_oracle.sh" "$BUILD/bin/corpus_agreement" "$BUILD/tests/progs"
chmod 644 "$TMP"
mv "$TMP" "$OUT"
trap - EXIT
echo "written: $OUT"
