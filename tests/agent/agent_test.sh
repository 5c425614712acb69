#!/bin/bash
# The agent end to end: uprobes, uretprobes (by jump and by int3) and USDT probes through `bpfvm trace -- CMD` (fork and exec in scope, a
# crash reported as the command's own signal, helpers that fail), `bpfvm run` joining the global scope
# and a link made afterwards firing there, `bpfvm agent show`, and the errors of a point that does not
# exist, a library loaded with dlopen, an ordinary user; with PART attach, `bpfvm attach` and `detach` of a
# running process; with PART system_wide, `bpfvm agent enable` and `disable`.
# Usage: agent_test.sh BPFVM TEST_DIR SOURCE_DIR [PART].
# Exits 77 (skipped) without clang or a C compiler.
set -u
BPFVM=$1
DIR=$2
SRC=$3
PART=${4:-main}  # main, attach (bpfvm attach/detach) or system_wide (bpfvm agent enable/disable)
command -v clang >/dev/null || { echo "SKIP: no clang"; exit 77; }
command -v cc >/dev/null || { echo "SKIP: no C compiler"; exit 77; }
# A sanitized bpfvm's agent needs the sanitizer runtimes loaded first in every process: it cannot be
# loaded into a running process, nor preloaded system-wide (agent enable refuses).
if [ "$PART" != main ] && ldd "$BPFVM" | grep -q libasan; then
  echo "SKIP: a sanitized build (its agent cannot be loaded into processes started without the sanitizer)"
  exit 77
fi
if [ "$PART" = system_wide ] && ! { [ "$(id -u)" = 0 ] && command -v unshare >/dev/null && unshare -m true 2>/dev/null; }; then
  echo "SKIP: the system-wide scope is tested as root in a private mount namespace (unshare -m)"
  exit 77
fi
TMP=$(mktemp -d)
export BPFVM_PIN_ROOT=$TMP/pins
trap 'kill $(jobs -p) 2>/dev/null; rm -rf "$TMP"' EXIT
cc -O2 -pthread -o "$TMP/target" "$DIR/uprobe_target.c" || exit 1
cp "$DIR/count.bpf.c" "$TMP/"
# /proc/self/exe is the command's executable; where the command is a shell, or there is none, the
# program names the target.
sed "s#/proc/self/exe#$TMP/target#" "$DIR/count.bpf.c" > "$TMP/named.bpf.c"
pass=0 fail=0
check() {  # NAME RC OUTPUT WANT_RC WANT_TEXT...
  local name=$1 rc=$2 out=$3 want=$4 ok=1
  shift 4
  [ "$rc" = "$want" ] || ok=0
  for text in "$@"; do grep -qF -- "$text" <<<"$out" || { ok=0; echo "  missing: $text"; }; done
  if [ $ok = 1 ]; then pass=$((pass + 1)); echo "ok $name"; else fail=$((fail + 1)); echo "FAIL $name: rc=$rc (want $want), output:"; echo "$out"; fi
}

finish() {
  echo "agent ($PART): $pass passed, $fail failed"
  [ "$fail" -eq 0 ]
  exit
}

# A running process started without bpfvm joins with `bpfvm attach PID` (the agent loaded into it
# through ptrace) and a global trace fires there; `bpfvm detach PID` takes its probes out and it runs
# on, untraced, to its normal end. Not with a sanitized bpfvm, whose agent needs its runtimes first.
# Waits until process $1 runs $TMP/target: a job started with `&` is the shell's fork until it execs,
# and an agent injected before the exec would go with the shell's image.
running_target() {
  for _ in $(seq 200); do [ "$(readlink "/proc/$1/exe" 2>/dev/null)" = "$TMP/target" ] && return; sleep 0.01; done
}

if [ "$PART" = attach ]; then
  "$TMP/target" wait "$TMP/go-attach" 30 &
  attached=$!
  running_target $attached
  out=$("$BPFVM" attach $attached 2>&1); arc=$?
  "$BPFVM" trace "$TMP/named.bpf.c" > "$TMP/attach.out" 2>&1 &
  tracer=$!
  for _ in $(seq 200); do grep -q Attached "$TMP/attach.out" 2>/dev/null && break; sleep 0.05; done
  for _ in $(seq 100); do "$BPFVM" agent show | grep -A3 "pid $attached" | grep -q "link" && break; sleep 0.02; done
  shown=$("$BPFVM" agent show 2>&1)
  touch "$TMP/go-attach"
  wait $attached; jrc=$?
  kill -INT $tracer; wait $tracer
  out="$out
  $shown
  $(cat "$TMP/attach.out")"
  check "bpfvm attach PID: a running process joins the scope" $((arc + jrc)) "$out" 0 "process $attached joined the scope" \
    "pid $attached  comm target" "@calls[1]: 30"
  "$TMP/target" wait "$TMP/go-detach" 20 &
  left=$!
  running_target $left
  "$BPFVM" attach $left >/dev/null 2>&1
  "$BPFVM" trace "$TMP/named.bpf.c" > "$TMP/detach.out" 2>&1 &
  tracer=$!
  for _ in $(seq 200); do grep -q Attached "$TMP/detach.out" 2>/dev/null && break; sleep 0.05; done
  for _ in $(seq 100); do "$BPFVM" agent show | grep -A3 "pid $left" | grep -q "link" && break; sleep 0.02; done
  out=$("$BPFVM" detach $left 2>&1); drc=$?
  shown=$("$BPFVM" agent show 2>&1)
  touch "$TMP/go-detach"
  wait $left; jrc=$?
  kill -INT $tracer; wait $tracer
  out="$out
  listed after: $(grep -c "pid $left" <<<"$shown")
  $(cat "$TMP/detach.out")"
  check "bpfvm detach PID: its probes removed, it runs on to its end" $((drc + jrc)) "$out" 0 "process $left left the scope" \
    "listed after: 0"
  if grep -q "@calls" "$TMP/detach.out"; then fail=$((fail + 1)); echo "FAIL a detached process still ran programs"; fi
  # A process attached while it runs two threads: its agent cannot patch its syscall instructions (not
  # while another thread may be between the bytes), so `trace -p` takes its syscall events through
  # ptrace, says so, and loses none.
  cat > "$TMP/closes_p.bpf.c" <<'C'
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
struct { __uint(type, BPF_MAP_TYPE_HASH); __uint(max_entries, 8); __type(key, __u32); __type(value, __u64); } c SEC(".maps");
struct enter { __u64 common; long nr; long fd; };
SEC("tracepoint/syscalls/sys_enter_close") int in(struct enter* e) {
  __u32 k = 1; __u64 one = 1, *v;
  if ((int)e->fd != -1) return 0;
  v = bpf_map_lookup_elem(&c, &k);
  if (!v && bpf_map_update_elem(&c, &k, &one, BPF_NOEXIST) == 0) return 0;
  if (!v) v = bpf_map_lookup_elem(&c, &k);  // another thread inserted it first
  if (v) __sync_fetch_and_add(v, 1);
  return 0;
}
char LICENSE[] SEC("license") = "GPL";
C
  "$TMP/target" threadwait "$TMP/go-threads" 500 &
  threaded=$!
  running_target $threaded
  sleep 0.1
  "$BPFVM" attach $threaded >/dev/null 2>&1
  "$BPFVM" trace "$TMP/closes_p.bpf.c" -p $threaded > "$TMP/threads.out" 2>&1 &
  tracer=$!
  for _ in $(seq 200); do grep -q Attached "$TMP/threads.out" 2>/dev/null && break; sleep 0.05; done
  touch "$TMP/go-threads"
  wait $threaded; trc=$?
  wait $tracer
  # Its syscall sites were written with the threads stopped (bpfvm attach), so its agent takes the events.
  how=$(grep -q "through ptrace" "$TMP/threads.out" && echo "through ptrace" || echo "in the process")
  check "trace -p of an attached process with threads: syscall events in the process, none lost" $trc \
    "$(cat "$TMP/threads.out")
$how" 0 "in the process" "@c[1]: 500"
  finish
fi

