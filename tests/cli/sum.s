mov %r0, 0
jeq %r2, 0, exit
loop:
ldxb %r3, [%r1]
add %r0, %r3
add %r1, 1
sub %r2, 1
jne %r2, 0, loop
exit
