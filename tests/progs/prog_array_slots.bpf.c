// A program array whose slots are set in its BTF definition (`.values = { [i] = &prog }`): libbpf fills
// them after loading the programs. `chain` tail-calls through the array it is in.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

__u32 hops;

SEC("socket")
int answer(struct __sk_buff *skb) { return 42; }

SEC("socket")
int chain(struct __sk_buff *skb);

struct {
  __uint(type, BPF_MAP_TYPE_PROG_ARRAY);
  __uint(max_entries, 4);
  __uint(key_size, sizeof(__u32));
  __array(values, int(struct __sk_buff *));
} jumps SEC(".maps") = {
    .values = {[1] = (void *)&answer, [3] = (void *)&chain},
};

SEC("socket")
int chain(struct __sk_buff *skb) {
  hops++;
  bpf_tail_call(skb, &jumps, 3);
  return hops;
}

SEC("socket")
int jump_to_answer(struct __sk_buff *skb) {
  bpf_tail_call(skb, &jumps, 1);
  return -1;
}

SEC("socket")
int jump_to_empty(struct __sk_buff *skb) {
  bpf_tail_call(skb, &jumps, 2);
  return -2;
}

char LICENSE[] SEC("license") = "GPL";
