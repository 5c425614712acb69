#!/bin/bash
# A libbpf application built here (tests/interpose/app: libbpf's open/load/attach and a ring buffer, a
# fentry program on do_sys_openat2 reading its struct open_how directly) under `bpfvm run`, beside the
# same application on the running kernel: both print the workload's open with its flags.
# Usage: libbpf_app_test.sh BPFVM. Exits 77 (skipped) without clang, a C compiler with libbpf, kernel BTF.
set -u
BPFVM=$1
HERE=$(cd "$(dirname "$0")" && pwd)
PROGS_SRC="$HERE/../progs"
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
# app_vs_kernel NAME WHAT LINE...: builds app/NAME.bpf.c and app/NAME.c, runs the application under
# bpfvm run (each LINE must be in its output) and, as root, on the kernel (the same output).
app_vs_kernel() {
  local name=$1 what=$2 line
  shift 2
  if ! clang -O2 -g -target bpf -I/usr/include/"$(cc -print-multiarch)" -c "$HERE/app/$name.bpf.c" -o "$TMP/$name.bpf.o" \
         2>"$TMP/cc.err" || ! cc -O1 -o "$TMP/$name" "$HERE/app/$name.c" -lbpf 2>>"$TMP/cc.err"; then
    bad "cannot build the $name application" "$(head -3 "$TMP/cc.err")"
    return
  fi
  "$BPFVM" run -- "$TMP/$name" "$TMP/$name.bpf.o" > "$TMP/$name.ours" 2>&1
  local rc=$?
  for line in "$@"; do
    if [ $rc != 0 ] || ! grep -qx "$line" "$TMP/$name.ours"; then
      bad "$what under bpfvm run" "rc=$rc" "$(cat "$TMP/$name.ours")"
      return
    fi
  done
  ok "$what under bpfvm run"
  if [ "$(id -u)" = 0 ] && "$TMP/$name" "$TMP/$name.bpf.o" > "$TMP/$name.kernel" 2>&1; then
    if cmp -s "$TMP/$name.kernel" "$TMP/$name.ours"; then ok "$what: the kernel prints the same"
    else bad "$what: the kernel's output differs" "kernel: $(tr '\n' ' ' < "$TMP/$name.kernel")" "bpfvm: $(tr '\n' ' ' < "$TMP/$name.ours")"; fi
  fi
}

# Perf counters read by a program (bpf_perf_event_read/_value): CPU clocks of this CPU and another, the
# thread's task clock, a BPF output event, bad indexes, flags and sizes; the same classes of results
# (errno, zero, a count) as on the kernel. Needs a second CPU.
if [ "$(nproc)" -ge 2 ]; then
  app_vs_kernel perf_counters "bpf_perf_event_read(_value) of CPU clocks and a task clock" "0: count" "2: errno 22" "3: count"
else
  echo "note: one CPU: the perf counter application (which reads another CPU's counter) is not run"
fi
# A user ring buffer (libbpf's user_ring_buffer: reserve, submit, discard, a full ring) drained by a
# program through dynptrs: the same drains, sums and counts as on the kernel.
app_vs_kernel user_ringbuf "a user ring buffer produced by libbpf and drained by a program" \
  "drained 3 sum 6 seen 3" "room again: yes"
# A TCP congestion control (struct_ops): its programs load, verified as the kernel verifies them; its
# registration, which the kernel does, fails with EOPNOTSUPP and a message that says why.
if clang -O2 -g -target bpf -I/usr/include/"$(cc -print-multiarch)" -c "$HERE/app/tcp_ca.bpf.c" -o "$TMP/tcp_ca.bpf.o" \
     2>"$TMP/cc.err" && cc -O1 -o "$TMP/tcp_ca" "$HERE/app/tcp_ca.c" -lbpf 2>>"$TMP/cc.err"; then
  "$BPFVM" run -- "$TMP/tcp_ca" "$TMP/tcp_ca.bpf.o" > "$TMP/tcp_ca.ours" 2>&1
  rc=$?
  if [ $rc = 0 ] && grep -qx "load: 0, 3 programs" "$TMP/tcp_ca.ours" && grep -qx "register: -95" "$TMP/tcp_ca.ours" &&
     grep -q "struct_ops map 'bpfvm_test_ca' cannot be registered" "$TMP/tcp_ca.ours"; then
    ok "a TCP congestion control's struct_ops programs load, and its registration says why it cannot be"
  else
    bad "a TCP congestion control under bpfvm run" "rc=$rc" "$(cat "$TMP/tcp_ca.ours")"
  fi
  if [ "$(id -u)" = 0 ] && "$TMP/tcp_ca" "$TMP/tcp_ca.bpf.o" > "$TMP/tcp_ca.kernel" 2>&1; then
    if grep -qx "load: 0, 3 programs" "$TMP/tcp_ca.kernel"; then ok "the kernel loads the same programs"
    else bad "the kernel's load differs" "$(cat "$TMP/tcp_ca.kernel")"; fi
  fi
else
  bad "cannot build the tcp_ca application" "$(head -3 "$TMP/cc.err")"
fi
# Extensions (freplace) of a tc program's function, loaded by libbpf with their target
# (bpf_program__set_attach_target): judged against it, as the kernel judges them; replacing the function
# (bpf_program__attach_freplace) fails with EOPNOTSUPP and says why. (The kernel here refuses every
# extension before verifying it, as it does fentry: no oracle.)
if clang -O2 -g -target bpf -I/usr/include/"$(cc -print-multiarch)" -c "$PROGS_SRC/freplace_target.bpf.c" -o "$TMP/fr_target.bpf.o" \
     2>"$TMP/cc.err" &&
   clang -O2 -g -target bpf -I/usr/include/"$(cc -print-multiarch)" -c "$PROGS_SRC/freplace.bpf.c" -o "$TMP/fr.bpf.o" 2>>"$TMP/cc.err" &&
   cc -O1 -o "$TMP/freplace" "$HERE/app/freplace.c" -lbpf 2>>"$TMP/cc.err"; then
  "$BPFVM" run -- "$TMP/freplace" "$TMP/fr_target.bpf.o" "$TMP/fr.bpf.o" good_handle handle_long_arg handle_writes_len \
    > "$TMP/freplace.ours" 2>&1
  rc=$?
  if [ $rc = 0 ] && grep -qx "good_handle: 0" "$TMP/freplace.ours" && grep -qx "attach: -95" "$TMP/freplace.ours" &&
     grep -q "extension program 'good_handle' cannot replace handle()" "$TMP/freplace.ours" &&
     grep -q "^handle_long_arg: -22 arg1 in handle_long_arg() has size 8 while handle() has 4" "$TMP/freplace.ours" &&
     grep -q "^handle_writes_len: -13 .*invalid bpf_context access" "$TMP/freplace.ours"; then
    ok "extensions loaded by libbpf are judged against the program they extend; replacing says why it cannot be"
  else
    bad "extensions (freplace) under bpfvm run" "rc=$rc" "$(cat "$TMP/freplace.ours")"
  fi
else
  bad "cannot build the freplace application" "$(head -3 "$TMP/cc.err")"
fi
echo "libbpf app: $pass passed, $fail failed"
[ $fail -eq 0 ]
