#!/usr/bin/env bash
# The examples end to end: bpfvm trace compiles each one, traces a small workload and prints what the
# example is for. Also bpfvm trace's errors (exit 125 with the reason; 126 and 127 for a command it
# cannot run), its exit status (the command's), -p attach and detach, and Ctrl-C.
set -u
BPFVM="$1"
EX="$2"
TMP="$(mktemp -d)"
export BPFVM_PIN_ROOT="$TMP/pins"
trap 'rm -rf "$TMP"; [ -n "${LOOP:-}" ] && kill "$LOOP" 2>/dev/null' EXIT
pass=0
fail=0

check() {  # check NAME RC OUT WANT_RC WANT_SUBSTRING...
  local name="$1" rc="$2" out="$3" want_rc="$4"
  shift 4
  local ok=1
  [ "$rc" -eq "$want_rc" ] || ok=0
  for want in "$@"; do [[ "$out" == *"$want"* ]] || { ok=0; echo "  missing: $want"; }; done
  if [ $ok -eq 1 ]; then pass=$((pass + 1)); else
    echo "FAIL $name: rc=$rc (want $want_rc), output:"; echo "$out" | head -30; fail=$((fail + 1)); fi
}

run() { out="$("$@" 2>&1)"; rc=$?; }
attached() {  # attached FILE: waits until the tracer writing FILE says it is tracing
  for _ in $(seq 300); do grep -q "Hit Ctrl-C" "$1" 2>/dev/null && return 0; sleep 0.05; done
  return 1
}

if ! command -v clang >/dev/null; then echo "SKIP: no clang"; exit 77; fi

echo "marker" > "$TMP/opened-file"

run "$BPFVM" trace "$EX/hello.bpf.c" -- cat "$TMP/opened-file"
check hello $rc "$out" 0 "cat-" "bpf_trace_printk: Hello, World!" "marker"

run "$BPFVM" trace "$EX/opensnoop.bpf.c" -- sh -c "cat $TMP/opened-file >/dev/null"
check opensnoop $rc "$out" 0 "TIME(s)    COMM                 PID FILE" "cat  " "$TMP/opened-file"
# The same object, precompiled, in the interpreter.
clang -target bpf -O2 -g -I"/usr/include/$(gcc -print-multiarch)" -I"$EX/../include/bpf" -c "$EX/opensnoop.bpf.c" \
  -o "$TMP/opensnoop.bpf.o"
run "$BPFVM" --interpret trace "$TMP/opensnoop.bpf.o" -- cat "$TMP/opened-file"
check "opensnoop .o, interpreter" $rc "$out" 0 "$TMP/opened-file"

run "$BPFVM" trace "$EX/execsnoop.bpf.c" -- sh -c '/bin/echo one two; /nonexistent/cmd 2>/dev/null; true'
# The shell's children are vfork'ed (dash): each is reported as itself, the successful exec of echo
# (its exit event comes from the new image) as well as the failed one.
check execsnoop $rc "$out" 0 "COMM                 PID     RET ARGS" "/bin/echo one two" "-2 /nonexistent/cmd" \
  "sh -c /bin/echo one two" "0 /bin/echo one two"

run "$BPFVM" trace "$EX/syscount.bpf.c" -- sh -c 'cat /dev/null'
check syscount $rc "$out" 0 "@counts[execve]: 2" "@counts[openat]: " "@counts[exit_group]: 2"

run "$BPFVM" trace "$EX/readsize.bpf.c" -- sh -c "head -c 5000 /dev/zero | cat >/dev/null"
check readsize $rc "$out" 0 "@bytes_hist:" "[0]  " "[4K, 8K)" "|@@@"

