// Socket helpers as datapaths use them (cilium's service lookups, tc's sk_assign, cgroup_skb reading the
// packet's socket): the lookups with the packet's own addresses, the packet's socket, casts and
// releases. The kernel oracle compares results: no socket listens on the test's addresses, and a test
// run's packet belongs to the kernel's dummy socket.
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/in.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

// The IPv4 tuple of the packet (addresses from its header, ports fixed), or -1 when it has none.
static __always_inline int tuple_of(void *data, void *end, struct bpf_sock_tuple *t) {
  struct iphdr *ip = data + ETH_HLEN;
  if ((void *)(ip + 1) > end) return -1;
  t->ipv4.saddr = ip->saddr;
  t->ipv4.daddr = ip->daddr;
  t->ipv4.sport = bpf_htons(40000);
  t->ipv4.dport = bpf_htons(9);
  return 0;
}

SEC("tc")
int tc_lookup(struct __sk_buff *skb) {
  struct bpf_sock_tuple t = {};
  if (tuple_of((void *)(long)skb->data, (void *)(long)skb->data_end, &t)) return -1;
  int found = 0;
  struct bpf_sock *sk = bpf_sk_lookup_tcp(skb, &t, sizeof(t.ipv4), BPF_F_CURRENT_NETNS, 0);
  if (sk) {
    found |= 1 | sk->state << 8;
    bpf_sk_release(sk);
  }
  sk = bpf_sk_lookup_udp(skb, &t, sizeof(t.ipv4), BPF_F_CURRENT_NETNS, 0);
  if (sk) {
    found |= 2;
    bpf_sk_release(sk);
  }
  struct bpf_sock *skc = bpf_skc_lookup_tcp(skb, &t, sizeof(t.ipv4), BPF_F_CURRENT_NETNS, 0);
  if (skc) {
    struct bpf_sock *full = bpf_sk_fullsock(skc);
    if (full) found |= 4 | full->protocol << 16;
    if (bpf_sk_assign(skb, skc, 0) == 0) found |= 8;
    bpf_sk_release(skc);
  }
  // A tuple size no family has: no lookup, NULL.
  sk = bpf_sk_lookup_tcp(skb, &t, 5, BPF_F_CURRENT_NETNS, 0);
  if (sk) {
    found |= 16;
    bpf_sk_release(sk);
  }
  return 100 + found;
}

SEC("xdp")
int xdp_lookup(struct xdp_md *ctx) {
  struct bpf_sock_tuple t = {};
  if (tuple_of((void *)(long)ctx->data, (void *)(long)ctx->data_end, &t)) return XDP_ABORTED;
  struct bpf_sock *sk = bpf_sk_lookup_udp(ctx, &t, sizeof(t.ipv4), BPF_F_CURRENT_NETNS, 0);
  if (sk) {
    bpf_sk_release(sk);
    return XDP_DROP;
  }
  return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";

SEC("tc")
int tc_own(struct __sk_buff *skb) {
  struct bpf_sock *sk = skb->sk;
  if (!sk) return 1;
  struct bpf_sock *full = bpf_sk_fullsock(sk);
  if (!full) return 2;
  int r = 3 | full->family << 4 | full->state << 8 | full->type << 12 | full->protocol << 16;
  if (bpf_tcp_sock(sk)) r |= 1 << 24;
  if (bpf_get_listener_sock(sk)) r |= 1 << 25;
  if (full->mark || full->priority || full->bound_dev_if) r |= 1 << 26;
  if (full->src_ip4 || full->dst_ip4 || full->src_port || full->dst_port) r |= 1 << 27;
  if (full->rx_queue_mapping != -1) r |= 1 << 28;
  long assigned = bpf_sk_assign(skb, sk, 0);
  if (assigned) r ^= (int)(-assigned) << 18;
  return r;
}

// The packet's socket as the kernel's test run makes it (family and addresses from the packet).
SEC("tc")
int tc_own_addresses(struct __sk_buff *skb) {
  struct bpf_sock *sk = skb->sk;
  if (!sk) return 1;
  return sk->src_ip4 ^ sk->dst_ip4 ^ sk->src_ip6[0] ^ sk->dst_ip6[3] ^ sk->family;
}

// The syncookie helpers need a listening TCP socket; the packet's is not one.
SEC("tc")
int tc_syncookie(struct __sk_buff *skb) {
  struct bpf_sock *sk = skb->sk;
  if (!sk) return 1;
  void *data = (void *)(long)skb->data, *end = (void *)(long)skb->data_end;
  if (data + ETH_HLEN + 40 > end) return 2;
  long a = bpf_tcp_check_syncookie(sk, data + ETH_HLEN, 20, data + ETH_HLEN + 20, 20);
  long b = bpf_tcp_gen_syncookie(sk, data + ETH_HLEN, 20, data + ETH_HLEN + 20, 20);
  return (int)(-a) | (int)(-b) << 8;
}
