// Helpers bpfvm's verifier judges by the kernel's prototypes, whether or not bpfvm can run them: stack
// ids into a stack_trace map, the current task, cgroup arrays, XDP redirects into a devmap, metadata.
#include <linux/bpf.h>
#include <linux/ptrace.h>
#include <bpf/bpf_helpers.h>

struct {
  __uint(type, BPF_MAP_TYPE_STACK_TRACE);
  __uint(max_entries, 64);
  __uint(key_size, 4);
  __uint(value_size, 127 * 8);
} stacks SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_CGROUP_ARRAY);
  __uint(max_entries, 1);
  __type(key, __u32);
  __type(value, __u32);
} cgroups SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_DEVMAP);
  __uint(max_entries, 4);
  __type(key, __u32);
  __type(value, __u32);
} ports SEC(".maps");

SEC("kprobe/do_nanosleep")
int stack_of_sleepers(struct pt_regs *ctx) {
  long id = bpf_get_stackid(ctx, &stacks, BPF_F_USER_STACK);
  if (bpf_current_task_under_cgroup(&cgroups, 0) != 1) return 0;
  __u64 task = bpf_get_current_task();
  char buf[64];
  long n = bpf_get_stack(ctx, buf, sizeof buf, BPF_F_USER_STACK);
  return (id + n + (long)task) & 1;
}

SEC("xdp")
int redirect_all(struct xdp_md *ctx) { return bpf_redirect_map(&ports, 0, XDP_PASS); }

SEC("xdp")
int grow_meta(struct xdp_md *ctx) { return bpf_xdp_adjust_meta(ctx, -4) ? XDP_DROP : XDP_PASS; }

char LICENSE[] SEC("license") = "GPL";
