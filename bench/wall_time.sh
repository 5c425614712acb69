# Sourced by the overhead benchmarks: wall times of whole commands (REPEAT runs each, the best kept).
best() {  # best CMD...: the smallest wall time of REPEAT runs, in seconds (output dropped)
  local best=""
  for _ in $(seq "$REPEAT"); do
    local start end t
    start=$(date +%s.%N)
    "$@" >/dev/null 2>&1
    end=$(date +%s.%N)
    t=$(awk "BEGIN { print $end - $start }")
    if [ -z "$best" ] || awk "BEGIN { exit !($t < $best) }"; then best=$t; fi
  done
  echo "$best"
}
ratio() { awk "BEGIN { print $1 / $2 }"; }
loop_time() {  # loop_time CMD...: the workload's own loop time (its WORKLOAD_TIME_FILE), smallest of REPEAT
  local best="" file
  file=$(mktemp)
  for _ in $(seq "$REPEAT"); do
    WORKLOAD_TIME_FILE=$file "$@" >/dev/null 2>&1
    local t
    t=$(cat "$file" 2>/dev/null)
    [ -n "$t" ] || continue
    if [ -z "$best" ] || [ "$t" -lt "$best" ]; then best=$t; fi
  done
  rm -f "$file"
  echo "${best:-0}"
}
