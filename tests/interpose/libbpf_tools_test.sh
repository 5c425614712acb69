#!/bin/bash
# Debian's libbpf-tools, unmodified, with bpfvm as their kernel (`bpfvm run -- TOOL`): opensnoop loads
# (feature probes, BTF, CO-RE, global data mmap'd), attaches by perf_event_open + BPF_LINK_CREATE, and
# reads a perf buffer by mmap and epoll; a workload started in scope opens files and the tool prints
# them, with -n, -x and -T. Its objects are bpfvm's (`bpfvm prog show`, `bpfvm link show` elsewhere)
# and go when it exits. As root with tracefs, the same tool on the kernel prints the same rows for the
# same workload (field by field, timestamps aside). bashreadline's uretprobe reads an interactive bash's
# lines. execsnoop, exitsnoop and syscount see a workload's processes (their parents, exit codes and
# leaders through the emulated task_struct), execsnoop and exitsnoop as the kernel's do; killsnoop's
# row of a kill that ends its sender; execsnoop -c keeps the execs in a cgroup and syscount -p -L one
# process's syscalls, both as on the kernel; funclatency counts a libc function through a uprobe the
# tool's own process also calls. Tools on kprobes, raw tracepoints and fentry fail, saying why. An
# ordinary user runs opensnoop too.
# Usage: libbpf_tools_test.sh BPFVM. Exits 77 (skipped) without libbpf-tools.
set -u
BPFVM=$1
command -v opensnoop >/dev/null || [ -x /usr/sbin/opensnoop ] || { echo "SKIP: libbpf-tools is not installed"; exit 77; }
export PATH=$PATH:/usr/sbin
TMP=$(mktemp -d)
chmod 755 "$TMP"
export BPFVM_PIN_ROOT=$TMP/pins
trap 'kill $(jobs -p) 2>/dev/null; rm -rf "$TMP"' EXIT
# The workload: cat under a name of its own (the comm the tools filter on), opening one file that exists
# and one that does not.
cp /bin/cat "$TMP/wl_open"
echo bpfvm > "$TMP/present"
. "$(dirname "$0")/../support/checks.sh"
# Runs TOOL ARGS under bpfvm (or on the kernel with KERNEL=1) around the workload; prints its output.
run_tool() {  # OUT TOOL ARGS...
  local out=$1
  shift
  if [ "${KERNEL:-0}" = 1 ]; then
    "$@" > "$out" 2>&1 &
    local pid=$!
    sleep 2
  else
    "$BPFVM" run -- "$@" > "$out" 2>&1 &
    local pid=$!
    wait_links 2 || { kill -INT $pid; wait $pid; return 1; }
  fi
  if [ "${KERNEL:-0}" = 1 ]; then "$TMP/wl_open" "$TMP/present" "$TMP/absent" > /dev/null 2>&1
  else "$BPFVM" run -- "$TMP/wl_open" "$TMP/present" "$TMP/absent" > /dev/null 2>&1; fi
  sleep 0.5
  kill -INT $pid
  wait $pid
}
# The rows of the workload's own files: COMM FD ERR PATH (pids and times aside).
rows() { awk -v dir="$TMP" '$NF ~ "^" dir "/(present|absent)$" { print $(NF-3), $(NF-2), $(NF-1), $NF }' "$1"; }

run_tool "$TMP/plain" opensnoop -n wl_open
# (the descriptor number depends on what the workload inherited: any descriptor, error 0)
want="wl_open FD 0 $TMP/present
wl_open -1 2 $TMP/absent"
got=$(rows "$TMP/plain" | awk '$2 >= 0 { $2 = "FD" } { print }')
if [ "$got" = "$want" ] && head -1 "$TMP/plain" | grep -q "PID.*COMM.*FD.*ERR.*PATH"; then ok "opensnoop -n: the workload's opens"
else bad "opensnoop -n" "want: $want" "got: $got" "output:" "$(cat "$TMP/plain")"; fi
# -n filters in the program: nothing of other processes.
if awk 'NR > 1 && $2 != "wl_open"' "$TMP/plain" | grep -q .; then bad "opensnoop -n: rows of other commands" "$(cat "$TMP/plain")"
else ok "opensnoop -n: only the named command"; fi

