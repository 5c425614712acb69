// System call capture in the manner of falco's modern probe: a raw tracepoint on sys_enter filters
// on an interest set, copies the file name argument from user memory into a per-CPU scratch buffer,
// and sends a header plus the bounded string through a ring buffer; a tracepoint program counts
// execve calls per process.
#include <linux/bpf.h>
#include <linux/ptrace.h>
#include <bpf/bpf_helpers.h>

#define MAX_PATH 256
#define SYS_OPENAT 257
#define SYS_EXECVE 59

struct event_header {
  __u64 ts;
  __u64 pid_tgid;
  __u64 uid_gid;
  __u32 syscall;
  __u32 len;
  char comm[16];
};

struct scratch {
  struct event_header h;
  char path[MAX_PATH];
};

struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
  __uint(max_entries, 1);
  __type(key, __u32);
  __type(value, struct scratch);
} scratch_map SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_ARRAY);
  __uint(max_entries, 512);
  __type(key, __u32);
  __type(value, __u8);
} interesting SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_RINGBUF);
  __uint(max_entries, 1 << 16);
} events SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, 1024);
  __type(key, __u32);
  __type(value, __u64);
} execs SEC(".maps");

const volatile __u32 target_tgid = 0;

SEC("raw_tracepoint/sys_enter")
int sys_enter(struct bpf_raw_tracepoint_args *ctx) {
  __u32 id = ctx->args[1];
  __u8 *want = bpf_map_lookup_elem(&interesting, &id);
  if (!want || !*want) return 0;
  const __u64 pid_tgid = bpf_get_current_pid_tgid();
  if (target_tgid && (pid_tgid >> 32) != target_tgid) return 0;

  __u32 zero = 0;
  struct scratch *s = bpf_map_lookup_elem(&scratch_map, &zero);
  if (!s) return 0;
  s->h.ts = bpf_ktime_get_ns();
  s->h.pid_tgid = pid_tgid;
  s->h.uid_gid = bpf_get_current_uid_gid();
  s->h.syscall = id;
  bpf_get_current_comm(s->h.comm, sizeof(s->h.comm));

  struct pt_regs *regs = (struct pt_regs *)ctx->args[0];
  unsigned long name = 0;
  if (id == SYS_OPENAT) {
    bpf_probe_read_kernel(&name, sizeof(name), &regs->rsi);
  } else {
    bpf_probe_read_kernel(&name, sizeof(name), &regs->rdi);
  }
  long n = bpf_probe_read_user_str(s->path, sizeof(s->path), (const void *)name);
  if (n < 0) n = 0;
  s->h.len = n;
  // The record's size must be bounded for the verifier: the header plus at most MAX_PATH bytes.
  __u64 size = sizeof(s->h) + (n & (MAX_PATH - 1));
  bpf_ringbuf_output(&events, s, size, 0);
  return 0;
}

struct sys_enter_execve_args {
  __u64 common;
  long id;
  const char *filename;
  const char *const *argv;
  const char *const *envp;
};

SEC("tracepoint/syscalls/sys_enter_execve")
int count_execve(struct sys_enter_execve_args *ctx) {
  __u32 tgid = bpf_get_current_pid_tgid() >> 32;
  __u64 one = 1;
  __u64 *n = bpf_map_lookup_elem(&execs, &tgid);
  if (n) {
    __sync_fetch_and_add(n, 1);
  } else {
    bpf_map_update_elem(&execs, &tgid, &one, BPF_NOEXIST);
  }
  return ctx->filename != 0;
}

char LICENSE[] SEC("license") = "GPL";
