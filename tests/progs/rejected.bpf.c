// Programs with the classic mistakes, each of which the verifier must refuse with an explanation that
// names the source line and says how to fix it (tests/unit/runtime_verifier_test.cpp).
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <bpf/bpf_helpers.h>

struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, 64);
  __type(key, __u32);
  __type(value, __u64);
} counts SEC(".maps");

struct slots {
  __u32 n[16];
};

struct {
  __uint(type, BPF_MAP_TYPE_ARRAY);
  __uint(max_entries, 1);
  __type(key, __u32);
  __type(value, struct slots);
} table SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_RINGBUF);
  __uint(max_entries, 4096);
} events SEC(".maps");

SEC("socket")
int null_deref(struct __sk_buff *skb) {
  __u32 key = skb->len;
  __u64 *v = bpf_map_lookup_elem(&counts, &key);
  return *v;  // no NULL check
}

SEC("xdp")
int no_length_check(struct xdp_md *ctx) {
  struct ethhdr *eth = (void *)(long)ctx->data;
  return eth->h_proto == 8 ? XDP_DROP : XDP_PASS;  // data_end never consulted
}

SEC("socket")
int leaked_record(struct __sk_buff *skb) {
  __u32 *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
  if (!e) return 0;
  *e = skb->len;
  if (skb->len > 100) return 1;  // the record is neither submitted nor discarded here
  bpf_ringbuf_submit(e, 0);
  return 0;
}

SEC("socket")
int unbounded_index(struct __sk_buff *skb) {
  __u32 zero = 0;
  struct slots *s = bpf_map_lookup_elem(&table, &zero);
  if (!s) return 0;
  __u32 i = skb->len;
  return s->n[i];  // i is never bounded
}

SEC("socket")
int fine(struct __sk_buff *skb) {
  __u32 zero = 0;
  struct slots *s = bpf_map_lookup_elem(&table, &zero);
  if (!s) return 0;
  __u32 i = skb->len;
  if (i >= 16) return 0;
  return s->n[i];
}

// A global function is verified on its own, for any caller: its pointer argument may be NULL.
__noinline int first_word(__u32 *words) { return words[0]; }

SEC("socket")
int global_unchecked(struct __sk_buff *skb) {
  __u32 w[2] = {skb->len, 0};
  return first_word(w);
}

char LICENSE[] SEC("license") = "GPL";
