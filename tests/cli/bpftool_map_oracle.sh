#!/usr/bin/env bash
# The kernel's bpftool as the oracle of bpfvm's map commands: the same command lines, run by bpftool on a
# kernel map and by bpfvm on a bpfvm map made alike, must print the same stdout and stderr and exit with
# the same code (bpftool's: -errno of the failed bpf() operation, truncated to 8 bits, or 255). Needs
# root, bpftool and bpffs; exits 77 (skipped) otherwise.
set -u
PATH="$PATH:/usr/sbin:/sbin"  # Debian's bpftool is in /usr/sbin
BPFVM="$1"
command -v bpftool >/dev/null || { echo "SKIP: bpftool is not installed"; exit 77; }
[ "$(id -u)" -eq 0 ] || { echo "SKIP: the kernel's maps need root"; exit 77; }
if ! mount | grep -q ' /sys/fs/bpf type bpf'; then
  mkdir -p /sys/fs/bpf && mount -t bpf bpf /sys/fs/bpf 2>/dev/null || { echo "SKIP: no bpffs"; exit 77; }
fi
TMP="$(mktemp -d)"
KDIR="/sys/fs/bpf/bpfvm_oracle_$$"
export BPFVM_PIN_ROOT="$TMP/pins"
mkdir -p "$BPFVM_PIN_ROOT" "$KDIR"
trap 'rm -rf "$TMP" "$KDIR"' EXIT
pass=0
fail=0

# same [--usage] ARGS...: `bpftool ARGS` with pinned paths under $KDIR against `bpfvm ARGS` with the same names in
# bpfvm's pin root (/sys/fs/bpf/NAME resolves there).
# --usage: stderr is the usage text, which names the tool and its options: only its first word is compared.
same() {
  local kargs=() bargs=() a usage=0
  if [ "$1" = --usage ]; then usage=1; shift; fi
  for a in "$@"; do
    kargs+=("${a//@/$KDIR/}")
    bargs+=("${a//@//sys/fs/bpf/}")
  done
  bpftool "${kargs[@]}" > "$TMP/k.out" 2> "$TMP/k.err"
  local krc=$?
  "$BPFVM" "${bargs[@]}" > "$TMP/b.out" 2> "$TMP/b.err"
  local brc=$?
  sed -i "s|$KDIR/|/sys/fs/bpf/|g" "$TMP/k.out" "$TMP/k.err"
  if [ $usage = 1 ]; then
    head -c 6 "$TMP/k.err" > "$TMP/k.usage"; mv "$TMP/k.usage" "$TMP/k.err"
    head -c 6 "$TMP/b.err" > "$TMP/b.usage"; mv "$TMP/b.usage" "$TMP/b.err"
  fi
  if [ "$krc" = "$brc" ] && cmp -s "$TMP/k.out" "$TMP/b.out" && cmp -s "$TMP/k.err" "$TMP/b.err"; then
    pass=$((pass + 1))
  else
    echo "FAIL: $* (bpftool exit $krc, bpfvm exit $brc)"
    diff -u --label bpftool.stdout "$TMP/k.out" --label bpfvm.stdout "$TMP/b.out" | head -20
    diff -u --label bpftool.stderr "$TMP/k.err" --label bpfvm.stderr "$TMP/b.err" | head -20
    fail=$((fail + 1))
  fi
}

for j in "" -j; do
  rm -f "$KDIR"/* "$BPFVM_PIN_ROOT"/h "$BPFVM_PIN_ROOT"/a "$BPFVM_PIN_ROOT"/q
  set -- $j
  # A hash map: no BTF, so plain hex layouts.
  same map create @h type hash key 4 value 8 entries 2 name h
  same "$@" map update pinned @h key 1 0 0 0 value 1 2 3 4 5 6 7 8
  same "$@" map update pinned @h key 1 0 0 0 value 1 2 3 4 5 6 7 8 noexist  # EEXIST: 239
  same "$@" map update pinned @h key 2 0 0 0 value 1 1 1 1 1 1 1 1 exist   # ENOENT: 254
  same "$@" map lookup pinned @h key 1 0 0 0
  same "$@" map lookup pinned @h key hex 01 00 00 00
  same "$@" map lookup pinned @h key 9 0 0 0                                # not found: 254
  same "$@" map dump pinned @h
  same "$@" map getnext pinned @h
  same "$@" map getnext pinned @h key 1 0 0 0                               # the last key: 254
  same "$@" map update pinned @h key 2 0 0 0 value 0 0 0 0 0 0 0 9
  same "$@" map update pinned @h key 3 0 0 0 value 0 0 0 0 0 0 0 9         # full: E2BIG, 249
  same "$@" map delete pinned @h key 2 0 0 0
  same "$@" map delete pinned @h key 2 0 0 0                                # ENOENT again
  same "$@" map lookup pinned @h key 1 2                                    # short key: usage, 255
  same --usage "$@" map frob pinned @h                                          # unknown command: 255
  same "$@" map freeze pinned @h
  same "$@" map freeze pinned @h                                            # EBUSY: 240
  same "$@" map update pinned @h key 1 0 0 0 value 0 0 0 0 0 0 0 0          # frozen: EPERM, 255
  same "$@" map delete pinned @h key 1 0 0 0
  # An array: every index exists, none can be deleted, none past the end.
  same map create @a type array key 4 value 4 entries 2 name a
  same "$@" map update pinned @a key 1 0 0 0 value 7 0 0 0
  same "$@" map update pinned @a key 5 0 0 0 value 7 0 0 0                  # E2BIG: 249
  same "$@" map update pinned @a key 0 0 0 0 value 7 0 0 0 noexist          # EEXIST
  same "$@" map lookup pinned @a key 0 0 0 0
  same "$@" map delete pinned @a key 0 0 0 0                                # EINVAL: 234
  same "$@" map dump pinned @a
  same "$@" map getnext pinned @a key 1 0 0 0
  # A queue: push until full, peek, pop until empty.
  same map create @q type queue key 0 value 4 entries 2 name q
  same "$@" map push pinned @q value 1 0 0 0
  same "$@" map enqueue pinned @q value 2 0 0 0
  same "$@" map push pinned @q value 3 0 0 0                                # full: E2BIG
  same "$@" map peek pinned @q
  same "$@" map pop pinned @q
  same "$@" map dequeue pinned @q
  same "$@" map pop pinned @q                                               # empty: 254
  same "$@" map peek pinned @q
done

echo "bpftool map oracle: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
