// An L4 load balancer in the manner of katran: XDP parse of Ethernet/IPv4/IPv6 and TCP/UDP, a VIP
// table, a per-flow LRU cache, a consistent-hashing ring per VIP, per-VIP per-CPU counters, MAC and
// address rewrite with an incremental checksum, XDP_TX.
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/tcp.h>
#include <linux/udp.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#define RING_SIZE 64
#define MAX_VIPS 512
#define MAX_REALS 1024

struct vip_key {
  __be32 addr[4];
  __be16 port;
  __u8 proto;
  __u8 family;
};

struct vip_meta {
  __u32 flags;
  __u32 vip_num;
};

struct real_def {
  __be32 dst[4];
  __u8 mac[6];
  __u8 flags;
  __u8 pad;
};

struct flow_key {
  __be32 src[4];
  __be32 dst[4];
  __be16 sport;
  __be16 dport;
  __u8 proto;
  __u8 family;
  __u16 pad;
};

struct lb_stats {
  __u64 packets;
  __u64 bytes;
};

struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, MAX_VIPS);
  __type(key, struct vip_key);
  __type(value, struct vip_meta);
} vip_map SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_ARRAY);
  __uint(max_entries, MAX_VIPS * RING_SIZE);
  __type(key, __u32);
  __type(value, __u32);
} ch_rings SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_ARRAY);
  __uint(max_entries, MAX_REALS);
  __type(key, __u32);
  __type(value, struct real_def);
} reals SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_LRU_HASH);
  __uint(max_entries, 4096);
  __type(key, struct flow_key);
  __type(value, __u32);
} lru_cache SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
  __uint(max_entries, MAX_VIPS);
  __type(key, __u32);
  __type(value, struct lb_stats);
} stats SEC(".maps");

static __always_inline __u32 rol32(__u32 w, unsigned s) { return (w << s) | (w >> (32 - s)); }

// A jhash-like mix of the flow's words.
static __always_inline __u32 flow_hash(const struct flow_key *k) {
  __u32 a = 0xdeadbeef, b = 0xdeadbeef, c = 0xdeadbeef;
  a += k->src[0] ^ k->src[3];
  b += k->dst[0] ^ k->dst[3];
  c += ((__u32)k->sport << 16) | k->dport;
  c ^= b;
  c -= rol32(b, 14);
  a ^= c;
  a -= rol32(c, 11);
  b ^= a;
  b -= rol32(a, 25);
  c ^= b;
  c -= rol32(b, 16);
  return c ^ k->proto;
}

static __always_inline __u16 csum_fold(__u32 csum) {
  csum = (csum & 0xffff) + (csum >> 16);
  csum = (csum & 0xffff) + (csum >> 16);
  return (__u16)~csum;
}

// The ports of a TCP or UDP header after `l4`, or -1.
static __always_inline int parse_ports(void *l4, void *data_end, __u8 proto, struct flow_key *fk) {
  if (proto == IPPROTO_TCP) {
    struct tcphdr *th = l4;
    if ((void *)(th + 1) > data_end) return -1;
    fk->sport = th->source;
    fk->dport = th->dest;
    return 0;
  }
  if (proto == IPPROTO_UDP) {
    struct udphdr *uh = l4;
    if ((void *)(uh + 1) > data_end) return -1;
    fk->sport = uh->source;
    fk->dport = uh->dest;
    return 0;
  }
  return -1;
}

