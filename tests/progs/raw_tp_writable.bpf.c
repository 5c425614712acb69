// Writable raw tracepoints (BPF_PROG_TYPE_RAW_TRACEPOINT_WRITABLE): args[0] is the tracepoint's buffer,
// written at constant non-negative offsets (its size is checked when it attaches); the other arguments
// read-only. Verified and loaded, as the kernel loads them; judged by the kernel too (corpus_kernel_oracle).
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

SEC("raw_tp.w/bpf_test_finish")
int write_buffer(unsigned long long *ctx) {
  int *buf = (int *)ctx[0];
  buf[0] = 1;
  buf[3] = (int)ctx[1];
  return 0;
}

SEC("raw_tp.w/bpf_test_finish")
int negative(unsigned long long *ctx) {
  char *buf = (char *)ctx[0];
  *(volatile char *)(buf - 1) = 0;
  return 0;
}

SEC("raw_tp.w/bpf_test_finish")
int variable(unsigned long long *ctx) {
  char *buf = (char *)ctx[0];
  buf[bpf_get_prandom_u32() & 7] = 0;
  return 0;
}

SEC("raw_tp.w/bpf_test_finish")
int write_args(unsigned long long *ctx) {
  ctx[1] = 0;
  return 0;
}

SEC("raw_tp.w/bpf_test_finish")
int narrow_arg(unsigned long long *ctx) {
  return *(int *)&ctx[1];
}

SEC("raw_tp.w/bpf_test_finish")
int far_write(unsigned long long *ctx) {
  char *buf = (char *)ctx[0];
  buf[4000] = 1;
  return 0;
}

char LICENSE[] SEC("license") = "GPL";
