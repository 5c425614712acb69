// Maps of kernel objects and local storage as programs use them: bpf_redirect_map on a devmap and a
// cpumap (the packet's first bytes choose the map, the key and the flags), and a per-task counter in a
// task storage, made on first use (bpf_task_storage_get with BPF_LOCAL_STORAGE_GET_F_CREATE) and
// dropped by bpf_task_storage_delete. Run with test_run against the kernel's answers.
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

char LICENSE[] SEC("license") = "GPL";
