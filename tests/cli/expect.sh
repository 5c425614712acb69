# Sourced by the CLI test scripts: `expect NAME WANT_RC WANT_SUBSTRING -- CMD...` runs CMD, compares its
# exit code and looks for the substring in its output (stdout and stderr), counting in $pass and $fail.
pass=0
fail=0

expect() {
  local name="$1" want_rc="$2" want="$3"
  shift 4
  local out rc
  out="$("$@" 2>&1)"
  rc=$?
  if [ "$rc" -ne "$want_rc" ] || [[ "$out" != *"$want"* ]]; then
    echo "FAIL $name: rc=$rc (want $want_rc, '$want'), output:"
    echo "$out" | head -20
    fail=$((fail + 1))
  else
    pass=$((pass + 1))
  fi
}
