#!/bin/bash
# The classic BCC examples of ../shared/seed-examples, unchanged, with bpfvm as their kernel: each
# hello.py runs from its own folder (`bpfvm run -- python3 hello.py`) while a workload in scope opens a
# file, and its output is compared with expected-output.txt field by field (process names, pids, CPUs
# and timestamps differ from run to run):
#   hello/        bpf_trace_printk lines in trace_pipe's format, through trace_print()
#   perf-output/  the TIME(s) COMM PID FILE table from a perf buffer, the workload's file among the rows
# Usage: seed_examples.sh SEED_DIR BPFVM. Exits 77 (skipped) without Debian's BCC or the folder.
set -u
set -m  # (background jobs keep SIGINT: Python ignores it when started ignoring it)
DIR=$1
BPFVM=$(cd "$(dirname "$2")" && pwd)/$(basename "$2")
PY=/usr/bin/python3
[ -d "$DIR/hello" ] && [ -d "$DIR/perf-output" ] || { echo "SKIP: no seed examples at $DIR"; exit 77; }
"$PY" -c 'import bcc' 2>/dev/null || { echo "SKIP: python3-bpfcc (Debian's BCC) is not installed"; exit 77; }
TMP=$(mktemp -d)
export BPFVM_PIN_ROOT=$TMP/pins
trap 'kill $(jobs -p) 2>/dev/null; rm -rf "$TMP"' EXIT
cp /bin/cat "$TMP/wl_open"
echo bpfvm > "$TMP/present"
. "$(dirname "$0")/../support/checks.sh"

run_example() {  # NAME OUT
  (cd "$DIR/$1" && exec "$BPFVM" run -- "$PY" hello.py) > "$2" 2>&1 &
  local pid=$!
  wait_links 1 60
  sleep 0.5
  "$BPFVM" run -- "$TMP/wl_open" "$TMP/present" > /dev/null 2>&1
  sleep 1
  kill -INT $pid
  wait $pid
}

# hello: "b'              ps-2098    [002] d...   307.515292: bpf_trace_printk: Hello, World!'"
line_re="^b' *[^ ].*-[0-9]+ +\[[0-9]+\] [^ ]+ +[0-9]+\.[0-9]+: bpf_trace_printk: Hello, World!'$"
run_example hello "$TMP/hello"
if grep -q "bpf_trace_printk: Hello, World!" "$DIR/hello/expected-output.txt" && grep -Eq "$line_re" "$TMP/hello" &&
   grep -E "$line_re" "$TMP/hello" | grep -q "wl_open-"; then
  ok "hello: trace_pipe lines as expected-output.txt shows them, the workload's among them"
else bad "hello" "$(head -20 "$TMP/hello")"; fi

# perf-output: the header, then "TIME COMM PID FILE" rows with Python's bytes reprs
run_example perf-output "$TMP/perf"
header=$(grep -m1 "^TIME(s)" "$DIR/perf-output/expected-output.txt")
if [ "$(grep -m1 '^TIME(s)' "$TMP/perf")" = "$header" ] &&
   grep -Eq "^[0-9]+\.[0-9]{9} +b'wl_open' +[0-9]+ +b'$TMP/present'$" "$TMP/perf"; then
  ok "perf-output: the TIME(s) COMM PID FILE table, the workload's file among the rows"
else bad "perf-output" "$(head -20 "$TMP/perf")"; fi

echo "seed examples: $pass passed, $fail failed"
[ $fail -eq 0 ]
