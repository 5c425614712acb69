// Programs in the manner of the kernel's samples/bpf and selftests: a socket filter counting bytes per
// IP protocol with legacy packet loads (sockex1), an XDP per-protocol counter (xdp1), a kprobe that
// keeps a log2 histogram of a value (tracex2), and the callback helpers bpf_loop and
// bpf_for_each_map_elem.
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ptrace.h>
#include <stddef.h>
#include <bpf/bpf_helpers.h>

unsigned long long load_byte(void *skb, unsigned long long off) asm("llvm.bpf.load.byte");

struct {
  __uint(type, BPF_MAP_TYPE_ARRAY);
  __uint(max_entries, 256);
  __type(key, __u32);
  __type(value, __u64);
} proto_bytes SEC(".maps");

SEC("socket")
int sockex1(struct __sk_buff *skb) {
  int index = load_byte(skb, ETH_HLEN + offsetof(struct iphdr, protocol));
  __u64 *value;
  if (skb->pkt_type != 4 /* PACKET_OUTGOING */) return 0;
  value = bpf_map_lookup_elem(&proto_bytes, &index);
  if (value) __sync_fetch_and_add(value, skb->len);
  return 0;
}

struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
  __uint(max_entries, 256);
  __type(key, __u32);
  __type(value, long);
} rxcnt SEC(".maps");

static __always_inline int parse_ipv4(void *data, __u64 nh_off, void *data_end) {
  struct iphdr *iph = data + nh_off;
  if ((void *)(iph + 1) > data_end) return 0;
  return iph->protocol;
}

SEC("xdp")
int xdp1(struct xdp_md *ctx) {
  void *data_end = (void *)(long)ctx->data_end;
  void *data = (void *)(long)ctx->data;
  struct ethhdr *eth = data;
  __u64 nh_off = sizeof(*eth);
  if (data + nh_off > data_end) return XDP_DROP;
  __u16 h_proto = eth->h_proto;
  __u32 ipproto = 0;
  if (h_proto == __builtin_bswap16(ETH_P_IP)) ipproto = parse_ipv4(data, nh_off, data_end);
  long *value = bpf_map_lookup_elem(&rxcnt, &ipproto);
  if (value) *value += 1;
  return XDP_DROP;
}

struct {
  __uint(type, BPF_MAP_TYPE_ARRAY);
  __uint(max_entries, 64);
  __type(key, __u32);
  __type(value, __u64);
} hist SEC(".maps");

static __always_inline __u32 log2l(__u64 v) {
  __u32 r = 0;
  for (int i = 0; i < 63; i++) {
    if (v <= 1) break;
    v >>= 1;
    r++;
  }
  return r;
}

SEC("kprobe/vfs_write")
int tracex2(struct pt_regs *ctx) {
  __u64 size = ctx->rdx;
  __u32 slot = log2l(size);
  __u64 *v = bpf_map_lookup_elem(&hist, &slot);
  if (v) __sync_fetch_and_add(v, 1);
  return 0;
}

struct loop_ctx {
  __u64 sum;
  __u32 limit;
};

static long add_index(__u32 index, void *data) {
  struct loop_ctx *c = data;
  if (index >= c->limit) return 1;
  c->sum += index;
  return 0;
}

SEC("socket")
int sum_with_loop(struct __sk_buff *skb) {
  struct loop_ctx c = {.sum = 0, .limit = skb->len & 0xff};
  bpf_loop(1000, add_index, &c, 0);
  return c.sum & 0xffff;
}

struct walk_ctx {
  __u64 total;
  __u32 nonzero;
};

static long visit(void *map, __u32 *key, __u64 *value, void *data) {
  struct walk_ctx *w = data;
  w->total += *value;
  if (*value) w->nonzero++;
  return *key >= 200;
}

SEC("socket")
int walk_protocols(struct __sk_buff *skb) {
  struct walk_ctx w = {};
  bpf_for_each_map_elem(&proto_bytes, visit, &w, 0);
  return w.nonzero;
}

char LICENSE[] SEC("license") = "GPL";
