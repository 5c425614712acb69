// Global (non-static, not inlined) functions as libbpf code writes them: the kernel verifies each once
// against its BTF argument types, bpfvm explores them at each call; both must accept these.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

__noinline int add_len(struct __sk_buff *skb, int x) {
  if (!skb) return 0;
  return skb->len + x;
}

__noinline int read_counter(int *p) { return p ? *p : 0; }

struct {
  __uint(type, BPF_MAP_TYPE_ARRAY);
  __uint(max_entries, 4);
  __type(key, __u32);
  __type(value, __u64);
} totals SEC(".maps");

__noinline int account(__u32 slot, __u64 bytes) {
  __u64 *t = bpf_map_lookup_elem(&totals, &slot);
  if (!t) return -1;
  __sync_fetch_and_add(t, bytes);
  return 0;
}

SEC("socket")
int use_globals(struct __sk_buff *skb) {
  int v = 5;
  int r = add_len(skb, 3) + read_counter(&v);
  if (account(skb->protocol & 3, skb->len)) return 0;
  return r;
}

char LICENSE[] SEC("license") = "GPL";
