// A user ring buffer drained by a program: each sample (a number) read through its dynptr and added up;
// a sample of 99 stops the drain. Run by BPF_PROG_TEST_RUN; results in `out`.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct {
  __uint(type, BPF_MAP_TYPE_USER_RINGBUF);
  __uint(max_entries, 4096);
} samples SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_ARRAY);
  __uint(max_entries, 3);
  __type(key, int);
  __type(value, long);
} out SEC(".maps");

struct totals {
  long sum, seen;
};

static long add(struct bpf_dynptr *d, void *ctx) {
  struct totals *t = ctx;
  long v = 0;
  if (bpf_dynptr_read(&v, sizeof v, d, 0, 0)) return 1;
  t->seen++;
  if (v == 99) return 1;
  t->sum += v;
  return 0;
}

SEC("raw_tracepoint/test")
int drain(void *ctx) {
  struct totals t = {};
  long drained = bpf_user_ringbuf_drain(&samples, add, &t, 0);
  int k = 0;
  bpf_map_update_elem(&out, &k, &drained, 0);
  k = 1;
  bpf_map_update_elem(&out, &k, &t.sum, 0);
  k = 2;
  bpf_map_update_elem(&out, &k, &t.seen, 0);
  return 0;
}

char LICENSE[] SEC("license") = "GPL";
