// Timers in map values (struct bpf_timer): initialised with their own map, given a callback that the
// kernel runs later on its own (verified as a program of its own that returns 0), started, cancelled;
// refused at the wrong offset, in a map without one, through another map, from the stack, at a
// variable offset, in tracing programs, and by loads and stores. Judged by the kernel too (corpus_kernel_oracle).
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#define CLOCK_MONOTONIC 1
struct elem { long count; struct bpf_timer t; };
struct { __uint(type, BPF_MAP_TYPE_ARRAY); __uint(max_entries, 2); __type(key, int); __type(value, struct elem); } timers SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_HASH); __uint(max_entries, 2); __type(key, int); __type(value, struct elem); } htimers SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_ARRAY); __uint(max_entries, 2); __type(key, int); __type(value, long); } plain SEC(".maps");

static int fire(void *map, int *key, struct elem *e) { e->count++; return 0; }
static int fire_bad_ret(void *map, int *key, struct elem *e) { return 1; }
static int fire_rearm(void *map, int *key, struct elem *e) { bpf_timer_start(&e->t, 1000, 0); return 0; }

SEC("tc")
int arm(struct __sk_buff *skb) {
  int k = 0;
  struct elem *e = bpf_map_lookup_elem(&timers, &k);
  if (!e) return 0;
  bpf_timer_init(&e->t, &timers, CLOCK_MONOTONIC);
  bpf_timer_set_callback(&e->t, fire);
  bpf_timer_start(&e->t, 1000, 0);
  return 0;
}

SEC("tp/syscalls/sys_enter_getpid")
int arm_tp(void *ctx) {
  int k = 0;
  struct elem *e = bpf_map_lookup_elem(&htimers, &k);
  if (!e) return 0;
  bpf_timer_init(&e->t, &htimers, CLOCK_MONOTONIC);
  bpf_timer_set_callback(&e->t, fire_rearm);
  bpf_timer_start(&e->t, 1000, 0);
  bpf_timer_cancel(&e->t);
  return 0;
}

SEC("tc")
int wrong_map(struct __sk_buff *skb) {
  int k = 0;
  struct elem *e = bpf_map_lookup_elem(&timers, &k);
  if (!e) return 0;
  bpf_timer_init(&e->t, &htimers, CLOCK_MONOTONIC);
  return 0;
}

SEC("tc")
int wrong_off(struct __sk_buff *skb) {
  int k = 0;
  struct elem *e = bpf_map_lookup_elem(&timers, &k);
  if (!e) return 0;
  bpf_timer_init((void *)e, &timers, CLOCK_MONOTONIC);
  return 0;
}

SEC("tc")
int no_timer(struct __sk_buff *skb) {
  int k = 0;
  long *e = bpf_map_lookup_elem(&plain, &k);
  if (!e) return 0;
  bpf_timer_init((void *)e, &plain, CLOCK_MONOTONIC);
  return 0;
}

SEC("tc")
int bad_ret(struct __sk_buff *skb) {
  int k = 0;
  struct elem *e = bpf_map_lookup_elem(&timers, &k);
  if (!e) return 0;
  bpf_timer_set_callback(&e->t, fire_bad_ret);
  return 0;
}

SEC("tc")
int stack_timer(struct __sk_buff *skb) {
  struct elem e = {};
  bpf_timer_init(&e.t, &timers, CLOCK_MONOTONIC);
  return 0;
}

SEC("tc")
int var_off(struct __sk_buff *skb) {
  int k = 0;
  struct elem *e = bpf_map_lookup_elem(&timers, &k);
  if (!e) return 0;
  unsigned i = bpf_get_prandom_u32() & 8;
  bpf_timer_cancel((void *)((char *)&e->t - i));
  return 0;
}

static int fire_key(void *map, int *key, struct elem *e) { e->count += *key; return 0; }
static int fire_key_oob(void *map, int *key, struct elem *e) { return key[1] & 0; }

SEC("tp_btf/sched_switch")
int arm_btf(void *ctx) {
  int k = 1;
  struct elem *e = bpf_map_lookup_elem(&timers, &k);
  if (!e) return 0;
  bpf_timer_init(&e->t, &timers, CLOCK_MONOTONIC);
  bpf_timer_set_callback(&e->t, fire_key);
  return bpf_timer_start(&e->t, 0, 0) & 0;
}

SEC("tc")
int key_oob(struct __sk_buff *skb) {
  int k = 0;
  struct elem *e = bpf_map_lookup_elem(&timers, &k);
  if (!e) return 0;
  bpf_timer_set_callback(&e->t, fire_key_oob);
  return 0;
}

SEC("xdp")
int cancel_only(struct xdp_md *ctx) {
  int k = 0;
  struct elem *e = bpf_map_lookup_elem(&htimers, &k);
  if (e) bpf_timer_cancel(&e->t);
  return XDP_PASS;
}

// The timer's bytes are the helpers' alone: no load or store reaches them.
SEC("tc")
int touch_timer(struct __sk_buff *skb) {
  int k = 0;
  struct elem *e = bpf_map_lookup_elem(&timers, &k);
  if (!e) return 0;
  *(volatile long *)&e->t = 0;
  return 0;
}

SEC("tc")
int read_timer(struct __sk_buff *skb) {
  int k = 0;
  struct elem *e = bpf_map_lookup_elem(&timers, &k);
  if (!e) return 0;
  return ((volatile int *)&e->t)[3];
}

char LICENSE[] SEC("license") = "GPL";
