// fentry on a kernel function that is not a syscall entry: it loads (verified against the kernel's BTF),
// and has no events in user space.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

SEC("fentry/do_unlinkat")
int on_unlink(void *ctx) { return 0; }

char LICENSE[] SEC("license") = "GPL";
