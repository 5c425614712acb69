// A signal sent to a thread while a probe's program runs on it (the target's signalprobe): the kernel
// delivers it on the way back to user space, after the program. The uprobe's program waits for the
// process's handler to have run (it never has: 2) or 300 ms; the delivery is reported (3) and the
// handler's own syscall is traced (4).
#include <linux/bpf.h>
#include <linux/ptrace.h>
#include <bpf/bpf_helpers.h>

struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, 8);
  __type(key, __u32);
  __type(value, __u64);
} c SEC(".maps");

static void bump(__u32 k) {
  __u64 one = 1, *v = bpf_map_lookup_elem(&c, &k);
  if (v) __sync_fetch_and_add(v, 1);
  else bpf_map_update_elem(&c, &k, &one, BPF_NOEXIST);
}

static int is_target(void) {
  char n[16];
  bpf_get_current_comm(n, sizeof n);
  return n[0] == 't' && n[1] == 'a' && n[5] == 't';  // "target"
}

struct spin {
  __u64 flag, start;
  int seen;
};

static long step(__u32 i, void* ctx) {
  struct spin* s = ctx;
  int handled = 0;
  bpf_probe_read_user(&handled, sizeof handled, (void*)s->flag);
  if (handled) {
    s->seen = 1;
    return 1;
  }
  return bpf_ktime_get_ns() - s->start > 300000000ull;
}

SEC("uprobe//proc/self/exe:signal_point")
int probe(struct pt_regs* ctx) {
  struct spin s = {ctx->rdi, bpf_ktime_get_ns(), 0};
  bpf_loop(1 << 23, step, &s, 0);
  bump(s.seen ? 1 : 2);
  return 0;
}

struct deliver { __u64 common; int sig; int err; int code; unsigned long sa_handler; unsigned long sa_flags; };

SEC("tracepoint/signal/signal_deliver")
int delivered(struct deliver* e) {
  if (is_target() && e->sig == 10) bump(3);
  return 0;
}

SEC("tracepoint/syscalls/sys_enter_getppid")
int getppid_entered(void* ctx) {
  if (is_target()) bump(4);
  return 0;
}

char LICENSE[] SEC("license") = "GPL";