# Programs as libbpf-tools writes them, with no bpfvm annotation: the record's struct in a header, held
# by a local variable, so clang leaves it out of .BTF; bpfvm trace finds it in the DWARF and prints its
# fields as columns (a ring buffer of struct event, a perf buffer of a struct ev on the stack).
cat > "$TMP/snoop.h" <<'C'
#define TASK_COMM_LEN 16
struct event {
  int pid;
  unsigned int uid;
  char comm[TASK_COMM_LEN];
  char fname[127];
};
C
cat > "$TMP/ringsnoop.bpf.c" <<'C'
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include "snoop.h"
struct { __uint(type, BPF_MAP_TYPE_RINGBUF); __uint(max_entries, 256 * 1024); } events SEC(".maps");
struct args { unsigned long long unused; long id; long dfd; const char *filename; };
SEC("tracepoint/syscalls/sys_enter_openat")
int trace_openat(struct args *ctx) {
  struct event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
  if (!e) return 0;
  e->pid = bpf_get_current_pid_tgid() >> 32;
  e->uid = (unsigned int)bpf_get_current_uid_gid();
  bpf_get_current_comm(e->comm, sizeof(e->comm));
  bpf_probe_read_user_str(e->fname, sizeof(e->fname), ctx->filename);
  bpf_ringbuf_submit(e, 0);
  return 0;
}
char LICENSE[] SEC("license") = "GPL";
C
run "$BPFVM" trace "$TMP/ringsnoop.bpf.c" -- cat "$TMP/opened-file"
check "ring buffer record without annotation" $rc "$out" 0 "TIME(s)        PID     UID COMM             FNAME" \
  "$TMP/opened-file" "cat "
cat > "$TMP/perfsnoop.bpf.c" <<'C'
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
struct ev { unsigned long long ts; int pid; short kind; char comm[16]; };
struct { __uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY); __uint(key_size, sizeof(int)); __uint(value_size, sizeof(int)); } events SEC(".maps");
SEC("tracepoint/syscalls/sys_enter_openat")
int trace_openat(void *ctx) {
  struct ev e = {};
  e.ts = 1;
  e.pid = bpf_get_current_pid_tgid() >> 32;
  e.kind = -3;
  bpf_get_current_comm(e.comm, sizeof(e.comm));
  bpf_perf_event_output(ctx, &events, BPF_F_CURRENT_CPU, &e, sizeof(e));
  return 0;
}
char LICENSE[] SEC("license") = "GPL";
C
run "$BPFVM" trace "$TMP/perfsnoop.bpf.c" -- cat "$TMP/opened-file"
check "perf record without annotation" $rc "$out" 0 "TIME(s)         TS     PID    KIND COMM" "      -3 cat"

# libbpf-tools' style: #include "vmlinux.h" (made from the running kernel's BTF, kept in the user's
# cache) and a CO-RE read of the tracepoint record's args through it.
if [ -r /sys/kernel/btf/vmlinux ]; then
  cat > "$TMP/corevm.bpf.c" <<'C'
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>

