; The Internet checksum (RFC 1071) of the memory at r1 (r2 bytes, even), in bpftool's syntax.
r0 = 0
r3 = r1
r3 += r2
loop:
if r1 >= r3 goto fold
r4 = *(u16 *)(r1 +0)
r0 += r4
r1 += 2
goto loop
fold:
r4 = r0
r4 >>= 16
r0 &= 0xffff
r0 += r4
r4 = r0
r4 >>= 16
r0 += r4
r0 ^= 0xffff
r0 &= 0xffff
exit
