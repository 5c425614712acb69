// USDT probes with libbpf's conventions (bpf/usdt.bpf.h): the arguments of demo:tick and demo:point
// summed in an array, and the hits counted.
#include <linux/bpf.h>
#include <linux/ptrace.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <stdbool.h>
#include <bpf/usdt.bpf.h>

struct {
  __uint(type, BPF_MAP_TYPE_ARRAY);
  __uint(max_entries, 8);
  __type(key, __u32);
  __type(value, __s64);
} u SEC(".maps");

static void add(__u32 k, __s64 v) {
  __s64* p = bpf_map_lookup_elem(&u, &k);
  if (p) __sync_fetch_and_add(p, v);
}

SEC("usdt//proc/self/exe:demo:tick")
int BPF_USDT(tick, long i, long neg, int field) {
  add(0, 1);
  add(1, i);
  add(2, neg);
  add(3, field);
  add(4, bpf_usdt_arg_cnt(ctx));
  return 0;
}

SEC("usdt//proc/self/exe:demo:point")
int BPF_USDT(point, long x) {
  add(5, 1);
  add(6, x);
  return 0;
}

char LICENSE[] SEC("license") = "GPL";