SEC("tracepoint/syscalls/sys_enter_openat")
int on_openat(struct trace_event_raw_sys_enter *ctx) {
  char name[64];
  bpf_probe_read_user_str(name, sizeof name, (const char *)BPF_CORE_READ(ctx, args[1]));
  bpf_printk("vmlinux.h openat %s", name);
  return 0;
}
char LICENSE[] SEC("license") = "GPL";
C
  XDG_CACHE_HOME="$TMP/cache" run "$BPFVM" trace "$TMP/corevm.bpf.c" -- cat "$TMP/opened-file"
  check "vmlinux.h and CO-RE" $rc "$out" 0 "vmlinux.h openat $TMP/opened-file"
  [ -f "$(echo "$TMP"/cache/bpfvm/vmlinux-*/vmlinux.h)" ] || { echo "FAIL vmlinux.h not cached"; fail=$((fail + 1)); }
  # fentry/fexit on syscall entries and tp_btf on sys_enter, as libbpf names them: the arguments typed
  # by the kernel's BTF, read directly through the kernel objects they point to (do_sys_openat2's struct
  # open_how, the syscall wrapper's struct pt_regs: loads the kernel makes fault-tolerant, as bpfvm does).
  cat > "$TMP/fentry.bpf.c" <<'C'
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
SEC("fentry/do_sys_openat2") int BPF_PROG(fe, int dfd, const char *filename, struct open_how *how) {
  char name[64];
  bpf_probe_read_user_str(name, sizeof(name), filename);
  bpf_printk("fentry %s dfd %d flags %llx", name, dfd, how->flags);
  return 0;
}
SEC("fexit/__x64_sys_openat") int BPF_PROG(fx, struct pt_regs *regs, long ret) {
  char name[64];
  __u64 arg0 = 0, result = 0;
  bpf_probe_read_user_str(name, sizeof(name), (void *)regs->si);
  bpf_printk("fexit %s = %ld", name, ret);
  long a = bpf_get_func_arg(ctx, 0, &arg0), b = bpf_get_func_arg(ctx, 1, &arg0), r = bpf_get_func_ret(ctx, &result);
  bpf_printk("fexit of %llu args: %ld %ld", bpf_get_func_arg_cnt(ctx), a, b);
  bpf_printk("fexit arg0 %d ret %ld = %ld", arg0 == (__u64)regs, r, (long)result);
  return 0;
}
SEC("tp_btf/sys_enter") int BPF_PROG(te, struct pt_regs *regs, long id) {
  if (id == 257) bpf_printk("tp_btf openat flags %lx", regs->dx);
  return 0;
}
char LICENSE[] SEC("license") = "GPL";
C
  XDG_CACHE_HOME="$TMP/cache" run "$BPFVM" trace "$TMP/fentry.bpf.c" -- env LC_ALL=C cat "$TMP/opened-file" "$TMP/no-such-file"
  check "fentry, fexit, tp_btf" $rc "$out" 1 "bpf_trace_printk: fentry $TMP/opened-file dfd -100 flags 8000" \
    "bpf_trace_printk: fexit $TMP/opened-file = " "bpf_trace_printk: fexit $TMP/no-such-file = -2" \
    "bpf_trace_printk: fexit of 1 args: 0 -22" "bpf_trace_printk: fexit arg0 1 ret 0 = -2" \
    "bpf_trace_printk: tp_btf openat flags 0"
  # Under the ptrace tracer too (tp_btf: the registers live in the tracer, as kernel objects are the
  # runtime's own; fentry and fexit run in the agent only).
  cat > "$TMP/tpbtf.bpf.c" <<'C'
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
SEC("tp_btf/sys_enter") int BPF_PROG(te, struct pt_regs *regs, long id) {
  if (id == 257) bpf_printk("tp_btf openat flags %lx", regs->dx);
  return 0;
}
char LICENSE[] SEC("license") = "GPL";
C
  XDG_CACHE_HOME="$TMP/cache" run "$BPFVM" trace --ptrace "$TMP/tpbtf.bpf.c" -- env LC_ALL=C cat "$TMP/opened-file"
  check "tp_btf under --ptrace" $rc "$out" 0 "bpf_trace_printk: tp_btf openat flags 80000"
  cat > "$TMP/fvfs.bpf.c" <<'C'
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
SEC("fentry/vfs_read") int f(void *ctx) { return 0; }
char LICENSE[] SEC("license") = "GPL";
C
  XDG_CACHE_HOME="$TMP/cache" run "$BPFVM" trace "$TMP/fvfs.bpf.c" -- true
  check "fentry without events" $rc "$out" 125 "'fentry/vfs_read': the kernel function vfs_read has no events in user space"
else
  echo "note: no /sys/kernel/btf/vmlinux: the vmlinux.h case is not run"
fi

