// Dynptr helpers run by bpfvm (runtime_tests DynptrTest): a dynptr over a map value written, read and
// sliced; bounds and flags refused with the kernel's errors; ring buffer records made, filled through a
// slice and submitted or discarded through dynptrs; a failed reservation's dynptr discarded.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct out {
  long from_mem, write, read, read_oob, write_oob, bad_flags, data_oob_null, reserve, too_big, big_discarded;
  char copied[8];
  char sliced;
};

struct {
  __uint(type, BPF_MAP_TYPE_ARRAY);
  __uint(max_entries, 2);
  __type(key, int);
  __type(value, char[32]);
} buffers SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_ARRAY);
  __uint(max_entries, 1);
  __type(key, int);
  __type(value, struct out);
} results SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_RINGBUF);
  __uint(max_entries, 4096);
} events SEC(".maps");

SEC("raw_tracepoint/test")
int dynptrs(void *ctx) {
  int zero = 0;
  struct out *o = bpf_map_lookup_elem(&results, &zero);
  char *buf = bpf_map_lookup_elem(&buffers, &zero);
  if (!o || !buf) return 1;
  struct bpf_dynptr d;
  o->from_mem = bpf_dynptr_from_mem(buf, 32, 0, &d);
  char hello[8] = "dynptr!";
  o->write = bpf_dynptr_write(&d, 4, hello, sizeof hello, 0);
  o->read = bpf_dynptr_read(o->copied, sizeof o->copied, &d, 4, 0);
  char eight[8];
  o->read_oob = bpf_dynptr_read(eight, sizeof eight, &d, 28, 0);
  o->write_oob = bpf_dynptr_write(&d, 30, hello, 4, 0);
  char one[1];
  o->bad_flags = bpf_dynptr_read(one, 1, &d, 0, 1);
  char *p = bpf_dynptr_data(&d, 4, 4);
  if (p) o->sliced = p[3];
  o->data_oob_null = bpf_dynptr_data(&d, 30, 4) == 0;

  struct bpf_dynptr r;
  o->reserve = bpf_ringbuf_reserve_dynptr(&events, 16, 0, &r);
  long *rec = bpf_dynptr_data(&r, 0, 16);
  if (rec) {
    rec[0] = 0x1122334455667788;
    rec[1] = 42;
  }
  bpf_ringbuf_submit_dynptr(&r, 0);
  struct bpf_dynptr big;
  o->too_big = bpf_ringbuf_reserve_dynptr(&events, 1 << 20, 0, &big);
  char scratch[1];
  o->big_discarded = bpf_dynptr_read(scratch, 1, &big, 0, 0);  // a null dynptr: -EINVAL
  bpf_ringbuf_discard_dynptr(&big, 0);
  return 0;
}

char LICENSE[] SEC("license") = "GPL";
