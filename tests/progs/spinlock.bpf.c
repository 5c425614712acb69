// A value with a bpf_spin_lock: programs update two fields under the lock; user space reads and
// writes with BPF_F_LOCK.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct account {
  __u64 deposits;
  struct bpf_spin_lock lock;
  __u64 balance;
};

struct {
  __uint(type, BPF_MAP_TYPE_ARRAY);
  __type(key, __u32);
  __type(value, struct account);
  __uint(max_entries, 1);
} accounts SEC(".maps");

// tc, not socket: the kernel does not let socket filters or tracing programs use maps with spin locks.
SEC("tc")
int deposit(struct __sk_buff *skb) {
  __u32 k = 0;
  struct account *a = bpf_map_lookup_elem(&accounts, &k);
  if (!a) return -1;
  bpf_spin_lock(&a->lock);
  a->deposits += 1;
  a->balance += skb->len;
  bpf_spin_unlock(&a->lock);
  return 0;
}

char LICENSE[] SEC("license") = "GPL";