# raw_tracepoint/sys_enter and sys_exit: the registers as a struct pt_regs, read with probe_read_kernel;
# the tracee's uid and pid from the helpers.
cat > "$TMP/raw.bpf.c" <<'C'
#include <linux/bpf.h>
#include <linux/ptrace.h>
#include <bpf/bpf_helpers.h>
SEC("raw_tracepoint/sys_enter")
int on_enter(struct bpf_raw_tracepoint_args *ctx)
{
	struct pt_regs *regs = (struct pt_regs *)ctx->args[0];
	unsigned long file = 0;
	char name[64];

	if (ctx->args[1] != 257)  /* openat */
		return 0;
	bpf_probe_read_kernel(&file, sizeof(file), &regs->rsi);
	bpf_probe_read_user_str(name, sizeof(name), (const void *)file);
	bpf_printk("enter uid=%u tgid=%u %s", (__u32)bpf_get_current_uid_gid(),
		   (__u32)(bpf_get_current_pid_tgid() >> 32), name);
	return 0;
}
SEC("raw_tracepoint/sys_exit")
int on_exit(struct bpf_raw_tracepoint_args *ctx)
{
	struct pt_regs *regs = (struct pt_regs *)ctx->args[0];
	long nr = 0;

	bpf_probe_read_kernel(&nr, sizeof(nr), &regs->orig_rax);
	if (nr == 257)
		bpf_printk("exit ret=%ld", (long)ctx->args[1]);
	return 0;
}
char LICENSE[] SEC("license") = "GPL";
C
run "$BPFVM" trace "$TMP/raw.bpf.c" -- cat "$TMP/opened-file"
check "raw_tracepoint sys_enter/sys_exit" $rc "$out" 0 "enter uid=$(id -u) tgid=" "$TMP/opened-file" "exit ret="

# -p: attach to a running process, see its opens, detach on SIGINT and leave it running.
(while true; do cat "$TMP/opened-file" >/dev/null; sleep 0.05; done) &
LOOP=$!
sleep 0.2
"$BPFVM" trace "$EX/opensnoop.bpf.c" -p "$LOOP" > "$TMP/p.out" 2>&1 &
TRACER=$!
attached "$TMP/p.out"
sleep 0.5
kill -INT "$TRACER"
wait "$TRACER"
rc=$?
out="$(cat "$TMP/p.out")"
check "-p attach" $rc "$out" 0 "$TMP/opened-file" "Tracing process $LOOP"
if kill -0 "$LOOP" 2>/dev/null; then pass=$((pass + 1)); else echo "FAIL: the -p process died"; fail=$((fail + 1)); fi
kill "$LOOP"; wait "$LOOP" 2>/dev/null; LOOP=

# Ctrl-C ends a launched command and still prints the maps.
"$BPFVM" trace "$EX/syscount.bpf.c" -- sleep 30 > "$TMP/c.out" 2>&1 &
TRACER=$!
attached "$TMP/c.out"
sleep 0.3
kill -INT "$TRACER"
wait "$TRACER"
rc=$?
check "Ctrl-C" $rc "$(cat "$TMP/c.out")" 130 "@counts[execve]: 1"  # exits as interrupted

# Errors.
printf 'int x(void) { return y; }\n' > "$TMP/broken.bpf.c"
run "$BPFVM" trace "$TMP/broken.bpf.c" -- true
check "compile error" $rc "$out" 125 "use of undeclared identifier 'y'" "clang could not compile"
cat > "$TMP/kprobe.bpf.c" <<'C'
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
SEC("kprobe/vfs_read") int k(void *ctx) { return 0; }
char LICENSE[] SEC("license") = "GPL";
C
run "$BPFVM" trace "$TMP/kprobe.bpf.c" -- true
check "unsupported attach point" $rc "$out" 125 "'kprobe/vfs_read': the kernel function vfs_read has no events in user space"
# A kprobe on a syscall entry function: do_sys_openat2's registers (di dfd, si the user's filename) and a
# kretprobe's result, through the agent; the ptrace tracer does not run them.
cat > "$TMP/kopen.bpf.c" <<'C'
#include <linux/bpf.h>
#include <linux/ptrace.h>
#include <bpf/bpf_helpers.h>
SEC("kprobe/do_sys_openat2") int k(struct pt_regs *ctx) {
  char name[64];
  bpf_probe_read_user_str(name, sizeof(name), (const void *)ctx->rsi);
  bpf_printk("kprobe open %s", name);
  return 0;
}
SEC("kretprobe/__x64_sys_openat") int r(struct pt_regs *ctx) {
  bpf_printk("kretprobe openat = %ld", (long)ctx->rax);
  return 0;
}
char LICENSE[] SEC("license") = "GPL";
C
run "$BPFVM" trace "$TMP/kopen.bpf.c" -- env LC_ALL=C cat "$TMP/opened-file" "$TMP/no-such-file"
check "kprobe on do_sys_openat2" $rc "$out" 1 "bpf_trace_printk: kprobe open $TMP/opened-file" \
  "bpf_trace_printk: kprobe open $TMP/no-such-file" "bpf_trace_printk: kretprobe openat = -2"
