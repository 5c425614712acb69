// An XDP DNS query filter in the manner of the examples that ship with XDP tutorials and DDoS
// filters: UDP port 53, a walk over the question name's labels in a bounded loop (a packet pointer
// that moves by a variable amount, checked against data_end on every step), the name copied into a
// stack buffer at a variable offset, and a blocklist lookup by that name.
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/udp.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#define MAX_NAME 64

struct dnshdr {
  __u16 id;
  __u16 flags;
  __u16 qdcount;
  __u16 ancount;
  __u16 nscount;
  __u16 arcount;
};

struct name_key {
  char name[MAX_NAME];
};

struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, 1024);
  __type(key, struct name_key);
  __type(value, __u64);
} blocklist SEC(".maps");

SEC("xdp")
int dns_filter(struct xdp_md *ctx) {
  void *data = (void *)(long)ctx->data;
  void *data_end = (void *)(long)ctx->data_end;
  struct ethhdr *eth = data;
  if ((void *)(eth + 1) > data_end || eth->h_proto != bpf_htons(ETH_P_IP)) return XDP_PASS;
  struct iphdr *ip = (void *)(eth + 1);
  if ((void *)(ip + 1) > data_end || ip->ihl != 5 || ip->protocol != IPPROTO_UDP) return XDP_PASS;
  struct udphdr *udp = (void *)(ip + 1);
  if ((void *)(udp + 1) > data_end || udp->dest != bpf_htons(53)) return XDP_PASS;
  struct dnshdr *dns = (void *)(udp + 1);
  if ((void *)(dns + 1) > data_end || dns->qdcount != bpf_htons(1)) return XDP_PASS;

  struct name_key key = {};
  unsigned char *p = (void *)(dns + 1);
  __u32 n = 0;
  for (int i = 0; i < MAX_NAME; i++) {
    if ((void *)(p + 1) > data_end) return XDP_PASS;
    unsigned char c = *p;
    if (c == 0) break;
    key.name[n & (MAX_NAME - 1)] = c;
    n++;
    p++;
  }
  __u64 *hits = bpf_map_lookup_elem(&blocklist, &key);
  if (!hits) return XDP_PASS;
  __sync_fetch_and_add(hits, 1);
  return XDP_DROP;
}

char LICENSE[] SEC("license") = "GPL";
