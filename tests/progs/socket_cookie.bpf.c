// bpf_get_socket_cookie and bpf_get_cgroup_classid on a test run's packet. The cookie's value is the
// kernel's (or bpfvm's) own, so the program returns what can be compared: bit 0, the packet has a
// socket with a cookie; bit 1, two calls give the same; bit 2, it differs from the previous run's (a
// map keeps it: each test run's dummy socket is a new one, the repetitions of one run share it); from
// bit 3 on, the caller's net_cls class id.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct {
  __uint(type, BPF_MAP_TYPE_ARRAY);
  __uint(max_entries, 1);
  __type(key, __u32);
  __type(value, __u64);
} last SEC(".maps");

SEC("tc")
int cookie(struct __sk_buff *skb) {
  const __u64 a = bpf_get_socket_cookie(skb), b = bpf_get_socket_cookie(skb);
  int r = (a != 0) | (a == b) << 1;
  __u32 k = 0;
  __u64 *seen = bpf_map_lookup_elem(&last, &k);
  if (seen) {
    if (*seen) r |= (*seen != a) << 2;
    *seen = a;
  }
  return r | bpf_get_cgroup_classid(skb) << 3;
}

char LICENSE[] SEC("license") = "GPL";
