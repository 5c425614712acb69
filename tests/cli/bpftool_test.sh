#!/usr/bin/env bash
# bpftool's commands across processes: a `bpfvm trace` runs in the background, and other bpfvm
# processes list, dump, profile and pin what it loaded, read and write its live maps, and see its links.
# Then objects made by the CLI itself (map create, pins), JSON that parses, usage errors, and the
# kernel's bpftool as an oracle for BTF dumps where it is installed.
set -u
PATH="$PATH:/usr/sbin:/sbin"  # Debian's bpftool is in /usr/sbin
BPFVM="$1"
EX="$2"
PROGS="$3"
TMP="$(mktemp -d)"
export BPFVM_PIN_ROOT="$TMP/pins"
TRACER=
trap 'rm -rf "$TMP"; [ -n "$TRACER" ] && kill -INT "$TRACER" 2>/dev/null' EXIT
. "$(dirname "$0")/expect.sh"
json_ok() {  # json_ok NAME CMD...: the output parses as JSON
  local name="$1"
  shift
  if ! command -v python3 >/dev/null; then pass=$((pass + 1)); return; fi
  if "$@" 2>/dev/null | python3 -c 'import json,sys; json.load(sys.stdin)'; then pass=$((pass + 1)); else
    echo "FAIL $name: not JSON:"; "$@" 2>&1 | head -5; fail=$((fail + 1)); fi
}

if ! command -v clang >/dev/null; then echo "SKIP: no clang"; exit 77; fi

# A live tracer: syscount on a loop that keeps making syscalls (by the ptrace tracer: `prog profile`
# switches counting on in the process that runs the program, which the agent's processes do not heed yet).
"$BPFVM" trace --ptrace "$EX/syscount.bpf.c" -- sh -c 'while true; do cat /etc/hostname >/dev/null; sleep 0.02; done' \
  > "$TMP/trace.out" 2>&1 &
TRACER=$!
for _ in $(seq 100); do
  "$BPFVM" prog show 2>/dev/null | grep -q count_syscall && break
  sleep 0.1
done
sleep 0.3

expect "prog show lists another process's program" 0 "tracepoint  name count_syscall  tag " -- "$BPFVM" prog show
expect "prog show names its process" 0 "pids bpfvm($TRACER)" -- "$BPFVM" prog list
ID=$("$BPFVM" prog show name count_syscall | head -1 | cut -d: -f1)
TAG=$("$BPFVM" prog show name count_syscall | head -1 | sed 's/.*tag \([0-9a-f]*\).*/\1/')
expect "prog show id" 0 "$ID: tracepoint  name count_syscall" -- "$BPFVM" prog show id "$ID"
expect "prog show tag" 0 "name count_syscall  tag $TAG  gpl" -- "$BPFVM" prog show tag "$TAG"
expect "prog show layout" 0 "	xlated " -- "$BPFVM" prog show id "$ID"
json_ok "prog show -j" "$BPFVM" prog show -j
json_ok "prog show -p id" "$BPFVM" -p prog show id "$ID"
expect "prog show -p layout" 0 '    "name": "count_syscall",' -- "$BPFVM" -p prog show id "$ID"
expect "dump xlated by name" 0 "; 	bpfvm_syscall_nr_t nr = ctx->id;" -- "$BPFVM" prog dump xlated name count_syscall
expect "dump xlated opcodes" 0 "       79 11 08 00 00 00 00 00" -- "$BPFVM" prog dump xlated id "$ID" opcodes
expect "dump jited by tag" 0 "bpfvm_entry:" -- "$BPFVM" prog dump jited tag "$TAG"
# The native code that runs in the tracer (its map addresses), not a copy's.
expect "dump jited file" 0 "" -- "$BPFVM" prog dump jited id "$ID" file "$TMP/jited.bin"
if command -v python3 >/dev/null; then
  want=$("$BPFVM" -j prog show id "$ID" | python3 -c 'import json,sys; print(json.load(sys.stdin)["bytes_jited"])')
  if [ "$(stat -c %s "$TMP/jited.bin")" = "$want" ]; then pass=$((pass + 1)); else
    echo "FAIL dump jited file: $(stat -c %s "$TMP/jited.bin") bytes, prog show says $want"; fail=$((fail + 1)); fi
fi
expect "dump visual" 0 'subgraph "cluster_0"' -- "$BPFVM" prog dump xlated id "$ID" visual
if command -v dot >/dev/null; then
  expect "dump visual --svg" 0 "" -- "$BPFVM" prog dump xlated id "$ID" visual --svg "$TMP/cfg.svg"
  expect "svg written" 0 "<svg" -- cat "$TMP/cfg.svg"
