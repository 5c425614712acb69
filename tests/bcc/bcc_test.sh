#!/bin/bash
# BCC on bpfvm: Debian's BCC (python3-bpfcc, libbcc) runs unchanged with bpfvm as its kernel
# (`bpfvm run -- python3 SCRIPT`). BCC compiles its C dialect against the kernel headers bpfvm makes from
# the kernel's BTF (bpfvm run names them in BCC_KERNEL_SOURCE), loads through the served bpf(), attaches
# kprobes on syscall-entry kernel functions (do_sys_openat2, __x64_sys_NAME through
# get_syscall_fnname) by the kprobe PMU, and reads bpfvm's trace pipe and perf buffers. Checked here:
# the project's example (examples/bcc/opens.py: kprobe + kretprobe, a hash, a perf buffer, a table's
# items), bpf_trace_printk lines through trace_print() in trace_pipe's format, a syscall__ function on
# the syscall wrapper, RAW_TRACEPOINT_PROBE(sys_enter), KFUNC_PROBE/KRETFUNC_PROBE, a ring buffer (open_ring_buffer) and a log2
# histogram (print_log2_hist), BCC's USDT class on a process in scope, memleak-bpfcc -p and mountsnoop-bpfcc, the rest of the Python API
# (attach_uprobe/uretprobe by regex, address and pid, attach_tracepoint/raw_tracepoint, num_open_*,
# trace_fields, the table API, print_linear_hist, cleanup), Debian's opensnoop-bpfcc, execsnoop-bpfcc, trace-bpfcc, funccount-bpfcc and
# bashreadline-bpfcc on a workload in scope, a kernel-only function refused with BCC's and bpfvm's
# words, and an ordinary user running the example.
# Usage: bcc_test.sh BPFVM. Exits 77 (skipped) without Debian's BCC.
set -u
set -m  # (background jobs keep SIGINT: Python ignores it when started ignoring it)
BPFVM=$1
HERE=$(cd "$(dirname "$0")" && pwd)
EXAMPLE=$HERE/../../examples/bcc/opens.py
PY=/usr/bin/python3
[ -x "$PY" ] && "$PY" -c 'import bcc' 2>/dev/null || { echo "SKIP: python3-bpfcc (Debian's BCC) is not installed"; exit 77; }
export PATH=$PATH:/usr/sbin
TMP=$(mktemp -d)
chmod 755 "$TMP"
export BPFVM_PIN_ROOT=$TMP/pins
export XDG_CACHE_HOME=$TMP/cache
trap 'kill $(jobs -p) 2>/dev/null; rm -rf "$TMP"' EXIT
cp /bin/cat "$TMP/wl_open"
echo bpfvm > "$TMP/present"
. "$HERE/../support/checks.sh"
# Runs a BCC script under bpfvm around the workload (wl_open opening a file that exists and one that
# does not, started in scope); OUT gets its output.
run_bcc() {  # OUT LINKS COMMAND...
  local out=$1 links=$2
  shift 2
  "$BPFVM" run -- "$@" > "$out" 2>&1 &
  local pid=$!
  if ! wait_links "$links" 60; then kill -INT $pid; wait $pid; return 1; fi  # (BCC compiles first)
  "$BPFVM" run -- "$TMP/wl_open" "$TMP/present" "$TMP/absent" > /dev/null 2>&1
  sleep 1
  kill -INT $pid
  wait $pid
}

