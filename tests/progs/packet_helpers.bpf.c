// Packet helpers real datapaths use: bpf_skb_load_bytes (socket filters, tc) and bpf_csum_diff (tc,
// XDP), each with in-range, past-the-end and malformed arguments; the kernel oracle compares results.
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <bpf/bpf_helpers.h>

SEC("socket")
int sock_load(struct __sk_buff *skb) {
  __u8 buf[16];
  long a = bpf_skb_load_bytes(skb, 0, buf, 8);   // from skb->data (the network header here)
  __u32 first = buf[0] << 24 | buf[1] << 16 | buf[6] << 8 | buf[7];
  long b = bpf_skb_load_bytes(skb, skb->len - 2, buf, 4);  // past the end: -EFAULT, buffer cleared
  return first ^ (__u32)(a << 4) ^ (__u32)(b << 8) ^ buf[0] ^ buf[3];
}

SEC("tc")
int tc_load(struct __sk_buff *skb) {
  __u8 buf[16];
  long a = bpf_skb_load_bytes(skb, 12, buf, 2);  // the Ethernet type
  long b = bpf_skb_load_bytes(skb, 0x80000000u, buf + 2, 2);
  long c = bpf_skb_load_bytes(skb, skb->len - 16, buf, 16);  // the last 16 bytes
  return (buf[0] << 8 | buf[15]) ^ (__u32)(a << 16) ^ (__u32)(b << 20) ^ (__u32)(c << 24);
}

SEC("tc")
int tc_csum(struct __sk_buff *skb) {
  __u32 words[5];
  if (bpf_skb_load_bytes(skb, ETH_HLEN, words, sizeof(words))) return -1;
  __s64 sum = bpf_csum_diff(0, 0, words, sizeof(words), 0);
  __s64 diff = bpf_csum_diff(words, 4, words + 1, 8, (__u32)sum);
  // (Sizes that are not multiples of 4 are not compared: Linux 6.18 sums stale scratch bytes for them;
  // bpfvm refuses them with -EINVAL as earlier kernels did.)
  return (__u32)sum ^ (__u32)(diff << 3);
}

SEC("xdp")
int xdp_csum(struct xdp_md *ctx) {
  void *data = (void *)(long)ctx->data;
  void *end = (void *)(long)ctx->data_end;
  if (data + ETH_HLEN + 20 > end) return XDP_ABORTED;
  __s64 sum = bpf_csum_diff(0, 0, data + ETH_HLEN, 20, 0xffff);
  return (__u32)sum;
}

// Moves the packet's start by the amount its first two bytes say (push: b0 bytes, pull: b1 bytes), then
// writes at the new start: the verifier must see that the old packet pointers are stale.
SEC("xdp")
int xdp_move(struct xdp_md *ctx) {
  void *data = (void *)(long)ctx->data;
  void *end = (void *)(long)ctx->data_end;
  if (data + 2 > end) return XDP_ABORTED;
  int delta = -(int)((__u8 *)data)[0] + ((__u8 *)data)[1];
  long r = bpf_xdp_adjust_head(ctx, delta);
  if (r) return 100 - r;
  data = (void *)(long)ctx->data;
  end = (void *)(long)ctx->data_end;
  if (data + 1 > end) return XDP_ABORTED;
  *(__u8 *)data = 0xab;
  return XDP_TX;
}

// NAT in the manner of tc datapaths: a new destination address written with bpf_skb_store_bytes, the
// IPv4 and UDP checksums fixed with bpf_l3_csum_replace / bpf_l4_csum_replace (4-byte, 2-byte and
// precomputed-difference forms, a pseudo-header field, a zero UDP checksum kept), bad flags refused,
// then the verdict of bpf_redirect.
SEC("tc")
int tc_nat(struct __sk_buff *skb) {
  const __u32 ip_dst = ETH_HLEN + 16, ip_check = ETH_HLEN + 10, udp_check = ETH_HLEN + 20 + 6;
  __u32 old_dst, new_dst = 0x0a0b0c0d;
  if (bpf_skb_load_bytes(skb, ip_dst, &old_dst, 4)) return -1;
  long a = bpf_skb_store_bytes(skb, ip_dst, &new_dst, 4, 0);
  long b = bpf_l3_csum_replace(skb, ip_check, old_dst, new_dst, 4);
  long c = bpf_l4_csum_replace(skb, udp_check, old_dst, new_dst, BPF_F_PSEUDO_HDR | BPF_F_MARK_MANGLED_0 | 4);
  long d = bpf_l3_csum_replace(skb, ip_check, 0x1234, 0x4321, 2);
  long e = bpf_l3_csum_replace(skb, ip_check, 0, 0x55aa, 0);
  long f = bpf_l4_csum_replace(skb, udp_check, 0, 7, 0 | BPF_F_MARK_MANGLED_0 | BPF_F_MARK_ENFORCE);
  long g = bpf_l3_csum_replace(skb, ip_check + 1, 0, 0, 2);  // odd offset: -EFAULT
  long h = bpf_l3_csum_replace(skb, ip_check, 0, 0, 3);      // size 3: -EINVAL
  long i = bpf_skb_store_bytes(skb, skb->len - 2, &new_dst, 4, 0);  // past the end: -EFAULT
  long j = bpf_skb_store_bytes(skb, 0, &new_dst, 4, 8);             // bad flags: -EINVAL
  long r = bpf_redirect(1, skb->mark);
  return (a + 1) | (b + 1) << 1 | (c + 1) << 2 | (d + 1) << 3 | (e + 1) << 4 | (f + 1) << 5 | (g + 20) << 8 |
         (h + 30) << 14 | (i + 20) << 20 | (j + 30) << 26 | r << 29;
}

SEC("xdp")
int xdp_redirect(struct xdp_md *ctx) { return bpf_redirect(1, ctx->rx_queue_index); }

char LICENSE[] SEC("license") = "GPL";
