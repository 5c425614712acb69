// A TCP congestion control as struct_ops programs (tcp_ca.c loads it and registers it).
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct sock;
struct tcp_sock {
  unsigned int snd_cwnd, snd_cwnd_cnt, snd_ssthresh;
} __attribute__((preserve_access_index));
struct tcp_congestion_ops {
  unsigned int (*ssthresh)(struct sock *sk);
  void (*cong_avoid)(struct sock *sk, unsigned int ack, unsigned int acked);
  unsigned int (*undo_cwnd)(struct sock *sk);
  char name[16];
};

char LICENSE[] SEC("license") = "GPL";

SEC("struct_ops/ssthresh")
unsigned int bpfvm_ssthresh(unsigned long long *ctx) {
  const struct tcp_sock *tp = (void *)ctx[0];
  return tp->snd_cwnd > 4 ? tp->snd_cwnd >> 1 : 2;
}

SEC("struct_ops/cong_avoid")
void bpfvm_cong_avoid(unsigned long long *ctx) {
  struct tcp_sock *tp = (void *)ctx[0];
  if (tp->snd_cwnd < tp->snd_ssthresh) tp->snd_cwnd += (unsigned int)ctx[2];
  else tp->snd_cwnd_cnt += (unsigned int)ctx[2];
}

SEC("struct_ops/undo_cwnd")
unsigned int bpfvm_undo_cwnd(unsigned long long *ctx) { return ((struct tcp_sock *)ctx[0])->snd_cwnd; }

SEC(".struct_ops")
struct tcp_congestion_ops bpfvm_test_ca = {
  .ssthresh = (void *)bpfvm_ssthresh,
  .cong_avoid = (void *)bpfvm_cong_avoid,
  .undo_cwnd = (void *)bpfvm_undo_cwnd,
  .name = "bpfvm_test_ca",
};