# 1. The project's example: kprobe and kretprobe on do_sys_openat2 (its struct open_how read through
# BCC's rewriter), a hash between them, a perf buffer, a table's items at the end.
run_bcc "$TMP/opens" 2 "$PY" "$EXAMPLE" -n wl_open
got=$(awk -v dir="$TMP" '$NF ~ "^" dir "/(present|absent)$" { fd = $3 >= 0 ? "FD" : $3; print $1, fd, $4, $5 }' "$TMP/opens")
want="wl_open FD 100000 $TMP/present
wl_open -2 100000 $TMP/absent"
if [ "$got" = "$want" ] && head -1 "$TMP/opens" | grep -q "COMM.*PID.*FD.*FLAGS.*FILE"; then ok "opens.py: the workload's opens, results and flags"
else bad "opens.py" "want: $want" "got: $got" "output:" "$(cat "$TMP/opens")"; fi
wl_pid=$(awk -v dir="$TMP" '$NF == dir "/present" { print $2 }' "$TMP/opens")
if [ -n "$wl_pid" ] && awk -v p="$wl_pid" '$1 == p && $2 > 2 { found = 1 } END { exit !found }' "$TMP/opens"; then
  ok "opens.py: the hash's counts (table items) name the workload"
else bad "opens.py: counts" "$(tail -5 "$TMP/opens")"; fi

# 1b. Another python3 the user has (the first on PATH when it is not Debian's: pyenv's, /usr/local's),
# which finds Debian's bcc package on the PYTHONPATH bpfvm run adds.
other_py=$(command -v python3)
if ldd "$BPFVM" | grep -q libasan; then
  # (pyenv's python3 is a chain of bash scripts that fork; with a sanitized agent, a child forked while
  # the agent's thread holds the sanitizer's allocator lock waits for it forever: the sanitizer's, not
  # glibc's, allocator has no fork handlers)
  echo "note: a sanitized build: the example is not run under another python3"
elif [ -n "$other_py" ] && [ "$(readlink -f "$other_py")" != "$(readlink -f "$PY")" ] && "$other_py" -c 'import sys' 2>/dev/null; then
  run_bcc "$TMP/opens_other" 2 "$other_py" "$EXAMPLE" -n wl_open
  got=$(awk -v dir="$TMP" '$NF ~ "^" dir "/(present|absent)$" { fd = $3 >= 0 ? "FD" : $3; print $1, fd, $4, $5 }' "$TMP/opens_other")
  if [ "$got" = "$want" ]; then ok "opens.py under $other_py ($("$other_py" --version 2>&1)): the workload's opens"
  else bad "opens.py under $other_py" "want: $want" "got: $got" "output:" "$(cat "$TMP/opens_other")"; fi
else
  echo "note: no python3 on PATH other than $PY: the example is not run under another"
fi

# 2. bpf_trace_printk through trace_print(), on the syscall wrapper (get_syscall_fnname, syscall__: the
# arguments read through the wrapper's struct pt_regs).
cat > "$TMP/printk.py" <<'PY'
from bcc import BPF
b = BPF(text=r"""
int syscall__openat(struct pt_regs *ctx, int dfd, const char __user *filename, int flags) {
    char name[64] = {};
    char comm[16] = {};
    bpf_get_current_comm(comm, sizeof(comm));
    if (comm[0] != 'w' || comm[1] != 'l')
        return 0;
    bpf_probe_read_user_str(name, sizeof(name), filename);
    bpf_trace_printk("openat %s\n", name);
    return 0;
}
RAW_TRACEPOINT_PROBE(sys_enter) {
    char comm[16] = {};
    bpf_get_current_comm(comm, sizeof(comm));
    if (comm[0] == 'w' && comm[1] == 'l' && ctx->args[1] == 257)
        bpf_trace_printk("raw sys_enter openat\n");
    return 0;
}
KFUNC_PROBE(do_sys_openat2, int dfd, const char __user *filename, struct open_how *how) {
    char name[64] = {};
    char comm[16] = {};
    bpf_get_current_comm(comm, sizeof(comm));
    if (comm[0] != 'w' || comm[1] != 'l')
        return 0;
    bpf_probe_read_user_str(name, sizeof(name), filename);
    bpf_trace_printk("kfunc %s flags %llx\n", name, how->flags);
    return 0;
}
KRETFUNC_PROBE(__x64_sys_openat, struct pt_regs *regs, int ret) {
    char name[64] = {};
    char comm[16] = {};
    bpf_get_current_comm(comm, sizeof(comm));
    if (comm[0] != 'w' || comm[1] != 'l')
        return 0;
    bpf_probe_read_user_str(name, sizeof(name), (void *)regs->si);
    bpf_trace_printk("kretfunc %s = %d\n", name, ret);
    return 0;
}
""")
b.attach_kprobe(event=b.get_syscall_fnname("openat"), fn_name="syscall__openat")
b.trace_print()
PY
run_bcc "$TMP/printk" 4 "$PY" "$TMP/printk.py"
if grep -Eq "^b' *wl_open-[0-9]+ +\[[0-9]+\] [^ ]+ +[0-9]+\.[0-9]+: bpf_trace_printk: openat $TMP/present'$" "$TMP/printk"; then
  ok "trace_print: bpf_trace_printk's lines in trace_pipe's format, from a syscall__ function"
