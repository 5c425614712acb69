// A tc datapath in the manner of Open vSwitch's eBPF one: flow key extraction through Ethernet, a VLAN
// tag, IPv4 or IPv6 with its extension headers (a bounded loop over up to 6 of them), a flow table
// hit applies the actions (mark, priority, drop), a miss goes to user space as an upcall through a
// perf event array with the packet attached.
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/pkt_cls.h>
#include <linux/tcp.h>
#include <linux/udp.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#define MAX_EXT_HDRS 6

struct flow_key {
  __u32 in_port;
  __u16 vlan_tci;
  __u16 eth_type;
  __u8 nw_proto;
  __u8 nw_frag;
  __u16 tp_src;
  __u16 tp_dst;
  __u16 pad;
  __u32 nw_src[4];
  __u32 nw_dst[4];
};

struct flow_actions {
  __u32 mark;
  __u32 priority;
  __u8 drop;
  __u8 pad[7];
  __u64 hits;
};

struct upcall {
  struct flow_key key;
  __u32 len;
  __u32 reason;
};

struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, 8192);
  __type(key, struct flow_key);
  __type(value, struct flow_actions);
} flow_table SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY);
  __uint(key_size, sizeof(int));
  __uint(value_size, sizeof(int));
} upcalls SEC(".maps");

struct vlan_hdr {
  __be16 tci;
  __be16 encap_proto;
};

struct ext_hdr {
  __u8 nexthdr;
  __u8 hdrlen;
};

SEC("tc")
int ovs_ingress(struct __sk_buff *skb) {
  void *data = (void *)(long)skb->data;
  void *data_end = (void *)(long)skb->data_end;
  struct flow_key key = {};
  key.in_port = skb->ingress_ifindex;
  struct ethhdr *eth = data;
  if ((void *)(eth + 1) > data_end) return TC_ACT_SHOT;
  void *cursor = eth + 1;
  __u16 proto = eth->h_proto;
  if (proto == bpf_htons(ETH_P_8021Q)) {
    struct vlan_hdr *vh = cursor;
    if ((void *)(vh + 1) > data_end) return TC_ACT_SHOT;
    key.vlan_tci = bpf_ntohs(vh->tci);
    proto = vh->encap_proto;
    cursor = vh + 1;
  }
  key.eth_type = bpf_ntohs(proto);
  __u8 nexthdr = 0;
  if (proto == bpf_htons(ETH_P_IP)) {
    struct iphdr *ip = cursor;
    if ((void *)(ip + 1) > data_end) return TC_ACT_SHOT;
    key.nw_src[0] = ip->saddr;
    key.nw_dst[0] = ip->daddr;
    key.nw_frag = (ip->frag_off & bpf_htons(0x3fff)) != 0;
    nexthdr = ip->protocol;
    cursor = (void *)ip + ip->ihl * 4;
  } else if (proto == bpf_htons(ETH_P_IPV6)) {
    struct ipv6hdr *ip6 = cursor;
    if ((void *)(ip6 + 1) > data_end) return TC_ACT_SHOT;
    __builtin_memcpy(key.nw_src, &ip6->saddr, 16);
    __builtin_memcpy(key.nw_dst, &ip6->daddr, 16);
    nexthdr = ip6->nexthdr;
    cursor = ip6 + 1;
    // Hop-by-hop, routing, fragment and destination options headers, up to MAX_EXT_HDRS of them.
    for (int i = 0; i < MAX_EXT_HDRS; i++) {
      if (nexthdr != IPPROTO_HOPOPTS && nexthdr != IPPROTO_ROUTING && nexthdr != IPPROTO_FRAGMENT &&
          nexthdr != IPPROTO_DSTOPTS)
        break;
      struct ext_hdr *eh = cursor;
      if ((void *)(eh + 1) > data_end) return TC_ACT_SHOT;
      if (nexthdr == IPPROTO_FRAGMENT) key.nw_frag = 1;
      nexthdr = eh->nexthdr;
      cursor += nexthdr == IPPROTO_FRAGMENT ? 8 : (eh->hdrlen + 1) * 8;
    }
  }
  key.nw_proto = nexthdr;
  if (!key.nw_frag && nexthdr == IPPROTO_TCP) {
    struct tcphdr *th = cursor;
    if ((void *)(th + 1) <= data_end) {
      key.tp_src = th->source;
      key.tp_dst = th->dest;
    }
  } else if (!key.nw_frag && nexthdr == IPPROTO_UDP) {
    struct udphdr *uh = cursor;
    if ((void *)(uh + 1) <= data_end) {
      key.tp_src = uh->source;
      key.tp_dst = uh->dest;
    }
  }

  struct flow_actions *act = bpf_map_lookup_elem(&flow_table, &key);
  if (!act) {
    struct upcall up = {.key = key, .len = skb->len, .reason = 1};
    __u64 flags = BPF_F_CURRENT_CPU | ((__u64)(skb->len > 256 ? 256 : skb->len) << 32);
    bpf_perf_event_output(skb, &upcalls, flags, &up, sizeof(up));
    return TC_ACT_SHOT;
  }
  __sync_fetch_and_add(&act->hits, 1);
  if (act->drop) return TC_ACT_SHOT;
  skb->mark = act->mark;
  skb->priority = act->priority;
  return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
