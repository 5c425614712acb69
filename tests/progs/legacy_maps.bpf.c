// A map defined the pre-BTF way: struct bpf_map_def in SEC("maps"). libbpf 1.x no longer reads these;
// bpfvm does, as older loaders did.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct bpf_map_def_legacy {
  unsigned int type, key_size, value_size, max_entries, map_flags;
};

struct bpf_map_def_legacy hits SEC("maps") = {
  .type = BPF_MAP_TYPE_ARRAY, .key_size = 4, .value_size = 4, .max_entries = 2,
};
struct bpf_map_def_legacy seen SEC("maps") = {
  .type = BPF_MAP_TYPE_HASH, .key_size = 4, .value_size = 4, .max_entries = 8,
};

SEC("socket")
int legacy(struct __sk_buff *skb) {
  __u32 k = 1, one = 1;
  __u32 *h = bpf_map_lookup_elem(&hits, &k);
  if (!h) return -1;
  *h += 1;
  bpf_map_update_elem(&seen, &k, &one, BPF_ANY);
  return *h;
}

char LICENSE[] SEC("license") = "GPL";
__u32 _version SEC("version") = 0x060100;
