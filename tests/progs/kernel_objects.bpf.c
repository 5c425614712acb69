// Helpers on kernel objects by BTF type (ARG_PTR_TO_BTF_ID, RET_PTR_TO_BTF_ID*): the casts of a socket
// to its protocol's struct, a task's registers, cgroup storage, seq_file writes in iterators; helpers of
// fixed-size memory (bpf_check_mtu's length, the raw SYN cookies' headers) and of syscall programs.
// Each program is judged by the kernel too (corpus_kernel_oracle): the accepted and the refused.
#include <linux/bpf.h>
#include <linux/ptrace.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

struct seq_file;
struct sock;
struct bpf_iter_meta {
  struct seq_file *seq;
  __u64 session_id, seq_num;
} __attribute__((preserve_access_index));
struct bpf_iter__task {
  struct bpf_iter_meta *meta;
  struct task_struct *task;
} __attribute__((preserve_access_index));
struct task_struct {
  struct task_struct *group_leader, *real_parent;
  void *mm;
  int pid;
} __attribute__((preserve_access_index));
struct tcp_sock {
  __u32 snd_cwnd;
} __attribute__((preserve_access_index));

struct {
  __uint(type, 32);  // BPF_MAP_TYPE_CGRP_STORAGE (Linux 6.2)
  __uint(map_flags, BPF_F_NO_PREALLOC);
  __type(key, int);
  __type(value, long);
} cgroup_values SEC(".maps");

SEC("tp_btf/inet_sock_set_state")
int BPF_PROG(skc, struct sock *sk) {
  struct tcp_sock *tp = bpf_skc_to_tcp_sock(sk);
  if (!tp) return 0;
  struct tcp_sock *t6 = (void *)bpf_skc_to_tcp6_sock(sk);
  void *u = bpf_skc_to_udp6_sock(sk);
  void *w = bpf_skc_to_tcp_timewait_sock(sk);
  void *r = bpf_skc_to_tcp_request_sock(sk);
  void *x = bpf_skc_to_unix_sock(sk);
  return (t6 != 0) + (u != 0) + (w != 0) + (r != 0) + (x != 0);
}

SEC("tp_btf/inet_sock_set_state")
int BPF_PROG(skc_nocheck, struct sock *sk) {
  struct tcp_sock *tp = bpf_skc_to_tcp_sock(sk);
  return *(int *)tp;
}

SEC("tp_btf/inet_sock_set_state")
int BPF_PROG(skc_scalar, struct sock *sk) {
  return bpf_skc_to_tcp_sock((void *)(long)ctx[1]) != 0;
}

SEC("tc")
int skc_tc(struct __sk_buff *skb) {
  struct bpf_sock *sk = skb->sk;
  if (!sk) return 0;
  return bpf_skc_to_tcp_sock(sk) != 0;
}

SEC("tp_btf/inet_sock_set_state")
int BPF_PROG(ack, struct sock *sk) {
  struct tcp_sock *tp = bpf_skc_to_tcp_sock(sk);
  if (!tp) return 0;
  return bpf_tcp_send_ack(tp, 1);
}

SEC("tp_btf/inet_sock_set_state")
int BPF_PROG(ack_sock, struct sock *sk) {
  return bpf_tcp_send_ack(sk, 1);
}

SEC("tc")
int mtu(struct __sk_buff *skb) {
  __u32 len = 0;
  return bpf_check_mtu(skb, 0, &len, 0, 0) + len;
}

SEC("tc")
int mtu_uninit(struct __sk_buff *skb) {
  __u32 len;
  return bpf_check_mtu(skb, 0, &len, 0, 0);
}

SEC("xdp")
int mtu_xdp(struct xdp_md *ctx) {
  __u32 len = 0;
  bpf_check_mtu(ctx, 0, &len, 0, 0);
  return XDP_PASS;
}

