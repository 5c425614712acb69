# Sourced by the shell tests: counted checks and waiting for a loader to attach.
# Needs $BPFVM (and $BPFVM_PIN_ROOT for the registry the loader uses).
pass=0 fail=0
ok() { pass=$((pass + 1)); echo "ok $1"; }
bad() { fail=$((fail + 1)); echo "FAIL $1"; shift; for l in "$@"; do echo "  $l"; done; }

# Waits until COUNT links are in the registry (the loader attached), at most SECONDS
# (default 20); the registry is read by PREFIX... when given (a command that runs bpfvm as another user).
wait_links() {  # COUNT [SECONDS [PREFIX...]]
  local count=$1 seconds=${2:-20}
  shift $(($# < 2 ? $# : 2))
  for _ in $(seq $((seconds * 10))); do
    [ "$("$@" "$BPFVM" link show 2>/dev/null | grep -c '^[0-9]*: ')" -ge "$count" ] && return 0
    sleep 0.1
  done
  return 1
}