else bad "trace_print" "$(cat "$TMP/printk")"; fi
if grep -Eq "^b' *wl_open-[0-9]+ .*: bpf_trace_printk: raw sys_enter openat'$" "$TMP/printk"; then
  ok "RAW_TRACEPOINT_PROBE(sys_enter): the raw syscall tracepoint"
else bad "RAW_TRACEPOINT_PROBE" "$(cat "$TMP/printk")"; fi
# KFUNC_PROBE/KRETFUNC_PROBE (fentry/fexit): do_sys_openat2's struct open_how and the wrapper's
# struct pt_regs read directly (the kernel's BTF-typed loads), the result after the arguments.
if grep -Eq "bpf_trace_printk: kfunc $TMP/present flags 8000'$" "$TMP/printk" &&
   grep -Eq "bpf_trace_printk: kretfunc $TMP/absent = -2'$" "$TMP/printk"; then
  ok "KFUNC_PROBE and KRETFUNC_PROBE: arguments typed by the kernel's BTF, read through kernel objects"
else bad "KFUNC_PROBE" "$(cat "$TMP/printk")"; fi

# 2b. A ring buffer through open_ring_buffer/ring_buffer_poll (BPF_RINGBUF_OUTPUT, ringbuf_reserve and
# ringbuf_submit) and a histogram through print_log2_hist (BPF_HISTOGRAM, increment, bpf_log2l): each
# of the workload's opens is a record, and the histogram's rows count those records by name length.
cat > "$TMP/ring.py" <<'PY'
from bcc import BPF
b = BPF(text=r"""
BPF_HISTOGRAM(dist);
BPF_RINGBUF_OUTPUT(events, 8);
struct event { u32 len; char name[64]; };
int syscall__openat(struct pt_regs *ctx, int dfd, const char __user *filename, int flags) {
    char comm[16] = {};
    bpf_get_current_comm(comm, sizeof(comm));
    if (comm[0] != 'w' || comm[1] != 'l')
        return 0;
    struct event *e = events.ringbuf_reserve(sizeof(struct event));
    if (!e)
        return 0;
    int n = bpf_probe_read_user_str(e->name, sizeof(e->name), filename);
    e->len = n;
    dist.increment(bpf_log2l(n));
    events.ringbuf_submit(e, 0);
    return 0;
}
""")
b.attach_kprobe(event=b.get_syscall_fnname("openat"), fn_name="syscall__openat")
def show(ctx, data, size):
    e = b["events"].event(data)
    print("ring %d %s" % (e.len, e.name.decode()), flush=True)
b["events"].open_ring_buffer(show)
try:
    while True:
        b.ring_buffer_poll(100)
except KeyboardInterrupt:
    pass
