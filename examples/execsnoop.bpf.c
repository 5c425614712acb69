// execsnoop: every exec of the traced process tree, as BCC's execsnoop shows it: the command, its
// pid, execve's return value and its arguments (the first few, from the tracee's memory).
//   bpfvm trace examples/execsnoop.bpf.c -- sh -c 'ls /; true'
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "bpfvm_trace.h"

#define ARGSIZE 48
#define MAXARGS 6

struct event {
	char comm[16];
	__u32 pid;
	int ret;
	char args[MAXARGS * ARGSIZE];
};
BPFVM_RECORD(struct event);

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u32);
	__type(value, struct event);
} execs SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 64 * 1024);
} events SEC(".maps");

static const struct event empty;

SEC("tracepoint/syscalls/sys_enter_execve")
int enter_execve(struct trace_event_raw_sys_enter *ctx)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	const char *const *argv = (const char *const *)ctx->args[1];
	struct event *e;
	unsigned int off = 0;

	if (bpf_map_update_elem(&execs, &tid, &empty, BPF_ANY))
		return 0;
	e = bpf_map_lookup_elem(&execs, &tid);
	if (!e)
		return 0;
	e->pid = bpf_get_current_pid_tgid() >> 32;
	/* The arguments, joined by spaces. */
	for (int i = 0; i < MAXARGS; i++) {
		const char *arg = 0;
		long n;

		if (bpf_probe_read_user(&arg, sizeof(arg), &argv[i]) || !arg)
			break;
		if (off > sizeof(e->args) - ARGSIZE)
			break;
		n = bpf_probe_read_user_str(&e->args[off], ARGSIZE, arg);
		if (n <= 0 || n > ARGSIZE)
			break;
		off += n;
		e->args[off - 1] = ' ';
	}
	if (off > 0 && off <= sizeof(e->args))
		e->args[off - 1] = 0;
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_execve")
int exit_execve(struct trace_event_raw_sys_exit *ctx)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	struct event *e = bpf_map_lookup_elem(&execs, &tid);

	if (!e)
		return 0;
	e->ret = ctx->ret;
	bpf_get_current_comm(&e->comm, sizeof(e->comm));
	bpf_ringbuf_output(&events, e, sizeof(*e), 0);
	bpf_map_delete_elem(&execs, &tid);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
