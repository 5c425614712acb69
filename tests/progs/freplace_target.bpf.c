// Programs whose functions the extensions of freplace.bpf.c replace (issue 16: BPF_PROG_TYPE_EXT, judged
// against the program they extend).
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct pair {
  int a, b;
};

__noinline int handle(struct __sk_buff* skb, int x) { return skb->len + x; }
__noinline int take_pair(struct pair* p, long n) { return p ? p->a + (int)n : 0; }
static __noinline int hidden(int x) { return x * 3; }

SEC("tc")
int classify(struct __sk_buff* skb) {
  struct pair p = {1, 2};
  return handle(skb, 1) + take_pair(&p, 2) + hidden((int)skb->len) > 10 ? 0 : 2;
}

SEC("cgroup/connect4")
int connect4(struct bpf_sock_addr* ctx) { return 1; }

char LICENSE[] SEC("license") = "GPL";
