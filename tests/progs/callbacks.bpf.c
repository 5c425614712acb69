// Function references: callbacks of bpf_loop and bpf_for_each_map_elem, which the object reader turns
// into BPF_PSEUDO_FUNC loads.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

static long count_cb(__u64 index, void *ctx) {
  *(int *)ctx += (int)index;
  return 0;
}

SEC("socket")
int with_loop(struct __sk_buff *skb) {
  int total = 0;
  bpf_loop(5, count_cb, &total, 0);
  return total;  // 0+1+2+3+4 = 10
}

// Stops after the third iteration: bpf_loop returns 3.
static long stop_at_two(__u64 index, void *ctx) { return index == 2; }

SEC("socket")
int loop_stops(struct __sk_buff *skb) { return bpf_loop(100, stop_at_two, 0, 0); }

struct {
  __uint(type, BPF_MAP_TYPE_ARRAY);
  __type(key, __u32);
  __type(value, __u64);
  __uint(max_entries, 4);
} numbers SEC(".maps");

struct sum_ctx { __u64 sum; __u32 visited; };

// Adds key * 10 to every value and sums the results.
static long add_up(void *map, __u32 *key, __u64 *value, struct sum_ctx *c) {
  *value += *key * 10;
  c->sum += *value;
  c->visited++;
  return 0;
}

SEC("socket")
int sum_numbers(struct __sk_buff *skb) {
  struct sum_ctx c = {};
  long n = bpf_for_each_map_elem(&numbers, add_up, &c, 0);
  return c.sum * 100 + n * 10 + c.visited;  // first run: (0+10+20+30) * 100 + 4 * 10 + 4
}

char LICENSE[] SEC("license") = "GPL";
