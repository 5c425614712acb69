// execsnoop and opensnoop in the manner of libbpf-tools: tracepoints on sys_enter_execve (the file name
// and up to 20 arguments copied from user memory into one event, a bounded loop with a variable
// offset into the event's buffer) and on sys_enter_openat (a per-thread start record), events through
// a perf event array.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#define ARGSIZE 128
#define TOTAL_MAX_ARGS 20
#define FULL_MAX_ARGS_ARR (TOTAL_MAX_ARGS * ARGSIZE)
#define LAST_ARG (FULL_MAX_ARGS_ARR - ARGSIZE)
#define NAME_MAX 255

struct exec_event {
  __u32 pid;
  __u32 ppid;
  __u32 uid;
  int retval;
  int args_count;
  unsigned int args_size;
  char comm[16];
  char args[FULL_MAX_ARGS_ARR];
};

struct open_args {
  const char *fname;
  int flags;
};

struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, 10240);
  __type(key, __u32);
  __type(value, struct exec_event);
} execs SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, 10240);
  __type(key, __u32);
  __type(value, struct open_args);
} opens SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY);
  __uint(key_size, sizeof(__u32));
  __uint(value_size, sizeof(__u32));
} events SEC(".maps");

const volatile __u32 targ_uid = (__u32)-1;
static const struct exec_event empty_event = {};

struct sys_enter_execve_ctx {
  __u64 common;
  long id;
  const char *filename;
  const char *const *argv;
  const char *const *envp;
};

SEC("tracepoint/syscalls/sys_enter_execve")
int tracepoint__syscalls__sys_enter_execve(struct sys_enter_execve_ctx *ctx) {
  __u64 id = bpf_get_current_pid_tgid();
  __u32 pid = id >> 32;
  __u32 uid = (__u32)bpf_get_current_uid_gid();
  if (targ_uid != (__u32)-1 && targ_uid != uid) return 0;
  if (bpf_map_update_elem(&execs, &pid, &empty_event, BPF_NOEXIST)) return 0;
  struct exec_event *event = bpf_map_lookup_elem(&execs, &pid);
  if (!event) return 0;
  event->pid = pid;
  event->uid = uid;
  event->args_count = 0;
  event->args_size = 0;
  long ret = bpf_probe_read_user_str(event->args, ARGSIZE, ctx->filename);
  if (ret < 0) return 0;
  if (ret <= ARGSIZE) {
    event->args_size += ret;
  } else {
    event->args[0] = '\0';  // write an empty string
    event->args_size++;
  }
  event->args_count++;
#pragma unroll
  for (int i = 1; i < TOTAL_MAX_ARGS; i++) {
    const char *argp = 0;
    bpf_probe_read_user(&argp, sizeof(argp), &ctx->argv[i]);
    if (!argp) return 0;
    if (event->args_size > LAST_ARG) return 0;
    ret = bpf_probe_read_user_str(&event->args[event->args_size], ARGSIZE, argp);
    if (ret > ARGSIZE) return 0;
    event->args_count++;
    event->args_size += ret;
  }
  // There may be more arguments: mark the event as cut short.
  event->args_count++;
  bpf_get_current_comm(&event->comm, sizeof(event->comm));
  __u64 len = sizeof(*event) - FULL_MAX_ARGS_ARR + event->args_size;
  if (len <= sizeof(*event)) bpf_perf_event_output(ctx, &events, BPF_F_CURRENT_CPU, event, len);
  bpf_map_delete_elem(&execs, &pid);
  return 0;
}

struct sys_enter_openat_ctx {
  __u64 common;
  long id;
  long dfd;
  const char *filename;
  long flags;
  long mode;
};

SEC("tracepoint/syscalls/sys_enter_openat")
int tracepoint__syscalls__sys_enter_openat(struct sys_enter_openat_ctx *ctx) {
  __u32 tid = (__u32)bpf_get_current_pid_tgid();
  struct open_args args = {.fname = (const char *)ctx->filename, .flags = (int)ctx->flags};
  bpf_map_update_elem(&opens, &tid, &args, BPF_ANY);
  return 0;
}

char LICENSE[] SEC("license") = "GPL";
