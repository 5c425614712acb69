// bpf_perf_event_read and bpf_perf_event_read_value on the slots perf_counters.c fills: this CPU's
// clock, another CPU's, this thread's task clock, a BPF output event; past the end, bad flags, a bad
// size. Run by BPF_PROG_TEST_RUN on CPU 0; each result goes to `res`.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
struct { __uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY); __uint(max_entries, 4); __type(key, int); __type(value, int); } counters SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_ARRAY); __uint(max_entries, 16); __type(key, int); __type(value, long); } res SEC(".maps");
static void put(int i, long v) { bpf_map_update_elem(&res, &i, &v, 0); }
SEC("raw_tracepoint/test")
int readers(void *ctx) {
  put(0, bpf_perf_event_read(&counters, BPF_F_CURRENT_CPU));
  put(1, bpf_perf_event_read(&counters, 0));
  put(2, bpf_perf_event_read(&counters, 1));
  put(3, bpf_perf_event_read(&counters, 2));
  put(4, bpf_perf_event_read(&counters, 3));
  put(5, bpf_perf_event_read(&counters, 7));
  put(6, bpf_perf_event_read(&counters, 1ull << 32));
  struct bpf_perf_event_value v = {};
  put(7, bpf_perf_event_read_value(&counters, BPF_F_CURRENT_CPU, &v, sizeof v));
  put(8, v.counter > 0); put(9, v.enabled > 0); put(10, v.running > 0);
  put(11, bpf_perf_event_read_value(&counters, 3, &v, sizeof v));
  put(12, bpf_perf_event_read_value(&counters, BPF_F_CURRENT_CPU, &v, 16));
  put(13, bpf_perf_event_read_value(&counters, 2, &v, sizeof v));
  put(14, v.counter);
  return 0;
}
char LICENSE[] SEC("license") = "GPL";
