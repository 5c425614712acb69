// A small libbpf-style object: two programs in two sections and a static subprogram in .text.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

static __attribute__((noinline)) int twice(int x) { return x * 2; }

SEC("socket")
int count_bytes(struct __sk_buff *skb) { return twice(skb->len) + 1; }

SEC("xdp")
int pass_all(struct xdp_md *ctx) { return XDP_PASS; }

char LICENSE[] SEC("license") = "GPL";
