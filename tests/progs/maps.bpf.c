// BTF-defined maps: an array (sizes given), a hash (key and value by type), a pinned-by-name map and
// an array of maps with an initial slot.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct pair { __u32 a; __u64 b; };

struct {
  __uint(type, BPF_MAP_TYPE_ARRAY);
  __uint(key_size, 4);
  __uint(value_size, 8);
  __uint(max_entries, 4);
} counts SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __type(key, __u32);
  __type(value, struct pair);
  __uint(max_entries, 16);
  __uint(map_flags, BPF_F_NO_PREALLOC);
} pairs SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_ARRAY);
  __type(key, __u32);
  __type(value, __u64);
  __uint(max_entries, 1);
  __uint(pinning, LIBBPF_PIN_BY_NAME);
} shared_total SEC(".maps");

struct inner_array {
  __uint(type, BPF_MAP_TYPE_ARRAY);
  __type(key, __u32);
  __type(value, __u32);
  __uint(max_entries, 2);
} inner_a SEC(".maps"), inner_b SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
  __uint(max_entries, 2);
  __type(key, __u32);
  __array(values, struct inner_array);
} outer SEC(".maps") = {
  .values = { [1] = &inner_b },
};

// Counts runs in counts[0] and records the packet length under key 7 of `pairs`; returns the count.
SEC("socket")
int count_runs(struct __sk_buff *skb) {
  __u32 key = 0;
  __u64 *v = bpf_map_lookup_elem(&counts, &key);
  if (!v) return -1;
  *v += 1;
  __u32 k7 = 7;
  struct pair p = {.a = skb->len, .b = *v};
  bpf_map_update_elem(&pairs, &k7, &p, BPF_ANY);
  return (int)*v;
}

// Looks through the outer map: slot 1 holds inner_b, slot 0 is empty. Writes 99 to inner_b[1] and
// returns 1 + 10 * (slot 0 empty).
SEC("socket")
int through_outer(struct __sk_buff *skb) {
  __u32 k0 = 0, k1 = 1, val = 99;
  int ret = 0;
  void *in0 = bpf_map_lookup_elem(&outer, &k0);
  if (!in0) ret += 10;
  void *in1 = bpf_map_lookup_elem(&outer, &k1);
  if (!in1) return -1;
  bpf_map_update_elem(in1, &k1, &val, BPF_ANY);
  __u32 *got = bpf_map_lookup_elem(in1, &k1);
  if (got && *got == 99) ret += 1;
  return ret;
}

// Deletes key 7 of `pairs`: 0 when it was there, -ENOENT (-2) otherwise.
SEC("socket")
int delete_pair(struct __sk_buff *skb) {
  __u32 k7 = 7;
  return bpf_map_delete_elem(&pairs, &k7);
}

SEC("socket")
int add_total(struct __sk_buff *skb) {
  __u32 key = 0;
  __u64 *t = bpf_map_lookup_elem(&shared_total, &key);
  if (!t) return -1;
  __sync_fetch_and_add(t, skb->len);
  return 0;
}

char LICENSE[] SEC("license") = "GPL";