# The system-wide scope, in a private mount namespace over a copy of /etc (the machine's own
# /etc/ld.so.preload is never touched): after `agent enable` a process started with nothing of bpfvm's
# is in scope and a global trace fires in it; bpfvm itself is not traced; after `agent disable` the
# file is as it was and a new process is not in scope. Not with a sanitized bpfvm (its agent needs
# the sanitizer runtimes first in every process, so enable refuses).
if [ "$PART" = system_wide ]; then
  mkdir -p "$TMP/etc"
  out=$(unshare -m --propagation private bash -c '
    TMP=$1 BPFVM=$2
    cp -a /etc/. "$TMP/etc/" && mount --bind "$TMP/etc" /etc || exit 9
    echo "/lib/x86_64-linux-gnu/libc.so.6" > /etc/ld.so.preload  # a line of someone else s, kept
    "$BPFVM" agent enable || exit 10
    echo "preload: $(tr "\n" " " < /etc/ld.so.preload)"
    "$BPFVM" agent show | head -1
    "$TMP/target" wait "$TMP/sw-go" 40 & joined=$!
    for _ in $(seq 100); do "$BPFVM" agent show 2>/dev/null | grep -q "pid $joined" && break; sleep 0.05; done
    "$BPFVM" trace "$TMP/named.bpf.c" > "$TMP/sw.out" 2>&1 & tracer=$!
    for _ in $(seq 200); do grep -q Attached "$TMP/sw.out" 2>/dev/null && break; sleep 0.05; done
    for _ in $(seq 100); do "$BPFVM" agent show | grep -A3 "pid $joined" | grep -q "link" && break; sleep 0.02; done
    "$BPFVM" agent show | grep -c "comm bpfvm" | sed "s/^/bpfvm processes in scope: /"
    touch "$TMP/sw-go"; wait $joined
    kill -INT $tracer; wait $tracer; cat "$TMP/sw.out"
    "$BPFVM" agent disable
    echo "after: $(tr "\n" " " < /etc/ld.so.preload) conf: $(ls /etc/bpfvm 2>/dev/null | wc -l)"
    "$TMP/target" calls 1 > /dev/null
    LD_DEBUG=libs "$TMP/target" calls 1 2>&1 | grep -c libbpfvm-agent | sed "s/^/agent loaded after disable: /"
  ' _ "$TMP" "$BPFVM" 2>&1); rc=$?
  check "agent enable: a process started with nothing of bpfvm's is in scope; disable undoes it" $rc "$out" 0 \
    "preload: /lib/x86_64-linux-gnu/libc.so.6 /" "libbpfvm-agent.so" "system-wide scope: enabled" \
    "bpfvm processes in scope: 0" "@calls[1]: 40" "system-wide scope disabled" \
    "after: /lib/x86_64-linux-gnu/libc.so.6  conf: 0" "agent loaded after disable: 0"
  out=$(setpriv --reuid=65532 --regid=65532 --clear-groups "$BPFVM" agent enable 2>&1); rc=$?
  check "agent enable is root's" $rc "$out" 1 "root's to enable"
  finish
fi

# The rest: PART main.

out=$("$BPFVM" trace "$TMP/count.bpf.c" -- "$TMP/target" calls 1000 2>&1); rc=$?
check "uprobe, uretprobe, a probe on a loop's function" $rc "$out" 0 "@calls[1]: 1000" "@calls[2]: 1000" "@calls[3]: 1000" \
  "@calls[4]: 1000" "total 1999000"

out=$("$BPFVM" trace "$TMP/count.bpf.c" -- "$TMP/target" fork 300 2>&1); rc=$?
check "a forked child is in scope" $rc "$out" 0 "@calls[1]: 600" "@calls[2]: 600"

out=$("$BPFVM" trace "$TMP/named.bpf.c" -- sh -c "'$TMP/target' calls 5 >/dev/null; '$TMP/target' calls 7" 2>&1); rc=$?
check "exec'd commands are in scope" $rc "$out" 0 "@calls[1]: 12"

out=$("$BPFVM" trace "$TMP/count.bpf.c" -- "$TMP/target" crash 10 2>&1); rc=$?
check "a crash is the command's own signal" $rc "$out" 139 "@calls[1]: 10"

# int3 probes (placed where a jump cannot be, here forced on every probe): the same counts, through a
# fork, a crash still the command's own signal, and a breakpoint of the program's own still kills it
# with SIGTRAP (the agent's SIGTRAP handler passes on what is not its probes').
out=$(BPFVM_AGENT_TRAPS=1 "$BPFVM" trace "$TMP/count.bpf.c" -- "$TMP/target" calls 1000 2>&1); rc=$?
check "int3 probes: uprobe, uretprobe" $rc "$out" 0 "@calls[1]: 1000" "@calls[2]: 1000" "@calls[3]: 1000" \
  "@calls[4]: 1000" "total 1999000"
out=$(BPFVM_AGENT_TRAPS=1 "$BPFVM" trace "$TMP/count.bpf.c" -- "$TMP/target" fork 300 2>&1); rc=$?
check "int3 probes in a forked child" $rc "$out" 0 "@calls[1]: 600" "@calls[2]: 600"
out=$(BPFVM_AGENT_TRAPS=1 "$BPFVM" trace "$TMP/count.bpf.c" -- "$TMP/target" crash 10 2>&1); rc=$?
check "int3 probes: a crash is the command's own signal" $rc "$out" 139 "@calls[1]: 10"
out=$(BPFVM_AGENT_TRAPS=1 "$BPFVM" trace "$TMP/count.bpf.c" -- "$TMP/target" int3 10 2>&1); rc=$?
check "int3 probes: the program's own breakpoint kills it with SIGTRAP" $rc "$out" 133 "@calls[1]: 10"

# C++ exceptions through functions with return probes (the kernel's uretprobes terminate such a
# program): caught below a probed frame, whose return still fires, and rethrown from one; by jump and
# by int3.
if command -v c++ >/dev/null; then
  c++ -O2 -o "$TMP/exceptions" "$DIR/exceptions_target.cpp" || exit 1
  for traps in 0 1; do
    out=$(BPFVM_AGENT_TRAPS=$traps "$BPFVM" trace "$DIR/exceptions.bpf.c" -- "$TMP/exceptions" 2>&1); rc=$?
    check "exceptions through return probes (int3: $traps)" $rc "$out" 0 "sum 35 caught 5" "@ret[0]: 10" "@ret[1]: 10" \
      "@ret[2]: 15" "@ret[3]: 5"
  done
else
  echo "skip exceptions: no C++ compiler"
fi

# An uninstrumented process of the same user is not in scope: nothing fires there.
"$TMP/target" wait "$TMP/go-outside" 50 &
outside=$!
# The global scope: a process joined with bpfvm run, then a trace with neither command nor pid.
"$BPFVM" run -- "$TMP/target" wait "$TMP/go" 50 &
joined=$!
for _ in $(seq 100); do "$BPFVM" agent show 2>/dev/null | grep -q "pid $joined" && break; sleep 0.05; done
"$BPFVM" trace "$TMP/named.bpf.c" > "$TMP/global.out" 2>&1 &
tracer=$!
for _ in $(seq 200); do grep -q Attached "$TMP/global.out" 2>/dev/null && break; sleep 0.05; done
for _ in $(seq 100); do "$BPFVM" agent show | grep -A3 "pid $joined" | grep -q "link" && break; sleep 0.02; done
shown=$("$BPFVM" agent show 2>&1; "$BPFVM" link show; "$BPFVM" perf)
touch "$TMP/go" "$TMP/go-outside"
wait $joined; jrc=$?
wait $outside
kill -INT $tracer; wait $tracer
out="$(cat "$TMP/global.out")
$shown"
check "a link made after a process joined fires there, not outside the scope; link show and perf list it" $jrc "$out" 0 \
  "@calls[1]: 50" "pid $joined  comm target" "at 0x" "	uretprobe $TMP/target+0x" "	uprobe $TMP/target+0x" \
  "uprobe  filename $TMP/target  offset "

out=$("$BPFVM" attach 999999999 2>&1); rc=$?
check "attach: no such process" $rc "$out" 1 "no process 999999999"
out=$("$BPFVM" detach $$ 2>&1); rc=$?
check "detach: a process not in scope" $rc "$out" 1 "is not in scope"

out=$(cat > "$TMP/missing.bpf.c" <<'C'
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
SEC("uprobe//proc/self/exe:no_such_function") int p(void* ctx) { return 0; }
char LICENSE[] SEC("license") = "GPL";
C
"$BPFVM" trace "$TMP/missing.bpf.c" -- "$TMP/target" calls 1 2>&1); rc=$?
check "a function that does not exist" $rc "$out" 125 "has no function 'no_such_function'" "program 'p'"

out=$("$BPFVM" trace "$TMP/named.bpf.c" -p 999999999 2>&1); rc=$?
check "uprobes in a process that does not exist" $rc "$out" 125 "no process 999999999"

# Syscall events in the process (the agent's syscall sites, no ptrace): every close(-1) of two threads
# and a forked child, entered and returned with EBADF, none lost; the same counts through --ptrace.
cat > "$TMP/closes.bpf.c" <<'C'
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
struct { __uint(type, BPF_MAP_TYPE_HASH); __uint(max_entries, 8); __type(key, __u32); __type(value, __u64); } c SEC(".maps");
// (two threads may both find no entry: the one whose insert fails adds to the other's)
static void bump(__u32 k) {
  __u64 one = 1, *v = bpf_map_lookup_elem(&c, &k);
  if (!v) {
    if (bpf_map_update_elem(&c, &k, &one, BPF_NOEXIST) == 0) return;
    v = bpf_map_lookup_elem(&c, &k);
    if (!v) return;
  }
  __sync_fetch_and_add(v, 1);
}
struct enter { __u64 common; long nr; long fd; };
struct exit { __u64 common; long nr; long ret; };
SEC("tracepoint/syscalls/sys_enter_close") int in(struct enter* e) { if ((int)e->fd == -1) bump(1); return 0; }
SEC("tracepoint/syscalls/sys_exit_close") int out(struct exit* e) { if (e->ret == -9) bump(2); return 0; }
char LICENSE[] SEC("license") = "GPL";
C
# A forked child starts the agent's watcher thread at its first syscall that is not on its way to exit
# or exec: none while it waits on a futex, one once it has forked (not there: glibc's fork holds
# malloc's locks, which starting a thread takes) and waited (a fork that exits at once makes no thread).
# (Not with a sanitized bpfvm: its runtimes' own syscalls do not come through the agent, which then
# starts a child's watcher at the fork, as it does wherever some syscall instruction is not patched.)
out=$("$BPFVM" run -- "$TMP/target" forkthreads 1 2>&1); rc=$?
if ldd "$BPFVM" | grep -q libasan; then
  check "a forked child's watcher (sanitized: started at the fork)" $rc "$out" 0 "threads before 2" "threads after 2"
else
  check "a forked child's watcher starts at its first other syscall" $rc "$out" 0 "threads before 1" "threads after 2"
fi
# A process in scope takes its record out of the registry when it exits; the records of processes that
# ended otherwise (killed, _exit) go a few at a time (8, drawn at random) as agents list the links.
regroot="$TMP/regroot"
mkdir -p "$regroot/.registry"
pid_max=$(cat /proc/sys/kernel/pid_max)
for i in $(seq 40); do echo '{}' > "$regroot/.registry/agent-$((pid_max + i))"; done  # no such processes
agentlib=$(dirname "$BPFVM")/../lib/libbpfvm-agent.so
if ! ldd "$BPFVM" | grep -q libasan; then  # (a sanitized agent needs its runtimes loaded first)
  for _ in $(seq 3); do BPFVM_AGENT="$regroot" LD_PRELOAD="$agentlib" /bin/true; done
  left=$(find "$regroot/.registry" -name 'agent-*' | wc -l)
  check "three processes in scope leave no record and remove 8 stale ones each ($left of 40 left)" 0 "$left" 0 "16"
fi
# Without the syscall instructions patched (no syscall link, no bpf() server: BPFVM_SERVE=0) a child
# cannot wait: its watcher starts at the fork. A process patches them before its 16th fork (src/agent:
# kPatchAtFork), when forks have cost it about what patching costs; its children wait from then on.
if ! ldd "$BPFVM" | grep -q libasan; then
  out=$(BPFVM_SERVE=0 "$BPFVM" run -- "$TMP/target" forkthreads 15 2>&1); rc=$?
  check "unpatched, a forked child's watcher starts at the fork (the 15th)" $rc "$out" 0 "threads before 2" "threads after 2"
  out=$(BPFVM_SERVE=0 BPFVM_AGENT_VERBOSE=1 "$BPFVM" run -- "$TMP/target" forkthreads 16 2>&1); rc=$?
  check "a process that forks a 16th time patches its syscall instructions first: that child waits" $rc "$out" 0 \
    "syscall sites patched, 0 left" "threads before 1" "threads after 2"
fi
# ... but not from a signal handler (which may have interrupted malloc): at the next syscall after it.
out=$("$BPFVM" run -- "$TMP/target" forksignal 1 2>&1); rc=$?
if ldd "$BPFVM" | grep -q libasan; then
  check "a forked child's watcher and a signal handler (sanitized: started at the fork)" $rc "$out" 0 \
    "in handler threads 2" "after handler threads 2"
else
  check "a forked child's watcher does not start in a signal handler" $rc "$out" 0 "in handler threads 1" \
    "after handler threads 2"
fi
out=$("$BPFVM" trace "$TMP/closes.bpf.c" -- "$TMP/target" closes 2000 2>&1); rc=$?
check "syscalls in the process: threads and a fork, none lost" $rc "$out" 0 "@c[1]: 6000" "@c[2]: 6000"
out=$("$BPFVM" trace --ptrace "$TMP/closes.bpf.c" -- "$TMP/target" closes 2000 2>&1); rc=$?
check "the same through the ptrace tracer" $rc "$out" 0 "@c[1]: 6000" "@c[2]: 6000"
# A timer a program starts in the traced process fires there, on the agent's timer thread, after the
# run that started it (an fentry program, which may use bpf_timer).
cat > "$TMP/timer.bpf.c" <<'C'
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
struct elem { long fired; long same_process; long starter; struct bpf_timer t; };
struct { __uint(type, BPF_MAP_TYPE_ARRAY); __uint(max_entries, 1); __type(key, int); __type(value, struct elem); } tm SEC(".maps");
static int expired(void *map, int *key, struct elem *e) {
  e->fired++;
  e->same_process = e->starter == bpf_get_current_pid_tgid() >> 32;
  return 0;
}
SEC("fentry/do_sys_openat2")
int BPF_PROG(on_open) {
  int k = 0;
  struct elem *e = bpf_map_lookup_elem(&tm, &k);
  if (!e || e->starter) return 0;
  e->starter = bpf_get_current_pid_tgid() >> 32;
  bpf_timer_init(&e->t, &tm, 1);
  bpf_timer_set_callback(&e->t, expired);
  bpf_timer_start(&e->t, 1000000, 0);
  return 0;
}
char LICENSE[] SEC("license") = "GPL";
C
out=$("$BPFVM" trace "$TMP/timer.bpf.c" -- sh -c 'exec 3</etc/hostname; sleep 0.3' 2>&1); rc=$?
check "a timer started in the process fires there" $rc "$out" 0 '"fired":1,"same_process":1'
# bpf_get_stackid on a uprobe in the process: the same call site's user stack gets one id (all 50 calls
# under one key of the program's hash).
cat > "$TMP/stackid.bpf.c" <<'C'
#include <linux/bpf.h>
#include <linux/ptrace.h>
#include <bpf/bpf_helpers.h>
struct { __uint(type, BPF_MAP_TYPE_STACK_TRACE); __uint(max_entries, 1024); __uint(key_size, 4); __uint(value_size, 64); } st SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_HASH); __uint(max_entries, 64); __type(key, __s64); __type(value, __u64); } ids SEC(".maps");
SEC("uprobe//proc/self/exe:add_one") int on(struct pt_regs* ctx) {
  __s64 id = bpf_get_stackid(ctx, &st, BPF_F_USER_STACK);
  __u64 one = 1, *v = bpf_map_lookup_elem(&ids, &id);
  if (v) __sync_fetch_and_add(v, 1);
  else bpf_map_update_elem(&ids, &id, &one, BPF_NOEXIST);
  return 0;
}
char LICENSE[] SEC("license") = "GPL";
C
out=$("$BPFVM" trace "$TMP/stackid.bpf.c" -- "$TMP/target" calls 50 2>&1); rc=$?
ids=$(grep -c '^@ids\[[0-9]*\]: 50$' <<<"$out")
check "bpf_get_stackid: one id for one call site's stack" $rc "$out
ids $ids" 0 "ids 1"

