#!/usr/bin/env bash
# make demo: opensnoop, end to end. bpfvm trace compiles examples/opensnoop.bpf.c with clang, verifies
# and JITs its programs, attaches them to the openat/open syscalls of a small workload's process tree
# (a ptrace tracer with a seccomp filter: only those syscalls stop) and prints every open as a row.
set -euo pipefail
BPFVM="${1:-build/bin/bpfvm}"
HERE="$(cd "$(dirname "$0")" && pwd)"
WORKLOAD='cat /etc/hostname >/dev/null; ls /usr >/dev/null; grep -q root /etc/passwd; echo done'

echo "== LC_ALL=C bpfvm trace examples/opensnoop.bpf.c -- sh -c '$WORKLOAD'"
LC_ALL=C "$BPFVM" trace "$HERE/opensnoop.bpf.c" -- sh -c "$WORKLOAD"
