// The current task's place among namespaces and cgroups: its cgroup ancestors by level
// (bpf_get_current_ancestor_cgroup_id), its pid and tgid in its pid namespace when args name that
// namespace (bpf_get_ns_current_pid_tgid: args[0] dev, args[1] inode), and the network namespace's
// cookie (bpf_get_netns_cookie). Run with test_run against the kernel's answers.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct out {
  __u64 ancestors[4];
  long ns_ret, bad_ret;
  __u32 pid, tgid, bad_pid, pad;
};

struct {
  __uint(type, BPF_MAP_TYPE_ARRAY);
  __uint(max_entries, 1);
  __type(key, __u32);
  __type(value, struct out);
} ns_out SEC(".maps");

SEC("raw_tracepoint/test")
int ids(unsigned long long *args) {
  __u32 zero = 0;
  struct out *o = bpf_map_lookup_elem(&ns_out, &zero);
  if (!o) return 0;
  o->ancestors[0] = bpf_get_current_ancestor_cgroup_id(0);
  o->ancestors[1] = bpf_get_current_ancestor_cgroup_id(1);
  o->ancestors[2] = bpf_get_current_ancestor_cgroup_id(2);
  o->ancestors[3] = bpf_get_current_ancestor_cgroup_id(30);
  struct bpf_pidns_info info = {};
  o->ns_ret = bpf_get_ns_current_pid_tgid(args[0], args[1], &info, sizeof info);
  o->pid = info.pid;
  o->tgid = info.tgid;
  o->bad_ret = bpf_get_ns_current_pid_tgid(args[0], args[1] + 1, &info, sizeof info);
  o->bad_pid = info.pid;
  return 0;
}

// The cookie's halves in cb[0] and cb[1].
SEC("tc")
int netns(struct __sk_buff *skb) {
  __u64 cookie = bpf_get_netns_cookie(skb);
  skb->cb[0] = (__u32)cookie;
  skb->cb[1] = (__u32)(cookie >> 32);
  return 0;
}

char LICENSE[] SEC("license") = "GPL";
