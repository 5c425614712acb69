// Returns of exceptions_target's functions: counted by function, outer's return values summed.
#include <linux/bpf.h>
#include <linux/ptrace.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

struct {
  __uint(type, BPF_MAP_TYPE_ARRAY);
  __uint(max_entries, 4);
  __type(key, __u32);
  __type(value, __s64);
} ret SEC(".maps");

static void add(__u32 k, __s64 v) {
  __s64* p = bpf_map_lookup_elem(&ret, &k);
  if (p) __sync_fetch_and_add(p, v);
}

SEC("uretprobe//proc/self/exe:probed") int BPF_KRETPROBE(probed_ret, int r) { add(0, 1); return 0; }
SEC("uretprobe//proc/self/exe:outer") int BPF_KRETPROBE(outer_ret, int r) { add(1, 1); add(2, r); return 0; }
SEC("uretprobe//proc/self/exe:rethrows") int BPF_KRETPROBE(rethrows_ret, int r) { add(3, 1); return 0; }

char LICENSE[] SEC("license") = "GPL";
