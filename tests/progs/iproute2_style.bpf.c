// An object in iproute2's conventions (tc's loader, cilium before BTF maps): struct bpf_elf_map
// definitions with an id, pinning and map-in-map by id; static programs in "classifier" and "action"
// sections (iproute2 and cilium/ebpf load them; libbpf refuses them); and one program that calls an
// extern no loader can resolve, which must not hide the others.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct bpf_elf_map {
  unsigned int type, size_key, size_value, max_elem, flags, id, pinning, inner_id, inner_idx;
};

#define PIN_GLOBAL_NS 2

struct bpf_elf_map inner_tpl SEC("maps") = {
  .type = BPF_MAP_TYPE_ARRAY, .size_key = 4, .size_value = 8, .max_elem = 4, .id = 7, .inner_idx = 0xffffffff,
};
struct bpf_elf_map outer SEC("maps") = {
  .type = BPF_MAP_TYPE_ARRAY_OF_MAPS, .size_key = 4, .size_value = 4, .max_elem = 2, .id = 9, .inner_id = 7,
};
struct bpf_elf_map slot_one SEC("maps") = {
  .type = BPF_MAP_TYPE_ARRAY, .size_key = 4, .size_value = 8, .max_elem = 4, .pinning = PIN_GLOBAL_NS,
  .inner_id = 9, .inner_idx = 1,
};

struct bpf_elf_map jumps SEC("maps") = {
  .type = BPF_MAP_TYPE_PROG_ARRAY, .size_key = 4, .size_value = 4, .max_elem = 4, .id = 2,
};

extern int not_a_helper(int);

// A tail call target in slot 3 of the program array with id 2, in a section tc names.
SEC("2/3") int tail_target(struct __sk_buff *skb) { return 7; }
SEC("from-netdev") int entry(struct __sk_buff *skb) {
  bpf_tail_call(skb, &jumps, 3);
  return 0;
}

SEC("classifier") static int cls_main(struct __sk_buff *skb) {
  __u32 k = 1;
  void *inner = bpf_map_lookup_elem(&outer, &k);
  if (!inner) return 0;
  __u64 *v = bpf_map_lookup_elem(inner, &k);
  return v ? (int)*v : 1;
}

SEC("action") static int act_main(struct __sk_buff *skb) { return skb->len > 100; }

SEC("classifier/broken") int uses_extern(struct __sk_buff *skb) { return not_a_helper(skb->len); }

char LICENSE[] SEC("license") = "GPL";
