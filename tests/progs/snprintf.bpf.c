// bpf_snprintf through libbpf's BPF_SNPRINTF: the result into a global, its needed size returned.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

char out[32];
char tiny[6];
long tiny_len;

SEC("tc")
int format(struct __sk_buff *skb) {
  long n = BPF_SNPRINTF(out, sizeof(out), "len=%u proto=%x %s", skb->len, skb->protocol, "ok");
  tiny_len = BPF_SNPRINTF(tiny, sizeof(tiny), "%d-%d", 12345, 678);
  return n;
}

char LICENSE[] SEC("license") = "GPL";