# A link made while a process in scope runs: its first event on a thread comes from a syscall malloc
# makes with its arena lock held (brk, the only syscall of the target's rounds). The agent takes
# nothing from malloc on that path: it would wait for that lock forever (the process hung).
cat > "$TMP/brk.bpf.c" <<'C'
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
struct { __uint(type, BPF_MAP_TYPE_ARRAY); __uint(max_entries, 1); __type(key, __u32); __type(value, __u64); } b SEC(".maps");
SEC("tracepoint/syscalls/sys_enter_brk") int in(void* ctx) {
  __u32 k = 0;
  __u64* v = bpf_map_lookup_elem(&b, &k);
  if (v) __sync_fetch_and_add(v, 1);
  return 0;
}
char LICENSE[] SEC("license") = "GPL";
C
"$BPFVM" run -- "$TMP/target" brks "$TMP/brks-go" 0 > "$TMP/brks.out" 2>&1 &
brks=$!
for _ in $(seq 100); do "$BPFVM" agent show 2>/dev/null | grep -q "pid $brks" && break; sleep 0.05; done
"$BPFVM" trace "$TMP/brk.bpf.c" > "$TMP/brk-trace.out" 2>&1 &
tracer=$!
for _ in $(seq 200); do grep -q Attached "$TMP/brk-trace.out" 2>/dev/null && break; sleep 0.05; done
sleep 0.3
touch "$TMP/brks-go"
for _ in $(seq 600); do kill -0 $brks 2>/dev/null || break; sleep 0.1; done  # (at most 60 s)
if kill -0 $brks 2>/dev/null; then kill -9 $brks; fi
wait $brks; brc=$?
kill -INT $tracer; wait $tracer
# (A sanitized bpfvm preloads its sanitizer's runtime into the target, whose malloc then makes no brk:
# there the target must only end.)
if ldd "$BPFVM" | grep -q libasan; then brk_seen="done"; else brk_seen="@b[0]: "; fi
check "a link's first event on a thread inside malloc (its lock held)" $brc "$(cat "$TMP/brks.out" "$TMP/brk-trace.out")" 0 "done" "$brk_seen"

# A global trace whose syscall links a process in scope cannot take (it runs threads when they come,
# so its syscall instructions stay unpatched): said on stderr at the end, with the reason. (Not served:
# bpfvm run's interposition patches them at start.)
BPFVM_SERVE=0 "$BPFVM" run -- "$TMP/target" threadwait "$TMP/go-global" 10 > /dev/null 2>&1 &
threaded=$!
for _ in $(seq 100); do "$BPFVM" agent show 2>/dev/null | grep -q "pid $threaded" && break; sleep 0.05; done
sleep 0.1
"$BPFVM" trace "$TMP/closes.bpf.c" > "$TMP/global-threads.out" 2>&1 &
tracer=$!
for _ in $(seq 200); do grep -q Attached "$TMP/global-threads.out" 2>/dev/null && break; sleep 0.05; done
for _ in $(seq 100); do "$BPFVM" agent show | grep -A3 "pid $threaded" | grep -q "failed" && break; sleep 0.02; done
kill -INT $tracer; wait $tracer
touch "$TMP/go-global"; wait $threaded
check "a global trace says where its links were not applied" 0 "$(cat "$TMP/global-threads.out")" 0 \
  "was not applied in process $threaded (target): " "the syscall instructions were not patched"

