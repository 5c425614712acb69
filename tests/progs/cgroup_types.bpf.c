// Program types bpfvm verifies by the kernel's context and return rules (scripts/probe_contexts):
// socket creation, connect hooks, sock_ops, cgroup_skb egress, and one program that returns a value
// its type may not.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

SEC("cgroup/sock_create")
int only_inet(struct bpf_sock *sk) { return sk->family == 2 || sk->family == 10; }

SEC("cgroup/connect4")
int connect_port(struct bpf_sock_addr *ctx) {
  __u64 cookie = bpf_get_netns_cookie(0);
  return (ctx->user_port != 0 || ctx->user_ip4 != 0 || cookie) ? 1 : 0;
}

SEC("sockops")
int count_ops(struct bpf_sock_ops *ops) { return ops->op < 16; }

SEC("cgroup_skb/egress")
int egress_cn(struct __sk_buff *skb) { return skb->len > 1000 ? 3 : 1; }

SEC("cgroup/sock_create")
int bad_verdict(struct bpf_sock *sk) { return sk->protocol == 6 ? 2 : 1; }

char LICENSE[] SEC("license") = "GPL";
