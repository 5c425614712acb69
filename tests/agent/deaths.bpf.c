// Deaths by signal as the kernel reports them: signal_generate (by signal, result, group and a class of
// siginfo code: a fault's, SI_KERNEL's, CLD_* of the SIGCHLD to the parent) and sched_process_exit (100 +
// group_dead) of the test target's threads.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
struct { __uint(type, BPF_MAP_TYPE_HASH); __uint(max_entries, 32); __type(key, __u32); __type(value, __u64); } x SEC(".maps");
static void bump(__u32 k) { __u64 one = 1, *v = bpf_map_lookup_elem(&x, &k); if (!v && !bpf_map_update_elem(&x, &k, &one, BPF_NOEXIST)) return; if (!v) v = bpf_map_lookup_elem(&x, &k); if (v) __sync_fetch_and_add(v, 1); }
static int ours(void) { char c[16]; bpf_get_current_comm(c, sizeof c); return c[0] == 't' && c[1] == 'a' && c[5] == 't'; }
struct gen { __u64 common; int sig; int err; int code; char comm[16]; int pid; int group; int result; };
SEC("tracepoint/signal/signal_generate") int on_gen(struct gen* g) {
  if (!ours()) return 0;
  bump(g->sig * 1000 + g->result * 100 + g->group * 10 + (g->code == -6 ? 1 : g->code == -1 ? 2 : g->code == 0 ? 0 : g->code == 0x80 ? 8 : g->code > 0 ? g->code + 2 : 9));
  return 0;
}
struct exit_rec { __u64 common; char comm[16]; int pid; int prio; _Bool group_dead; };
SEC("tracepoint/sched/sched_process_exit") int on_exit(struct exit_rec* r) {
  if (!ours()) return 0;
  bump(100 + r->group_dead);
  return 0;
}
char LICENSE[] SEC("license") = "GPL";