SEC("syscall")
int sysbpf(void *ctx) {
  union bpf_attr attr = {};
  char name[] = "task_struct";
  long id = bpf_btf_find_by_name_kind(name, sizeof name, 4, 0);
  long fd = bpf_sys_bpf(BPF_MAP_CREATE, &attr, sizeof attr);
  bpf_sys_close(fd);
  __u64 addr;
  bpf_kallsyms_lookup_name(name, sizeof name, 0, &addr);
  return id + addr;
}

SEC("kprobe/do_nanosleep")
int snp(struct pt_regs *ctx) {
  char out[64];
  struct btf_ptr p = {};
  return bpf_snprintf_btf(out, sizeof out, &p, sizeof p, 0);
}

SEC("kprobe/do_nanosleep")
int snp_init(struct pt_regs *ctx) {
  char out[64] = {};
  struct btf_ptr p = {};
  return bpf_snprintf_btf(out, sizeof out, &p, sizeof p, 0);
}

SEC("tp_btf/sched_switch")
int BPF_PROG(regs) {
  struct task_struct *t = bpf_get_current_task_btf();
  struct pt_regs *r = (void *)bpf_task_pt_regs(t);
  return r->rip != 0;
}

SEC("iter/task")
int seq(struct bpf_iter__task *ctx) {
  struct seq_file *m = ctx->meta->seq;
  char s[] = "x";
  bpf_seq_write(m, s, 1);
  __u64 a[1] = {1};
  static const char fmt[] = "%d\n";
  bpf_seq_printf(m, fmt, sizeof fmt, a, sizeof a);
  return 0;
}

SEC("sk_msg")
int msg(struct sk_msg_md *m) {
  bpf_msg_push_data(m, 0, 4, 0);
  bpf_msg_pop_data(m, 0, 4, 0);
  return SK_PASS;
}

SEC("tp_btf/sched_switch")
int BPF_PROG(seq_not_iter, int preempt, struct task_struct *prev) {
  char s[] = "x";
  return bpf_seq_write((void *)prev, s, 1);
}

SEC("tp_btf/sched_switch")
int BPF_PROG(regs_of_prev, int preempt, struct task_struct *prev) {
  struct pt_regs *r = (void *)bpf_task_pt_regs(prev);
  return r != 0;
}

SEC("tp_btf/sched_switch")
int BPF_PROG(regs_of_leader, int preempt, struct task_struct *prev) {
  struct pt_regs *r = (void *)bpf_task_pt_regs(prev->group_leader);
  return r != 0;
}

SEC("tp_btf/sched_switch")
int BPF_PROG(regs_of_parent, int preempt, struct task_struct *prev) {
  struct pt_regs *r = (void *)bpf_task_pt_regs(prev->real_parent);
  return r != 0;
}

SEC("tp_btf/sched_switch")
int BPF_PROG(regs_of_mm, int preempt, struct task_struct *prev) {
  struct pt_regs *r = (void *)bpf_task_pt_regs(prev->mm);
  return r != 0;
}

SEC("tp_btf/sched_switch")
int BPF_PROG(regs_off, int preempt, struct task_struct *prev) {
  struct pt_regs *r = (void *)bpf_task_pt_regs((void *)((char *)prev + 8));
  return r != 0;
}

SEC("tp_btf/sched_switch")
int BPF_PROG(regs_current, int preempt, struct task_struct *prev) {
  struct task_struct *t = (void *)bpf_get_current_task_btf();
  struct pt_regs *r = (void *)bpf_task_pt_regs(t);
  return r->rip & 1;
}

SEC("tp_btf/sched_switch")
int BPF_PROG(regs_write, int preempt, struct task_struct *prev) {
  struct task_struct *t = (void *)bpf_get_current_task_btf();
  struct pt_regs *r = (void *)bpf_task_pt_regs(t);
  r->rip = 0;
  return 0;
}

SEC("tp_btf/inet_sock_set_state")
int BPF_PROG(regs_of_sock, struct sock *sk) {
  return bpf_task_pt_regs((void *)sk) != 0;
}

SEC("tp_btf/inet_sock_set_state")
int BPF_PROG(tcp_fields, struct sock *sk) {
  struct tcp_sock *tp = (void *)bpf_skc_to_tcp_sock(sk);
  if (!tp) return 0;
  return tp->snd_cwnd;
}

