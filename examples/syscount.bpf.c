// syscount: how many times the traced process tree made each syscall, counted in a hash map keyed by
// the syscall number; bpfvm trace prints the map by syscall name when tracing ends.
//   bpfvm trace examples/syscount.bpf.c -- ls /
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "bpfvm_trace.h"

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 512);
	__type(key, bpfvm_syscall_nr_t);
	__type(value, __u64);
} counts SEC(".maps");

SEC("tracepoint/raw_syscalls/sys_enter")
int count_syscall(struct trace_event_raw_sys_enter *ctx)
{
	bpfvm_syscall_nr_t nr = ctx->id;
	__u64 one = 1, *count = bpf_map_lookup_elem(&counts, &nr);

	if (count)
		__sync_fetch_and_add(count, 1);
	else
		bpf_map_update_elem(&counts, &nr, &one, BPF_NOEXIST);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
