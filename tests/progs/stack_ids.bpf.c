// bpf_get_stackid of the user stack into a stack_trace map: the same stack twice (the same id), more
// frames skipped than the stack has (-EFAULT), a flag that does not exist (-EINVAL).
#include <linux/bpf.h>
#include <linux/ptrace.h>
#include <bpf/bpf_helpers.h>

struct {
  __uint(type, BPF_MAP_TYPE_STACK_TRACE);
  __uint(max_entries, 16384);
  __uint(key_size, 4);
  __uint(value_size, 16 * 8);
} stacks SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_ARRAY);
  __uint(max_entries, 4);
  __type(key, __u32);
  __type(value, __s64);
} ids SEC(".maps");

static void put(__u32 k, long v) {
  __s64* p = bpf_map_lookup_elem(&ids, &k);
  if (p) *p = v;
}

SEC("uprobe")
int stack_ids(struct pt_regs* ctx) {
  put(0, bpf_get_stackid(ctx, &stacks, BPF_F_USER_STACK));
  put(1, bpf_get_stackid(ctx, &stacks, BPF_F_USER_STACK));
  put(2, bpf_get_stackid(ctx, &stacks, BPF_F_USER_STACK | 255));
  put(3, bpf_get_stackid(ctx, &stacks, BPF_F_USER_STACK | (1ULL << 11)));
  return 0;
}

char LICENSE[] SEC("license") = "GPL";