SEC("tp_btf/inet_sock_set_state")
int BPF_PROG(tcp_twice, struct sock *sk) {
  struct tcp_sock *tp = (void *)bpf_skc_to_tcp_sock(sk);
  if (!tp) return 0;
  return bpf_skc_to_tcp6_sock(tp) != 0;
}

SEC("tc")
int mtu_misaligned(struct __sk_buff *skb) {
  __u32 len[2] = {};
  return bpf_check_mtu(skb, 0, (void *)((char *)len + 2), 0, 0);
}

SEC("tc")
int mtu_scalar(struct __sk_buff *skb) {
  return bpf_check_mtu(skb, 0, (void *)8, 0, 0);
}

SEC("xdp")
int syncookie(struct xdp_md *ctx) {
  void *data = (void *)(long)ctx->data, *end = (void *)(long)ctx->data_end;
  if (data + 54 > end) return XDP_PASS;
  long c = bpf_tcp_raw_gen_syncookie_ipv4(data + 14, data + 34, 20);
  return c > 0 ? XDP_DROP : XDP_PASS;
}

SEC("xdp")
int syncookie_short(struct xdp_md *ctx) {
  void *data = (void *)(long)ctx->data, *end = (void *)(long)ctx->data_end;
  if (data + 40 > end) return XDP_PASS;
  long c = bpf_tcp_raw_gen_syncookie_ipv4(data + 14, data + 34, 4);
  return c > 0 ? XDP_DROP : XDP_PASS;
}

SEC("xdp")
int syncookie_check(struct xdp_md *ctx) {
  void *data = (void *)(long)ctx->data, *end = (void *)(long)ctx->data_end;
  if (data + 54 > end) return XDP_PASS;
  return bpf_tcp_raw_check_syncookie_ipv4(data + 14, data + 34) ? XDP_DROP : XDP_PASS;
}

SEC("tp_btf/sched_switch")
int BPF_PROG(cg_null, int preempt, struct task_struct *prev) {
  long *v = bpf_cgrp_storage_get(&cgroup_values, 0, 0, 0);
  bpf_cgrp_storage_delete(&cgroup_values, 0);
  return v != 0;
}

SEC("tp_btf/sched_switch")
int BPF_PROG(cg_task, int preempt, struct task_struct *prev) {
  long *v = bpf_cgrp_storage_get(&cgroup_values, (void *)prev, 0, 0);
  return v != 0;
}

SEC("tp_btf/sched_switch")
int BPF_PROG(snprintf_btf_ro, int preempt, struct task_struct *prev) {
  static const char out[16];
  struct btf_ptr p = {};
  return bpf_snprintf_btf((char *)out, sizeof out, &p, sizeof p, 0);
}



// bpf_per_cpu_ptr/bpf_this_cpu_ptr take only a per-CPU kernel variable (a typed __ksym): anything else
// is refused, by the kernel and by bpfvm.
struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
  __uint(max_entries, 1);
  __type(key, int);
  __type(value, long);
} per_cpu_values SEC(".maps");

SEC("raw_tp/sys_enter")
int per_cpu_of_map_value(void *ctx) {
  int zero = 0;
  long *v = bpf_map_lookup_elem(&per_cpu_values, &zero);
  if (!v) return 0;
  long *other = bpf_per_cpu_ptr(v, 1);
  return other != 0;
}

SEC("raw_tp/sys_enter")
int this_cpu_of_number(void *ctx) {
  return bpf_this_cpu_ptr((void *)8) != 0;
}
char LICENSE[] SEC("license") = "GPL";

// The link's cookie: a BTF tracepoint's link has one (since Linux 6.10), an iterator's has none
// (tracing_prog_func_proto: trampolines and raw_tp only).
SEC("tp_btf/sched_switch")
int tp_btf_cookie(void *ctx) {
  return bpf_get_attach_cookie(ctx) != 0;
}

SEC("iter/task")
int iter_cookie(void *ctx) {
  return bpf_get_attach_cookie(ctx) != 0;
}
