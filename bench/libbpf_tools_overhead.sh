#!/usr/bin/env bash
# Debian's libbpf-tools (unmodified) as they slow a syscall-heavy workload (bench/syscall_workload.c),
# on the kernel and on bpfvm (`bpfvm run -- TOOL`, the workload run in scope with `bpfvm run --`):
#   opensnoop (every open printed; output dropped) and syscount (every syscall's exit counted).
# Prints each run's slowdown against the untraced workload, best of REPEAT runs, measured in one go.
# Kernel rows need root and tracefs; without libbpf-tools the script says so and prints nothing else.
set -uo pipefail
BUILD="${1:-build}"
ROUNDS="${ROUNDS:-20000}"
REPEAT="${REPEAT:-3}"
WORK="$BUILD/bin/syscall_workload"
BPFVM="$(cd "$BUILD/bin" && pwd)/bpfvm"
export PATH=$PATH:/usr/sbin
command -v opensnoop >/dev/null || { echo "libbpf-tools is not installed: nothing measured"; exit 0; }
TMP="$(mktemp -d)"
export BPFVM_PIN_ROOT="$TMP/pins"
trap 'kill $(jobs -p) 2>/dev/null; rm -rf "$TMP"' EXIT

# shellcheck source=bench/wall_time.sh
source "$(dirname "$0")/wall_time.sh"
links() { "$BPFVM" link show 2>/dev/null | grep -c '^[0-9]*: '; }

# with_tool KERNEL(0|1) LINKS TOOL ARGS...: the workload's best time while the tool runs.
with_tool() {
  local kernel=$1 want=$2 pid t
  shift 2
  if [ "$kernel" = 1 ]; then
    "$@" > /dev/null 2>&1 & pid=$!
    sleep 2
    t=$(best "$WORK" "$ROUNDS")
  else
    "$BPFVM" run -- "$@" > /dev/null 2>&1 & pid=$!
    for _ in $(seq 200); do [ "$(links)" -ge "$want" ] && break; sleep 0.1; done
    t=$(best "$BPFVM" run -- "$WORK" "$ROUNDS")
  fi
  kill -INT $pid 2>/dev/null
  wait $pid 2>/dev/null
  echo "$t"
}

base=$(best "$WORK" "$ROUNDS")
printf "workload: %s rounds of open/read/close + 4 getppid, a fork every 1000\n" "$ROUNDS"
printf "%-52s %8s\n" "run" "slowdown"
printf "%-52s %7.2fx\n" "untraced" 1
idle=$(best "$BPFVM" run -- "$WORK" "$ROUNDS")
printf "%-52s %7.2fx\n" "bpfvm run -- workload, no tool (the agent idle)" "$(ratio "$idle" "$base")"
kernel_ok=0
[ "$(id -u)" = 0 ] && [ -r /sys/kernel/tracing/events/syscalls/sys_enter_openat/id ] && kernel_ok=1
for tool in "opensnoop:2" "syscount:1"; do
  name=${tool%%:*} n=${tool##*:}
  command -v "$name" >/dev/null || continue
  if [ $kernel_ok = 1 ]; then
    k=$(with_tool 1 "$n" "$name")
    printf "%-52s %7.2fx\n" "$name on the kernel" "$(ratio "$k" "$base")"
  fi
  o=$(with_tool 0 "$n" "$name")
  printf "%-52s %7.2fx\n" "$name on bpfvm (bpfvm run -- $name)" "$(ratio "$o" "$base")"
done