run_tool "$TMP/failed" opensnoop -x -n wl_open
got=$(rows "$TMP/failed")
if [ "$got" = "wl_open -1 2 $TMP/absent" ]; then ok "opensnoop -x: failed opens only"
else bad "opensnoop -x" "got: $got" "$(cat "$TMP/failed")"; fi

run_tool "$TMP/timed" opensnoop -T -n wl_open
if head -1 "$TMP/timed" | grep -q "^TIME" && grep -q "$TMP/present" "$TMP/timed"; then ok "opensnoop -T: a time column"
else bad "opensnoop -T" "$(cat "$TMP/timed")"; fi

# Nothing left behind: the tool's programs, maps and links went with it, and their shared memory.
left=$("$BPFVM" prog show 2>/dev/null; "$BPFVM" link show 2>/dev/null; ls "$BPFVM_PIN_ROOT/.maps" 2>/dev/null)
if [ -z "$left" ]; then ok "nothing left after the tool exits"; else bad "objects left" "$left"; fi
# Killed: its records go at once (their owner is gone), its memory with the next tool that starts.
"$BPFVM" run -- opensnoop -n nothing-here > /dev/null 2>&1 &
tool=$!
wait_links 2
kill -KILL $tool
wait $tool 2>/dev/null
left=$("$BPFVM" prog show 2>/dev/null; "$BPFVM" link show 2>/dev/null)
[ -z "$left" ] && ok "a killed tool's objects go" || bad "a killed tool's objects stay" "$left"

# While it runs, another terminal sees its objects.
"$BPFVM" run -- opensnoop -n wl_open > "$TMP/live" 2>&1 &
tool=$!
if wait_links 2; then
  shown=$("$BPFVM" prog show 2>&1)
  if grep -q "tracepoint" <<<"$shown" && grep -q "opensnoop($tool)" <<<"$shown"; then ok "bpfvm prog show lists the tool's programs"
  else bad "prog show" "$shown"; fi
  maps=$("$BPFVM" map show 2>&1)
  if grep -q "perf_event_array" <<<"$maps"; then ok "bpfvm map show lists its perf_event_array"; else bad "map show" "$maps"; fi
else
  bad "opensnoop did not attach" "$(cat "$TMP/live")"
fi
kill -INT $tool 2>/dev/null
wait $tool 2>/dev/null
left=$(ls "$BPFVM_PIN_ROOT/.maps" 2>/dev/null)
[ -z "$left" ] && ok "the next tool swept the killed one's memory" || bad "memory left" "$left"

