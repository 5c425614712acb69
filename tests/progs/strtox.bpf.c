// bpf_strtol and bpf_strtoul on the packet's first 16 bytes (and on its first 3), in the base that
// byte 16 gives as flags; values and return values written back into the packet from byte 24 on, so
// that a test run's data_out shows them all. (The text is copied to the stack first: these helpers do
// not take packet pointers.)
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

SEC("xdp")
int parse(struct xdp_md *ctx) {
  unsigned char *p = (unsigned char *)(long)ctx->data;
  if (p + 72 > (unsigned char *)(long)ctx->data_end) return XDP_DROP;
  char text[16];
  __builtin_memcpy(text, p, sizeof text);
  long value = 0, short_value = 0;
  unsigned long uvalue = 0;
  long *out = (long *)(p + 24);
  out[0] = bpf_strtol(text, 16, p[16], &value);
  out[1] = value;
  out[2] = bpf_strtoul(text, 16, p[16], &uvalue);
  out[3] = (long)uvalue;
  out[4] = bpf_strtol(text, 3, p[16], &short_value);
  out[5] = short_value;
  return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