# probe_read_user in the process reads memory directly where it is known to be mapped: memory that is
# made unreadable or unmapped (by two threads, each reading while the other unmaps) still reads as
# EFAULT, as the kernel's would, and the process is unharmed; the same through ptrace.
cat > "$TMP/paths.bpf.c" <<'C'
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
struct { __uint(type, BPF_MAP_TYPE_ARRAY); __uint(max_entries, 2); __type(key, __u32); __type(value, __u64); } r SEC(".maps");
struct enter { __u64 common; long nr; long dfd; const char* path; };
SEC("tracepoint/syscalls/sys_enter_openat") int in(struct enter* e) {
  char name[32] = {};
  long n = bpf_probe_read_user_str(name, sizeof name, e->path);
  __u32 k = n < 0 ? 1 : 0;
  if (n == -14 || (n > 22 && name[0] == '/' && name[1] == 'n' && name[13] == 'b' && name[19] == 'u')) {
    __u64* v = bpf_map_lookup_elem(&r, &k);
    if (v) __sync_fetch_and_add(v, 1);
  }
  return 0;
}
char LICENSE[] SEC("license") = "GPL";
C
out=$("$BPFVM" trace "$TMP/paths.bpf.c" -- "$TMP/target" unmaps 3000 2>&1); rc=$?
check "probe_read_user of memory unmapped and protected by other threads: EFAULT, never a fault" $rc "$out" 0 \
  "@r[0]: 6000" "@r[1]: 12000"
out=$("$BPFVM" trace --ptrace "$TMP/paths.bpf.c" -- "$TMP/target" unmaps 300 2>&1); rc=$?
check "the same through the ptrace tracer" $rc "$out" 0 "@r[0]: 600" "@r[1]: 1200"

# The dynamic loader's syscalls, made before any preloaded library runs: libbpfvm-early.so (an LD_AUDIT
# module) keeps them and the agent reports them when it starts, those of loading bpfvm's own libraries
# aside. The same opens as the ptrace tracer sees (which loads nothing into the process), in the same
# order: ld.so.cache and libc for a C program, libstdc++ and the rest for a C++ one (libraries the agent
# needs too). (Not with a sanitized bpfvm, whose runtime's start would pass for the process's.)
cat > "$TMP/opens.bpf.c" <<'C'
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
struct enter { __u64 common; long nr; long dfd; const char* path; };
SEC("tracepoint/syscalls/sys_enter_openat") int in(struct enter* e) {
  char name[96] = {};
  bpf_probe_read_user_str(name, sizeof name, e->path);
  bpf_printk("open %s", name);
  return 0;
}
char LICENSE[] SEC("license") = "GPL";
C
opens() { sed -n 's/.*bpf_trace_printk: open //p'; }
if ldd "$BPFVM" | grep -q libasan; then
  echo "skip the loader's syscalls: a sanitized build (no early module)"
else
  for cmd in /bin/true $([ -x "$TMP/exceptions" ] && echo "$TMP/exceptions"); do
    agent=$("$BPFVM" trace "$TMP/opens.bpf.c" -- "$cmd" 2>&1 | opens)
    traced=$("$BPFVM" trace --ptrace "$TMP/opens.bpf.c" -- "$cmd" 2>&1 | opens)
    if [ -n "$agent" ] && [ "$agent" = "$traced" ] && grep -q '^/etc/ld.so.cache$' <<<"$agent" && ! grep -q bpfvm <<<"$agent"; then
      check "the loader's opens, as the ptrace tracer sees them ($(basename "$cmd"))" 0 "$agent" 0 "libc.so.6"
    else
      check "the loader's opens ($(basename "$cmd"))" 1 "agent:
$agent
ptrace:
$traced" 0
    fi
  done
  # A library's constructor that runs before the agent's (the program's libraries start first) sets its
  # own SIGSYS action and blocks SIGSYS while the early module's window is open: the process keeps both
  # (the window's dispatch kept them aside), and its opens there are reported too.
  cat > "$TMP/window.c" <<'C'
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>
static volatile int raised;
static void on_sys(int sig) { (void)sig; raised = 1; }
__attribute__((constructor)) static void early(void) {
  struct sigaction sa = {0};
  sa.sa_handler = on_sys;
  sigaction(SIGSYS, &sa, 0);
  sigset_t s;
  sigemptyset(&s);
  sigaddset(&s, SIGSYS);
  sigprocmask(SIG_BLOCK, &s, 0);
  close(open("/etc/hostname", O_RDONLY));
}
int window_state(int* blocked) {
  sigset_t now;
  sigprocmask(SIG_BLOCK, 0, &now);
  *blocked = sigismember(&now, SIGSYS);
  struct sigaction sa;
  sigaction(SIGSYS, 0, &sa);
  return sa.sa_handler == on_sys;
}
int window_raise(void) {
  sigset_t s;
  sigemptyset(&s);
  sigaddset(&s, SIGSYS);
  sigprocmask(SIG_UNBLOCK, &s, 0);
  raise(SIGSYS);
  return raised;
}
C
  printf '#include <stdio.h>\nint window_state(int*);\nint window_raise(void);\nint main(void) { int b = 0, kept = window_state(&b); printf("kept %%d blocked %%d raised %%d\\n", kept, b, window_raise()); return 0; }\n' > "$TMP/window_main.c"
  cc -O2 -shared -fPIC -o "$TMP/libwindow.so" "$TMP/window.c" && cc -O2 -o "$TMP/window" "$TMP/window_main.c" -L"$TMP" -lwindow -Wl,-rpath,"$TMP" || exit 1
  out=$("$BPFVM" trace "$TMP/opens.bpf.c" -- "$TMP/window" 2>&1); rc=$?
  check "a constructor's SIGSYS action and mask, and its opens, before the agent starts" $rc "$out" 0 \
    "kept 1 blocked 1 raised 1" "open $TMP/libwindow.so" "open /etc/hostname"
fi

# A process in scope that becomes another user and then execs (setpriv here; su, sudo -u and services
# dropping privileges do the same) stays in scope: its new image's agent, as that user, cannot open the
# loader's pin root (private to root), and the loader's broker opens what it needs (runtime/broker.hpp).
if [ "$(id -u)" = 0 ] && command -v setpriv >/dev/null && id nobody >/dev/null 2>&1 && ! ldd "$BPFVM" | grep -q libasan; then
  out=$("$BPFVM" trace "$TMP/opens.bpf.c" -- setpriv --reuid=nobody --regid=nogroup --clear-groups cat /etc/hostname 2>&1); rc=$?
  check "a process that became another user and exec'd: its events" $rc "$out" 0 "cat-" "open /etc/hostname"
else
  echo "skip: a process that changes user (needs root, setpriv and the user nobody; not sanitized)"
fi

# Process events (sched/sched_process_exec, _fork, _exit) with the kernel's records: the command's own
# exec and a posix_spawn's; a fork, a vfork, a posix_spawn and a thread (each reported by its parent,
# as current); the exit of each thread and process, group_dead for the last of each process. The same
# counts from the agent and from ptrace.
cat > "$TMP/events.bpf.c" <<'C'
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
struct { __uint(type, BPF_MAP_TYPE_HASH); __uint(max_entries, 16); __type(key, __u32); __type(value, __u64); } e SEC(".maps");
static void bump(__u32 k) { __u64 one = 1, *v = bpf_map_lookup_elem(&e, &k); if (!v && bpf_map_update_elem(&e, &k, &one, BPF_NOEXIST) == 0) return; if (!v) v = bpf_map_lookup_elem(&e, &k); if (v) __sync_fetch_and_add(v, 1); }
struct exec_rec { __u64 common; __u32 filename; int pid; int old_pid; };
struct fork_rec { __u64 common; __u32 parent_comm; int parent_pid; __u32 child_comm; int child_pid; };
struct exit_rec { __u64 common; char comm[16]; int pid; int prio; _Bool group_dead; };
SEC("tracepoint/sched/sched_process_exec") int on_exec(struct exec_rec* r) {
  char name[16] = {};
  bpf_probe_read_kernel_str(name, sizeof name, (char*)r + (r->filename & 0xffff));
  if (r->pid == (int)(bpf_get_current_pid_tgid() >> 32)) bump(1);
  if (name[0] == '/' && name[1] == 'b' && name[5] == 't' && name[8] == 'e' && name[9] == 0) bump(10);  // /bin/true
  return 0;
}
SEC("tracepoint/sched/sched_process_fork") int on_fork(struct fork_rec* r) {
  char comm[16] = {};
  bpf_probe_read_kernel_str(comm, sizeof comm, (char*)r + (r->child_comm & 0xffff));
  if (r->parent_pid == (int)bpf_get_current_pid_tgid() && r->child_pid != r->parent_pid && comm[0] == 't') bump(2);
  return 0;
}
SEC("tracepoint/sched/sched_process_exit") int on_exit(struct exit_rec* r) {
  if (r->pid == (int)bpf_get_current_pid_tgid() && r->prio == 120) bump(3);
  if (r->group_dead) bump(4);
  return 0;
}
char LICENSE[] SEC("license") = "GPL";
C
out=$("$BPFVM" trace "$TMP/events.bpf.c" -- "$TMP/target" spawns 1 2>&1); rc=$?
check "process events in the process: exec, fork (fork, vfork, spawn, thread), exit" $rc "$out" 0 \
  "@e[1]: 2" "@e[10]: 1" "@e[2]: 4" "@e[3]: 5" "@e[4]: 4"
