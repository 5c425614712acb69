#!/usr/bin/env bash
# make demo: assemble a bundled program, show it as bpftool would, and run it on a packet.
# (Later issues turn this into a traced example end to end.)
set -euo pipefail
BPFVM="${1:-build/bin/bpfvm}"
HERE="$(cd "$(dirname "$0")" && pwd)"
TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT
PACKET="45 00 00 3c 1c 46 40 00 40 06 00 00 ac 10 0a 63 ac 10 0a 0c"  # an IPv4 header, checksum zeroed

echo "== bpfvm asm examples/checksum.s -o checksum.bin"
"$BPFVM" asm "$HERE/checksum.s" -o "$TMP/checksum.bin"
echo "== bpfvm disasm checksum.bin opcodes"
"$BPFVM" disasm "$TMP/checksum.bin" opcodes
echo "== bpfvm exec checksum.bin --mem-hex '$PACKET'"
"$BPFVM" exec "$TMP/checksum.bin" --mem-hex "$PACKET"
echo "(the IPv4 header checksum of that header is 0xb1e6, stored byte-swapped on this little-endian host: 0xe6b1)"
