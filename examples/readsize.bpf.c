// readsize: a log2 histogram of the sizes read() returns in the traced process tree, drawn as
// bpftrace's hist() draws it (a map whose name ends in "hist", indexed by bpfvm_log2_slot()).
//   bpfvm trace examples/readsize.bpf.c -- cat /etc/services
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "bpfvm_trace.h"

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 65);
	__type(key, __u32);
	__type(value, __u64);
} bytes_hist SEC(".maps");

SEC("tracepoint/syscalls/sys_exit_read")
int read_exit(struct trace_event_raw_sys_exit *ctx)
{
	__u32 slot;
	__u64 *count;

	if (ctx->ret < 0)
		return 0;
	slot = bpfvm_log2_slot(ctx->ret);
	count = bpf_map_lookup_elem(&bytes_hist, &slot);
	if (count)
		__sync_fetch_and_add(count, 1);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
