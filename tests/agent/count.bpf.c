// Counts calls and returns of the target's functions; reads memory through a bad pointer once per call
// (the helper fails, the program and the process go on).
#include <linux/bpf.h>
#include <linux/ptrace.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, 16);
  __type(key, __u32);
  __type(value, __u64);
} calls SEC(".maps");

static void bump(__u32 k) {
  __u64 zero = 0, *v = bpf_map_lookup_elem(&calls, &k);
  if (!v) {
    bpf_map_update_elem(&calls, &k, &zero, BPF_NOEXIST);
    v = bpf_map_lookup_elem(&calls, &k);
  }
  if (v) __sync_fetch_and_add(v, 1);
}

SEC("uprobe//proc/self/exe:add_one")
int BPF_KPROBE(on_add, int x) {
  bump(1);
  return 0;
}

SEC("uretprobe//proc/self/exe:add_one")
int BPF_KRETPROBE(on_add_ret, int ret) {
  char buf[8];
  bump(2);
  if (bpf_probe_read_user(buf, sizeof buf, (void*)8) < 0) bump(4);  // a fault, reported as an error
  return 0;
}

SEC("uprobe//proc/self/exe:work")
int BPF_KPROBE(on_work, long a, long b) {
  if (a == 3) bump(3);
  return 0;
}

char LICENSE[] SEC("license") = "GPL";
