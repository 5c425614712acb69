#!/usr/bin/env bash
# Issue 18's target, measured as it is stated: bench/openat/target_workload.c (2 threads, each making
# openat + close + getpid, a fork every 1000 of its rounds) with a ring-buffer program on openat
# (bench/openat/openat_ringbuf.bpf.c), its records counted by a libbpf application
# (bench/openat/ringbuf_count.c) that runs unchanged on the kernel and under `bpfvm run`.
# Prints the workload loop's slowdown (its own clock: the steady state) against the untraced loop, best
# of REPEAT runs each, measured in one go, and the events counted against the workload's own count of
# opens (REPEAT runs each, every run's count checked; lost = the shortfall of the worst run).
#   untraced | kernel tracepoint (root, tracefs) | bpfvm: the agent idle (no link) | bpfvm: the same
#   application under `bpfvm run`, the workload in scope | bpfvm trace PROGRAM -- workload (rows dropped)
set -uo pipefail
BUILD="${1:-build}"
ROUNDS="${ROUNDS:-20000}"
THREADS="${THREADS:-2}"
REPEAT="${REPEAT:-3}"
HERE="$(cd "$(dirname "$0")" && pwd)"
WORK="$BUILD/bin/target_workload"
COUNT="$BUILD/bin/ringbuf_count"
BPFVM="$BUILD/bin/bpfvm"
TMP="$(mktemp -d)"
chmod 755 "$TMP"
export BPFVM_PIN_ROOT="$TMP/pins"
trap 'kill $(jobs -p) 2>/dev/null; rm -rf "$TMP"' EXIT
clang -target bpf -O2 -g -I"/usr/include/$(gcc -print-multiarch)" -c "$HERE/openat/openat_ringbuf.bpf.c" \
  -o "$TMP/openat_ringbuf.bpf.o" || { echo "cannot compile the program"; exit 1; }
FILE="$TMP/opened"
echo x > "$FILE"
want=$((ROUNDS * THREADS))

# loop CMD...: the workload's loop time (ns) under CMD, best of REPEAT
# shellcheck source=bench/wall_time.sh
source "$HERE/wall_time.sh"

# counted KERNEL(0|1): "best-ns worst-count": the application counts while the workload runs, REPEAT times
counted() {
  local kernel=$1 best="" worst="" out="$TMP/count.out"
  for _ in $(seq "$REPEAT"); do
    if [ "$kernel" = 1 ]; then "$COUNT" "$TMP/openat_ringbuf.bpf.o" "$FILE" > "$out" 2>&1 &
    else "$BPFVM" run -- "$COUNT" "$TMP/openat_ringbuf.bpf.o" "$FILE" > "$out" 2>&1 &
    fi
    local pid=$!
    for _ in $(seq 300); do grep -q attached "$out" && break; kill -0 $pid 2>/dev/null || break; sleep 0.1; done
    grep -q attached "$out" || { echo "0 0"; cat "$out" >&2; return; }
    local t
    if [ "$kernel" = 1 ]; then t=$(REPEAT=1 loop_time "$WORK" "$ROUNDS" "$THREADS" "$FILE")
    else t=$(REPEAT=1 loop_time "$BPFVM" run -- "$WORK" "$ROUNDS" "$THREADS" "$FILE")
    fi
    kill -INT $pid
    wait $pid
    local n
    n=$(sed -n 's/^events \([0-9]*\)$/\1/p' "$out")
    n=${n:-0}
    if [ -z "$best" ] || [ "$t" -lt "$best" ]; then best=$t; fi
    if [ -z "$worst" ] || [ "$n" -lt "$worst" ]; then worst=$n; fi
  done
  echo "$best $worst"
}

row() {  # row NAME NS [EVENTS]
  if [ -n "${3:-}" ]; then
    printf "%-52s %7.2fx   %s of %s events, %s lost\n" "$1" "$(ratio "$2" "$base")" "$3" "$want" "$((want - $3))"
  else
    printf "%-52s %7.2fx\n" "$1" "$(ratio "$2" "$base")"
  fi
}

base=$(loop_time "$WORK" "$ROUNDS" "$THREADS" "$FILE")
printf "workload: %s threads x %s rounds of openat + close + getpid, a fork every 1000 rounds a thread\n" \
  "$THREADS" "$ROUNDS"
printf "%-52s %8s\n" "run (the workload's own loop time)" "slowdown"
row "untraced" "$base"
if [ "$(id -u)" = 0 ] && [ -r /sys/kernel/tracing/events/syscalls/sys_enter_openat/id ]; then
  read -r t n < <(counted 1)
  row "kernel: ring buffer program on sys_enter_openat" "$t" "$n"
else
  echo "kernel: not measured (needs root and tracefs)"
fi
row "bpfvm run -- workload, no link (the agent idle)" "$(loop_time "$BPFVM" run -- "$WORK" "$ROUNDS" "$THREADS" "$FILE")"
read -r t n < <(counted 0)
row "bpfvm: the same application under bpfvm run" "$t" "$n"
row "bpfvm trace PROGRAM -- workload (rows dropped)" \
  "$(loop_time "$BPFVM" trace "$TMP/openat_ringbuf.bpf.o" -- "$WORK" "$ROUNDS" "$THREADS" "$FILE")"
# The idle agent's cost on this workload is in its forks: fork+exit+wait, untraced and in scope.
FORKS="${FORKS:-300}"
fu=$(loop_time "$BUILD/bin/fork_latency" "$FORKS")
fa=$(loop_time "$BPFVM" run -- "$BUILD/bin/fork_latency" "$FORKS")
printf "%-52s %7.2fx   %s us untraced, %s us in scope\n" "fork+exit+wait (another thread idle), the agent idle" \
  "$(ratio "$fa" "$fu")" "$((fu / FORKS / 1000))" "$((fa / FORKS / 1000))"