out=$("$BPFVM" trace --ptrace "$TMP/events.bpf.c" -- "$TMP/target" spawns 1 2>&1); rc=$?
check "the same through the ptrace tracer" $rc "$out" 0 "@e[1]: 2" "@e[10]: 1" "@e[2]: 4" "@e[3]: 5" "@e[4]: 4"

# USDT probes (sys/sdt.h notes) with libbpf's usdt.bpf.h: arguments in a register, negated, in memory
# at a register plus an offset, the argument count, a probe at two sites, and the semaphore counted up
# while the link is applied (the program's `if (semaphore)` sees it); the same from two threads.
if [ -f /usr/include/x86_64-linux-gnu/sys/sdt.h ] || [ -f /usr/include/sys/sdt.h ]; then
  cc -O2 -pthread -o "$TMP/usdt" "$DIR/usdt_target.c" || exit 1
  out=$("$BPFVM" trace "$DIR/usdt.bpf.c" -- "$TMP/usdt" ticks 100 2>&1); rc=$?
  check "USDT: arguments, two sites, the semaphore" $rc "$out" 0 "enabled 100" "@u[0]: 100" "@u[1]: 4950" \
    "@u[2]: -4950" "@u[3]: 700" "@u[4]: 300" "@u[5]: 100" "@u[6]: 54950"
  out=$("$BPFVM" trace "$DIR/usdt.bpf.c" -- "$TMP/usdt" threads 5000 2>&1); rc=$?
  check "USDT: two threads" $rc "$out" 0 "enabled 10000" "@u[0]: 10000" "@u[3]: 70000" "@u[5]: 10000"
  # Links placed and removed while two threads run through the sites: a nop between other instructions
  # cannot take a jump then, so the probes are int3s; the process runs on, and the semaphore is back to 0.
  sed "s#/proc/self/exe#$TMP/usdt#" "$DIR/usdt.bpf.c" > "$TMP/usdt_named.bpf.c"
  "$BPFVM" run -- "$TMP/usdt" spin "$TMP/usdt-stop" > "$TMP/spin.out" 2>&1 &
  spinner=$!
  for _ in $(seq 100); do "$BPFVM" agent show 2>/dev/null | grep -q "pid $spinner" && break; sleep 0.05; done
  "$BPFVM" trace "$TMP/usdt_named.bpf.c" > "$TMP/usdt.out" 2>&1 &
  tracer=$!
  for _ in $(seq 200); do grep -q Attached "$TMP/usdt.out" 2>/dev/null && break; sleep 0.05; done
  for _ in $(seq 100); do "$BPFVM" agent show | grep -A3 "pid $spinner" | grep -q "link" && break; sleep 0.02; done
  shown=$("$BPFVM" agent show 2>&1)
  sleep 0.3
  kill -INT $tracer; wait $tracer
  for _ in $(seq 100); do "$BPFVM" agent show | grep -A3 "pid $spinner" | grep -q "link" || break; sleep 0.02; done
  touch "$TMP/usdt-stop"
  wait $spinner; src=$?
  out="$shown
$(cat "$TMP/spin.out" "$TMP/usdt.out")"
  check "USDT: links placed and removed while threads run the sites (int3)" $src "$out" 0 "(int3)" "semaphore 0" "@u[0]: "
  cat > "$TMP/nousdt.bpf.c" <<'C'
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
SEC("usdt//proc/self/exe:demo:nope") int p(void* ctx) { return 0; }
char LICENSE[] SEC("license") = "GPL";
C
  out=$("$BPFVM" trace "$TMP/nousdt.bpf.c" -- "$TMP/usdt" ticks 1 2>&1); rc=$?
  check "USDT: a probe that does not exist" $rc "$out" 125 "has no USDT probe demo:nope (3 probes in its .note.stapsdt)"
else
  echo "skip USDT: no sys/sdt.h (systemtap-sdt-dev)"
fi

# signal/signal_generate with the kernel's record: signals sent by kill (caught), tgkill (ignored:
# result 1), sigqueue (SI_QUEUE), to a child, to its process group, and twice while blocked (the second already pending:
# result 2); none for signal 0 or a process that does not exist. The same from the agent and ptrace.
cat > "$TMP/signals.bpf.c" <<'C'
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
struct { __uint(type, BPF_MAP_TYPE_HASH); __uint(max_entries, 32); __type(key, __u32); __type(value, __u64); } s SEC(".maps");
static void bump(__u32 k) { __u64 one = 1, *v = bpf_map_lookup_elem(&s, &k); if (!v && bpf_map_update_elem(&s, &k, &one, BPF_NOEXIST) == 0) return; if (!v) v = bpf_map_lookup_elem(&s, &k); if (v) __sync_fetch_and_add(v, 1); }
struct gen { __u64 common; int sig; int err; int code; char comm[16]; int pid; int group; int result; };
SEC("tracepoint/signal/signal_generate") int on_gen(struct gen* g) {
  bump(g->sig * 1000 + g->result * 100 + g->group * 10 + (g->code == -6 ? 1 : g->code == -1 ? 2 : 0));
  int self = bpf_get_current_pid_tgid() >> 32;
  if (g->pid == self && g->comm[0] == 't' && g->comm[5] == 't') bump(1);
  if (g->pid != self && g->comm[0] == 't') bump(2);
  return 0;
}
char LICENSE[] SEC("license") = "GPL";
C
# Also SIGCHLD to the parent (17, ignored by default) when a process ends, by exit or by a signal (the
# agent's signal dispatcher sees the death), which gives every row the running kernel gives (checked
# against it through ptrace where it can load the program).
sed 's/^SEC("tracepoint\/signal\/signal_generate") int on_gen(struct gen\* g) {/&\n  char c[16]; bpf_get_current_comm(c, sizeof c); if (c[0] != '"'"'t'"'"' || c[1] != '"'"'a'"'"' || c[5] != '"'"'t'"'"') return 0;/' \
  -i "$TMP/signals.bpf.c"
out=$("$BPFVM" trace "$TMP/signals.bpf.c" -- "$TMP/target" signals 1 2>&1); rc=$?
check "signal_generate in the process" $rc "$out" 0 "usr1 3" "@s[10010]: 2" "@s[12101]: 1" "@s[10012]: 1" \
  "@s[15010]: 1" "@s[10210]: 1" "@s[12110]: 2" "@s[17110]: 2" "@s[1]: 6" "@s[2]: 3"
out=$("$BPFVM" trace --ptrace "$TMP/signals.bpf.c" -- "$TMP/target" signals 1 2>&1); rc=$?
rows="@s[10010]: 2
@s[10012]: 1
@s[10210]: 1
@s[12101]: 1
@s[12110]: 2
@s[15010]: 1
@s[17110]: 2
@s[1]: 6
@s[2]: 3"
ours=$(grep '^@s' <<<"$out" | sort)
same=$([ "$ours" = "$(sort <<<"$rows")" ] && echo "rows as expected")
check "signal_generate through ptrace" $rc "$out
$same" 0 "usr1 3" "rows as expected"
kernel_tp=$(dirname "$BPFVM")/kernel_tracepoints
if [ "$(id -u)" = 0 ] && [ -x "$kernel_tp" ] && [ -d /sys/kernel/tracing/events/signal ] &&
   clang -target bpf -O2 -g -I/usr/include/x86_64-linux-gnu -c "$TMP/signals.bpf.c" -o "$TMP/signals.bpf.o" 2>/dev/null &&
   kout=$("$kernel_tp" "$TMP/signals.bpf.o" s -- "$TMP/target" signals 1 2>&1); then
  same=$([ "$ours" = "$(grep '^@s' <<<"$kout" | sort)" ] && echo "the same rows")
  check "signal_generate: the kernel's rows are bpfvm's through ptrace" 0 "kernel:
$kout
bpfvm:
$ours
$same" 0 "the same rows"
else
  echo "(the kernel's signal_generate not compared: needs root, tracefs and the kernel_tracepoints tool)"
