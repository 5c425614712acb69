// hello: "Hello, World!" through bpf_trace_printk on every openat of the traced command.
//   bpfvm trace examples/hello.bpf.c -- cat /etc/hostname
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "bpfvm_trace.h"

SEC("tracepoint/syscalls/sys_enter_openat")
int hello(struct trace_event_raw_sys_enter *ctx)
{
	bpf_printk("Hello, World!");
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
