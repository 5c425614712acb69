// A tc datapath in the manner of cilium: IPv4/IPv6 parse, a connection tracking table (LRU hash) with
// timestamps, a policy lookup by longest prefix (LPM trie) for new connections, per-CPU drop/forward
// metrics by reason, the skb mark set for the stack, and a tail call into the egress policy program.
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/pkt_cls.h>
#include <linux/tcp.h>
#include <linux/udp.h>
#include <stddef.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

enum reason { REASON_FORWARD, REASON_POLICY_DENY, REASON_MALFORMED, REASON_CT_NEW, REASON_MAX };

struct ct_key {
  __be32 saddr[4];
  __be32 daddr[4];
  __be16 sport;
  __be16 dport;
  __u8 nexthdr;
  __u8 family;
  __u16 pad;
};

struct ct_entry {
  __u64 last_seen;
  __u32 packets;
  __u16 flags;
  __u16 identity;
};

struct lpm_v4_key {
  __u32 prefixlen;
  __be32 addr;
};

struct policy {
  __u16 identity;
  __u8 allow;
  __u8 pad;
  __u32 proxy_port;
};

struct {
  __uint(type, BPF_MAP_TYPE_LRU_HASH);
  __uint(max_entries, 65536);
  __type(key, struct ct_key);
  __type(value, struct ct_entry);
} ct_map SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_LPM_TRIE);
  __uint(max_entries, 1024);
  __uint(map_flags, BPF_F_NO_PREALLOC);
  __type(key, struct lpm_v4_key);
  __type(value, struct policy);
} ipcache SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
  __uint(max_entries, REASON_MAX);
  __type(key, __u32);
  __type(value, __u64);
} metrics SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_PROG_ARRAY);
  __uint(max_entries, 4);
  __type(key, __u32);
  __type(value, __u32);
} policy_progs SEC(".maps");

static __always_inline int count(enum reason r, int verdict) {
  __u32 key = r;
  __u64 *v = bpf_map_lookup_elem(&metrics, &key);
  if (v) *v += 1;
  return verdict;
}

static __always_inline int ports(void *l4, void *end, __u8 proto, struct ct_key *k) {
  if (proto == IPPROTO_TCP) {
    struct tcphdr *th = l4;
    if ((void *)(th + 1) > end) return -1;
    k->sport = th->source;
    k->dport = th->dest;
  } else if (proto == IPPROTO_UDP) {
    struct udphdr *uh = l4;
    if ((void *)(uh + 1) > end) return -1;
    k->sport = uh->source;
    k->dport = uh->dest;
  }
  return 0;
}

SEC("tc")
int from_container(struct __sk_buff *skb) {
  void *data = (void *)(long)skb->data;
  void *data_end = (void *)(long)skb->data_end;
  struct ethhdr *eth = data;
  if ((void *)(eth + 1) > data_end) return count(REASON_MALFORMED, TC_ACT_SHOT);

  struct ct_key key = {};
  __be32 dst4 = 0;
  if (eth->h_proto == bpf_htons(ETH_P_IP)) {
    struct iphdr *ip = (void *)(eth + 1);
    if ((void *)(ip + 1) > data_end) return count(REASON_MALFORMED, TC_ACT_SHOT);
    key.family = 4;
    key.saddr[0] = ip->saddr;
    key.daddr[0] = ip->daddr;
    key.nexthdr = ip->protocol;
    dst4 = ip->daddr;
    void *l4 = (void *)ip + ip->ihl * 4;
    if (ports(l4, data_end, key.nexthdr, &key)) return count(REASON_MALFORMED, TC_ACT_SHOT);
  } else if (eth->h_proto == bpf_htons(ETH_P_IPV6)) {
    struct ipv6hdr *ip6 = (void *)(eth + 1);
    if ((void *)(ip6 + 1) > data_end) return count(REASON_MALFORMED, TC_ACT_SHOT);
    key.family = 6;
    __builtin_memcpy(key.saddr, &ip6->saddr, 16);
    __builtin_memcpy(key.daddr, &ip6->daddr, 16);
    key.nexthdr = ip6->nexthdr;
    if (ports(ip6 + 1, data_end, key.nexthdr, &key)) return count(REASON_MALFORMED, TC_ACT_SHOT);
  } else {
    return TC_ACT_OK;
  }

  const __u64 now = bpf_ktime_get_ns();
  struct ct_entry *ct = bpf_map_lookup_elem(&ct_map, &key);
  if (ct) {
    ct->last_seen = now;
    __sync_fetch_and_add(&ct->packets, 1);
    skb->mark = ct->identity;
    return count(REASON_FORWARD, TC_ACT_OK);
  }

  // A new connection: the destination's policy decides.
  struct ct_entry fresh = {.last_seen = now, .packets = 1};
  if (key.family == 4) {
    struct lpm_v4_key lk = {.prefixlen = 32, .addr = dst4};
    struct policy *p = bpf_map_lookup_elem(&ipcache, &lk);
    if (!p || !p->allow) return count(REASON_POLICY_DENY, TC_ACT_SHOT);
    fresh.identity = p->identity;
    if (p->proxy_port) skb->cb[0] = p->proxy_port;
  }
  bpf_map_update_elem(&ct_map, &key, &fresh, BPF_NOEXIST);
  skb->mark = fresh.identity;
  count(REASON_CT_NEW, 0);
  bpf_tail_call(skb, &policy_progs, 0);
  return count(REASON_FORWARD, TC_ACT_OK);
}