run "$BPFVM" trace --ptrace "$TMP/kopen.bpf.c" -- cat "$TMP/opened-file"
check "kprobe under --ptrace" $rc "$out" 125 "kprobes on syscall entries run in the agent"
cat > "$TMP/nosys.bpf.c" <<'C'
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
SEC("tracepoint/syscalls/sys_enter_frobnicate") int k(void *ctx) { return 0; }
char LICENSE[] SEC("license") = "GPL";
C
run "$BPFVM" trace "$TMP/nosys.bpf.c" -- true
check "unknown syscall" $rc "$out" 125 "no such syscall tracepoint"
cat > "$TMP/unsafe.bpf.c" <<'C'
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
SEC("tracepoint/syscalls/sys_enter_openat") int k(unsigned long *ctx) { char *p = (char *)ctx[2]; return *p; }
char LICENSE[] SEC("license") = "GPL";
C
run "$BPFVM" trace "$TMP/unsafe.bpf.c" -- true
check "verifier refusal explained" $rc "$out" 125 "refused by the verifier" "unsafe.bpf.c:3"
run "$BPFVM" trace "$EX/hello.bpf.c" -- /no/such/command
check "missing command" $rc "$out" 127 "cannot run '/no/such/command'"
run "$BPFVM" trace --ptrace "$EX/hello.bpf.c"
check "nothing to trace" $rc "$out" 125 "trace --ptrace needs what to trace"
run "$BPFVM" trace "$EX/hello.bpf.c" -p abc
check "bad pid" $rc "$out" 125 "is not a process id"
run "$BPFVM" trace "$EX/hello.bpf.c" -p 999999999
check "no such pid" $rc "$out" 125 "no process 999999999"

# bpfvm trace exits as the traced command does: its code, or its death by signal re-raised (as strace
# does); bpfvm's own failures are 125, a command that cannot run 126, one not found 127 (timeout's codes).
run "$BPFVM" trace "$EX/hello.bpf.c" -- sh -c 'exit 7'
check "exit status" $rc "$out" 7 "Attached"
run "$BPFVM" trace "$EX/hello.bpf.c" -- sh -c 'kill -SEGV $$'
check "killed by SIGSEGV" $rc "$out" 139 "Attached"
run "$BPFVM" trace "$EX/hello.bpf.c" -- sh -c 'kill -TERM $$'
check "killed by SIGTERM" $rc "$out" 143 "Attached"
run "$BPFVM" trace "$EX/hello.bpf.c" -- false
check "exit 1 of the command" $rc "$out" 1 "Attached"
printf 'echo no\n' > "$TMP/not-executable"
run "$BPFVM" trace "$EX/hello.bpf.c" -- "$TMP/not-executable"
check "not executable" $rc "$out" 126 "not an executable file"
run "$BPFVM" trace "$EX/hello.bpf.c" -- no-such-command-anywhere
check "not in PATH" $rc "$out" 127 "no such command"

echo "examples: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
