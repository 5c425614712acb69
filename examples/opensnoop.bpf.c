// opensnoop: every open of the traced process tree, as BCC's opensnoop shows it (TIME(s) COMM PID FILE),
// from a perf buffer. BPFVM_RECORD names the records' struct: bpfvm trace prints one row per record with
// a column per member.
//   bpfvm trace examples/opensnoop.bpf.c -- sh -c 'cat /etc/hostname; ls /'
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "bpfvm_trace.h"

struct event {
	char comm[16];
	__u32 pid;
	char file[128];
};
BPFVM_RECORD(struct event);

struct {
	__uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, sizeof(__u32));
} events SEC(".maps");

static __always_inline int submit(void *ctx, const char *filename)
{
	struct event e = {};

	e.pid = bpf_get_current_pid_tgid() >> 32;
	bpf_get_current_comm(&e.comm, sizeof(e.comm));
	bpf_probe_read_user_str(&e.file, sizeof(e.file), filename);
	bpf_perf_event_output(ctx, &events, BPF_F_CURRENT_CPU, &e, sizeof(e));
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_open")
int trace_open(struct trace_event_raw_sys_enter *ctx)
{
	return submit(ctx, (const char *)ctx->args[0]);
}

SEC("tracepoint/syscalls/sys_enter_openat")
int trace_openat(struct trace_event_raw_sys_enter *ctx)
{
	return submit(ctx, (const char *)ctx->args[1]);
}

char LICENSE[] SEC("license") = "GPL";
