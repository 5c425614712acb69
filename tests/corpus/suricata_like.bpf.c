// An XDP bypass filter in the manner of suricata's: Ethernet with up to two VLAN tags (a bounded
// loop), IPv4 and IPv6 5-tuples, per-CPU flow tables the IDS fills with flows it no longer needs to
// see; a hit counts and drops, a miss goes to the stack.
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/tcp.h>
#include <linux/udp.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

struct vlan_hdr {
  __be16 tci;
  __be16 encap_proto;
};

struct flowv4_keys {
  __u32 src;
  __u32 dst;
  union {
    __u32 ports;
    __u16 port16[2];
  };
  __u8 ip_proto : 1;
  __u16 vlan0 : 15;
  __u16 vlan1;
};

struct flowv6_keys {
  __u32 src[4];
  __u32 dst[4];
  union {
    __u32 ports;
    __u16 port16[2];
  };
  __u8 ip_proto : 1;
  __u16 vlan0 : 15;
  __u16 vlan1;
};

struct pair {
  __u64 packets;
  __u64 bytes;
};

struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_HASH);
  __uint(max_entries, 32768);
  __type(key, struct flowv4_keys);
  __type(value, struct pair);
} flow_table_v4 SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_HASH);
  __uint(max_entries, 32768);
  __type(key, struct flowv6_keys);
  __type(value, struct pair);
} flow_table_v6 SEC(".maps");

static __always_inline int get_ports(void *l4, void *end, __u8 proto, __u16 *sport, __u16 *dport) {
  if (proto == IPPROTO_TCP) {
    struct tcphdr *th = l4;
    if ((void *)(th + 1) > end) return -1;
    *sport = th->source;
    *dport = th->dest;
    return 1;
  }
  if (proto == IPPROTO_UDP) {
    struct udphdr *uh = l4;
    if ((void *)(uh + 1) > end) return -1;
    *sport = uh->source;
    *dport = uh->dest;
    return 0;
  }
  return -1;
}

static __always_inline int bypass(struct pair *value, __u64 len) {
  value->packets++;
  value->bytes += len;
  return XDP_DROP;
}

SEC("xdp")
int xdp_hashfilter(struct xdp_md *ctx) {
  void *data = (void *)(long)ctx->data;
  void *data_end = (void *)(long)ctx->data_end;
  struct ethhdr *eth = data;
  __u64 off = sizeof(*eth);
  if (data + off > data_end) return XDP_PASS;
  __u16 proto = eth->h_proto;
  __u16 vlan[2] = {0, 0};
#pragma unroll
  for (int i = 0; i < 2; i++) {
    if (proto != bpf_htons(ETH_P_8021Q) && proto != bpf_htons(ETH_P_8021AD)) break;
    struct vlan_hdr *vh = data + off;
    if ((void *)(vh + 1) > data_end) return XDP_PASS;
    vlan[i] = bpf_ntohs(vh->tci) & 0x0fff;
    proto = vh->encap_proto;
    off += sizeof(*vh);
  }
  const __u64 len = data_end - data;
  if (proto == bpf_htons(ETH_P_IP)) {
    struct iphdr *ip = data + off;
    if ((void *)(ip + 1) > data_end) return XDP_PASS;
    struct flowv4_keys k = {};
    __u16 sport, dport;
    int tcp = get_ports((void *)ip + ip->ihl * 4, data_end, ip->protocol, &sport, &dport);
    if (tcp < 0) return XDP_PASS;
    k.ip_proto = tcp;
    k.src = ip->saddr;
    k.dst = ip->daddr;
    k.port16[0] = sport;
    k.port16[1] = dport;
    k.vlan0 = vlan[0];
    k.vlan1 = vlan[1];
    struct pair *v = bpf_map_lookup_elem(&flow_table_v4, &k);
    if (v) return bypass(v, len);
    return XDP_PASS;
  }
  if (proto == bpf_htons(ETH_P_IPV6)) {
    struct ipv6hdr *ip6 = data + off;
    if ((void *)(ip6 + 1) > data_end) return XDP_PASS;
    struct flowv6_keys k = {};
    __u16 sport, dport;
    int tcp = get_ports(ip6 + 1, data_end, ip6->nexthdr, &sport, &dport);
    if (tcp < 0) return XDP_PASS;
    k.ip_proto = tcp;
    __builtin_memcpy(k.src, &ip6->saddr, 16);
    __builtin_memcpy(k.dst, &ip6->daddr, 16);
    k.port16[0] = sport;
    k.port16[1] = dport;
    k.vlan0 = vlan[0];
    k.vlan1 = vlan[1];
    struct pair *v = bpf_map_lookup_elem(&flow_table_v6, &k);
    if (v) return bypass(v, len);
  }
  return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