fi
expect "map show" 0 "hash  name counts  flags 0x0" -- "$BPFVM" map show
expect "map dump of a live map" 0 '"value": ' -- "$BPFVM" map dump name counts
json_ok "map dump -j" "$BPFVM" -j map dump name counts
MID=$("$BPFVM" map show name counts | head -1 | cut -d: -f1)
OPENAT=$(printf '%d 1 0 0' $((257 - 256)))  # 257 = 0x101 as 4 little-endian bytes
expect "map lookup of a live key" 0 '"key": 257' -- "$BPFVM" map lookup id "$MID" key 1 1 0 0
expect "map update a live map" 0 "" -- "$BPFVM" map update id "$MID" key 0xff 0xff 0 0 value 42 0 0 0 0 0 0 0 noexist
expect "the tracer sees the update" 0 '"value": 42' -- "$BPFVM" map lookup id "$MID" key hex ff ff 00 00
expect "map getnext" 0 "next key:" -- "$BPFVM" map getnext id "$MID"
expect "map delete" 0 "" -- "$BPFVM" map delete id "$MID" key 0xff 0xff 0 0
expect "map delete again" 254 "delete failed" -- "$BPFVM" map delete id "$MID" key 0xff 0xff 0 0
expect "btf show" 0 "prog_ids $ID" -- "$BPFVM" btf show
BID=$("$BPFVM" btf show | grep "prog_ids $ID" | head -1 | cut -d: -f1)
expect "btf dump id" 0 "STRUCT 'trace_event_raw_sys_enter' size=64 vlen=4" -- "$BPFVM" btf dump id "$BID"
expect "btf dump id format c" 0 "struct trace_event_raw_sys_enter {" -- "$BPFVM" btf dump id "$BID" format c
expect "btf dump prog" 0 "TYPEDEF 'bpfvm_syscall_nr_t'" -- "$BPFVM" btf dump prog id "$ID"
expect "link show" 0 "tracepoint raw_syscalls/sys_enter" -- "$BPFVM" link show
json_ok "link show -j" "$BPFVM" link show -j
expect "perf" 0 "pid $TRACER  link " -- "$BPFVM" perf
expect "prog profile" 0 " run_cnt" -- "$BPFVM" prog profile id "$ID" duration 1 cycles instructions
RUNS=$("$BPFVM" prog profile id "$ID" duration 1 cycles | awk '/run_cnt/ {print $1}')
if [ "${RUNS:-0}" -gt 0 ]; then pass=$((pass + 1)); else echo "FAIL profile counted no runs"; fail=$((fail + 1)); fi
json_ok "prog profile -j" "$BPFVM" -j prog profile id "$ID" duration 1 instructions
mkdir -p "$TMP/pins"
expect "prog pin by id" 0 "" -- "$BPFVM" prog pin id "$ID" /sys/fs/bpf/counter
expect "map pin by id" 0 "" -- "$BPFVM" map pin id "$MID" /sys/fs/bpf/counts
expect "pinned keeps the id" 0 "$ID: tracepoint  name count_syscall" -- "$BPFVM" prog show pinned /sys/fs/bpf/counter

# The tracer ends: its objects go, except what is pinned.
kill -INT "$TRACER"
wait "$TRACER"
TRACER=
expect "tracer printed its map" 0 "@counts[openat]: " -- cat "$TMP/trace.out"
expect "pinned program outlives its loader" 0 "pinned $TMP/pins/counter" -- "$BPFVM" prog show id "$ID"
expect "pinned map outlives its loader" 0 '"key": 257' -- "$BPFVM" map lookup pinned /sys/fs/bpf/counts key 1 1 0 0
if "$BPFVM" link show | grep -q raw_syscalls; then echo "FAIL: link outlived its tracer"; fail=$((fail + 1)); else pass=$((pass + 1)); fi
expect "profile of an ended loader" 255 "not running in any process" -- "$BPFVM" prog profile id "$ID" duration 1 cycles

