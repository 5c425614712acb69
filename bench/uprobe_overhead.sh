#!/usr/bin/env bash
# The cost of one uprobe and one uretprobe hit: bench/uprobe/workload.c calls a two-instruction function
# N times, untraced, under bpfvm's in-process agent (bpfvm trace -- CMD) and under the kernel's uprobes
# (bench/uprobe/kernel_uprobe, libbpf, root only), with the same program counting the hits in an array
# map. Per hit = traced ns/call - untraced ns/call; best of REPEAT runs each, measured in one go.
#   bench/uprobe_overhead.sh BUILD_DIR
set -euo pipefail
BUILD="${1:-build}"
N="${N:-10000000}"            # calls under bpfvm
N_KERNEL="${N_KERNEL:-200000}" # calls under the kernel (~13 us a hit)
REPEAT="${REPEAT:-3}"
HERE="$(cd "$(dirname "$0")" && pwd)"
BPFVM="$BUILD/bin/bpfvm"
TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT
export BPFVM_PIN_ROOT="$TMP/pins"
cc -O2 -o "$TMP/workload" "$HERE/uprobe/workload.c"
for kind in uprobe uretprobe; do
  def=""
  [ "$kind" = uretprobe ] && def=-DRETURN
  clang -target bpf -O2 -g -I"/usr/include/$(gcc -print-multiarch)" -I"$HERE/../include/bpf" $def \
    -DWORKLOAD="\"$TMP/workload\"" -c "$HERE/uprobe/count.bpf.c" -o "$TMP/$kind.bpf.o"
done

# best CALLS CMD...: the smallest ns/call the workload printed in REPEAT runs, and the hits counted
best() {
  local calls=$1 best="" hits=""
  shift
  for _ in $(seq "$REPEAT"); do
    local out ns
    out=$("$@" "$TMP/workload" "$calls" 2>&1) || { echo "failed: $* $calls: $out" >&2; return 1; }
    ns=$(sed -n 's/^\([0-9.]*\) ns\/call.*/\1/p' <<<"$out")
    hits=$(sed -n 's/^@hits\[0\]: \([0-9]*\)$/\1/p; s/^hits \([0-9]*\)$/\1/p' <<<"$out")
    if [ -z "$best" ] || awk "BEGIN { exit !($ns < $best) }"; then best=$ns; fi
  done
  echo "$best ${hits:-0}"
}

read -r base _ < <(best "$N")
printf "workload: a two-instruction function called %s times (%s under the kernel)\n" "$N" "$N_KERNEL"
printf "%-34s %10s %12s %10s\n" "run" "ns/call" "ns per hit" "hits"
printf "%-34s %10.2f %12s %10s\n" "untraced" "$base" "-" "-"
declare -A per_hit
for kind in uprobe uretprobe; do
  read -r ns hits < <(best "$N" "$BPFVM" trace "$TMP/$kind.bpf.o" --)
  per_hit[bpfvm_$kind]=$(awk "BEGIN { print $ns - $base }")
  printf "%-34s %10.2f %12.2f %10s\n" "bpfvm $kind (in-process agent)" "$ns" "${per_hit[bpfvm_$kind]}" "$hits"
  [ "$hits" = "$N" ] || echo "  counted $hits of $N calls" >&2
done
# The agent's int3 probes (where a jump cannot be placed: a USDT site mid-function under threads),
# forced on every probe: a trap and a signal per hit, still far under the kernel's.
N_TRAP=$((N / 20))
read -r trap_base _ < <(best "$N_TRAP")
read -r ns hits < <(best "$N_TRAP" env BPFVM_AGENT_TRAPS=1 "$BPFVM" trace "$TMP/uprobe.bpf.o" --)
per_hit[bpfvm_int3]=$(awk "BEGIN { print $ns - $trap_base }")
printf "%-34s %10.2f %12.2f %10s\n" "bpfvm uprobe as int3 ($N_TRAP calls)" "$ns" "${per_hit[bpfvm_int3]}" "$hits"
[ "$hits" = "$N_TRAP" ] || echo "  counted $hits of $N_TRAP calls" >&2
# The ptrace tracer's int3s (static binaries, processes the agent is not in): a ptrace stop per hit.
for kind in uprobe uretprobe; do
  read -r ns hits < <(best "$N_KERNEL" "$BPFVM" trace --ptrace "$TMP/$kind.bpf.o" --)
  per_hit[ptrace_$kind]=$(awk "BEGIN { print $ns - $base }")
  printf "%-34s %10.2f %12.2f %10s\n" "bpfvm $kind by ptrace ($N_KERNEL calls)" "$ns" "${per_hit[ptrace_$kind]}" "$hits"
  [ "$hits" = "$N_KERNEL" ] || echo "  counted $hits of $N_KERNEL calls" >&2
done
KERNEL="$BUILD/bin/kernel_uprobe"
for kind in uprobe uretprobe; do
  if ! out=$(best "$N_KERNEL" "$KERNEL" "$TMP/$kind.bpf.o" "$TMP/workload" probed -- 2>/dev/null); then
    printf "%-34s %10s\n" "kernel $kind" "(not measured: needs root and uprobes)"
    continue
  fi
  read -r ns hits <<<"$out"
  per_hit[kernel_$kind]=$(awk "BEGIN { print $ns - $base }")
  printf "%-34s %10.2f %12.2f %10s\n" "kernel $kind" "$ns" "${per_hit[kernel_$kind]}" "$hits"
done
if [ -n "${per_hit[kernel_uprobe]:-}" ]; then
  printf "uprobe as int3: bpfvm's hit costs %.4f of the kernel's\n" \
    "$(awk "BEGIN { print ${per_hit[bpfvm_int3]} / ${per_hit[kernel_uprobe]} }")"
fi
for kind in uprobe uretprobe; do
  if [ -n "${per_hit[kernel_$kind]:-}" ]; then
    printf "%s by ptrace: bpfvm's hit costs %.2f of the kernel's\n" "$kind" \
      "$(awk "BEGIN { print ${per_hit[ptrace_$kind]} / ${per_hit[kernel_$kind]} }")"
    printf "%s: bpfvm's hit costs %.4f of the kernel's (%.0fx faster)\n" "$kind" \
      "$(awk "BEGIN { print ${per_hit[bpfvm_$kind]} / ${per_hit[kernel_$kind]} }")" \
      "$(awk "BEGIN { print ${per_hit[kernel_$kind]} / ${per_hit[bpfvm_$kind]} }")"
  fi
done
