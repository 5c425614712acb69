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

char LICENSE[] SEC("license") = "GPL";
