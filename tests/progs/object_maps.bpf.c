// Maps of kernel objects and local storage as programs use them: bpf_redirect_map on a devmap and a
// cpumap (the packet's first bytes choose the map, the key and the flags), a per-task counter in a
// task storage, made on first use (bpf_task_storage_get with BPF_LOCAL_STORAGE_GET_F_CREATE) and
// dropped by bpf_task_storage_delete, and packet counts in cgroup storages (bpf_get_local_storage).
// Run with test_run against the kernel's answers.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct {
  __uint(type, BPF_MAP_TYPE_DEVMAP);
  __uint(max_entries, 4);
  __type(key, __u32);
  __type(value, __u32);
} devs SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_CPUMAP);
  __uint(max_entries, 2);
  __type(key, __u32);
  __type(value, __u32);
} cpus SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_TASK_STORAGE);
  __uint(map_flags, BPF_F_NO_PREALLOC);
  __type(key, int);
  __type(value, long);
} counts SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_CGROUP_STORAGE);
  __type(key, struct bpf_cgroup_storage_key);
  __type(value, __u64);
} shared_count SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_CGROUP_STORAGE);
  __type(key, struct bpf_cgroup_storage_key);
  __type(value, __u64);
} cpu_count SEC(".maps");

// Counts packets in both cgroup storages (which a test run gets zeroed) and shows the counts in the
// context's cb[0] and cb[1].
SEC("cgroup_skb/egress")
int count_packets(struct __sk_buff *skb) {
  __u64 *shared = bpf_get_local_storage(&shared_count, 0);
  __u64 *mine = bpf_get_local_storage(&cpu_count, 0);
  __sync_fetch_and_add(shared, 1);
  *mine += 1;
  skb->cb[0] = *shared;
  skb->cb[1] = *mine;
  return 1;
}

struct {
  __uint(type, BPF_MAP_TYPE_SK_STORAGE);
  __uint(map_flags, BPF_F_NO_PREALLOC);
  __type(key, int);
  __type(value, __u64);
} sk_counts SEC(".maps");

// Counts runs on the packet's socket (a test run's dummy socket) in its sk_storage: cb[0] the count,
// cb[1] what deleting it at 3 returned, cb[2] 99 when the socket had no storage to give.
SEC("cgroup_skb/ingress")
int count_socket(struct __sk_buff *skb) {
  struct bpf_sock *sk = skb->sk;
  if (!sk) return 1;
  __u64 *n = bpf_sk_storage_get(&sk_counts, sk, 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
  if (!n) {
    skb->cb[2] = 99;
    return 1;
  }
  *n += 1;
  skb->cb[0] = *n;
  if (*n == 3) skb->cb[1] = bpf_sk_storage_delete(&sk_counts, sk) + 7;
  return 1;
}

// Frame bytes: [0] 0 = devs, 1 = cpus; [1] the key; [2] the flags.
SEC("xdp")
int redirect(struct xdp_md *ctx) {
  unsigned char *p = (unsigned char *)(long)ctx->data;
  if (p + 3 > (unsigned char *)(long)ctx->data_end) return XDP_DROP;
  if (p[0] == 0) return bpf_redirect_map(&devs, p[1], p[2]);
  return bpf_redirect_map(&cpus, p[1], p[2]);
}

// Returns the calling task's count after this run; with args[0] = 1, deletes it and returns the
// delete's result.
SEC("raw_tracepoint/test")
int count_task(unsigned long long *args) {
  struct task_struct *task = bpf_get_current_task_btf();
  if (args[0] == 1) return bpf_task_storage_delete(&counts, task);
  long *n = bpf_task_storage_get(&counts, task, 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
  if (!n) return -1;
  *n += 1;
  return *n;
}

// bpf_get_task_stack of the current task (its kernel stack: frames in the kernel, none in bpfvm):
// 0 when the call succeeds, 1 when it fails.
SEC("raw_tracepoint/test")
int task_stack(unsigned long long *args) {
  __u64 frames[8];
  long n = bpf_get_task_stack(bpf_get_current_task_btf(), frames, sizeof frames, 0);
  return n >= 0 ? 0 : 1;
}

char LICENSE[] SEC("license") = "GPL";
