// A ring buffer: each run submits one reserved record, discards one and outputs one, then reports the
// bytes waiting for the consumer.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct event {
  __u32 seq;
  __u32 len;
  char tag[8];
};

struct {
  __uint(type, BPF_MAP_TYPE_RINGBUF);
  __uint(max_entries, 4096);
} events SEC(".maps");

__u32 seq;

SEC("socket")
int emit(struct __sk_buff *skb) {
  struct event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
  if (!e) return -1;
  e->seq = seq++;
  e->len = skb->len;
  __builtin_memcpy(e->tag, "reserve", 8);
  bpf_ringbuf_submit(e, 0);
  struct event *d = bpf_ringbuf_reserve(&events, sizeof(*d), 0);
  if (d) bpf_ringbuf_discard(d, BPF_RB_NO_WAKEUP);
  struct event o = {.seq = 1000 + seq, .len = 0, .tag = "output"};
  if (bpf_ringbuf_output(&events, &o, sizeof(o), BPF_RB_FORCE_WAKEUP)) return -2;
  return bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA);
}

char LICENSE[] SEC("license") = "GPL";
