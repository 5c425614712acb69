// A function reference: bpf_loop's callback, which the object reader turns into a BPF_PSEUDO_FUNC load.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

static long count_cb(__u64 index, void *ctx) {
  *(int *)ctx += (int)index;
  return 0;
}

SEC("socket")
int with_loop(struct __sk_buff *skb) {
  int total = 0;
  bpf_loop(5, count_cb, &total, 0);
  return total;  // 0+1+2+3+4 = 10
}

char LICENSE[] SEC("license") = "GPL";
