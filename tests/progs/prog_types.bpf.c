// One program of each type bpfvm runs, each reading its context the way kernel programs do.
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/ptrace.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

unsigned long long load_byte(void *skb, unsigned long long off) asm("llvm.bpf.load.byte");

// socket_filter: the byte count seen (skb->len) plus the EtherType, through LD_ABS too.
SEC("socket")
int sock_len(struct __sk_buff *skb) {
  return skb->len + (skb->protocol == bpf_htons(ETH_P_IP) ? 1000 : 0);
}

SEC("socket")
int sock_ldabs(struct __sk_buff *skb) {
  // LD_ABS reads the packet from the network header on for socket filters (the IP version nibble).
  return load_byte(skb, 0) >> 4;
}

// xdp: parse Ethernet + IPv4 with bounds checks, decrement the TTL, pass IPv4 and drop the rest.
SEC("xdp")
int xdp_ttl(struct xdp_md *ctx) {
  void *data = (void *)(long)ctx->data;
  void *data_end = (void *)(long)ctx->data_end;
  struct ethhdr *eth = data;
  if ((void *)(eth + 1) > data_end) return XDP_ABORTED;
  if (eth->h_proto != bpf_htons(ETH_P_IP)) return XDP_DROP;
  struct iphdr *ip = (void *)(eth + 1);
  if ((void *)(ip + 1) > data_end) return XDP_ABORTED;
  ip->ttl -= 1;
  return XDP_PASS;
}

// xdp: the metadata area before the packet (empty unless ctx_in asks for one).
SEC("xdp")
int xdp_meta(struct xdp_md *ctx) {
  void *meta = (void *)(long)ctx->data_meta;
  void *data = (void *)(long)ctx->data;
  if (meta + 4 > data) return 1;  // no metadata
  *(__u32 *)meta += 1;
  return 2;
}

// sched_cls: data points at the Ethernet header; writes the first byte and returns its length.
SEC("tc")
int tc_mark(struct __sk_buff *skb) {
  void *data = (void *)(long)skb->data;
  void *data_end = (void *)(long)skb->data_end;
  if (data + 1 > data_end) return -1;
  *(__u8 *)data = 0xaa;
  return skb->len + skb->mark;
}

// tracepoint: a raw record (here sys_enter's layout: common header, id, args[6]).
struct sys_enter_rec {
  __u64 common;
  long id;
  unsigned long args[6];
};
SEC("tracepoint/raw_syscalls/sys_enter")
int tp_sys_enter(struct sys_enter_rec *rec) { return rec->id + rec->args[0]; }

// raw_tracepoint: u64 args[].
SEC("raw_tracepoint/sys_enter")
int raw_sys_enter(struct bpf_raw_tracepoint_args *ctx) { return ctx->args[1] * 2; }

// kprobe / uprobe: struct pt_regs of x86-64 (user-space names: rdi, rsi, rax).
SEC("kprobe/do_sys_openat2")
int kprobe_regs(struct pt_regs *regs) { return regs->rdi + regs->rsi; }

SEC("uprobe/bin:func")
int uprobe_ret(struct pt_regs *regs) { return regs->rax; }

// perf_event: struct bpf_perf_event_data, regs first then sample_period.
#include <linux/bpf_perf_event.h>
SEC("perf_event")
int perf_period(struct bpf_perf_event_data *ctx) { return ctx->sample_period; }

char LICENSE[] SEC("license") = "GPL";
