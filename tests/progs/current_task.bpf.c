// bpf_get_current_task (35) and the kernel objects it leads to, read as libbpf-tools read them: CO-RE
// (local types relocated against the running kernel's BTF) through bpf_probe_read_kernel, the legacy
// bpf_probe_read, and the _str variant. Run with test_run: the task is the test's own thread.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>

typedef struct {
  unsigned int val;
} kuid_t;
struct cred {
  kuid_t uid;
  kuid_t euid;
} __attribute__((preserve_access_index));
struct ns_common {
  unsigned int inum;
} __attribute__((preserve_access_index));
struct mnt_namespace {
  struct ns_common ns;
} __attribute__((preserve_access_index));
struct net {
  struct ns_common ns;
} __attribute__((preserve_access_index));
struct nsproxy {
  struct mnt_namespace *mnt_ns;
  struct net *net_ns;
} __attribute__((preserve_access_index));
struct mm_struct {
  unsigned long arg_start;
  unsigned long arg_end;
} __attribute__((preserve_access_index));
struct upid {
  int nr;
} __attribute__((preserve_access_index));
struct pid {
  unsigned int level;
  struct upid numbers[1];
} __attribute__((preserve_access_index));
struct fs_struct {
  int umask;
} __attribute__((preserve_access_index));
struct task_struct {
  int pid;
  int tgid;
  unsigned int flags;
  int exit_code;
  unsigned long long start_time;
  char comm[16];
  struct task_struct *real_parent;
  struct task_struct *group_leader;
  const struct cred *real_cred;
  struct nsproxy *nsproxy;
  struct mm_struct *mm;
  struct pid *thread_pid;
  struct fs_struct *fs;
} __attribute__((preserve_access_index));

struct out {
  unsigned long long task;
  int pid, tgid, ppid, grandparent_pid;
  unsigned int flags;
  int exit_code;
  unsigned long long start_time;
  char comm[16];
  char leader_comm[16];
  unsigned int uid, euid, mnt_inum, net_inum, pid_level;
  int pid_nr;
  unsigned long long arg_start, arg_end;
  int legacy_pid;
  long bad_read, user_read, str_len, root_pid, root_parent_pid;
};

struct {
  __uint(type, BPF_MAP_TYPE_ARRAY);
  __uint(max_entries, 1);
  __type(key, __u32);
  __type(value, struct out);
} task_out SEC(".maps");

SEC("raw_tracepoint/test")
int current_task(void *ctx) {
  __u32 zero = 0;
  struct out *o = bpf_map_lookup_elem(&task_out, &zero);
  if (!o) return 1;
  struct task_struct *task = (struct task_struct *)bpf_get_current_task();
  o->task = (unsigned long long)task;
  o->pid = BPF_CORE_READ(task, pid);
  o->tgid = BPF_CORE_READ(task, tgid);
  o->ppid = BPF_CORE_READ(task, real_parent, tgid);
  o->grandparent_pid = BPF_CORE_READ(task, real_parent, real_parent, pid);
  o->flags = BPF_CORE_READ(task, flags);
  o->exit_code = BPF_CORE_READ(task, exit_code);
  o->start_time = BPF_CORE_READ(task, start_time);
  BPF_CORE_READ_INTO(&o->comm, task, comm);
  o->str_len = BPF_CORE_READ_STR_INTO(&o->leader_comm, task, group_leader, comm);
  o->uid = BPF_CORE_READ(task, real_cred, uid.val);
  o->euid = BPF_CORE_READ(task, real_cred, euid.val);
  o->mnt_inum = BPF_CORE_READ(task, nsproxy, mnt_ns, ns.inum);
  o->net_inum = BPF_CORE_READ(task, nsproxy, net_ns, ns.inum);
  o->pid_level = BPF_CORE_READ(task, thread_pid, level);
  o->pid_nr = BPF_CORE_READ(task, thread_pid, numbers[0].nr);
  o->arg_start = BPF_CORE_READ(task, mm, arg_start);
  o->arg_end = BPF_CORE_READ(task, mm, arg_end);
  bpf_probe_read(&o->legacy_pid, sizeof o->legacy_pid, &task->pid);
  // A non-canonical address: a fault on both sides; a kernel address is not user memory.
  int x = 0;
  o->bad_read = bpf_probe_read_kernel(&x, sizeof x, (void *)0xdead000000000000ULL);
  o->user_read = bpf_probe_read_user(&x, sizeof x, &task->pid);
  // The top of the parent chain: pid 1's parent is the kernel's init_task, pid 0, its own parent.
  struct task_struct *t = task;
  for (int i = 0; i < 64; i++) {
    int pid = BPF_CORE_READ(t, pid);
    if (pid == 0) break;
    t = BPF_CORE_READ(t, real_parent);
  }
  o->root_pid = BPF_CORE_READ(t, pid);
  o->root_parent_pid = BPF_CORE_READ(t, real_parent, pid);
  return 0;
}

// bpf_get_current_task_btf (158): the same task as a trusted BTF pointer, its fields read by plain
// loads (the kernel's PROBE_MEM loads), pointers followed directly.
struct out_btf {
  int pid, tgid, ppid, root_pid;
  unsigned int uid;
  char comm[16];
  unsigned long long arg_start;
  int umask;
};

struct {
  __uint(type, BPF_MAP_TYPE_ARRAY);
  __uint(max_entries, 1);
  __type(key, __u32);
  __type(value, struct out_btf);
} task_btf_out SEC(".maps");

SEC("raw_tracepoint/test")
int current_task_btf(void *ctx) {
  __u32 zero = 0;
  struct out_btf *o = bpf_map_lookup_elem(&task_btf_out, &zero);
  if (!o) return 1;
  struct task_struct *task = bpf_get_current_task_btf();
  o->pid = task->pid;
  o->tgid = task->tgid;
  o->ppid = task->real_parent->tgid;
  o->uid = task->real_cred->uid.val;
  __builtin_memcpy(o->comm, task->comm, sizeof o->comm);
  o->arg_start = task->mm->arg_start;
  o->umask = task->fs->umask;  // (bpfvm has no fs_struct: a load through NULL, which reads 0)
  struct task_struct *t = task;
  for (int i = 0; i < 64; i++) {
    if (t->pid == 0) break;
    t = t->real_parent;
  }
  o->root_pid = t->pid;
  return 0;
}

char LICENSE[] SEC("license") = "GPL";
