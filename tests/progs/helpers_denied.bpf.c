// Helpers a program type may not call, and GPL-only helpers from a non-GPL program.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

// Socket filters may not read arbitrary memory: loading this fails as in the kernel.
SEC("socket")
int not_allowed(struct __sk_buff *skb) {
  char c;
  bpf_probe_read(&c, 1, (void *)(long)skb->len);
  return c;
}

char LICENSE[] SEC("license") = "GPL";