fi
# kill(-1): one signal_generate per process the sender may signal (a user of its own, with two
# children), through ptrace, and the kernel's rows the same. Root only (to run as another user).
if [ "$(id -u)" = 0 ] && command -v setpriv >/dev/null && ! ps -eo uid | grep -q '^ *64123$'; then
  chmod 755 "$TMP" "$TMP/target"
  as_other="setpriv --reuid=64123 --regid=64123 --clear-groups"
  out=$("$BPFVM" trace --ptrace "$TMP/signals.bpf.c" -- $as_other "$TMP/target" killall 1 2>&1); rc=$?
  check "signal_generate of kill(-1): each process the sender may signal" $rc "$out" 0 "@s[10010]: 2" "@s[17110]: 3" "@s[2]: 4"
  # The kernel's tracepoint fires for every process on the machine: this run counts only its own
  # user's (another test's `target` exiting meanwhile sends SIGCHLD too). bpfvm's rows are all of
  # that user's already (the tree it traces).
  sed 's/^  char c\[16\]; bpf_get_current_comm/  if ((__u32)bpf_get_current_uid_gid() != 64123) return 0;\n&/' "$TMP/signals.bpf.c" > "$TMP/signals_user.bpf.c"
  if clang -target bpf -O2 -g -I/usr/include/x86_64-linux-gnu -c "$TMP/signals_user.bpf.c" -o "$TMP/signals_user.bpf.o" 2>/dev/null &&
     kout=$("$kernel_tp" "$TMP/signals_user.bpf.o" s -- $as_other "$TMP/target" killall 1 2>&1); then
    same=$([ "$(grep '^@s' <<<"$out" | sort)" = "$(grep '^@s' <<<"$kout" | sort)" ] && echo "the same rows")
    check "signal_generate of kill(-1): the kernel's rows are bpfvm's" 0 "$kout
$same" 0 "the same rows"
  fi
else
  echo "skip kill(-1): needs root, setpriv and a free uid 64123"
fi

# signal/signal_deliver: signals taken by a handler (signal(), SA_SIGINFO|SA_RESETHAND), by SIG_DFL that
# ends the process (the kernel reports SIGKILL for each of its threads, a core-dumping signal as itself),
# the program's own int3; rows by signal, action met, SA_RESTART and code. The agent (its dispatcher
# behind the process's actions, which the process reads back as it set them) and ptrace give the rows
# the expected table says, and the running kernel gives the same where it can load the program.
deliver_rows() {  # MODE
  case $1 in
    signals) printf '@d[10110]: 2\n@d[10111]: 1\n@d[9000]: 1\n' ;;
    actions) printf '@d[10109]: 1\n@d[12119]: 1\n@d[9000]: 3\n' ;;
    crash) printf '@d[11009]: 1\n' ;;
    int3) printf '@d[5009]: 1\n' ;;
  esac
}
for mode in signals actions crash int3; do
  want=$(deliver_rows $mode | sort)
  for how in agent ptrace; do
    flag=""; [ $how = ptrace ] && flag=--ptrace
    out=$("$BPFVM" trace $flag "$DIR/deliver.bpf.c" -- "$TMP/target" $mode 1 2>&1); rc=$?
    ours=$(grep '^@d' <<<"$out" | sort)
    same=$([ "$ours" = "$want" ] && echo "rows as expected")
    check "signal_deliver ($mode, $how)" 0 "$out
$same" 0 "rows as expected"
  done
  [ $mode = actions ] && check "signal_deliver: the process reads its actions as it set them" 0 "$out" 0 \
    "info 1 reset 1 plain 1 read 1 term 1"
done
if [ "$(id -u)" = 0 ] && [ -x "$kernel_tp" ] && [ -d /sys/kernel/tracing/events/signal ] &&
   clang -target bpf -O2 -g -I/usr/include/x86_64-linux-gnu -c "$DIR/deliver.bpf.c" -o "$TMP/deliver.bpf.o" 2>/dev/null; then
  for mode in signals actions crash int3; do
    kout=$("$kernel_tp" "$TMP/deliver.bpf.o" d -- "$TMP/target" $mode 1 2>&1)
    same=$([ "$(grep '^@d' <<<"$kout" | sort)" = "$(deliver_rows $mode | sort)" ] && echo "the same rows")
    check "signal_deliver ($mode): the kernel's rows are bpfvm's" 0 "$kout
$same" 0 "the same rows"
  done
else
  echo "(the kernel's signal_deliver not compared: needs root, tracefs and the kernel_tracepoints tool)"
fi

# A signal sent to a thread while a probe's program runs on it is delivered after the program, as the
# kernel delivers it on the way back to user space: the program never sees the handler run, the delivery
# is reported and the handler's own syscall traced (the agent holds it, the ptrace tracer injects it
# after the probe's step with its siginfo); the running kernel gives the same rows.
probe_signal_rows=$(printf '@c[2]: 1\n@c[3]: 1\n@c[4]: 1\n' | sort)
for how in agent ptrace; do
  flag=""; [ $how = ptrace ] && flag=--ptrace
  out=$("$BPFVM" trace $flag "$DIR/probe_signal.bpf.c" -- "$TMP/target" signalprobe 1 2>&1); rc=$?
  same=$([ "$(grep '^@c' <<<"$out" | sort)" = "$probe_signal_rows" ] && echo "rows as expected")
  check "a signal that comes while a probe's program runs is delivered after it ($how)" $rc "$out
$same" 0 "handled 1" "rows as expected"
done
sed "s#/proc/self/exe#$TMP/target#" "$DIR/probe_signal.bpf.c" > "$TMP/probe_signal.bpf.c"
if [ "$(id -u)" = 0 ] && [ -x "$kernel_tp" ] && [ -d /sys/kernel/tracing/events/signal ] &&
   clang -target bpf -O2 -g -I/usr/include/x86_64-linux-gnu -c "$TMP/probe_signal.bpf.c" -o "$TMP/probe_signal.bpf.o" 2>/dev/null &&
   kout=$("$kernel_tp" "$TMP/probe_signal.bpf.o" c -- "$TMP/target" signalprobe 1 2>&1); then
  same=$([ "$(grep '^@c' <<<"$kout" | sort)" = "$probe_signal_rows" ] && echo "the same rows")
  check "a signal that comes while a probe's program runs: the kernel's rows are bpfvm's" 0 "$kout
$same" 0 "the same rows"
else
  echo "(the kernel's delivery after a uprobe's program not compared: needs root, tracefs, uprobes and the kernel_tracepoints tool)"
fi

# Deaths by signal: a fault's signal_generate (on the faulting thread), each thread's exit and the SIGCHLD
# to the parent, from the agent (its signal dispatcher) and ptrace, as the kernel reports them.
death_rows() {  # MODE
  case $1 in
    crash) printf '@x[101]: 1\n@x[11003]: 1\n@x[17114]: 1\n' ;;
    int3) printf '@x[101]: 1\n@x[17114]: 1\n@x[5008]: 1\n' ;;
    actions) printf '@x[10001]: 1\n@x[100]: 2\n@x[101]: 1\n@x[12001]: 1\n@x[15010]: 1\n@x[17114]: 1\n' ;;
  esac
}
compiled_deaths=$([ "$(id -u)" = 0 ] && [ -x "$kernel_tp" ] && [ -d /sys/kernel/tracing/events/signal ] &&
  clang -target bpf -O2 -g -I/usr/include/x86_64-linux-gnu -c "$DIR/deaths.bpf.c" -o "$TMP/deaths.bpf.o" 2>/dev/null && echo yes)
for mode in crash int3 actions; do
  want=$(death_rows $mode | sort)
  for how in agent ptrace; do
    flag=""; [ $how = ptrace ] && flag=--ptrace
    out=$(ulimit -c 0; "$BPFVM" trace $flag "$DIR/deaths.bpf.c" -- "$TMP/target" $mode 1 2>&1)
    same=$([ "$(grep '^@x' <<<"$out" | sort)" = "$want" ] && echo "rows as expected")
    check "a death by signal ($mode, $how): generate, exits, SIGCHLD" 0 "$out
$same" 0 "rows as expected"
  done
  if [ "$compiled_deaths" = yes ]; then
    # (the kernel's tracepoints see every process: a test running beside this one can add rows to a
    # run, so a run that differs is tried once more)
    for _ in 1 2; do
      kout=$(ulimit -c 0; "$kernel_tp" "$TMP/deaths.bpf.o" x -- "$TMP/target" $mode 1 2>&1)
      same=$([ "$(grep '^@x' <<<"$kout" | sort)" = "$want" ] && echo "the same rows")
      [ -n "$same" ] && break
    done
    check "a death by signal ($mode): the kernel's rows are bpfvm's" 0 "$kout
$same" 0 "the same rows"
  fi
done

# A SIGTRAP handler the process sets after int3 probes were placed gets its own traps (it reads its
# action back as it set it), and the probes keep firing (the agent's syscall sites patched: a
# signal_deliver link in the same object); both deliveries of its int3 are reported.
sed "s#/proc/self/exe#$TMP/target#" "$DIR/count.bpf.c" > "$TMP/own_trap.bpf.c"
sed -n '/^struct deliver/,$p' "$DIR/deliver.bpf.c" | grep -v 'char c\[16\]\|bpf_get_current_comm\|c\[0\]\|^char LICENSE' >> "$TMP/own_trap.bpf.c"
for traps in 1 0; do
  out=$(BPFVM_AGENT_TRAPS=$traps "$BPFVM" trace "$TMP/own_trap.bpf.c" -- "$TMP/target" own_trap 10 2>&1); rc=$?
  check "a SIGTRAP handler of the process's own beside int3 probes (traps=$traps)" $rc "$out" 0 \
    "traps 2 was-default 1 now-ours 1" "@calls[1]: 20" "@calls[2]: 20" "@calls[5109]: 2"
