mov %r0, 1
mov %r11, 2
exit
