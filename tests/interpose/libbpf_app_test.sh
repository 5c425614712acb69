#!/bin/bash
# A libbpf application built here (tests/interpose/app: libbpf's open/load/attach and a ring buffer, a
# fentry program on do_sys_openat2 reading its struct open_how directly) under `bpfvm run`, beside the
# same application on the running kernel: both print the workload's open with its flags.
# Usage: libbpf_app_test.sh BPFVM. Exits 77 (skipped) without clang, a C compiler with libbpf, kernel BTF.
set -u
BPFVM=$1
HERE=$(cd "$(dirname "$0")" && pwd)
command -v clang >/dev/null && command -v cc >/dev/null || { echo "SKIP: no clang or cc"; exit 77; }
[ -r /sys/kernel/btf/vmlinux ] || { echo "SKIP: no /sys/kernel/btf/vmlinux"; exit 77; }
TMP=$(mktemp -d)
chmod 755 "$TMP"
export BPFVM_PIN_ROOT=$TMP/pins
trap 'kill $(jobs -p) 2>/dev/null; rm -rf "$TMP"' EXIT
. "$HERE/../support/checks.sh"
"$BPFVM" btf dump file /sys/kernel/btf/vmlinux format c > "$TMP/vmlinux.h" || { echo "FAIL: btf dump"; exit 1; }
clang -O2 -g -target bpf -I"$TMP" -c "$HERE/app/fentry_open.bpf.c" -o "$TMP/fentry_open.bpf.o" 2>"$TMP/cc.err" &&
  cc -O1 -o "$TMP/app" "$HERE/app/fentry_open.c" -lbpf 2>>"$TMP/cc.err" ||
  { echo "SKIP: cannot build the application (libbpf-dev?): $(head -3 "$TMP/cc.err")"; exit 77; }
echo bpfvm > "$TMP/lb-marker"

run_app() {  # OUT [bpfvm]
  local out=$1
  if [ "${2:-}" = bpfvm ]; then "$BPFVM" run -- "$TMP/app" "$TMP/fentry_open.bpf.o" lb-marker > "$out" 2>&1 &
  else "$TMP/app" "$TMP/fentry_open.bpf.o" lb-marker > "$out" 2>&1 &
  fi
  local pid=$!
  for _ in $(seq 300); do grep -q attached "$out" && break; kill -0 $pid 2>/dev/null || break; sleep 0.1; done
  if [ "${2:-}" = bpfvm ]; then "$BPFVM" run -- cat "$TMP/lb-marker" > /dev/null; else cat "$TMP/lb-marker" > /dev/null; fi
  wait $pid
}

run_app "$TMP/ours" bpfvm
rc=$?
want="open $TMP/lb-marker flags 8000"
if [ $rc = 0 ] && grep -qx "$want" "$TMP/ours"; then ok "a libbpf application's fentry program and ring buffer under bpfvm run"
else bad "libbpf application under bpfvm run" "rc=$rc" "$(cat "$TMP/ours")"; fi

# The kernel as oracle (root, where it has fentry): the same line.
if [ "$(id -u)" = 0 ]; then
  run_app "$TMP/kernel"
  rc=$?
  if [ $rc = 0 ]; then
    if [ "$(grep '^open ' "$TMP/kernel")" = "$(grep '^open ' "$TMP/ours")" ]; then ok "the kernel prints the same line"
    else bad "the kernel's line differs" "kernel: $(cat "$TMP/kernel")" "bpfvm: $(cat "$TMP/ours")"; fi
  else
    echo "note: the kernel could not run the application (rc=$rc): $(head -2 "$TMP/kernel")"
  fi
fi
# Perf counters read by a program (bpf_perf_event_read/_value): CPU clocks of this CPU and another, the
# thread's task clock, a BPF output event, bad indexes, flags and sizes. The same classes of results
# (errno, zero, a count) under bpfvm run as on the kernel. Needs a second CPU.
if [ "$(nproc)" -ge 2 ]; then
  if clang -O2 -g -target bpf -I/usr/include/"$(cc -print-multiarch)" -c "$HERE/app/perf_counters.bpf.c" \
       -o "$TMP/perf_counters.bpf.o" 2>"$TMP/cc.err" && cc -O1 -o "$TMP/perf_counters" "$HERE/app/perf_counters.c" -lbpf 2>>"$TMP/cc.err"; then
    "$BPFVM" run -- "$TMP/perf_counters" "$TMP/perf_counters.bpf.o" > "$TMP/pc.ours" 2>&1
    rc=$?
    if [ $rc = 0 ] && grep -qx "0: count" "$TMP/pc.ours" && grep -qx "2: errno 22" "$TMP/pc.ours" && grep -qx "3: count" "$TMP/pc.ours"; then
      ok "bpf_perf_event_read(_value) of CPU clocks and a task clock under bpfvm run"
    else bad "perf counters under bpfvm run" "rc=$rc" "$(cat "$TMP/pc.ours")"; fi
    if [ "$(id -u)" = 0 ] && "$TMP/perf_counters" "$TMP/perf_counters.bpf.o" > "$TMP/pc.kernel" 2>&1; then
      if cmp -s "$TMP/pc.kernel" "$TMP/pc.ours"; then ok "the kernel reads the same classes of results"
      else bad "perf counter results differ from the kernel's" "kernel: $(tr '\n' ' ' < "$TMP/pc.kernel")" "bpfvm: $(tr '\n' ' ' < "$TMP/pc.ours")"; fi
    fi
  else
    bad "cannot build the perf counter application" "$(head -3 "$TMP/cc.err")"
  fi
else
  echo "note: one CPU: the perf counter application (which reads another CPU's counter) is not run"
fi
# A user ring buffer (libbpf's user_ring_buffer: reserve, submit, discard, a full ring) drained by a
# program through dynptrs: the same drains, sums and counts as on the kernel.
if clang -O2 -g -target bpf -I/usr/include/"$(cc -print-multiarch)" -c "$HERE/app/user_ringbuf.bpf.c" \
     -o "$TMP/user_ringbuf.bpf.o" 2>"$TMP/cc.err" && cc -O1 -o "$TMP/user_ringbuf" "$HERE/app/user_ringbuf.c" -lbpf 2>>"$TMP/cc.err"; then
  "$BPFVM" run -- "$TMP/user_ringbuf" "$TMP/user_ringbuf.bpf.o" > "$TMP/urb.ours" 2>&1
  rc=$?
  if [ $rc = 0 ] && grep -qx "drained 3 sum 6 seen 3" "$TMP/urb.ours" && grep -qx "room again: yes" "$TMP/urb.ours"; then
    ok "a user ring buffer produced by libbpf and drained by a program under bpfvm run"
  else bad "user ring buffer under bpfvm run" "rc=$rc" "$(cat "$TMP/urb.ours")"; fi
  if [ "$(id -u)" = 0 ] && "$TMP/user_ringbuf" "$TMP/user_ringbuf.bpf.o" > "$TMP/urb.kernel" 2>&1; then
    if cmp -s "$TMP/urb.kernel" "$TMP/urb.ours"; then ok "the kernel drains the same samples"
    else bad "user ring buffer results differ from the kernel's" "kernel: $(tr '\n' ' ' < "$TMP/urb.kernel")" "bpfvm: $(tr '\n' ' ' < "$TMP/urb.ours")"; fi
  fi
else
  bad "cannot build the user ring buffer application" "$(head -3 "$TMP/cc.err")"
fi
echo "libbpf app: $pass passed, $fail failed"
[ $fail -eq 0 ]