done

# exit_group while two other threads run: the kernel reports each thread's sched_process_exit, as that
# thread; so do the agent (from the exiting thread, with each one's ids) and ptrace, and the kernel
# gives the same rows.
cat > "$TMP/exits.bpf.c" <<'C'
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
struct { __uint(type, BPF_MAP_TYPE_HASH); __uint(max_entries, 8); __type(key, __u32); __type(value, __u64); } x SEC(".maps");
// (a lost race to insert counts too: the kernel runs the threads' exits on several CPUs at once)
static void bump(__u32 k) { __u64 one = 1, *v = bpf_map_lookup_elem(&x, &k); if (!v && !bpf_map_update_elem(&x, &k, &one, BPF_NOEXIST)) return; if (!v) v = bpf_map_lookup_elem(&x, &k); if (v) __sync_fetch_and_add(v, 1); }
struct exit_rec { __u64 common; char comm[16]; int pid; int prio; _Bool group_dead; };
SEC("tracepoint/sched/sched_process_exit") int on_exit(struct exit_rec* r) {
  char c[16]; bpf_get_current_comm(c, sizeof c);
  if (c[0] != 't' || c[1] != 'a' || c[5] != 't') return 0;
  if (r->pid == (int)bpf_get_current_pid_tgid()) bump(3);
  if (r->group_dead) bump(4);
  bump(5);
  return 0;
}
char LICENSE[] SEC("license") = "GPL";
C
for how in "" --ptrace; do
  out=$("$BPFVM" trace $how "$TMP/exits.bpf.c" -- "$TMP/target" threadexit 1 2>&1); rc=$?
  check "exit_group with two other threads: three exits ${how:-in the process}" $rc "$out" 0 "@x[3]: 3" "@x[4]: 1" "@x[5]: 3"
done
if [ "$(id -u)" = 0 ] && [ -x "$(dirname "$BPFVM")/kernel_tracepoints" ] &&
   clang -target bpf -O2 -g -I/usr/include/x86_64-linux-gnu -c "$TMP/exits.bpf.c" -o "$TMP/exits.bpf.o" 2>/dev/null &&
   kout=$("$(dirname "$BPFVM")/kernel_tracepoints" "$TMP/exits.bpf.o" x -- "$TMP/target" threadexit 1 2>&1); then
  same=$([ "$(grep '^@x' <<<"$out" | sort)" = "$(grep '^@x' <<<"$kout" | sort)" ] && echo "the same rows")
  check "exit_group: the kernel's rows are bpfvm's" 0 "kernel:
$kout
bpfvm:
$out
$same" 0 "the same rows"
fi

# A library the command loads with dlopen after it started: the agent applies its links then.
printf 'int lib_add(int x) { return x + 2; }\n' > "$TMP/libadd.c"
cc -O2 -shared -fPIC -o "$TMP/libadd.so" "$TMP/libadd.c" || exit 1
cat > "$TMP/lib.bpf.c" <<C
#include <linux/bpf.h>
#include <linux/ptrace.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
struct {
  __uint(type, BPF_MAP_TYPE_ARRAY);
  __uint(max_entries, 2);
  __type(key, __u32);
  __type(value, __u64);
} lib SEC(".maps");
static void add(__u32 k, __u64 v) { __u64* p = bpf_map_lookup_elem(&lib, &k); if (p) *p += v; }
SEC("uprobe/$TMP/libadd.so:lib_add") int BPF_KPROBE(in_lib, int x) { add(0, 1); return 0; }
SEC("uretprobe/$TMP/libadd.so:lib_add") int BPF_KRETPROBE(out_lib, int r) { add(1, r); return 0; }
char LICENSE[] SEC("license") = "GPL";
C
out=$("$BPFVM" trace "$TMP/lib.bpf.c" -- "$TMP/target" dlopen "$TMP/libadd.so" 100 2>&1); rc=$?
check "a library loaded with dlopen" $rc "$out" 0 "lib total 5150" "@lib[0]: 100" "@lib[1]: 5150"
out=$("$BPFVM" trace --ptrace "$TMP/lib.bpf.c" -- "$TMP/target" dlopen "$TMP/libadd.so" 100 2>&1); rc=$?
check "a library loaded with dlopen: ptrace's int3s" $rc "$out" 0 "lib total 5150" "@lib[0]: 100" "@lib[1]: 5150"

# A uprobe and a uretprobe on malloc, which the agent's own work calls (the first return probe of a
# thread makes its return stack): each call is one event, and the command runs as without them (it
# used to recurse through malloc until its stack ran out: BCC's memleak killed its target).
cat > "$TMP/malloc.bpf.c" <<C
#include <linux/bpf.h>
#include <linux/ptrace.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
struct {
  __uint(type, BPF_MAP_TYPE_ARRAY);
  __uint(max_entries, 2);
  __type(key, __u32);
  __type(value, __u64);
} m SEC(".maps");
static void add(__u32 k) { __u64* p = bpf_map_lookup_elem(&m, &k); if (p) __sync_fetch_and_add(p, 1); }
SEC("uprobe/libc.so.6:malloc") int BPF_KPROBE(in_malloc, long n) { add(0); return 0; }
SEC("uretprobe/libc.so.6:malloc") int BPF_KRETPROBE(out_malloc, void *p) { add(1); return 0; }
char LICENSE[] SEC("license") = "GPL";
C
if ldd "$BPFVM" | grep -q libasan; then
  # (a sanitized bpfvm preloads its sanitizer's runtime, whose malloc the process calls instead of libc's)
  echo "skip uprobe and uretprobe on malloc: a sanitized build (the process's malloc is the sanitizer's)"
else
  out=$("$BPFVM" trace "$TMP/malloc.bpf.c" -- sh -c 'ls / > /dev/null; echo malloc-done' 2>&1); rc=$?
  calls=$(awk '/^@m\[0\]: [1-9]/ { e = $2 } /^@m\[1\]: [1-9]/ { r = $2 } END { print (e > 0 && e == r) ? "entries = returns" : "entries " e " returns " r }' <<<"$out")
  check "uprobe and uretprobe on malloc" $rc "$out
$calls" 0 "malloc-done" "entries = returns"
fi

# A sleepable uprobe (libbpf's "uprobe.s/") may call bpf_copy_from_user; a plain one may not, as the
# kernel's verifier says.
cat > "$TMP/sleepable.bpf.c" <<'C'
#include <linux/bpf.h>
#include <linux/ptrace.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
SEC("uprobe.s/libc.so.6:getenv") int BPF_KPROBE(on_getenv, const char *name) {
  char buf[8] = {};
  if (bpf_copy_from_user(buf, 7, name) == 0 && buf[0] == 'L' && buf[1] == 'C') bpf_printk("getenv %s", buf);
  return 0;
}
char LICENSE[] SEC("license") = "GPL";
C
out=$("$BPFVM" trace "$TMP/sleepable.bpf.c" -- env LC_ALL=C true 2>&1); rc=$?
check "a sleepable uprobe reads user memory with bpf_copy_from_user" $rc "$out" 0 "bpf_trace_printk: getenv LC_ALL"
sed -i 's|uprobe.s/|uprobe/|' "$TMP/sleepable.bpf.c"
out=$("$BPFVM" trace "$TMP/sleepable.bpf.c" -- true 2>&1); rc=$?
check "a uprobe that is not sleepable cannot call bpf_copy_from_user" $rc "$out" 125 "helper call might sleep in a non-sleepable prog"

# `bpfvm prog profile` of a program the agent runs in the traced process (the loader made its profile
# page; the agent's runs add to it).
# (The target calls until the profile is taken, however long a loaded machine makes the wait.)
"$BPFVM" trace "$TMP/named.bpf.c" -- "$TMP/target" threaduntil "$TMP/go-profiled" 0 > "$TMP/profiled.out" 2>&1 &
tracer=$!
for _ in $(seq 200); do grep -q Attached "$TMP/profiled.out" 2>/dev/null && break; sleep 0.05; done
sleep 0.2
id=$("$BPFVM" prog show | grep "name on_add " | tail -1 | cut -d: -f1)
out=$("$BPFVM" prog profile id "$id" duration 1 cycles 2>&1); rc=$?
touch "$TMP/go-profiled"
wait $tracer
runs=$(awk '/run_cnt/ { print ($1 > 0) ? "runs counted" : "no runs" }' <<<"$out")
check "prog profile of a program run by the agent in another process" $rc "$out
$runs" 0 "runs counted"

