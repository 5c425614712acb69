#!/usr/bin/env bash
# make demo: opensnoop, end to end. bpfvm trace compiles examples/opensnoop.bpf.c with clang, verifies
# and JITs its programs, attaches them to the openat/open syscalls of a small workload's process tree
# (a ptrace tracer with a seccomp filter: only those syscalls stop) and prints every open as a row.
# Then the same workload under BCC's example of this project (examples/bcc/opens.py).
set -euo pipefail
BPFVM="${1:-build/bin/bpfvm}"
HERE="$(cd "$(dirname "$0")" && pwd)"
WORKLOAD='cat /etc/hostname >/dev/null; ls /usr >/dev/null; grep -q root /etc/passwd; echo done'

echo "== LC_ALL=C bpfvm trace examples/opensnoop.bpf.c -- sh -c '$WORKLOAD'"
LC_ALL=C "$BPFVM" trace "$HERE/opensnoop.bpf.c" -- sh -c "$WORKLOAD"

# The workflow every eBPF primer shows: a C program in BCC's dialect and a Python script, run by
# Debian's BCC unchanged with bpfvm as its kernel (bpf(), the kprobe on do_sys_openat2, the perf buffer).
# The workload runs in scope (bpfvm run) while the script prints its opens; Ctrl-C (here SIGINT) ends it.
if /usr/bin/python3 -c 'import bcc' 2>/dev/null; then
  set -m  # (the script's SIGINT is not ignored in the background)
  echo
  echo "== bpfvm run -- python3 examples/bcc/opens.py -n cat   (and, in scope: bpfvm run -- sh -c '$WORKLOAD')"
  "$BPFVM" run -- /usr/bin/python3 "$HERE/bcc/opens.py" -n cat &
  script=$!
  for _ in $(seq 600); do
    [ "$("$BPFVM" link show 2>/dev/null | grep -c '^[0-9]*: perf_event')" -ge 2 ] && break
    sleep 0.1
  done
  LC_ALL=C "$BPFVM" run -- sh -c "$WORKLOAD" > /dev/null
  sleep 1
  kill -INT $script
  wait $script || true
else
  echo "(BCC example skipped: python3-bpfcc is not installed; scripts/deps.sh installs it)"
fi
