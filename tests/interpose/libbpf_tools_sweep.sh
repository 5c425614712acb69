#!/usr/bin/env bash
# Every tool of Debian's libbpf-tools, unmodified, under `bpfvm run` for a few seconds: a tool whose events
# exist in user space (syscall and process tracepoints, uprobes) runs until interrupted; one whose events
# cannot exist (kprobes and fentry on kernel functions, block, scheduler, IRQ and TCP tracepoints) fails
# at attach with bpfvm's line saying so; one that stops on its own (a missing option, a file of the
# machine's) stops as it does on the kernel. None crashes or hangs. As root with tracefs, each is run on
# the kernel too: a tool that runs there runs here or says why not; one that fails there fails here.
# Usage: libbpf_tools_sweep.sh BPFVM. Exits 77 (skipped) without libbpf-tools.
set -u
BPFVM=$1
command -v dpkg >/dev/null && dpkg-query -W -f='${Status}' libbpf-tools 2>/dev/null | grep -q 'install ok installed' ||
  { echo "SKIP: libbpf-tools is not installed"; exit 77; }
TMP=$(mktemp -d)
chmod 755 "$TMP"
export BPFVM_PIN_ROOT=$TMP/pins
trap 'kill $(jobs -p) 2>/dev/null; rm -rf "$TMP"' EXIT
. "$(dirname "$0")/../support/checks.sh"
mapfile -t tools < <(dpkg -L libbpf-tools | grep '^/usr/sbin/' | sort)
# The tools whose events bpfvm produces: these must run.
user_space=" bashreadline execsnoop exitsnoop gethostlatency killsnoop mountsnoop opensnoop sigsnoop statsnoop syscount "
kernel=0
[ "$(id -u)" = 0 ] && [ -r /sys/kernel/tracing/events/syscalls/sys_enter_openat/id ] && kernel=1

# run_one KERNEL(0|1) TOOL: its output in $TMP/<k|b>_NAME.out, its exit status in .rc. Interrupted after
# 3 s (SIGINT, as Ctrl-C), killed 5 s later if still there.
run_one() {
  local name out
  name=$(basename "$2")
  if [ "$1" = 1 ]; then out=$TMP/k_$name; timeout --preserve-status -s INT -k 5 3 "$2" > "$out.out" 2>&1
  else out=$TMP/b_$name; timeout --preserve-status -s INT -k 5 "${WINDOW:-3}" "$BPFVM" run -- "$2" > "$out.out" 2>&1; fi
  echo $? > "$out.rc"
}
sweep() {  # KERNEL(0|1): six tools at a time (most wait for events), a new one as soon as one ends
  for t in "${tools[@]}"; do
    while [ "$(jobs -rp | wc -l)" -ge 6 ]; do wait -n; done
    run_one "$1" "$t" &
  done
  wait
}
sweep 0
[ $kernel = 1 ] && sweep 1
# A tool interrupted before it printed anything had not started within the window (a sanitizer build
# under ctest -j2 loads and verifies a tool's programs several times slower): it runs again, alone,
# for 10 s, and is judged by that run.
for t in "${tools[@]}"; do
  name=$(basename "$t")
  if [ "$(cat "$TMP/b_$name.rc")" = 130 ] && ! grep -q . "$TMP/b_$name.out"; then WINDOW=10 run_one 0 "$t"; fi
done

ran() { [ "$1" = 0 ] || [ "$1" = 130 ]; }  # stopped by the interrupt (or done on its own, status 0)
for t in "${tools[@]}"; do
  name=$(basename "$t")
  rc=$(cat "$TMP/b_$name.rc") out=$TMP/b_$name.out
  why=$(grep -m1 '^bpfvm: ' "$out")
  if [ "$rc" = 137 ]; then
    bad "$name: still there 5 s after the interrupt (killed)" "$(tail -5 "$out")"
    continue
  elif [ "$rc" -gt 128 ] && [ "$rc" -le 192 ] && [ "$rc" != 130 ]; then
    bad "$name: died by signal $((rc - 128))" "$(tail -5 "$out")"
    continue
  fi
  if [[ $user_space == *" $name "* ]]; then
    if ran "$rc" && [ -z "$why" ]; then ok "$name runs"
    else bad "$name does not run" "rc=$rc" "$(tail -5 "$out")" "$(grep -A40 'ERROR: AddressSanitizer\|runtime error:' "$out" | head -60)"; fi
    continue
  fi
  if [ -n "$why" ]; then
    if grep -qE "has no events in user space|of the kernel's BTF tracepoints bpfvm produces" <<<"$why"; then
      ok "$name: fails at attach, saying why"
    else
      bad "$name: refused, not for its events" "$why"
    fi
    continue
  fi
  # Stopped by itself: a missing option, the machine's files, a CO-RE relocation this kernel's types
  # refuse; the same on the kernel where it can run.
  if [ $kernel = 1 ]; then
    krc=$(cat "$TMP/k_$name.rc")
    last=$(grep -v '^$' "$out" | tail -1) klast=$(grep -v '^$' "$TMP/k_$name.out" | tail -1)
    if [ "$krc" = "$rc" ] && [ "$klast" = "$last" ]; then ok "$name: stops as on the kernel ($last)"
    else bad "$name: stops otherwise than on the kernel" "bpfvm rc=$rc: $last" "kernel rc=$krc: $klast" \
      "$(grep -A40 'ERROR: AddressSanitizer\|runtime error:' "$out" | head -60)"; fi
  elif ! ran "$rc"; then
    ok "$name: stops by itself ($(grep -v '^$' "$out" | tail -1))"
  else
    bad "$name: runs, but its events do not exist in user space" "$(tail -5 "$out")"
  fi
done
# The kernel as oracle: what runs there runs here or says why; what fails there fails here.
if [ $kernel = 1 ]; then
  for t in "${tools[@]}"; do
    name=$(basename "$t")
    krc=$(cat "$TMP/k_$name.rc") rc=$(cat "$TMP/b_$name.rc")
    if ! ran "$krc" && ran "$rc" && ! grep -q '^bpfvm: ' "$TMP/b_$name.out"; then
      bad "$name: fails on the kernel (rc=$krc), runs on bpfvm" "$(tail -3 "$TMP/k_$name.out")"
    fi
  done
fi
left=$("$BPFVM" prog show 2>/dev/null; "$BPFVM" link show 2>/dev/null)
[ -z "$left" ] && ok "nothing left after ${#tools[@]} tools" || bad "objects left" "$left"
echo "$pass passed, $fail failed"
[ $fail = 0 ]
