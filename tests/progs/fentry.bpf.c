// A program type bpfvm decodes but does not run: fentry needs kernel BTF.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

SEC("fentry/do_unlinkat")
int on_unlink(void *ctx) { return 0; }

char LICENSE[] SEC("license") = "GPL";
