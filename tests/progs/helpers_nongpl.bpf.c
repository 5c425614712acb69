// A GPL-only helper (bpf_probe_read_user) from a program whose license is not GPL-compatible.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

SEC("raw_tracepoint/test")
int proprietary(struct bpf_raw_tracepoint_args *ctx) {
  char c;
  return bpf_probe_read_user(&c, 1, (void *)ctx->args[0]);
}

char LICENSE[] SEC("license") = "Proprietary";
