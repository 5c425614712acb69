// Timers that run: each program is run once (BPF_PROG_TEST_RUN) on the kernel and on bpfvm, the timers
// expire afterwards, and the maps must then hold the same values (KernelOracle.TimersFire). `codes`
// records what the timer helpers return at each step; the callbacks record what they were given.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#define CLOCK_REALTIME 0
#define CLOCK_MONOTONIC 1
#define CLOCK_THREAD_CPUTIME_ID 3
#define CLOCK_BOOTTIME 7
#define TIMER_ABS 1  // BPF_F_TIMER_ABS
#define EDEADLK 35

struct elem {
  long fired;      // how many times the callback ran
  long key_seen;   // the key it was given
  long again;      // how many more times it starts itself
  long cancelled;  // what bpf_timer_cancel of its own timer returned inside it
  struct bpf_timer t;
};
struct { __uint(type, BPF_MAP_TYPE_ARRAY); __uint(max_entries, 5); __type(key, int); __type(value, struct elem); } atimers SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_HASH); __uint(max_entries, 4); __type(key, long); __type(value, struct elem); } htimers SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_ARRAY); __uint(max_entries, 16); __type(key, int); __type(value, long); } results SEC(".maps");

static void record(int i, long v) {
  long *r = bpf_map_lookup_elem(&results, &i);
  if (r) *r = v;
}

static int count_array(void *map, int *key, struct elem *e) {
  e->fired++;
  e->key_seen = *key;
  return 0;
}

static int count_hash(void *map, long *key, struct elem *e) {
  e->fired++;
  e->key_seen = *key;
  if (e->again > 0) {
    e->again--;
    bpf_timer_start(&e->t, 1000, 0);
  }
  return 0;
}

static int cancel_itself(void *map, int *key, struct elem *e) {
  e->fired++;
  e->cancelled = bpf_timer_cancel(&e->t);
  return 0;
}

// What each helper returns, step by step, on array element 0.
SEC("tc")
int codes(struct __sk_buff *skb) {
  int k = 0, k4 = 4;
  struct elem *e = bpf_map_lookup_elem(&atimers, &k);
  struct elem *e4 = bpf_map_lookup_elem(&atimers, &k4);
  if (!e || !e4) return 1;
  record(0, bpf_timer_cancel(&e->t));                          // not initialised: -EINVAL
  record(1, bpf_timer_start(&e->t, 1000, 0));                  // -EINVAL
  record(2, bpf_timer_set_callback(&e->t, count_array));       // -EINVAL
  record(3, bpf_timer_init(&e4->t, &atimers, CLOCK_THREAD_CPUTIME_ID));  // not a timer clock: -EINVAL
  record(4, bpf_timer_init(&e4->t, &atimers, 16));             // past MAX_CLOCKS: -EINVAL
  record(5, bpf_timer_init(&e->t, &atimers, CLOCK_MONOTONIC)); // 0
  record(6, bpf_timer_init(&e->t, &atimers, CLOCK_REALTIME));  // again: -EBUSY
  record(7, bpf_timer_start(&e->t, 1000, 0));                  // no callback yet: -EINVAL
  record(8, bpf_timer_set_callback(&e->t, count_array));       // 0
  record(9, bpf_timer_start(&e->t, 1000, 4));                  // an unknown flag: -EINVAL
  record(10, bpf_timer_start(&e->t, 10000000000ull, 0));       // 10 s: 0
  record(11, bpf_timer_cancel(&e->t));                         // it was pending: 1
  record(12, bpf_timer_cancel(&e->t));                         // no longer: 0
  record(13, bpf_timer_start(&e->t, 1000, 0));                // cancel took the callback away: -EINVAL
  bpf_timer_set_callback(&e->t, count_array);
  bpf_timer_start(&e->t, 10000000000ull, 0);                   // pending when user space writes the element
  return 0;
}

// Array element 1: fires once, 1 us from now, with its key.
SEC("tc")
int arm_array(struct __sk_buff *skb) {
  int k = 1;
  struct elem *e = bpf_map_lookup_elem(&atimers, &k);
  if (!e) return 1;
  bpf_timer_init(&e->t, &atimers, CLOCK_BOOTTIME);
  bpf_timer_set_callback(&e->t, count_array);
  return bpf_timer_start(&e->t, 1000, 0);
}

// Hash element 77: starts itself again from its callback, three times (four expiries).
SEC("tc")
int arm_hash(struct __sk_buff *skb) {
  long k = 77;
  struct elem fresh = {.again = 3};
  bpf_map_update_elem(&htimers, &k, &fresh, BPF_ANY);
  struct elem *e = bpf_map_lookup_elem(&htimers, &k);
  if (!e) return 1;
  bpf_timer_init(&e->t, &htimers, CLOCK_MONOTONIC);
  bpf_timer_set_callback(&e->t, count_hash);
  return bpf_timer_start(&e->t, 1000, 0);
}

// Array element 2: its callback cancels its own timer (-EDEADLK).
SEC("tc")
int arm_self_cancel(struct __sk_buff *skb) {
  int k = 2;
  struct elem *e = bpf_map_lookup_elem(&atimers, &k);
  if (!e) return 1;
  bpf_timer_init(&e->t, &atimers, CLOCK_MONOTONIC);
  bpf_timer_set_callback(&e->t, cancel_itself);
  return bpf_timer_start(&e->t, 0, 0);
}

// Array element 3: an absolute expiry on CLOCK_MONOTONIC (bpf_ktime_get_ns's clock).
SEC("tc")
int arm_absolute(struct __sk_buff *skb) {
  int k = 3;
  struct elem *e = bpf_map_lookup_elem(&atimers, &k);
  if (!e) return 1;
  bpf_timer_init(&e->t, &atimers, CLOCK_MONOTONIC);
  bpf_timer_set_callback(&e->t, count_array);
  return bpf_timer_start(&e->t, bpf_ktime_get_ns() + 2000, TIMER_ABS);
}

// Hash element 88: pending for 10 s when user space deletes the element.
SEC("tc")
int arm_to_delete(struct __sk_buff *skb) {
  long k = 88;
  struct elem fresh = {};
  bpf_map_update_elem(&htimers, &k, &fresh, BPF_ANY);
  struct elem *e = bpf_map_lookup_elem(&htimers, &k);
  if (!e) return 1;
  bpf_timer_init(&e->t, &htimers, CLOCK_MONOTONIC);
  bpf_timer_set_callback(&e->t, count_hash);
  return bpf_timer_start(&e->t, 10000000000ull, 0);
}

// After user space wrote array element 0 (freeing its timer): initialised anew, not -EBUSY.
SEC("tc")
int after_write(struct __sk_buff *skb) {
  int k = 0;
  struct elem *e = bpf_map_lookup_elem(&atimers, &k);
  if (!e) return 1;
  record(14, bpf_timer_init(&e->t, &atimers, CLOCK_MONOTONIC));
  record(15, bpf_timer_cancel(&e->t));  // nothing pending: 0
  return 0;
}

char LICENSE[] SEC("license") = "GPL";
