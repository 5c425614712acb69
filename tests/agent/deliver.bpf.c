// signal/signal_deliver with the kernel's record: counts deliveries to the test target by signal, the
// action met (a handler, SIG_DFL, SIG_IGN), SA_RESTART, and the siginfo's code (SI_USER, SI_QUEUE, other).
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, 32);
  __type(key, __u32);
  __type(value, __u64);
} d SEC(".maps");

// Threads of a process killed at once report on several CPUs at once: a lost race to insert counts too.
static void bump(__u32 k) {
  __u64 one = 1, *v = bpf_map_lookup_elem(&d, &k);
  if (!v && bpf_map_update_elem(&d, &k, &one, BPF_NOEXIST) == 0) return;
  if (!v) v = bpf_map_lookup_elem(&d, &k);
  if (v) __sync_fetch_and_add(v, 1);
}

struct deliver { __u64 common; int sig; int err; int code; unsigned long sa_handler; unsigned long sa_flags; };

SEC("tracepoint/signal/signal_deliver")
int on_deliver(struct deliver* e) {
  char c[16];
  bpf_get_current_comm(c, sizeof c);
  if (c[0] != 't' || c[1] != 'a' || c[5] != 't') return 0;  // "target"
  bump(e->sig * 1000 + (e->sa_handler > 1 ? 100 : e->sa_handler == 1 ? 200 : 0) + ((e->sa_flags & 0x10000000) ? 10 : 0) +
       (e->code == -1 ? 1 : e->code == 0 ? 0 : 9));
  return 0;
}

char LICENSE[] SEC("license") = "GPL";
