// Per-CPU maps: a program counts into its CPU's slot; user space sees every CPU's value.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
  __type(key, __u32);
  __type(value, __u64);
  __uint(max_entries, 2);
} per_cpu_counts SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_HASH);
  __type(key, __u32);
  __type(value, __u32);
  __uint(max_entries, 8);
} per_cpu_bytes SEC(".maps");

// Adds 1 to per_cpu_counts[0] and skb->len to per_cpu_bytes[7]; returns this CPU's count.
SEC("socket")
int count_per_cpu(struct __sk_buff *skb) {
  __u32 k = 0, k7 = 7;
  __u64 *c = bpf_map_lookup_elem(&per_cpu_counts, &k);
  if (!c) return -1;
  *c += 1;
  __u32 *b = bpf_map_lookup_elem(&per_cpu_bytes, &k7);
  if (b) {
    *b += skb->len;
  } else {
    __u32 len = skb->len;
    bpf_map_update_elem(&per_cpu_bytes, &k7, &len, BPF_NOEXIST);
  }
  return *c;
}

char LICENSE[] SEC("license") = "GPL";