b.ring_buffer_consume()
b["dist"].print_log2_hist("len")
PY
run_bcc "$TMP/ring" 1 "$PY" "$TMP/ring.py"
present_len=$(( ${#TMP} + 9 ))  # "/present" and its NUL
if grep -qx "ring $present_len $TMP/present" "$TMP/ring" && grep -qx "ring $((present_len - 1)) $TMP/absent" "$TMP/ring"; then
  ok "open_ring_buffer: a record per open of the workload, names and lengths"
else bad "open_ring_buffer" "$(cat "$TMP/ring")"; fi
# The histogram's rows, recomputed from the records: bucket [2^k, 2^(k+1)-1] counts the lengths in it.
want=$(awk '/^ring / { n = $2; k = 0; while (n > 1) { n = int(n / 2); k++ } c[k]++ }
            END { for (k in c) printf "%d %d\n", 2 ^ k, c[k] }' "$TMP/ring" | sort -n)
got=$(awk '/^ +[0-9]+ -> [0-9]+ +: +[0-9]+ +\|/ { if ($5 > 0) printf "%d %d\n", $1, $5 }' "$TMP/ring" | sort -n)
if [ -n "$want" ] && [ "$got" = "$want" ] && grep -Eq "^ +len +: count +distribution$" "$TMP/ring"; then
  ok "print_log2_hist: the log2 histogram of the records' lengths, in BCC's format"
else bad "print_log2_hist" "want: $want" "got: $got" "$(cat "$TMP/ring")"; fi

# 2c. USDT through BCC's USDT class: a process in scope with a probe (wl:tick, a long and an int in
# registers), enable_probe on its pid, bpf_usdt_readarg of each argument at its own size.
cat > "$TMP/usdt.c" <<'C'
#include <stdlib.h>
#include <sys/sdt.h>
#include <unistd.h>
int main(int argc, char **argv) {
  int n = argc > 1 ? atoi(argv[1]) : 5;
  for (long i = 1; i <= n; i++) {
    DTRACE_PROBE2(wl, tick, i, n);
    usleep(20000);
  }
  return 0;
}
C
cat > "$TMP/usdt.py" <<'PY'
import sys
from bcc import BPF, USDT
u = USDT(pid=int(sys.argv[1]))
u.enable_probe(probe="tick", fn_name="on_tick")
b = BPF(text=r"""
int on_tick(struct pt_regs *ctx) {
    long i = 0;
    int n = 0;
    bpf_usdt_readarg(1, ctx, &i);
    bpf_usdt_readarg(2, ctx, &n);
    bpf_trace_printk("tick %ld of %d\n", i, n);
    return 0;
}
""", usdt_contexts=[u])
b.trace_print()
PY
if cc -O1 -o "$TMP/wl_usdt" "$TMP/usdt.c" 2>"$TMP/usdt.cc"; then
  "$BPFVM" run -- "$TMP/wl_usdt" 100000 > /dev/null 2>&1 &
  target=$!
  sleep 0.3
  "$BPFVM" run -- "$PY" "$TMP/usdt.py" "$target" > "$TMP/usdt" 2>&1 &
  reader=$!
  wait_links 1 60 && sleep 1
  kill -INT $reader
  wait $reader
  kill $target
  wait $target 2>/dev/null
  # Consecutive ticks, each with both arguments.
  if awk '/bpf_trace_printk: tick [0-9]+ of 100000/ { sub(/.*tick /, ""); if (seen && $1 != last + 1) bad = 1; last = $1; seen++ }
          END { exit !(seen >= 5 && !bad) }' "$TMP/usdt"; then
    ok "USDT class: enable_probe on a pid, bpf_usdt_readarg of a long and an int"
  else bad "USDT class" "$(head -20 "$TMP/usdt")"; fi
else
  bad "USDT class: cannot build the target" "$(cat "$TMP/usdt.cc")"
fi

# 2d. The rest of BCC's Python API on a process in scope: attach_uprobe by regex on a pid and
# attach_uretprobe by address, attach_tracepoint and attach_raw_tracepoint by name, num_open_*,
# trace_fields, the table API (items, keys, [] with Key/Leaf, clear), print_linear_hist, cleanup
# (every link gone, the target running on).
cat > "$TMP/api.c" <<'C'
#include <fcntl.h>
#include <unistd.h>
__attribute__((noinline)) int wl_add(int a, int b) { __asm__ volatile("" ::: "memory"); return a + b; }
__attribute__((noinline)) int wl_mul(int a, int b) { __asm__ volatile("" ::: "memory"); return a * b; }
int main(void) {
  for (int i = 0;; i++) {
    wl_add(i, 1);
    wl_mul(i % 100, 3);
    close(open("/dev/null", O_RDONLY));
    usleep(5000);
  }
}
C
cat > "$TMP/api.py" <<'PY'
import sys, time
from bcc import BPF
pid, path = int(sys.argv[1]), sys.argv[2]
b = BPF(text=r"""
#include <uapi/linux/ptrace.h>
BPF_HASH(calls, u32, u64);
BPF_HISTOGRAM(low, int, 8);
int on_add(struct pt_regs *ctx) {
    u32 k = 1;
    calls.increment(k);
    low.increment(PT_REGS_PARM1(ctx) & 7);
    return 0;
}
int on_mul_ret(struct pt_regs *ctx) {
    u32 k = 2;
    calls.increment(k);
    bpf_trace_printk("mul %d\n", (int)PT_REGS_RC(ctx));
    return 0;
}
int on_openat(void *ctx) {
    u32 k = 3;
    if (bpf_get_current_pid_tgid() >> 32 == PID)
        calls.increment(k);
    return 0;
}
int on_enter(struct bpf_raw_tracepoint_args *ctx) {
    u32 k = 4;
    if (bpf_get_current_pid_tgid() >> 32 == PID && ctx->args[1] == 3)  /* close */
        calls.increment(k);
    return 0;
}
""".replace("PID", str(pid)))
b.attach_uprobe(name=path, sym_re="^wl_ad+$", fn_name="on_add", pid=pid)
addr = [a for (n, a) in BPF.get_user_functions_and_addresses(path, "^wl_mul$")][0]
b.attach_uretprobe(name=path, addr=addr, fn_name="on_mul_ret", pid=pid)
b.attach_tracepoint(tp="syscalls:sys_enter_openat", fn_name="on_openat")
b.attach_raw_tracepoint(tp="sys_enter", fn_name="on_enter")
print("open", b.num_open_uprobes(), b.num_open_tracepoints(), b.num_open_kprobes(), flush=True)
(task, tpid, cpu, flags, ts, msg) = b.trace_fields()
print("fields", task.decode(), tpid, msg.decode(), flush=True)
time.sleep(1)
calls = b["calls"]
for k, v in sorted(calls.items(), key=lambda kv: kv[0].value):
    print("calls", k.value, "many" if v.value >= 20 else v.value)
print("keys", len(list(calls.keys())))
b["low"].print_linear_hist("low")
calls[calls.Key(9)] = calls.Leaf(42)
print("set", calls[calls.Key(9)].value)
calls.clear()
print("cleared", len(list(calls.items())))
b.cleanup()
print("after cleanup", b.num_open_uprobes(), b.num_open_tracepoints(), flush=True)
time.sleep(30)
PY
if cc -O1 -o "$TMP/wl_api" "$TMP/api.c" 2>"$TMP/api.cc"; then
  "$BPFVM" run -- "$TMP/wl_api" > /dev/null 2>&1 &
  target=$!
  sleep 0.3
  "$BPFVM" run -- "$PY" "$TMP/api.py" "$target" "$TMP/wl_api" > "$TMP/api" 2>&1 &
  reader=$!
  for _ in $(seq 600); do grep -q "^after cleanup" "$TMP/api" && break; sleep 0.1; done
  links_left=$("$BPFVM" link show 2>/dev/null | grep -c '^[0-9]*: ')
  kill -INT $reader
  wait $reader
  alive=no; kill -0 $target 2>/dev/null && alive=yes
  kill $target
  wait $target 2>/dev/null
  hist=$(awk '/^ +[0-9]+ +: +[0-9]+ +\|/ { if ($3 > 0) n++ } END { print n + 0 }' "$TMP/api")
  if grep -qx "open 2 1 0" "$TMP/api" && grep -Eq "^fields wl_api $target mul [0-9]+$" "$TMP/api" &&
     grep -qx "calls 1 many" "$TMP/api" && grep -qx "calls 2 many" "$TMP/api" && grep -qx "calls 3 many" "$TMP/api" &&
     grep -qx "calls 4 many" "$TMP/api" && grep -qx "keys 4" "$TMP/api" && [ "$hist" = 8 ] &&
     grep -qx "set 42" "$TMP/api" && grep -qx "cleared 0" "$TMP/api" && grep -qx "after cleanup 0 0" "$TMP/api" &&
     [ "$links_left" = 0 ] && [ $alive = yes ]; then
    ok "BCC's API: uprobe by regex on a pid, uretprobe by address, tracepoints, trace_fields, tables, linear histogram, cleanup"
  else bad "BCC's API" "links left after cleanup: $links_left, target alive: $alive, histogram rows: $hist" "$(cat "$TMP/api")"; fi
else
  bad "BCC's API: cannot build the target" "$(cat "$TMP/api.cc")"
fi

# 3. Debian's BCC tools, unchanged.
run_bcc "$TMP/opensnoop" 3 opensnoop-bpfcc -n wl_open
got=$(awk -v dir="$TMP" '$NF ~ "^" dir "/(present|absent)$" { fd = $3 >= 0 ? "FD" : $3; print $2, fd, $4, $5 }' "$TMP/opensnoop")
want="wl_open FD 0 $TMP/present
wl_open -1 2 $TMP/absent"
if [ "$got" = "$want" ]; then ok "opensnoop-bpfcc -n: the workload's opens"
else bad "opensnoop-bpfcc" "want: $want" "got: $got" "output:" "$(cat "$TMP/opensnoop")"; fi
# It chose KRETFUNC_PROBE (fexit on __x64_sys_openat...: BCC's support_kfunc found the kernel's mark of
# fentry), as on this kernel, and read the filename through the wrapper's struct pt_regs directly.
ebpf=$(timeout 60 "$BPFVM" run -- opensnoop-bpfcc --ebpf 2>&1)
if grep -q "KRETFUNC_PROBE(__x64_sys_openat, struct pt_regs \*regs, int ret)" <<<"$ebpf"; then
  ok "opensnoop-bpfcc: BCC chose fexit (KRETFUNC_PROBE), as on the kernel"
else bad "opensnoop-bpfcc --ebpf: no KRETFUNC_PROBE" "$(head -40 <<<"$ebpf")"; fi

run_bcc "$TMP/execsnoop" 2 execsnoop-bpfcc
if grep -Eq "^wl_open +[0-9]+ +[0-9]+ +0 $TMP/wl_open $TMP/present $TMP/absent$" "$TMP/execsnoop"; then
  ok "execsnoop-bpfcc: the workload's exec with its arguments"
else bad "execsnoop-bpfcc" "$(cat "$TMP/execsnoop")"; fi

run_bcc "$TMP/trace" 1 trace-bpfcc 'do_sys_openat2 "%s", arg2'
if grep -Eq "^[0-9]+ +[0-9]+ +wl_open +do_sys_openat2 +$TMP/present$" "$TMP/trace"; then
  ok "trace-bpfcc 'do_sys_openat2 \"%s\", arg2': the filename argument"
else bad "trace-bpfcc" "$(cat "$TMP/trace")"; fi

# funccount reads /proc/kallsyms (bpfvm's: the functions it can probe) and kprobes/blacklist before its
# first bpf() call, to expand its pattern.
run_bcc "$TMP/funccount" 1 funccount-bpfcc '__x64_sys_open*'
if grep -Eq "^__x64_sys_openat +[0-9]+$" "$TMP/funccount" && ! grep -q "__x64_sys_read" "$TMP/funccount"; then
  ok "funccount-bpfcc '__x64_sys_open*': the pattern's functions, counted"
else bad "funccount-bpfcc" "$(cat "$TMP/funccount")"; fi

if command -v script >/dev/null && [ -x /bin/bash ]; then
  "$BPFVM" run -- bashreadline-bpfcc > "$TMP/readline" 2>&1 &
  pid=$!
  if wait_links 1 60; then
    printf 'echo bpfvm-line\nexit\n' | "$BPFVM" run -- script -qc "bash --norc -i" /dev/null > /dev/null 2>&1
    sleep 1
  fi
  kill -INT $pid
  wait $pid
  got=$(awk 'NR > 1 { $1 = ""; $2 = ""; sub(/^ +/, ""); print }' "$TMP/readline")
  if [ "$got" = "echo bpfvm-line
exit" ]; then ok "bashreadline-bpfcc: an interactive bash's lines (a uretprobe)"
  else bad "bashreadline-bpfcc" "$(cat "$TMP/readline")"; fi
else
  echo "skip bashreadline-bpfcc: no script(1) or bash"
fi

# mountsnoop-bpfcc: kprobes on the mount syscalls, and its own struct mnt_namespace (a type the kernel
# keeps out of include/, which the header tree declares without defining) read from the task: the
# workload's mount and umount with its mount namespace.
if [ "$(id -u)" = 0 ]; then
  mkdir -p "$TMP/mnt"
  "$BPFVM" run -- mountsnoop-bpfcc > "$TMP/mountsnoop" 2>&1 &
  pid=$!
  if wait_links 2 60; then
    "$BPFVM" run -- mount -t tmpfs bpfvm-test "$TMP/mnt"
    "$BPFVM" run -- umount "$TMP/mnt"
    sleep 1
  fi
  kill -INT $pid
  wait $pid
  ns=$(readlink /proc/self/ns/mnt | tr -dc 0-9)
  if grep -Eq "^mount +[0-9]+ +[0-9]+ +$ns +mount\(\"bpfvm-test\", \"$TMP/mnt\", \"tmpfs\", 0x0, \"\"\) = 0$" "$TMP/mountsnoop" &&
     grep -Eq "^umount +[0-9]+ +[0-9]+ +$ns +umount\(\"$TMP/mnt\", 0x0\) = 0$" "$TMP/mountsnoop"; then
    ok "mountsnoop-bpfcc: the workload's mount and umount, with its mount namespace"
  else bad "mountsnoop-bpfcc" "$(cat "$TMP/mountsnoop")"; fi
fi

# memleak-bpfcc -p: uprobes and uretprobes on libc's allocators in a process in scope, user stacks by
# bpf_get_stackid (BPF_STACK_TRACE, sized by roundup_pow_of_two): the leaking function's stack, and the
# target alive after (a uretprobe on malloc used to recurse in the agent until the stack ran out).
cat > "$TMP/leak.c" <<'C'
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
__attribute__((noinline)) void *wl_grow(size_t n) { void *p = malloc(n); memset(p, 1, n); return p; }
int main(void) { for (;;) { wl_grow(4096); free(malloc(100)); usleep(10000); } }
C
if ldd "$BPFVM" | grep -q libasan; then
  # (a sanitized bpfvm preloads its sanitizer's runtime into the target, whose malloc is then not libc's)
  echo "note: a sanitized build: memleak-bpfcc is not run"
elif cc -O1 -fno-omit-frame-pointer -o "$TMP/wl_leak" "$TMP/leak.c" 2>"$TMP/leak.cc"; then
  "$BPFVM" run -- "$TMP/wl_leak" > /dev/null 2>&1 &
  target=$!
  sleep 0.3
  timeout -s INT 90 "$BPFVM" run -- memleak-bpfcc -p $target 2 2 > "$TMP/memleak" 2>&1
  alive=no; kill -0 $target 2>/dev/null && alive=yes
  kill $target; wait $target 2>/dev/null
  if grep -Eq "^	[0-9]+ bytes in [0-9]+ allocations from stack$" "$TMP/memleak" && grep -q "wl_grow+" "$TMP/memleak" &&
     [ $alive = yes ]; then
    ok "memleak-bpfcc -p: the leaking stack, the target alive"
  else bad "memleak-bpfcc" "target alive: $alive" "$(head -30 "$TMP/memleak")"; fi
else
  bad "memleak-bpfcc: cannot build the target" "$(cat "$TMP/leak.cc")"
fi

# 4. A kernel function that is not a syscall entry: BCC's error, and bpfvm's reason.
cat > "$TMP/other.py" <<'PY'
from bcc import BPF
b = BPF(text="int probe(void *ctx) { return 0; }")
b.attach_kprobe(event="vfs_read", fn_name="probe")
PY
"$BPFVM" run -- "$PY" "$TMP/other.py" > "$TMP/other" 2>&1
rc=$?
if [ $rc -ne 0 ] && grep -q "Failed to attach BPF program b'probe' to kprobe b'vfs_read'" "$TMP/other" &&
   grep -q "kprobe on the kernel function vfs_read has no events in user space" "$TMP/other"; then
  ok "kprobe on vfs_read: fails, saying why"
else bad "kprobe on vfs_read (exit $rc)" "$(cat "$TMP/other")"; fi

# 5. An ordinary user runs the example (BCC as nobody: its own kernel tree in its own cache).
if [ "$(id -u)" = 0 ] && id nobody >/dev/null 2>&1 && command -v setpriv >/dev/null; then
  mkdir -p "$TMP/user" && chown nobody "$TMP/user"
  as_nobody=(setpriv --reuid=nobody --regid=nogroup --clear-groups env HOME="$TMP/user" XDG_CACHE_HOME="$TMP/user/cache"
             BPFVM_PIN_ROOT="$TMP/user/pins")
  # run_bcc as nobody: OUT LINKS COMMAND...
  run_as_nobody() {
    local out=$1 links=$2
    shift 2
    "${as_nobody[@]}" "$BPFVM" run -- "$@" > "$out" 2>&1 &
    local pid=$!
    wait_links "$links" 60 "${as_nobody[@]}"
    "${as_nobody[@]}" "$BPFVM" run -- "$TMP/wl_open" "$TMP/present" > /dev/null 2>&1
    sleep 1
    kill -INT $pid
    wait $pid
  }
  run_as_nobody "$TMP/user/out" 2 "$PY" "$EXAMPLE" -n wl_open
  if grep -Eq "^wl_open +[0-9]+ +[0-9]+ +100000 +$TMP/present$" "$TMP/user/out"; then ok "an ordinary user: opens.py sees its workload"
  else bad "ordinary user" "$(cat "$TMP/user/out")"; fi
  # TRACEPOINT_PROBE builds its args struct from the event's tracefs format, which an ordinary user
  # cannot read: bpfvm serves the kernel's text for the syscall events it produces.
  cat > "$TMP/user/tp.py" <<'PY'
from bcc import BPF
b = BPF(text=r"""
TRACEPOINT_PROBE(syscalls, sys_enter_openat) {
    char comm[16] = {};
    char name[64] = {};
    bpf_get_current_comm(comm, sizeof(comm));
    if (comm[0] != 'w' || comm[1] != 'l')
        return 0;
    bpf_probe_read_user_str(name, sizeof(name), args->filename);
    bpf_trace_printk("tp openat %s\n", name);
    return 0;
}
""")
b.trace_print()
PY
  run_as_nobody "$TMP/user/tp" 1 "$PY" "$TMP/user/tp.py"
  if grep -q "bpf_trace_printk: tp openat $TMP/present'" "$TMP/user/tp"; then
    ok "an ordinary user: TRACEPOINT_PROBE(syscalls, sys_enter_openat) with args from the served format"
  else bad "ordinary user: TRACEPOINT_PROBE" "$(head -30 "$TMP/user/tp")"; fi
else
  echo "skip ordinary user: not root, or no nobody/setpriv"
fi

echo "bcc: $pass passed, $fail failed"
[ $fail -eq 0 ]
