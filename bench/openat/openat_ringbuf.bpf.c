// A ring-buffer program on openat (issue 18's target): each call's pid, thread, command and file name,
// one record per call.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct event {
  __u32 pid;
  __u32 tid;
  char comm[16];
  char file[64];
};

struct {
  __uint(type, BPF_MAP_TYPE_RINGBUF);
  __uint(max_entries, 1 << 22);
} events SEC(".maps");

struct openat_args {  // the tracepoint's record (syscalls/sys_enter_openat/format)
  __u64 common;
  __s32 nr;
  __u32 pad;
  __u64 dfd;
  const char* filename;
  __u64 flags;
  __u64 mode;
};

SEC("tracepoint/syscalls/sys_enter_openat")
int on_openat(struct openat_args* ctx) {
  struct event* e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
  if (!e) return 0;
  const __u64 id = bpf_get_current_pid_tgid();
  e->pid = id >> 32;
  e->tid = (__u32)id;
  bpf_get_current_comm(e->comm, sizeof e->comm);
  bpf_probe_read_user_str(e->file, sizeof e->file, ctx->filename);
  bpf_ringbuf_submit(e, 0);
  return 0;
}

char LICENSE[] SEC("license") = "GPL";