# Uprobes by the ptrace tracer's int3s: --ptrace, a statically linked command (no agent can enter it),
# a running process the agent is not in (-p), left unharmed when the trace stops while its three
# threads run through the probes (the int3s and their pending traps taken back); USDT with its semaphore.
out=$("$BPFVM" trace --ptrace "$TMP/count.bpf.c" -- "$TMP/target" threadcalls 300 2>&1); rc=$?
check "uprobes through ptrace: three threads at once" $rc "$out" 0 "@calls[1]: 900" "@calls[2]: 900" "@calls[3]: 900" "@calls[4]: 900"
out=$("$BPFVM" trace --ptrace "$TMP/count.bpf.c" -- "$TMP/target" fork 300 2>&1); rc=$?
check "uprobes through ptrace: a fork (its calls in progress return in the child too)" $rc "$out" 0 "@calls[1]: 600" "@calls[2]: 600"
out=$("$BPFVM" trace --ptrace "$TMP/count.bpf.c" -- "$TMP/target" crash 10 2>&1); rc=$?
check "uprobes through ptrace: a crash is the process's own" $rc "$out" 139 "@calls[1]: 10"
out=$("$BPFVM" trace --ptrace "$TMP/count.bpf.c" -- "$TMP/target" int3 10 2>&1); rc=$?
check "uprobes through ptrace: the program's own int3 kills it" $rc "$out" 133 "@calls[1]: 10"
if cc -O2 -static -pthread -o "$TMP/target_static" "$DIR/uprobe_target.c" 2>/dev/null; then
  sed "s#/proc/self/exe#$TMP/target_static#" "$DIR/count.bpf.c" > "$TMP/static.bpf.c"
  out=$("$BPFVM" trace "$TMP/static.bpf.c" -- "$TMP/target_static" threadcalls 300 2>&1); rc=$?
  check "uprobes in a statically linked command (ptrace)" $rc "$out" 0 "@calls[1]: 900" "@calls[2]: 900"
  # bpfvm run cannot join it to the scope (no dynamic loader to preload the agent): said, not run.
  out=$("$BPFVM" run -- "$TMP/target_static" calls 1 2>&1); rc=$?
  check "bpfvm run of a statically linked command says why it cannot" $rc "$out" 126 "is statically linked" \
    "bpfvm trace PROG -- $TMP/target_static"
else
  echo "skip uprobes in a static command: no static libc (libc6-dev's libc.a)"
fi
"$TMP/target" wait "$TMP/go-ptrace" 100 &
waiting=$!
"$BPFVM" trace "$TMP/named.bpf.c" -p $waiting > "$TMP/ptrace-p.out" 2>&1 &
tracer=$!
for _ in $(seq 200); do grep -q Attached "$TMP/ptrace-p.out" 2>/dev/null && break; sleep 0.05; done
sleep 0.2
touch "$TMP/go-ptrace"
wait $waiting; wrc=$?
wait $tracer; trc=$?
check "uprobes through ptrace in a running process (-p) the agent is not in" $trc "$(cat "$TMP/ptrace-p.out")
process rc $wrc" 0 "@calls[1]: 100" "@calls[2]: 100" "process rc 0"
# The threads call through the probes until the file exists, which is after the trace has ended: they
# go on (with the probes out) and end on their own, not by a trap left behind.
"$TMP/target" threaduntil "$TMP/stop-busy" 0 > "$TMP/busy.out" &
busy=$!
"$BPFVM" trace "$TMP/named.bpf.c" -p $busy > "$TMP/ptrace-busy.out" 2>&1 &
tracer=$!
for _ in $(seq 200); do grep -q Attached "$TMP/ptrace-busy.out" 2>/dev/null && break; sleep 0.05; done
sleep 0.3
kill -INT $tracer
wait $tracer; trc=$?
sleep 0.2
touch "$TMP/stop-busy"
wait $busy; brc=$?
check "a process left by a ptrace trace while its threads run through the probes goes on" $trc "$(cat "$TMP/ptrace-busy.out")
process rc $brc $(cat "$TMP/busy.out")" 0 "@calls[1]: " "process rc 0 done"
if [ -x "$TMP/usdt" ]; then
  out=$("$BPFVM" trace --ptrace "$DIR/usdt.bpf.c" -- "$TMP/usdt" threads 500 2>&1); rc=$?
  check "USDT through ptrace: two threads, the semaphore" $rc "$out" 0 "enabled 1000" "@u[0]: 1000" "@u[3]: 7000" "@u[5]: 1000"
fi

# The preloaded agent starts from its library's constructor, before any other initializer of that
# library would run: bpfvm's code in it must have none (namespace-scope objects made at load time).
# libstdc++'s, linked in (src/agent/CMakeLists.txt), run after the agent has started and touch nothing
# it uses: the emergency exception pool (used when malloc fails), facet ids' guards, the error
# categories' exit-time destructors.
if command -v nm >/dev/null; then
  lib=$(dirname "$BPFVM")/../lib/libbpfvm-agent.so
  inits=$(nm -C "$lib" | grep '_GLOBAL__sub_I' | grep -cv -E '_GLOBAL__sub_I_(cxx11_)?(w?locale_inst|eh_alloc|system_error|ios_failure)\.cc$')
  check "the agent library has no load-time initializers of its own" 0 "$inits" 0 "0"
fi
# Each shared library the agent brings is mappings that every fork of a process in scope copies and
# every exit tears down: it brings only those that have no PIC archive (src/agent/CMakeLists.txt).
if command -v readelf >/dev/null && ! ldd "$BPFVM" | grep -q libasan; then
  needed=$(readelf -dW "$(dirname "$BPFVM")/../lib/libbpfvm-agent.so" | sed -n 's/.*Shared library: \[\(.*\)\]/\1/p' | sort | tr '\n' ' ')
  check "the agent library needs only libc, libelf, zlib and Zydis: $needed" 0 "$needed" 0 "libZydis.so.4.0 libc.so.6 libelf.so.1 libz.so.1 "
  # The words a fork rewrites share a page (src/agent/forked.hpp): a child that exits at once copies one.
  read -r at size < <(readelf -SW "$(dirname "$BPFVM")/../lib/libbpfvm-agent.so" | sed 's/^ *\[ *[0-9]*\]//' | awk '$1 == "bpfvm_forked" { print $3, $5 }')
  page=none
  [ -n "${at:-}" ] && page=$([ $((0x$at / 4096)) -eq $(((0x$at + 0x$size - 1) / 4096)) ] && echo "one page" || echo "two pages")
  check "the agent's fork-written words are on one page" 0 "$page" 0 "one page"
fi
# Its thread-locals are in the static TLS of every thread every traced process creates: buffers belong
# on the heap (a fork's child, which starts the watcher thread, paid for 21 KiB of them).
if command -v readelf >/dev/null; then
  tls=$(readelf -lW "$(dirname "$BPFVM")/../lib/libbpfvm-agent.so" | awk '$1 == "TLS" { print $6 }')
  tls=$((tls))
  check "the agent's thread-local storage is under 1 KiB (${tls:-none} bytes)" 0 "$([ "${tls:-0}" -lt 1024 ] && echo small)" 0 "small"
fi

# A process in scope that drops root (setpriv's order: PR_SET_KEEPCAPS, setresuid, capset, setresgid).
# glibc makes every thread it knows, the agent's watcher too, make each set*id call, and aborts the
# process when one fails: the watcher must succeed where the calling thread does, and end with no
# capability the process's leader lacks.
if [ "$(id -u)" = 0 ] && command -v setpriv >/dev/null && command -v python3 >/dev/null; then
  out=$("$BPFVM" run -- setpriv --reuid=nobody --regid=nogroup --clear-groups id 2>&1); rc=$?
  check "a process that drops root in scope (setpriv) runs as it would" $rc "$out" 0 "uid=65534(nobody) gid=65534(nogroup) groups=65534(nogroup)"
  # (The system's python itself: a version manager's shim is a shell script that forks a storm of
  # subshells first, and under a sanitized bpfvm each fork of a process with the agent's thread risks the
  # sanitizer runtime's own locks; that shim hung this check past its timeout on a machine with pyenv.)
  py=python3
  [ -x /usr/bin/python3 ] && py=/usr/bin/python3
  out=$("$BPFVM" run -- "$py" "$DIR/drop_privileges.py" 2>&1); rc=$?
  check "after it, the agent's thread has the process's ids and no capability it dropped" $rc "$out" 0 \
    "2 threads: ['65534 65534 0000000000000000 0000000000000000 groups=']"
else
  echo "skip: a process that drops root (needs root, setpriv and python3)"
fi


# An ordinary user traces a program of theirs: the agent needs no privilege.
if [ "$(id -u)" = 0 ] && command -v setpriv >/dev/null; then
  U=65532  # not the uids of cli_second_user, which may run at the same time
  SHARE=$(mktemp -d /tmp/bpfvm-agent-user.XXXXXX)
  mkdir -p "$SHARE/bin" "$SHARE/lib"
  cp "$BPFVM" "$SHARE/bin/"
  cp "$(dirname "$BPFVM")/../lib/libbpfvm-agent.so" "$SHARE/lib/"
  cp "$TMP/target" "$DIR/count.bpf.c" "$SHARE/"
  cp -r "$SRC/include/bpf" "$SHARE/include"
  chmod -R a+rX "$SHARE"
  chmod 755 "$SHARE"
  rm -rf "/tmp/bpfvm-$U"
  out=$(cd "$SHARE" && setpriv --reuid=$U --regid=$U --clear-groups env -i PATH=/usr/bin:/bin HOME=/tmp \
        BPFVM_BPF_INCLUDE="$SHARE/include" ./bin/bpfvm trace count.bpf.c -- ./target calls 20 2>&1); rc=$?
  rm -rf "$SHARE" "/tmp/bpfvm-$U"
  check "an ordinary user" $rc "$out" 0 "@calls[1]: 20" "@calls[2]: 20"
else
  echo "skip: an ordinary user (needs root and setpriv)"
fi

finish