# Damaged registry records (the pin root is plain files): skipped or reported, never a crash.
printf 'not json' > "$TMP/pins/.registry/prog-999990"
printf '{"id":"x","owner_pid":1}' > "$TMP/pins/.registry/prog-999991"
printf '{"id":999992,"owner_pid":1,"storage":5,"name":"bad"}' > "$TMP/pins/.registry/map-999992"
expect "damaged records are skipped" 0 "name count_syscall" -- "$BPFVM" prog show
expect "a damaged map record is reported" 255 "the registry record of map 999992 is damaged" -- "$BPFVM" map dump id 999992
expect "map show skips it" 0 "name counts" -- "$BPFVM" map show
rm -f "$TMP/pins/.registry/"*-99999?

# Programs pinned without their maps (prog loadall): their loader gone, they open from their pins.
expect "loadall" 0 "" -- "$BPFVM" prog loadall "$PROGS/globals.bpf.o" /sys/fs/bpf/globals
expect "dump a pinned program by name" 0 "map[id:" -- "$BPFVM" prog dump xlated name use_bss
expect "btf of a pinned program" 0 "DATASEC '.bss'" -- "$BPFVM" btf dump prog name use_bss

# Maps the CLI makes.
expect "map create" 0 "" -- "$BPFVM" map create /sys/fs/bpf/q type queue key 0 value 4 entries 4 name q
expect "map push" 0 "" -- "$BPFVM" map push pinned /sys/fs/bpf/q value 1 2 3 4
expect "map enqueue" 0 "" -- "$BPFVM" map enqueue pinned /sys/fs/bpf/q value 5 6 7 8
expect "map peek" 0 "value: 01 02 03 04" -- "$BPFVM" map peek pinned /sys/fs/bpf/q
expect "map pop" 0 "value: 01 02 03 04" -- "$BPFVM" map pop pinned /sys/fs/bpf/q
expect "map dequeue" 0 "value: 05 06 07 08" -- "$BPFVM" map dequeue name q
expect "map create hash" 0 "" -- "$BPFVM" map create /sys/fs/bpf/h type hash key 4 value 8 entries 8 name h
expect "map update hash" 0 "" -- "$BPFVM" map update pinned /sys/fs/bpf/h key 1 0 0 0 value 1 2 3 4 5 6 7 8
expect "map dump plain" 0 "key: 01 00 00 00  value: 01 02 03 04 05 06 07 08
Found 1 element" -- "$BPFVM" map dump pinned /sys/fs/bpf/h
expect "map dump -j" 0 '[{"key":["0x01","0x00","0x00","0x00"],"value":["0x01","0x02"' -- "$BPFVM" -j map dump name h
expect "map update exist of a new key" 254 "update failed" -- "$BPFVM" map update name h key 2 0 0 0 value 0 0 0 0 0 0 0 0 exist
expect "lookup missing" 254 "Not found" -- "$BPFVM" map lookup name h key 9 0 0 0
expect "map freeze" 0 "" -- "$BPFVM" map freeze name h
expect "frozen map refuses updates" 255 "update failed" -- "$BPFVM" map update name h key 1 0 0 0 value 0 0 0 0 0 0 0 0
expect "frozen shows" 0 "frozen" -- "$BPFVM" map show name h
expect "feature probe" 0 "eBPF program_type xdp is available" -- "$BPFVM" feature probe
expect "feature probe helpers" 0 "	- bpf_probe_read_user_str" -- "$BPFVM" feature probe
json_ok "feature probe -j" "$BPFVM" feature probe -j
expect "feature probe cgroup types" 0 "eBPF program_type cgroup_sock_addr is available" -- "$BPFVM" feature probe
expect "feature probe stack_trace maps" 0 "eBPF map_type stack_trace is available" -- "$BPFVM" feature probe
# Against the running kernel: at least 90% of the program types its bpftool finds, bpfvm finds.
if command -v bpftool >/dev/null && [ "$(id -u)" -eq 0 ]; then
  kernel_types=$(bpftool feature probe 2>/dev/null | grep -c "program_type .* is available")
  ours=$("$BPFVM" feature probe | grep -c "program_type .* is available")
  if [ "$kernel_types" -gt 0 ] && [ $((ours * 100)) -ge $((kernel_types * 90)) ]; then pass=$((pass + 1)); else
    echo "FAIL feature probe: bpfvm finds $ours program types, the kernel $kernel_types"; fail=$((fail + 1)); fi
  # And of the map types (which bpftool probes by creating each, local storages with BTF).
  kernel_maps=$(bpftool feature probe 2>/dev/null | grep -c "map_type .* is available")
  ours=$("$BPFVM" feature probe | grep -c "map_type .* is available")
  if [ "$kernel_maps" -gt 0 ] && [ $((ours * 100)) -ge $((kernel_maps * 90)) ]; then pass=$((pass + 1)); else
    echo "FAIL feature probe: bpfvm finds $ours map types, the kernel $kernel_maps"; fail=$((fail + 1)); fi
