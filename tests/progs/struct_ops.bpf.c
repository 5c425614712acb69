// struct_ops programs (BPF_PROG_TYPE_STRUCT_OPS): a TCP congestion control and bpf_dummy_ops members,
// judged by the kernel (corpus_kernel_oracle) and by bpfvm. The kernel's types are declared here as far
// as the programs use them, and found in the running kernel's BTF by CO-RE and by name.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

typedef unsigned int u32;
typedef unsigned char u8;
typedef unsigned long long u64;

struct sock;
struct inet_connection_sock {
  struct {
    u8 pending;
  } icsk_ack;
  u64 icsk_ca_priv[13];
} __attribute__((preserve_access_index));
struct tcp_sock {
  u32 snd_cwnd;
  u32 snd_cwnd_cnt;
  u32 snd_ssthresh;
  u32 srtt_us;
  u8 ecn_flags;
} __attribute__((preserve_access_index));

struct tcp_congestion_ops {
  u32 (*ssthresh)(struct sock *sk);
  void (*cong_avoid)(struct sock *sk, u32 ack, u32 acked);
  void (*set_state)(struct sock *sk, u8 new_state);
  u32 (*undo_cwnd)(struct sock *sk);
  void (*init)(struct sock *sk);
  void (*release)(struct sock *sk);
  char name[16];
};

char LICENSE[] SEC("license") = "GPL";

// Accepted: reads of the socket, a u32 result.
SEC("struct_ops/ssthresh")
u32 ssthresh_reads(unsigned long long *ctx) {
  const struct tcp_sock *tp = (void *)ctx[0];
  return tp->snd_cwnd > 4 ? tp->snd_cwnd >> 1 : 2;
}

// Accepted: writes of the fields a congestion control owns; void, so r0 is left as it is.
SEC("struct_ops/cong_avoid")
void cong_avoid_writes(unsigned long long *ctx) {
  struct tcp_sock *tp = (void *)ctx[0];
  const u32 acked = (u32)ctx[2];
  if (tp->snd_cwnd < tp->snd_ssthresh) tp->snd_cwnd += acked;
  else tp->snd_cwnd_cnt += acked;
  tp->ecn_flags = 0;
}

// Accepted: its private area (icsk_ca_priv) anywhere in it, and the pending ack.
SEC("struct_ops/init")
void init_private(unsigned long long *ctx) {
  struct inet_connection_sock *icsk = (void *)ctx[0];
  u32 *ca = (u32 *)icsk->icsk_ca_priv;
  ca[0] = 1;
  ca[5] = (u32)bpf_ktime_get_ns();
  icsk->icsk_ack.pending = 1;
}

SEC("struct_ops/undo_cwnd")
u32 undo_cwnd(unsigned long long *ctx) {
  return ((struct tcp_sock *)ctx[0])->snd_cwnd;
}

// Accepted: bpf_setsockopt outside release.
SEC("struct_ops/set_state")
void set_state_sockopt(unsigned long long *ctx) {
  int v = 1;
  bpf_setsockopt((void *)ctx[0], 6 /* SOL_TCP */, 1 /* TCP_NODELAY */, &v, sizeof v);
}

// Refused: a field it does not own (srtt_us).
SEC("struct_ops/cong_avoid")
void cong_avoid_writes_srtt(unsigned long long *ctx) {
  struct tcp_sock *tp = (void *)ctx[0];
  tp->srtt_us = 0;
}

// Refused: 8 bytes at snd_cwnd, past its end.
SEC("struct_ops/cong_avoid")
void cong_avoid_writes_too_much(unsigned long long *ctx) {
  struct tcp_sock *tp = (void *)ctx[0];
  *(volatile u64 *)&tp->snd_cwnd = 0;
}

// Refused: the context is read-only.
SEC("struct_ops/cong_avoid")
void cong_avoid_writes_ctx(unsigned long long *ctx) {
  ctx[1] = 0;
}

// Refused: cong_avoid has 3 arguments.
SEC("struct_ops/cong_avoid")
void cong_avoid_reads_4th(unsigned long long *ctx) {
  struct tcp_sock *tp = (void *)ctx[0];
  tp->snd_cwnd = (u32)ctx[3];
}

// Refused: bpf_setsockopt from release.
SEC("struct_ops/release")
void release_sockopt(unsigned long long *ctx) {
  int v = 1;
  bpf_setsockopt((void *)ctx[0], 6, 1, &v, sizeof v);
}

// Accepted: release without it.
SEC("struct_ops/release")
void release_plain(unsigned long long *ctx) {
  ((struct tcp_sock *)ctx[0])->snd_cwnd_cnt = 0;
}

