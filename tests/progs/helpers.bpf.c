// Helpers a tracing program uses on the task it runs for: its ids and name, its memory (a string at
// args[0], an unmapped address at args[1]), the clocks and strncmp. Results go to a map.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct out {
  __u64 pid_tgid;
  __u64 uid_gid;
  char comm[16];
  char str[32];
  long str_len;
  long bad_read;
  long bad_read_str;
  long cmp_equal;
  long cmp_less;
  __u64 clocks_ok;
  __u32 numa, cpu;
};

struct {
  __uint(type, BPF_MAP_TYPE_ARRAY);
  __type(key, __u32);
  __type(value, struct out);
  __uint(max_entries, 1);
} results SEC(".maps");

SEC("raw_tracepoint/test")
int task_helpers(struct bpf_raw_tracepoint_args *ctx) {
  __u32 k = 0;
  struct out *o = bpf_map_lookup_elem(&results, &k);
  if (!o) return 1;
  o->pid_tgid = bpf_get_current_pid_tgid();
  o->uid_gid = bpf_get_current_uid_gid();
  bpf_get_current_comm(o->comm, sizeof(o->comm));
  o->str_len = bpf_probe_read_user_str(o->str, sizeof(o->str), (void *)ctx->args[0]);
  __u64 scratch = 0;
  o->bad_read = bpf_probe_read_user(&scratch, sizeof(scratch), (void *)ctx->args[1]);
  char buf[8];
  o->bad_read_str = bpf_probe_read_user_str(buf, sizeof(buf), (void *)ctx->args[1]);
  o->cmp_equal = bpf_strncmp(o->str, sizeof(o->str), "hello, helpers");
  o->cmp_less = bpf_strncmp(o->str, sizeof(o->str), "hello, z");
  __u64 a = bpf_ktime_get_ns(), b = bpf_ktime_get_ns(), boot = bpf_ktime_get_boot_ns();
  o->clocks_ok = b >= a && boot >= a && bpf_jiffies64() > 0;
  o->numa = bpf_get_numa_node_id();
  o->cpu = bpf_get_smp_processor_id() < 4096;
  return 0;
}

// Signals the process it runs for (the caller of test_run): SIGUSR2.
SEC("raw_tracepoint/test")
int signal_me(struct bpf_raw_tracepoint_args *ctx) { return bpf_send_signal(12); }

// A per-CPU array walked by bpf_for_each_map_elem: the callback sees this CPU's values.
struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
  __type(key, __u32);
  __type(value, __u64);
  __uint(max_entries, 3);
} per_cpu SEC(".maps");

static long bump(void *map, __u32 *key, __u64 *value, void *ctx) {
  *value += *key + 1;
  return 0;
}

SEC("raw_tracepoint/test")
int walk_per_cpu(struct bpf_raw_tracepoint_args *ctx) {
  long n = bpf_for_each_map_elem(&per_cpu, bump, 0, 0);
  __u32 k = 2;
  __u64 *v = bpf_map_lookup_elem(&per_cpu, &k);
  return v ? n * 100 + *v : -1;
}

char LICENSE[] SEC("license") = "GPL";
