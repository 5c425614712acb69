#!/usr/bin/env bash
# bpfvm as ordinary users, beside root: each user's objects live under a pin root of their own (here
# /tmp/bpfvm-<uid>, as without $XDG_RUNTIME_DIR), private to them (0700); tracing and running work with
# no set-up; a user cannot see or touch root's or another user's objects, and is told so rather than
# shown an empty list; root can use a user's objects by naming their pin root. Runs as root (setpriv
# switches to two unprivileged uids, 65534 and 65533); exits 77 (skipped) otherwise.
set -u
BPFVM="$1"
SRC="$2"   # the source tree: examples/ and include/bpf
[ "$(id -u)" -eq 0 ] || { echo "SKIP: needs root to act as two other users"; exit 77; }
command -v setpriv >/dev/null || { echo "SKIP: no setpriv (util-linux)"; exit 77; }
command -v clang >/dev/null || { echo "SKIP: no clang"; exit 77; }
. "$(dirname "$0")/expect.sh"

U1=65534
U2=65533
# What the users run must be theirs to read: a copy of the binary, the example and bpfvm's BPF headers.
SHARE="$(mktemp -d /tmp/bpfvm-users.XXXXXX)"
chmod 755 "$SHARE"
cp "$BPFVM" "$SHARE/bpfvm"
cp "$SRC/examples/opensnoop.bpf.c" "$SRC/examples/hello.bpf.c" "$SHARE/"
cp -r "$SRC/include/bpf" "$SHARE/include"
chmod -R a+rX "$SHARE"
ROOT_PINS="$(mktemp -d)"
cleanup() {
  [ -n "${BG:-}" ] && kill -INT "$BG" 2>/dev/null && wait "$BG" 2>/dev/null
  rm -rf "$SHARE" "$ROOT_PINS" "/tmp/bpfvm-$U1" "/tmp/bpfvm-$U2"
}
trap cleanup EXIT
rm -rf "/tmp/bpfvm-$U1" "/tmp/bpfvm-$U2"

# as UID CMD...: CMD as that user, with a clean environment (no XDG_RUNTIME_DIR: the /tmp fallback).
as() {
  local uid="$1"
  shift
  (cd "$SHARE" && setpriv --reuid="$uid" --regid="$uid" --clear-groups \
    env -i PATH=/usr/local/bin:/usr/bin:/bin HOME=/tmp BPFVM_BPF_INCLUDE="$SHARE/include" "$@")
}

expect "a user traces with no set-up" 0 "/etc/hostname" -- as $U1 ./bpfvm trace opensnoop.bpf.c -- cat /etc/hostname
expect "their pin root is private" 0 "drwx------ $U1" -- stat -c '%A %u' "/tmp/bpfvm-$U1"
expect "a user lists their own objects" 0 "" -- as $U1 ./bpfvm prog show
expect "a user creates and pins a map" 0 "" -- \
  as $U1 ./bpfvm map create /sys/fs/bpf/m type hash key 4 value 4 entries 4 name m
expect "and updates it" 0 "" -- as $U1 ./bpfvm map update pinned /sys/fs/bpf/m key 1 0 0 0 value 2 0 0 0
expect "and sees it" 0 "hash  name m" -- as $U1 ./bpfvm map show
# Root's objects: a live tracer under root's pin root.
BPFVM_PIN_ROOT="$ROOT_PINS" "$SHARE/bpfvm" trace "$SHARE/hello.bpf.c" -- sleep 30 > /dev/null 2>&1 &
BG=$!
for _ in $(seq 100); do BPFVM_PIN_ROOT="$ROOT_PINS" "$SHARE/bpfvm" prog show 2>/dev/null | grep -q hello && break; sleep 0.1; done
chmod 700 "$ROOT_PINS"
expect "root sees its program" 0 "name hello" -- env BPFVM_PIN_ROOT="$ROOT_PINS" "$SHARE/bpfvm" prog show
expect "a user cannot list root's objects, and is told" 255 "Permission denied" -- \
  as $U1 env BPFVM_PIN_ROOT="$ROOT_PINS" ./bpfvm prog show
expect "nor read root's maps" 255 "Permission denied" -- as $U1 env BPFVM_PIN_ROOT="$ROOT_PINS" ./bpfvm map dump id 1
expect "nor root's trace pipe" 255 "Permission denied" -- \
  as $U1 env BPFVM_PIN_ROOT="$ROOT_PINS" timeout 2 ./bpfvm prog tracelog
mkdir -p /run/bpfvm  # root's default pin root: a user's empty listing says root's objects are not theirs
expect "the user's own listing does not show root's program" 0 "root's, under /run/bpfvm, are not visible" -- \
  as $U1 ./bpfvm prog show
if as $U1 ./bpfvm prog show 2>/dev/null | grep -q hello; then echo "FAIL: a user sees root's program"; fail=$((fail + 1)); else
  pass=$((pass + 1)); fi

# Loads and runs a program of its own (compiled as that user).
printf '#include <linux/bpf.h>\n#include <bpf/bpf_helpers.h>\nSEC("xdp") int pass(struct xdp_md *c) { return XDP_PASS; }\nchar LICENSE[] SEC("license") = "GPL";\n' \
  > "$SHARE/pass.bpf.c"
head -c 64 /dev/zero > "$SHARE/frame.bin"
chmod a+r "$SHARE/pass.bpf.c" "$SHARE/frame.bin"
expect "a user compiles a program" 0 "" -- as $U1 clang -target bpf -O2 -g -I"/usr/include/$(gcc -print-multiarch)" \
  -c pass.bpf.c -o /tmp/bpfvm-$U1/pass.bpf.o
expect "loads it" 0 "" -- as $U1 ./bpfvm prog loadall /tmp/bpfvm-$U1/pass.bpf.o /sys/fs/bpf/p
expect "and runs it" 0 "Return value: 2, duration (average): " -- \
  as $U1 ./bpfvm prog run pinned /sys/fs/bpf/p/pass data_in frame.bin repeat 1000

# Another user: neither sees nor changes the first user's map.
expect "another user cannot read the first's map" 255 "Permission denied" -- \
  as $U2 env BPFVM_PIN_ROOT="/tmp/bpfvm-$U1" ./bpfvm map dump pinned /sys/fs/bpf/m
expect "nor change it" 255 "Permission denied" -- \
  as $U2 env BPFVM_PIN_ROOT="/tmp/bpfvm-$U1" ./bpfvm map update pinned /sys/fs/bpf/m key 1 0 0 0 value 9 0 0 0
# Root may: it names the user's pin root.
expect "root reads a user's map" 0 "key: 01 00 00 00  value: 02 00 00 00" -- \
  env BPFVM_PIN_ROOT="/tmp/bpfvm-$U1" "$SHARE/bpfvm" map dump pinned /sys/fs/bpf/m
# A pin root another user made for you is refused, not used.
mkdir -m 777 "/tmp/bpfvm-$U2"
expect "a planted pin root is refused" 255 "belongs to user 0, not to you ($U2)" -- as $U2 ./bpfvm prog show
rm -rf "/tmp/bpfvm-$U2"

echo "second user: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