// The egress policy: drops traffic to a port the identity may not reach.
SEC("tc")
int egress_policy(struct __sk_buff *skb) {
  if (skb->mark == 0 && skb->len > 1500) return count(REASON_POLICY_DENY, TC_ACT_SHOT);
  skb->tc_index = 1;
  return TC_ACT_OK;
}

struct nat_entry {
  __be32 to_addr;
  __be16 to_port;
  __u16 ifindex;
};

struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, 1024);
  __type(key, __be32);
  __type(value, struct nat_entry);
} snat SEC(".maps");

// Source NAT as cilium's nodeport path does it: rewrite the source address and port with
// bpf_skb_store_bytes, fix the IPv4 and L4 checksums (the address is in the pseudo-header), redirect.
SEC("tc")
int snat_egress(struct __sk_buff *skb) {
  void *data = (void *)(long)skb->data;
  void *data_end = (void *)(long)skb->data_end;
  struct ethhdr *eth = data;
  if ((void *)(eth + 1) > data_end || eth->h_proto != bpf_htons(ETH_P_IP)) return TC_ACT_OK;
  struct iphdr *ip = (void *)(eth + 1);
  if ((void *)(ip + 1) > data_end || ip->ihl != 5) return TC_ACT_OK;
  const __u8 proto = ip->protocol;
  if (proto != IPPROTO_TCP && proto != IPPROTO_UDP) return TC_ACT_OK;
  __be32 saddr = ip->saddr;
  struct nat_entry *nat = bpf_map_lookup_elem(&snat, &saddr);
  if (!nat) return TC_ACT_OK;
  const __be32 to_addr = nat->to_addr;
  const __be16 to_port = nat->to_port;
  const __u16 ifindex = nat->ifindex;
  const __u32 l4 = ETH_HLEN + sizeof(struct iphdr);
  const __u32 l4_check = l4 + (proto == IPPROTO_TCP ? offsetof(struct tcphdr, check) : offsetof(struct udphdr, check));
  __be16 old_port;
  if (bpf_skb_load_bytes(skb, l4, &old_port, sizeof(old_port))) return TC_ACT_SHOT;
  if (bpf_skb_store_bytes(skb, ETH_HLEN + offsetof(struct iphdr, saddr), &to_addr, 4, 0)) return TC_ACT_SHOT;
  if (bpf_l3_csum_replace(skb, ETH_HLEN + offsetof(struct iphdr, check), saddr, to_addr, 4)) return TC_ACT_SHOT;
  const __u64 mangled = proto == IPPROTO_UDP ? BPF_F_MARK_MANGLED_0 : 0;
  if (bpf_l4_csum_replace(skb, l4_check, saddr, to_addr, BPF_F_PSEUDO_HDR | mangled | 4)) return TC_ACT_SHOT;
  if (bpf_skb_store_bytes(skb, l4, &to_port, 2, 0)) return TC_ACT_SHOT;
  if (bpf_l4_csum_replace(skb, l4_check, old_port, to_port, mangled | 2)) return TC_ACT_SHOT;
  return bpf_redirect(ifindex, 0);
}

char LICENSE[] SEC("license") = "GPL";
