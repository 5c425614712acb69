/* bpfvm_trace.h: the context structs of the events `bpfvm trace` attaches to, for BPF programs
 * compiled without the kernel's vmlinux.h. The layouts are the kernel's (include/linux/trace_events.h,
 * the syscalls tracepoints' format files), so a program written against vmlinux.h reads the same
 * fields at the same offsets. bpfvm trace adds this header's directory to clang's include path. */
#ifndef BPFVM_TRACE_H
#define BPFVM_TRACE_H

#include <linux/types.h>

/* The fields every tracepoint record starts with. */
struct trace_entry {
	unsigned short type;
	unsigned char flags;
	unsigned char preempt_count;
	int pid;
};

/* tracepoint/raw_syscalls/sys_enter, and the start of every tracepoint/syscalls/sys_enter_<name>:
 * there `id` holds the syscall number in its low 32 bits and args[] the syscall's own arguments. */
struct trace_event_raw_sys_enter {
	struct trace_entry ent;
	long id;
	unsigned long args[6];
	char __data[0];
};

/* tracepoint/raw_syscalls/sys_exit and every tracepoint/syscalls/sys_exit_<name>. */
struct trace_event_raw_sys_exit {
	struct trace_entry ent;
	long id;
	long ret;
	char __data[0];
};

/* Names the struct of the records the program sends through a perf or ring buffer, so that bpfvm trace
 * prints them as a table with a column per member:  BPFVM_RECORD(struct event);
 * (BTF keeps only the types globals and functions use; this global pointer keeps the struct's.) */
#define BPFVM_RECORD(type) type *__bpfvm_record __attribute__((used))

/* The log2 histogram slot of a value, as bpftrace's hist() counts: slot 0 holds 0, slot k holds
 * [2^(k-1), 2^k). bpfvm trace draws a map whose name ends in "hist" (key: slot, value: count) as a
 * histogram. */
static inline __attribute__((always_inline)) __u32 bpfvm_log2_slot(__u64 v)
{
	__u32 slot = 0;

	if (v >= (1ULL << 32)) { v >>= 32; slot += 32; }
	if (v >= (1ULL << 16)) { v >>= 16; slot += 16; }
	if (v >= (1ULL << 8)) { v >>= 8; slot += 8; }
	if (v >= (1ULL << 4)) { v >>= 4; slot += 4; }
	if (v >= (1ULL << 2)) { v >>= 2; slot += 2; }
	if (v >= (1ULL << 1)) { slot += 1; v >>= 1; }
	return v ? slot + 1 : 0;
}

/* A map key or record field of this type prints as the syscall's name in bpfvm trace's output. */
typedef __u32 bpfvm_syscall_nr_t;

#endif
