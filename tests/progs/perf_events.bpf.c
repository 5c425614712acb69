// bpf_perf_event_output into a perf_event_array: samples of odd sizes (padding), packet bytes appended
// with BPF_F_CTXLEN_MASK, and each error the helper returns (E2BIG, ENOENT, EOPNOTSUPP, EINVAL, EFAULT,
// ENOSPC when the reader falls behind).
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct {
  __uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY);
  __uint(key_size, sizeof(__u32));
  __uint(value_size, sizeof(__u32));
  __uint(max_entries, 64);  // more slots than CPUs: the slots past the last CPU stay empty
} events SEC(".maps");

struct event {
  __u32 seq;
  __u32 len;
  char tag[8];
};

__u32 seq;

SEC("xdp")
int emit(struct xdp_md *ctx) {
  struct event e = {.seq = seq++, .len = ctx->data_end - ctx->data, .tag = "xdp"};
  return bpf_perf_event_output(ctx, &events, BPF_F_CURRENT_CPU, &e, sizeof(e));
}

SEC("xdp")
int emit_odd(struct xdp_md *ctx) {
  char five[5] = {'a', 'b', 'c', 'd', 'e'};
  return bpf_perf_event_output(ctx, &events, BPF_F_CURRENT_CPU, five, sizeof(five));
}

SEC("xdp")
int emit_empty(struct xdp_md *ctx) {
  return bpf_perf_event_output(ctx, &events, BPF_F_CURRENT_CPU, &seq, 0);
}

SEC("xdp")
int emit_packet(struct xdp_md *ctx) {
  __u32 n = seq++;
  return bpf_perf_event_output(ctx, &events, BPF_F_CURRENT_CPU | (14ULL << 32), &n, sizeof(n));
}

SEC("tc")
int emit_skb(struct __sk_buff *skb) {
  __u32 n = skb->len;
  return bpf_perf_event_output(skb, &events, BPF_F_CURRENT_CPU | (20ULL << 32), &n, sizeof(n));
}

SEC("xdp")
int packet_too_short(struct xdp_md *ctx) {
  return bpf_perf_event_output(ctx, &events, BPF_F_CURRENT_CPU | (4000ULL << 32), &seq, sizeof(seq));
}

SEC("xdp")
int bad_flags(struct xdp_md *ctx) {
  return bpf_perf_event_output(ctx, &events, 1ULL << 60, &seq, sizeof(seq));
}

SEC("xdp")
int index_past_end(struct xdp_md *ctx) {
  return bpf_perf_event_output(ctx, &events, 1000, &seq, sizeof(seq));
}

SEC("xdp")
int empty_slot(struct xdp_md *ctx) {
  return bpf_perf_event_output(ctx, &events, 63, &seq, sizeof(seq));
}

// The next CPU's event: it exists, but belongs to another CPU.
SEC("xdp")
int other_cpu(struct xdp_md *ctx) {
  __u32 cpu = bpf_get_smp_processor_id();
  return bpf_perf_event_output(ctx, &events, cpu ? 0 : 1, &seq, sizeof(seq));
}

char LICENSE[] SEC("license") = "GPL";
