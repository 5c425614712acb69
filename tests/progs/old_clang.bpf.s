# An object as clang wrote them before 2018 and samples/bpf loaded them: programs without STT_FUNC
# symbols (a global label, a local one, none), sections named by old prefixes ("socket1", "xdp_prog"),
# and samples/bpf's 28-byte map definitions with a map-in-map whose template is given by index.
	.section	socket1,"ax",@progbits
	.globl	count_packets
count_packets:
	r1 = 0
	*(u32 *)(r10 - 4) = r1
	r2 = r10
	r2 += -4
	r1 = counts ll
	call 1
	r0 = 0
	exit

	.section	xdp_prog,"ax",@progbits
xdp_label:
	r0 = 2
	exit

	.section	"cgroup/sock1","ax",@progbits
	r0 = 1
	exit

	.section	maps,"aw",@progbits
	.globl	counts
counts:
	.long	1, 4, 8, 16, 0, 0, 0
	.globl	by_cpu
by_cpu:
	.long	12, 4, 4, 2, 0, 0, 0

	.section	license,"aw",@progbits
	.asciz	"GPL"
