#!/usr/bin/env bash
# bpfvm trace's overhead on a syscall-heavy workload (bench/syscall_workload.c: opens, reads, closes,
# getppid, forks), against strace following the same tree and stopping at the same syscall:
#   untraced | strace -f -e openat -o /dev/null | bpfvm trace examples/opensnoop.bpf.c (output dropped),
#   in-process (the agent, the default) and by the ptrace tracer (--ptrace)
# Prints each run's slowdown against the untraced run, best of REPEAT runs each, measured in one go.
set -euo pipefail
BUILD="${1:-build}"
ROUNDS="${ROUNDS:-20000}"
REPEAT="${REPEAT:-3}"
HERE="$(cd "$(dirname "$0")" && pwd)"
WORK="$BUILD/bin/syscall_workload"
BPFVM="$BUILD/bin/bpfvm"
TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT
export BPFVM_PIN_ROOT="$TMP/pins"
# The object once, so compile time is not in the measurement.
clang -target bpf -O2 -g -I"/usr/include/$(gcc -print-multiarch)" -I"$HERE/../include/bpf" \
  -c "$HERE/../examples/opensnoop.bpf.c" -o "$TMP/opensnoop.bpf.o"

# shellcheck source=bench/wall_time.sh
source "$(dirname "$0")/wall_time.sh"

base=$(best "$WORK" "$ROUNDS")
printf "workload: %s rounds of open/read/close + 4 getppid, a fork every 1000\n" "$ROUNDS"
printf "%-44s %8s\n" "run" "slowdown"
printf "%-44s %7.2fx\n" "untraced" 1
if command -v strace >/dev/null; then
  s=$(best strace -f -e trace=openat -o /dev/null "$WORK" "$ROUNDS")
  printf "%-44s %7.2fx\n" "strace -f -e trace=openat -o /dev/null" "$(ratio "$s" "$base")"
  s2=$(best strace -f --seccomp-bpf -e trace=openat -o /dev/null "$WORK" "$ROUNDS")
  printf "%-44s %7.2fx\n" "strace -f --seccomp-bpf -e trace=openat" "$(ratio "$s2" "$base")"
fi
b=$(best "$BPFVM" trace "$TMP/opensnoop.bpf.o" -- "$WORK" "$ROUNDS")
printf "%-44s %7.2fx\n" "bpfvm trace opensnoop (agent, JIT)" "$(ratio "$b" "$base")"
i=$(best "$BPFVM" --interpret trace "$TMP/opensnoop.bpf.o" -- "$WORK" "$ROUNDS")
printf "%-44s %7.2fx\n" "bpfvm --interpret trace opensnoop (agent)" "$(ratio "$i" "$base")"
p=$(best "$BPFVM" trace --ptrace "$TMP/opensnoop.bpf.o" -- "$WORK" "$ROUNDS")
printf "%-44s %7.2fx\n" "bpfvm trace --ptrace opensnoop (JIT)" "$(ratio "$p" "$base")"

# The steady state: the workload's own loop (its clock around the rounds), without the start of the
# traced command and of bpfvm (loading, verifying, patching the syscall sites: a few milliseconds, a
# tenth of this workload's whole time here), as in-process tracers are usually compared.
lbase=$(loop_time "$WORK" "$ROUNDS")
printf "\nthe workload's own loop (steady state, %s rounds)    slowdown\n" "$ROUNDS"
printf "%-44s %7.2fx\n" "untraced" 1
lb=$(loop_time "$BPFVM" trace "$TMP/opensnoop.bpf.o" -- "$WORK" "$ROUNDS")
printf "%-44s %7.2fx\n" "bpfvm trace opensnoop (agent, JIT)" "$(ratio "$lb" "$lbase")"
lp=$(loop_time "$BPFVM" trace --ptrace "$TMP/opensnoop.bpf.o" -- "$WORK" "$ROUNDS")
printf "%-44s %7.2fx\n" "bpfvm trace --ptrace opensnoop (JIT)" "$(ratio "$lp" "$lbase")"
