// A program type bpfvm judges but does not run: an iterator walks the kernel's own objects.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

SEC("iter/task")
int each_task(void *ctx) { return 0; }

char LICENSE[] SEC("license") = "GPL";