SEC("xdp")
int balancer_ingress(struct xdp_md *ctx) {
  void *data = (void *)(long)ctx->data;
  void *data_end = (void *)(long)ctx->data_end;
  struct ethhdr *eth = data;
  if ((void *)(eth + 1) > data_end) return XDP_DROP;

  struct flow_key fk = {};
  struct iphdr *iph = 0;
  if (eth->h_proto == bpf_htons(ETH_P_IP)) {
    iph = (void *)(eth + 1);
    if ((void *)(iph + 1) > data_end) return XDP_DROP;
    if (iph->ihl != 5) return XDP_PASS;  // options go to the slow path
    if (iph->frag_off & bpf_htons(0x3fff)) return XDP_PASS;
    fk.family = 4;
    fk.src[0] = iph->saddr;
    fk.dst[0] = iph->daddr;
    fk.proto = iph->protocol;
    if (parse_ports(iph + 1, data_end, fk.proto, &fk)) return XDP_PASS;
  } else if (eth->h_proto == bpf_htons(ETH_P_IPV6)) {
    struct ipv6hdr *ip6 = (void *)(eth + 1);
    if ((void *)(ip6 + 1) > data_end) return XDP_DROP;
    fk.family = 6;
    __builtin_memcpy(fk.src, &ip6->saddr, 16);
    __builtin_memcpy(fk.dst, &ip6->daddr, 16);
    fk.proto = ip6->nexthdr;
    if (parse_ports(ip6 + 1, data_end, fk.proto, &fk)) return XDP_PASS;
  } else {
    return XDP_PASS;
  }

  struct vip_key vk = {};
  __builtin_memcpy(vk.addr, fk.dst, 16);
  vk.port = fk.dport;
  vk.proto = fk.proto;
  vk.family = fk.family;
  struct vip_meta *vip = bpf_map_lookup_elem(&vip_map, &vk);
  if (!vip) return XDP_PASS;

  __u32 real_idx;
  __u32 *cached = bpf_map_lookup_elem(&lru_cache, &fk);
  if (cached) {
    real_idx = *cached;
  } else {
    __u32 key = vip->vip_num * RING_SIZE + flow_hash(&fk) % RING_SIZE;
    __u32 *r = bpf_map_lookup_elem(&ch_rings, &key);
    if (!r) return XDP_DROP;
    real_idx = *r;
    bpf_map_update_elem(&lru_cache, &fk, &real_idx, BPF_ANY);
  }
  struct real_def *real = bpf_map_lookup_elem(&reals, &real_idx);
  if (!real) return XDP_DROP;

  __u32 vip_num = vip->vip_num;
  struct lb_stats *st = bpf_map_lookup_elem(&stats, &vip_num);
  if (st) {
    st->packets += 1;
    st->bytes += (__u64)(data_end - data);
  }

  __builtin_memcpy(eth->h_source, eth->h_dest, ETH_ALEN);
  __builtin_memcpy(eth->h_dest, real->mac, ETH_ALEN);
  if (iph) {
    // Re-check the header: the verifier forgets nothing, but the compiler may reload the pointer.
    if ((void *)(iph + 1) > data_end) return XDP_DROP;
    __u32 old = iph->daddr;
    __u32 csum = (~iph->check) & 0xffff;
    csum += (~old & 0xffff) + (~old >> 16);
    csum += (real->dst[0] & 0xffff) + (real->dst[0] >> 16);
    iph->daddr = real->dst[0];
    iph->check = csum_fold(csum);
  }
  return XDP_TX;
}

// The encapsulating path, as katran forwards to a real: room for an outer IPv4 header in front of the
// packet (bpf_xdp_adjust_head), the Ethernet header moved forward, the outer header written and its
// checksum computed with bpf_csum_diff.
SEC("xdp")
int balancer_encap(struct xdp_md *ctx) {
  void *data = (void *)(long)ctx->data;
  void *data_end = (void *)(long)ctx->data_end;
  struct ethhdr *eth = data;
  if ((void *)(eth + 1) > data_end || eth->h_proto != bpf_htons(ETH_P_IP)) return XDP_PASS;
  struct iphdr *inner = (void *)(eth + 1);
  if ((void *)(inner + 1) > data_end) return XDP_DROP;
  __u32 key = inner->daddr & (MAX_REALS - 1);
  struct real_def *real = bpf_map_lookup_elem(&reals, &key);
  if (!real) return XDP_DROP;
  const __u16 inner_len = bpf_ntohs(inner->tot_len);
  const __u8 tos = inner->tos;
  struct ethhdr old_eth = *eth;

  if (bpf_xdp_adjust_head(ctx, 0 - (int)sizeof(struct iphdr))) return XDP_DROP;
  data = (void *)(long)ctx->data;
  data_end = (void *)(long)ctx->data_end;
  eth = data;
  struct iphdr *outer = (void *)(eth + 1);
  if ((void *)(outer + 1) > data_end) return XDP_DROP;
  __builtin_memcpy(eth->h_dest, real->mac, ETH_ALEN);
  __builtin_memcpy(eth->h_source, old_eth.h_dest, ETH_ALEN);
  eth->h_proto = bpf_htons(ETH_P_IP);
  outer->version = 4;
  outer->ihl = 5;
  outer->tos = tos;
  outer->tot_len = bpf_htons(inner_len + sizeof(struct iphdr));
  outer->id = 0;
  outer->frag_off = 0;
  outer->ttl = 64;
  outer->protocol = IPPROTO_IPIP;
  outer->check = 0;
  outer->saddr = 0x0100000a;  // 10.0.0.1
  outer->daddr = real->dst[0];
  __s64 sum = bpf_csum_diff(0, 0, (__be32 *)outer, sizeof(struct iphdr), 0);
  if (sum < 0) return XDP_DROP;
  outer->check = ~((__u16)sum);
  return XDP_TX;
}

char LICENSE[] SEC("license") = "GPL";