fi
expect "feature probe maps of kernel objects" 0 "eBPF map_type sockhash is available" -- "$BPFVM" feature probe
expect "feature probe local storages" 0 "eBPF map_type task_storage is available" -- "$BPFVM" feature probe

# Wrong command lines and failures: bpftool's usage text and exit code (255, its -1).
expect "unknown prog command" 255 "Usage: bpfvm prog" -- "$BPFVM" prog frob
expect "bad tag" 255 "can't parse tag" -- "$BPFVM" prog show tag xyz
expect "bad id" 255 "can't parse PROG id" -- "$BPFVM" prog show id abc
expect "short key" 255 "key expected 4 bytes got 2" -- "$BPFVM" map lookup name h key 1 2
expect "no such id" 255 "get by id (999999): No such file or directory" -- "$BPFVM" prog show id 999999
expect "no such name" 255 "no map with name nope" -- "$BPFVM" map dump name nope
expect "unknown map type" 255 "unrecognized map type: frob" -- "$BPFVM" map create /sys/fs/bpf/z type frob key 4 value 4 entries 1 name z
expect "bad btf format" 255 "unrecognized format specifier" -- "$BPFVM" btf dump file "$PROGS/maps.bpf.o" format xml
expect "unknown metric" 255 "invalid metric" -- "$BPFVM" prog profile id "$ID" frobs

# The kernel's bpftool as an oracle: BTF of every test object, raw and as C.
if command -v bpftool >/dev/null && [ -d "$PROGS" ]; then
  for o in "$PROGS"/*.bpf.o; do
    for fmtc in raw c; do
      "$BPFVM" btf dump file "$o" format $fmtc > "$TMP/ours" 2>&1
      bpftool btf dump file "$o" format $fmtc > "$TMP/theirs" 2>&1 || continue
      if cmp -s "$TMP/ours" "$TMP/theirs"; then pass=$((pass + 1)); else
        echo "FAIL btf dump $fmtc $(basename "$o") differs from bpftool's"; diff "$TMP/ours" "$TMP/theirs" | head -5
        fail=$((fail + 1)); fi
    done
  done
  # A raw BTF blob: the running kernel's own (120k types).
  if [ -r /sys/kernel/btf/vmlinux ]; then
    "$BPFVM" btf dump file /sys/kernel/btf/vmlinux > "$TMP/ours" 2>&1
    if bpftool btf dump file /sys/kernel/btf/vmlinux > "$TMP/theirs" 2>/dev/null; then
      if cmp -s "$TMP/ours" "$TMP/theirs"; then pass=$((pass + 1)); else
        echo "FAIL btf dump of vmlinux differs from bpftool's"; fail=$((fail + 1)); fi
    fi
    # As C (vmlinux.h): identical but for one spelling. Debian's libbpf gives 1-byte enums
    # __attribute__((mode(byte))), which keeps their size right (without it a compiler makes them 4
    # bytes); bpftool 7.1 drops it. bpfvm keeps it; that one difference is taken out before comparing.
    "$BPFVM" btf dump file /sys/kernel/btf/vmlinux format c 2>&1 | sed 's/^} __attribute__((mode(byte)));$/};/' \
      > "$TMP/ours"
    if bpftool btf dump file /sys/kernel/btf/vmlinux format c > "$TMP/theirs" 2>/dev/null; then
      if cmp -s "$TMP/ours" "$TMP/theirs"; then pass=$((pass + 1)); else
        echo "FAIL btf dump of vmlinux as C differs from bpftool's:"; diff "$TMP/ours" "$TMP/theirs" | head -10
        fail=$((fail + 1)); fi
    fi
  fi
fi
# A raw BTF file (an object's .BTF section on its own) reads as bpftool reads one.
if llvm-objcopy --dump-section=.BTF="$TMP/raw.btf" "$PROGS/maps.bpf.o" "$TMP/copy.o" 2>/dev/null; then
  expect "raw BTF file" 0 "[2] INT 'int' size=4 bits_offset=0 nr_bits=32 encoding=SIGNED" -- \
    "$BPFVM" btf dump file "$TMP/raw.btf"
fi
printf 'neither' > "$TMP/junk"
expect "junk BTF file" 255 "is neither an ELF object nor BTF" -- "$BPFVM" btf dump file "$TMP/junk"

echo "bpftool commands: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
