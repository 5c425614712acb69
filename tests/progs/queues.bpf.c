// Keyless maps from a program: a queue (FIFO), a stack (LIFO) and a bloom filter.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct {
  __uint(type, BPF_MAP_TYPE_QUEUE);
  __uint(max_entries, 3);
  __type(value, __u32);
} fifo SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_STACK);
  __uint(max_entries, 3);
  __type(value, __u32);
} lifo SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_BLOOM_FILTER);
  __uint(max_entries, 100);
  __type(value, __u64);
  __uint(map_extra, 3);
} seen SEC(".maps");

// Pushes 1, 2, 3, 4 (the fourth with BPF_EXIST drops the oldest), then pops twice from each:
// returns fifo pops * 100 + lifo pops, with the pops as two digits each.
SEC("socket")
int queue_and_stack(struct __sk_buff *skb) {
  __u32 v;
  long full = 0;
  for (__u32 i = 1; i <= 3; i++) {
    bpf_map_push_elem(&fifo, &i, 0);
    bpf_map_push_elem(&lifo, &i, 0);
  }
  v = 4;
  full = bpf_map_push_elem(&fifo, &v, 0);  // -E2BIG
  bpf_map_push_elem(&fifo, &v, BPF_EXIST);
  bpf_map_push_elem(&lifo, &v, BPF_EXIST);
  __u32 f1 = 0, f2 = 0, s1 = 0, s2 = 0, peeked = 0;
  bpf_map_peek_elem(&fifo, &peeked);
  bpf_map_pop_elem(&fifo, &f1);
  bpf_map_pop_elem(&fifo, &f2);
  bpf_map_pop_elem(&lifo, &s1);
  bpf_map_pop_elem(&lifo, &s2);
  return (f1 * 10 + f2) * 100000 + (s1 * 10 + s2) * 100 + peeked * 10 + (full == -7);
}

SEC("socket")
int bloom(struct __sk_buff *skb) {
  __u64 a = 42, b = 43;
  bpf_map_push_elem(&seen, &a, BPF_ANY);
  long in = bpf_map_peek_elem(&seen, &a);   // 0
  long out = bpf_map_peek_elem(&seen, &b);  // -ENOENT (almost surely)
  return (in == 0) * 10 + (out == -2);
}

char LICENSE[] SEC("license") = "GPL";