# An ordinary user: the same, in that user's own registry.
if [ "$(id -u)" = 0 ] && id nobody >/dev/null 2>&1 && command -v setpriv >/dev/null; then
  mkdir -p "$TMP/user" && chown nobody "$TMP/user"
  out=$(BPFVM_PIN_ROOT=$TMP/user/pins setpriv --reuid=nobody --regid=nogroup --clear-groups bash -c '
    "$0" run -- opensnoop -n wl_open > "$1/user/out" 2>&1 & t=$!
    for i in $(seq 200); do [ "$("$0" link show 2>/dev/null | grep -c perf_event)" -ge 2 ] && break; sleep 0.1; done
    "$0" run -- "$1/wl_open" "$1/present" > /dev/null; sleep 0.5; kill -INT $t; wait $t; cat "$1/user/out"' "$BPFVM" "$TMP" 2>&1)
  if grep -q "wl_open .* 0 $TMP/present" <<<"$out"; then ok "an ordinary user runs opensnoop on bpfvm"
  else bad "ordinary user" "$out"; fi
fi

# bashreadline: a uretprobe on bash's readline, attached through the uprobe PMU (perf_event_open with
# the file and offset libbpf found); the lines an interactive bash in scope reads.
bash_lines() {  # OUT KERNEL(0|1)
  local out=$1 pid
  if [ "$2" = 1 ]; then bashreadline > "$out" 2>&1 & pid=$!; sleep 2
  else "$BPFVM" run -- bashreadline > "$out" 2>&1 & pid=$!; wait_links 1 || { kill -INT $pid; wait $pid; return 1; }; fi
  if [ "$2" = 1 ]; then printf 'echo bpfvm-line\nexit\n' | script -qc "bash --norc -i" /dev/null > /dev/null 2>&1
  else printf 'echo bpfvm-line\nexit\n' | "$BPFVM" run -- script -qc "bash --norc -i" /dev/null > /dev/null 2>&1; fi
  sleep 0.5
  kill -INT $pid
  wait $pid
}
if command -v script >/dev/null && [ -x /bin/bash ]; then
  bash_lines "$TMP/readline" 0
  got=$(awk 'NR > 1 { $1 = ""; $2 = ""; sub(/^ +/, ""); print }' "$TMP/readline")
  if [ "$got" = "echo bpfvm-line
exit" ]; then ok "bashreadline: the lines bash read"
  else bad "bashreadline" "got: $got" "$(cat "$TMP/readline")"; fi
fi

# A tool whose events cannot exist in user space (vfsstat: kprobes on vfs_read...) fails at attach and
# says why; nothing of it is left.
if command -v vfsstat >/dev/null; then
  out=$(timeout -s INT 20 "$BPFVM" run -- vfsstat 1 1 2>&1); rc=$?
  if [ $rc != 0 ] && grep -q "kprobe on the kernel function vfs_read has no events in user space" <<<"$out"; then
    ok "vfsstat: kprobes fail at attach, saying why"
  else bad "vfsstat" "rc=$rc" "$out"; fi
fi
# The same for BTF tracepoints (cpudist: tp_btf/sched_switch, chosen as on the kernel since it loads)
# and fentry programs (biosnoop's) on kernel functions, which the kernel passes its own objects.
for t in "cpudist:'tp_btf/sched_switch': of the kernel's BTF tracepoints bpfvm produces sys_enter and sys_exit" \
         "biosnoop:blk_account_io_start has no events in user space"; do
  tool=${t%%:*} why=${t#*:}
  command -v "$tool" >/dev/null || continue
  out=$(timeout -s INT 20 "$BPFVM" run -- "$tool" 2>&1); rc=$?
  if [ $rc != 0 ] && [ $rc != 124 ] && grep -q "$why" <<<"$out"; then ok "$tool: fails, saying why"
  else bad "$tool" "rc=$rc" "$out"; fi
done

# Process tools: a workload that execs, exits with a code and dies by a signal, in scope. execsnoop
# (bpf_get_current_task: the parent's tgid through CO-RE reads of the emulated task_struct), exitsnoop
# (the exit code from the task), syscount (the group leader's comm).
cp /bin/true "$TMP/wl_exec"
cat > "$TMP/wl.sh" <<WL
echo \$\$ > "$TMP/wl.pid"
"$TMP/wl_exec" one two
"$TMP/no-such-command" 2>/dev/null
sh -c 'exit 3'
sh -c 'kill -SEGV \$\$'
true
WL
run_process_tool() {  # OUT LINKS KERNEL(0|1) TOOL ARGS...
  local out=$1 links=$2 kernel=$3 pid
  shift 3
  if [ "$kernel" = 1 ]; then "$@" > "$out" 2>&1 & pid=$!; sleep 2
  else "$BPFVM" run -- "$@" > "$out" 2>&1 & pid=$!; wait_links "$links" || { kill -INT $pid; wait $pid; return 1; }; fi
  if [ "$kernel" = 1 ]; then bash "$TMP/wl.sh" > /dev/null 2>&1; else "$BPFVM" run -- bash "$TMP/wl.sh" > /dev/null 2>&1; fi
  sleep 0.5
  kill -INT $pid
  wait $pid
}
# execsnoop's rows of the workload's children: COMM PPID-is-the-workload RET ARGS.
# (taken right after the run: the workload's pid is that run's; sh as PATH found it, either way)
exec_rows() { awk -v p="$(cat "$TMP/wl.pid")" 'NR > 1 && $3 == p { r = $1 " " $4; for (i = 5; i <= NF; i++) r = r " " $i; print r }' "$1" | sed "s|/usr/bin/sh|/bin/sh|"; }
exit_rows() { awk -v p="$(cat "$TMP/wl.pid")" 'NR > 1 && $3 == p { r = $1; for (i = 6; i <= NF; i++) r = r " " $i; print r }' "$1"; }
if command -v execsnoop >/dev/null; then
  run_process_tool "$TMP/exec" 2 0 execsnoop -x
  exec_rows "$TMP/exec" > "$TMP/exec.rows"
  want="wl_exec 0 $TMP/wl_exec one two
bash -2 $TMP/no-such-command
sh 0 /bin/sh -c exit 3
sh 0 /bin/sh -c kill -SEGV \$\$"
  got=$(cat "$TMP/exec.rows")
  if [ "$got" = "$want" ]; then ok "execsnoop -x: the workload's execs, their parent and results"
  else bad "execsnoop -x" "want: $want" "got: $got" "$(cat "$TMP/exec")"; fi
fi
# The exec `bpfvm run` itself makes is the command's first event, as a shell's exec is on the kernel.
if command -v execsnoop >/dev/null; then
  "$BPFVM" run -- execsnoop > "$TMP/direct" 2>&1 & tool=$!
  if wait_links 2; then
    "$BPFVM" run -- "$TMP/wl_exec" direct
    sleep 0.5
  fi
  kill -INT $tool; wait $tool
  if grep -Eq "^wl_exec +[0-9]+ +[0-9]+ +0 $TMP/wl_exec direct" "$TMP/direct"; then ok "execsnoop: the exec bpfvm run makes"
  else bad "execsnoop of bpfvm run's exec" "$(cat "$TMP/direct")"; fi
fi
if command -v exitsnoop >/dev/null; then
  run_process_tool "$TMP/exit" 1 0 exitsnoop
  exit_rows "$TMP/exit" > "$TMP/exit.rows"
  want="wl_exec 0
bash code 127
sh code 3
sh signal 11 (Segmentation fault)"
  got=$(cat "$TMP/exit.rows")
  if [ "$got" = "$want" ]; then ok "exitsnoop: exit codes and signals from the task"
  else bad "exitsnoop" "want: $want" "got: $got" "$(cat "$TMP/exit")"; fi
fi
# killsnoop: a kill's row is printed by its exit program, which runs before the signal it sent ends
# the sender (sh -c 'kill -SEGV $$').
kill_rows() { awk 'NR > 1 && $3 == "sh" && $2 == $5 { print $3, $4, $6 }' "$1"; }  # (a kill of itself: other sh processes, seen system-wide on the kernel, aside)
if command -v killsnoop >/dev/null; then
  run_process_tool "$TMP/kill" 6 0 killsnoop
  kill_rows "$TMP/kill" > "$TMP/kill.rows"
  if [ "$(cat "$TMP/kill.rows")" = "sh 11 0" ]; then ok "killsnoop: a process's kill of itself"
  else bad "killsnoop" "$(cat "$TMP/kill")"; fi
fi
# Two applications at once, each with its own objects: opensnoop and execsnoop see the same workload.
if command -v execsnoop >/dev/null; then
  "$BPFVM" run -- opensnoop -n wl_open > "$TMP/both_open" 2>&1 & first=$!
  "$BPFVM" run -- execsnoop > "$TMP/both_exec" 2>&1 & second=$!
  if wait_links 6; then  # (opensnoop's open and openat, execsnoop's execve: entry and exit each)
    progs=$("$BPFVM" prog show 2>/dev/null)
    "$BPFVM" run -- sh -c '"$0" "$1"' "$TMP/wl_open" "$TMP/present" > /dev/null 2>&1  # (an exec in scope)
    sleep 0.5
  fi
  kill -INT $first $second; wait $first; wait $second
  if grep -q "wl_open .* 0 $TMP/present" "$TMP/both_open" && grep -q "^wl_open .* $TMP/wl_open $TMP/present" "$TMP/both_exec" &&
     grep -q "opensnoop($first)" <<<"$progs" && grep -q "execsnoop($second)" <<<"$progs"; then
    ok "two tools at once: each its own programs, both see the workload"
  else bad "two tools at once" "$(cat "$TMP/both_open" "$TMP/both_exec")" "$progs"; fi
fi
if command -v syscount >/dev/null; then
  run_process_tool "$TMP/count" 1 0 syscount -P
  if grep -q "^PID *COMM *COUNT" "$TMP/count" && grep -Eq "^$(cat "$TMP/wl.pid") +bash +[0-9]+" "$TMP/count"; then
    ok "syscount -P: the workload's syscalls, by process and its leader's name"
  else bad "syscount -P" "$(cat "$TMP/count")"; fi
fi
# execsnoop -c: only the execs of processes in a cgroup (bpf_current_task_under_cgroup against the
# cgroup array the tool fills with the directory's descriptor). The workload execs once outside, then
# moves itself into the cgroup and execs again. As root, where cgroup v2 is mounted.
cgroup2=$(awk '$3 == "cgroup2" { print $2; exit }' /proc/mounts)
if [ "$(id -u)" = 0 ] && [ -n "$cgroup2" ] && command -v execsnoop >/dev/null &&
   CG=$(mktemp -d "$cgroup2/bpfvm-test.XXXXXX" 2>/dev/null); then
  cat > "$TMP/wl_cg.sh" <<WL
echo \$\$ > "$TMP/wl.pid"
"$TMP/wl_exec" outside
echo \$\$ > "$CG/cgroup.procs"
"$TMP/wl_exec" inside
true
WL
  cgroup_run() {  # OUT KERNEL(0|1)
    local pid
    if [ "$2" = 1 ]; then execsnoop -c "$CG" > "$1" 2>&1 & pid=$!; sleep 2
    else "$BPFVM" run -- execsnoop -c "$CG" > "$1" 2>&1 & pid=$!; wait_links 2 || { kill -INT $pid; wait $pid; return 1; }; fi
    if [ "$2" = 1 ]; then bash "$TMP/wl_cg.sh"; else "$BPFVM" run -- bash "$TMP/wl_cg.sh"; fi
    sleep 0.5
    kill -INT $pid
    wait $pid
  }
  cgroup_run "$TMP/cg" 0
  got=$(exec_rows "$TMP/cg")
  if [ "$got" = "wl_exec 0 $TMP/wl_exec inside" ]; then ok "execsnoop -c: only the execs in the cgroup"
  else bad "execsnoop -c" "got: $got" "$(cat "$TMP/cg")"; fi
  if [ -r /sys/kernel/tracing/events/syscalls/sys_enter_execve/id ]; then
    cgroup_run "$TMP/kcg" 1
    k=$(exec_rows "$TMP/kcg")
    if [ -n "$k" ] && [ "$k" = "$got" ]; then ok "execsnoop -c: the kernel's rows"
    else bad "execsnoop -c against the kernel" "kernel: $k" "bpfvm:  $got"; fi
  fi
  rmdir "$CG" 2>/dev/null
fi
# syscount -p PID -L: one process's syscalls, counted and timed. The workload waits for its go without
# a syscall (a busy loop on a shared mapping), so that the tool sees all it does after, and none is in
# flight when the tool attaches (neither the syscalls its dynamic loader makes before the agent loads).
cat > "$TMP/wl_count.py" <<'WL'
import mmap, os, sys
with open(sys.argv[1], "r+b") as f:
    go = mmap.mmap(f.fileno(), 1)
os.close(os.open(sys.argv[1] + ".ready", os.O_CREAT | os.O_WRONLY, 0o644))
while go[0] == 0x30:
    pass
for _ in range(5):
    os.close(os.open(sys.argv[2], os.O_RDONLY))
for _ in range(7):
    os.getppid()
for _ in range(3):
    os.stat("/")
os._exit(0)
WL
# (python3 itself, not a shim that execs it: pyenv's makes its own syscalls under the same pid)
PY=$(python3 -c 'import sys; print(sys.executable)' 2>/dev/null)
count_run() {  # OUT KERNEL(0|1): the tool's rows, SYSCALL COUNT, sorted
  local pid wl
  printf 0 > "$TMP/go"
  rm -f "$TMP/go.ready"
  if [ "$2" = 1 ]; then "$PY" "$TMP/wl_count.py" "$TMP/go" "$TMP/present" & wl=$!
  else "$BPFVM" run -- "$PY" "$TMP/wl_count.py" "$TMP/go" "$TMP/present" & wl=$!; fi
  for _ in $(seq 200); do [ -e "$TMP/go.ready" ] && break; sleep 0.1; done  # (its start-up done)
  if [ "$2" = 1 ]; then syscount -L -T 40 -p $wl > "$1" 2>&1 & pid=$!; sleep 2
  else
    "$BPFVM" run -- syscount -L -T 40 -p $wl > "$1" 2>&1 & pid=$!
    wait_links 2
    # (and until the workload's agent has applied them: it does so within a millisecond when idle,
    # later when the machine is busy)
    for _ in $(seq 200); do
      [ "$("$BPFVM" agent show 2>/dev/null | awk -v p="pid $wl " 'index($0, p) == 1 { on = 1; next } /^pid / { on = 0 } on && /link/' | wc -l)" -ge 2 ] && break
      sleep 0.1
    done
  fi
  printf 1 | dd of="$TMP/go" bs=1 count=1 conv=notrunc status=none  # (in place: the mapping stays whole)
  wait $wl
  sleep 0.3
  kill -INT $pid
  wait $pid
}
if command -v syscount >/dev/null && [ -x "$PY" ]; then
  count_run "$TMP/sc" 0
  got=$(awk '$1 ~ /^[a-z_0-9]+$/ && $2 ~ /^[0-9]+$/ && $3 ~ /^[0-9.]+$/ { print $1, $2 }' "$TMP/sc" | sort)
  want="close 5
getppid 7
newfstatat 3
openat 5"
  if [ "$got" = "$want" ]; then ok "syscount -p -L: one process's syscalls, counted and timed"
  else bad "syscount -p -L" "want: $want" "got: $got" "$(cat "$TMP/sc")"; fi
  if [ "$(id -u)" = 0 ] && [ -r /sys/kernel/tracing/events/raw_syscalls/sys_enter/id ]; then
    count_run "$TMP/ksc" 1
    k=$(awk '$1 ~ /^[a-z_0-9]+$/ && $2 ~ /^[0-9]+$/ && $3 ~ /^[0-9.]+$/ { print $1, $2 }' "$TMP/ksc" | sort)
    if [ -n "$k" ] && [ "$k" = "$got" ]; then ok "syscount -p -L: the kernel's counts"
    else bad "syscount -p -L against the kernel" "kernel: $k" "bpfvm:  $got"; fi
  fi
fi
# execsnoop -u UID: the execs of a user, here made by a process of the scope that became that user first
# (setpriv, as su and services do): its new image's agent reaches the tool's registry through the
# tool's broker (runtime/broker.hpp), and its uid is the new one at the exec (the agent reads a thread's
# ids again after set*id). The same row on the kernel.
if [ "$(id -u)" = 0 ] && command -v setpriv >/dev/null && command -v execsnoop >/dev/null && id nobody >/dev/null 2>&1; then
  uid_rows() {  # OUT KERNEL(0|1): COMM RET ARGS of the tool's rows
    local pid
    if [ "$2" = 1 ]; then execsnoop -u "$(id -u nobody)" > "$1" 2>&1 & pid=$!; sleep 2
    else "$BPFVM" run -- execsnoop -u "$(id -u nobody)" > "$1" 2>&1 & pid=$!; wait_links 2; fi
    if [ "$2" = 1 ]; then setpriv --reuid=nobody --regid=nogroup --clear-groups "$TMP/wl_exec" as nobody > /dev/null 2>&1
    else "$BPFVM" run -- setpriv --reuid=nobody --regid=nogroup --clear-groups "$TMP/wl_exec" as nobody > /dev/null 2>&1; fi
    sleep 0.5
    kill -INT $pid
    wait $pid
  }
  uid_rows "$TMP/uid" 0
  got=$(awk 'NR > 1 && $1 == "wl_exec" { r = $1 " " $4; for (i = 5; i <= NF; i++) r = r " " $i; print r }' "$TMP/uid")
  if [ "$got" = "wl_exec 0 $TMP/wl_exec as nobody" ]; then ok "execsnoop -u: the exec of a process that became that user"
  else bad "execsnoop -u" "got: $got" "$(cat "$TMP/uid")"; fi
  if [ -r /sys/kernel/tracing/events/syscalls/sys_enter_execve/id ]; then
    uid_rows "$TMP/kuid" 1
    k=$(awk 'NR > 1 && $1 == "wl_exec" { r = $1 " " $4; for (i = 5; i <= NF; i++) r = r " " $i; print r }' "$TMP/kuid")
    if [ -n "$k" ] && [ "$k" = "$got" ]; then ok "execsnoop -u: the kernel's row"
    else bad "execsnoop -u against the kernel" "kernel: $k" "bpfvm:  $got"; fi
  fi
fi
# opensnoop -p PID: one process's opens (the same workload, waiting for its go), none of another
# process in scope that opens the same file meanwhile.
if [ -x "$PY" ]; then
  printf 0 > "$TMP/go"
  rm -f "$TMP/go.ready"
  "$BPFVM" run -- "$PY" "$TMP/wl_count.py" "$TMP/go" "$TMP/present" & wl=$!
  for _ in $(seq 200); do [ -e "$TMP/go.ready" ] && break; sleep 0.1; done
  "$BPFVM" run -- opensnoop -p $wl > "$TMP/op" 2>&1 & tool=$!
  wait_links 2
  for _ in $(seq 200); do
    [ "$("$BPFVM" agent show 2>/dev/null | awk -v p="pid $wl " 'index($0, p) == 1 { on = 1; next } /^pid / { on = 0 } on && /link/' | wc -l)" -ge 2 ] && break
    sleep 0.1
  done
  "$BPFVM" run -- "$TMP/wl_open" "$TMP/present" > /dev/null 2>&1
  printf 1 | dd of="$TMP/go" bs=1 count=1 conv=notrunc status=none
  wait $wl
  sleep 0.3
  kill -INT $tool
  wait $tool
  got=$(awk -v wl=$wl 'NR > 1 { print ($1 == wl ? "wl" : $1), $NF }' "$TMP/op" | sort | uniq -c | awk '{ print $1, $2, $3 }')
  if [ "$got" = "5 wl $TMP/present" ]; then ok "opensnoop -p: one process's opens only"
  else bad "opensnoop -p" "want: 5 wl $TMP/present" "got: $got" "$(cat "$TMP/op")"; fi
fi
# funclatency: a uprobe and uretprobe on libc's getpid, which the tool (an agent process too) and the
# agent call themselves; the workload's 100 calls are counted.
libc=$(ldconfig -p 2>/dev/null | awk '/libc.so.6 .*x86-64/ { print $NF; exit }')
if command -v funclatency >/dev/null && command -v python3 >/dev/null && [ -n "$libc" ]; then
  "$BPFVM" run -- funclatency "$libc:getpid" > "$TMP/lat" 2>&1 & tool=$!
  if wait_links 2; then
    "$BPFVM" run -- python3 -c 'import os
for _ in range(100): os.getpid()'
    sleep 0.5
  fi
  kill -INT $tool; wait $tool; rc=$?
  total=$(awk '/->/ { n += $5 } END { print n + 0 }' "$TMP/lat")
  if [ $rc = 0 ] && [ "$total" -ge 100 ]; then ok "funclatency: getpid's calls counted ($total)"
  else bad "funclatency" "rc=$rc total=$total" "$(cat "$TMP/lat")"; fi
fi

# The kernel as oracle: the same rows for the same workload.
if [ "$(id -u)" = 0 ] && [ -r /sys/kernel/tracing/events/syscalls/sys_enter_openat/id ]; then
  for opts in "-n wl_open" "-x -n wl_open"; do
    # shellcheck disable=SC2086
    KERNEL=1 run_tool "$TMP/kernel" opensnoop $opts
    # shellcheck disable=SC2086
    run_tool "$TMP/ours" opensnoop $opts
    # (descriptor numbers as in the first check: what the workload inherited decides them)
    k=$(rows "$TMP/kernel" | awk '$2 >= 0 { $2 = "FD" } { print }') o=$(rows "$TMP/ours" | awk '$2 >= 0 { $2 = "FD" } { print }')
    if [ -n "$k" ] && [ "$k" = "$o" ]; then ok "opensnoop $opts: the kernel's rows"
    else bad "opensnoop $opts against the kernel" "kernel: $k" "bpfvm:  $o"; fi
  done
  # Every open of the workload, its dynamic loader's first (ld.so.cache, libc): they come before any
  # preloaded library runs, and the early module keeps them for the agent (src/agent/early_log.h).
  # (The workload's own rows, by its pid: the kernel's tool sees every process of that name.)
  if [ -n "$("$BPFVM" run -- printenv LD_AUDIT)" ]; then
    cp /bin/cat "$TMP/wl_all"
    all_run() {  # OUT KERNEL(0|1)
      local pid
      if [ "$2" = 1 ]; then opensnoop -n wl_all > "$1" 2>&1 & pid=$!; sleep 2
      else "$BPFVM" run -- opensnoop -n wl_all > "$1" 2>&1 & pid=$!; wait_links 2; fi
      if [ "$2" = 1 ]; then sh -c 'echo $$ > "$0.pid"; exec "$0" "$1"' "$TMP/wl_all" "$TMP/present" > /dev/null 2>&1
      else "$BPFVM" run -- sh -c 'echo $$ > "$0.pid"; exec "$0" "$1"' "$TMP/wl_all" "$TMP/present" > /dev/null 2>&1; fi
      sleep 0.5
      kill -INT $pid
      wait $pid
      awk -v p="$(cat "$TMP/wl_all.pid")" 'NR > 1 && $1 == p { print $2, ($3 >= 0 ? "FD" : $3), $4, $5 }' "$1" > "$1.rows"
    }
    all_run "$TMP/kernel" 1
    all_run "$TMP/ours" 0
    k=$(cat "$TMP/kernel.rows") o=$(cat "$TMP/ours.rows")
    if [ -n "$k" ] && [ "$k" = "$o" ] && grep -q "/etc/ld.so.cache" <<<"$o"; then ok "opensnoop -n: all the kernel's rows, the loader's too"
    else bad "opensnoop -n (all rows) against the kernel" "kernel: $k" "bpfvm:  $o"; fi
  else
    echo "skip the loader's opens against the kernel: bpfvm run adds no early module (a sanitized build)"
  fi
  if command -v execsnoop >/dev/null; then
    run_process_tool "$TMP/kexec" 2 1 execsnoop -x
    k=$(exec_rows "$TMP/kexec") o=$(cat "$TMP/exec.rows")
    if [ -n "$k" ] && [ "$k" = "$o" ]; then ok "execsnoop -x: the kernel's rows"
    else bad "execsnoop -x against the kernel" "kernel: $k" "bpfvm:  $o"; fi
  fi
  if command -v killsnoop >/dev/null; then
    run_process_tool "$TMP/kkill" 6 1 killsnoop
    k=$(kill_rows "$TMP/kkill") o=$(cat "$TMP/kill.rows")
    if [ -n "$k" ] && [ "$k" = "$o" ]; then ok "killsnoop: the kernel's rows"
    else bad "killsnoop against the kernel" "kernel: $k" "bpfvm:  $o"; fi
  fi
  if command -v exitsnoop >/dev/null; then
    run_process_tool "$TMP/kexit" 1 1 exitsnoop
    k=$(exit_rows "$TMP/kexit") o=$(cat "$TMP/exit.rows")
    if [ -n "$k" ] && [ "$k" = "$o" ]; then ok "exitsnoop: the kernel's rows"
    else bad "exitsnoop against the kernel" "kernel: $k" "bpfvm:  $o"; fi
  fi
  if command -v script >/dev/null && [ -x /bin/bash ]; then
    bash_lines "$TMP/kreadline" 1
    k=$(awk 'NR > 1 { $1 = ""; $2 = ""; print }' "$TMP/kreadline") o=$(awk 'NR > 1 { $1 = ""; $2 = ""; print }' "$TMP/readline")
    if [ -n "$k" ] && [ "$k" = "$o" ]; then ok "bashreadline: the kernel's rows"
    else bad "bashreadline against the kernel" "kernel: $k" "bpfvm:  $o"; fi
  fi
else
  echo "(no kernel comparison: not root, or tracefs not readable)"
fi

echo "$pass passed, $fail failed"
[ $fail = 0 ]