// Refused: a helper no tcp_congestion_ops member has (bpf_get_current_pid_tgid is there; skb_load_bytes is not).
SEC("struct_ops/ssthresh")
u32 ssthresh_skb_helper(unsigned long long *ctx) {
  char b[4];
  return bpf_skb_load_bytes((void *)ctx[0], 0, b, 4);
}

SEC(".struct_ops")
struct tcp_congestion_ops bpfvm_ok = {
  .ssthresh = (void *)ssthresh_reads,
  .cong_avoid = (void *)cong_avoid_writes,
  .init = (void *)init_private,
  .undo_cwnd = (void *)undo_cwnd,
  .set_state = (void *)set_state_sockopt,
  .release = (void *)release_plain,
  .name = "bpfvm_ok",
};
SEC(".struct_ops")
struct tcp_congestion_ops bpfvm_bad1 = {
  .ssthresh = (void *)ssthresh_skb_helper,
  .cong_avoid = (void *)cong_avoid_writes_srtt,
  .undo_cwnd = (void *)undo_cwnd,
  .release = (void *)release_sockopt,
  .name = "bpfvm_bad1",
};
SEC(".struct_ops")
struct tcp_congestion_ops bpfvm_bad2 = {
  .ssthresh = (void *)ssthresh_reads,
  .cong_avoid = (void *)cong_avoid_writes_too_much,
  .undo_cwnd = (void *)undo_cwnd,
  .name = "bpfvm_bad2",
};
SEC(".struct_ops")
struct tcp_congestion_ops bpfvm_bad3 = {
  .ssthresh = (void *)ssthresh_reads,
  .cong_avoid = (void *)cong_avoid_writes_ctx,
  .undo_cwnd = (void *)undo_cwnd,
  .name = "bpfvm_bad3",
};
SEC(".struct_ops")
struct tcp_congestion_ops bpfvm_bad4 = {
  .ssthresh = (void *)ssthresh_reads,
  .cong_avoid = (void *)cong_avoid_reads_4th,
  .undo_cwnd = (void *)undo_cwnd,
  .name = "bpfvm_bad4",
};

// bpf_dummy_ops (the kernel's own struct_ops type for tests): its test_1's argument may be NULL (the
// stub names it cb__nullable), and it offers no helper.
struct bpf_dummy_ops_state {
  int val;
} __attribute__((preserve_access_index));
struct bpf_dummy_ops {
  int (*test_1)(struct bpf_dummy_ops_state *cb);
  int (*test_2)(struct bpf_dummy_ops_state *cb, int a1, unsigned short a2, char a3, unsigned long a4);
};

// Refused: cb used without a NULL check.
SEC("struct_ops/test_1")
int dummy_unchecked(unsigned long long *ctx) {
  struct bpf_dummy_ops_state *cb = (void *)ctx[0];
  return cb->val;
}

// Accepted: checked first.
SEC("struct_ops/test_1")
int dummy_checked(unsigned long long *ctx) {
  struct bpf_dummy_ops_state *cb = (void *)ctx[0];
  return cb ? cb->val : 0;
}

// Refused: a helper (bpf_dummy_ops has none).
SEC("struct_ops/test_2")
int dummy_helper(unsigned long long *ctx) {
  return (int)bpf_ktime_get_ns() + (int)ctx[1];
}

// Refused: no struct_ops variable points to it (libbpf: no attach_btf_id for it).
SEC("struct_ops/test_2")
int dummy_unreferenced(unsigned long long *ctx) {
  return (int)ctx[1];
}

SEC(".struct_ops")
struct bpf_dummy_ops dummy_1 = {
  .test_1 = (void *)dummy_unchecked,
  .test_2 = (void *)dummy_helper,
};
SEC(".struct_ops")
struct bpf_dummy_ops dummy_2 = {
  .test_1 = (void *)dummy_checked,
};

// A BTF tracepoint's argument that may be NULL (tcp_send_reset's skb: skb__nullable in the function that
// calls its programs): read only after a NULL check.
struct sk_buff {
  unsigned int len;
} __attribute__((preserve_access_index));

SEC("tp_btf/tcp_send_reset")
int reset_unchecked(unsigned long long *ctx) {
  const struct sk_buff *skb = (void *)ctx[1];
  return skb->len > 0;
}

SEC("tp_btf/tcp_send_reset")
int reset_checked(unsigned long long *ctx) {
  const struct sk_buff *skb = (void *)ctx[1];
  return skb && skb->len > 0;
}
