// LSM programs (BPF_PROG_TYPE_LSM) judged against their hook in the running kernel's BTF (bpf_lsm_HOOK):
// its arguments are the context, read only; an int hook's program returns 0 or a negative errno, checked
// on r0's lower 32 bits; a yes-or-no hook's 0 or 1; a void hook's anything (bpf_lsm_get_retval_range).
// This machine's kernel refuses every LSM load before its verifier runs, so these verdicts are checked
// against the kernel's rules (ObjectTest.LsmProgramsFollowTheirHooksReturnRules), not the kernel.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct file {
  unsigned int f_flags;
} __attribute__((preserve_access_index));
struct inode;
struct sock;
struct socket {
  struct sock *sk;
} __attribute__((preserve_access_index));

char LICENSE[] SEC("license") = "GPL";

SEC("lsm/file_open")
int allow_or_deny(unsigned long long *ctx) {
  const struct file *f = (void *)ctx[0];
  return f->f_flags & 1 ? -1 : 0;
}

SEC("lsm/file_open")
int returns_5(unsigned long long *ctx) {
  return 5;
}

// -EPERM as an unsigned 32-bit value: r0's lower half is what counts.
SEC("lsm/file_open")
unsigned int returns_u32_errno(unsigned long long *ctx) {
  return (unsigned int)-1;
}

SEC("lsm/task_free")
void void_hook(unsigned long long *ctx) {
}

SEC("lsm/inode_xattr_skipcap")
int yes_or_no_hook_returns_2(unsigned long long *ctx) {
  return 2;
}

SEC("lsm/file_open")
int writes_its_argument(unsigned long long *ctx) {
  struct file *f = (void *)ctx[0];
  f->f_flags = 0;
  return 0;
}

// A program that allows everything, at the hook its section names: judged by the hook alone.
#define ALLOWS_ALL(section, name) \
  SEC(section) int name(unsigned long long *ctx) { return 0; }

ALLOWS_ALL("lsm/no_such_hook", no_such_hook)

// What the kernel's bpf_lsm.c decides by hook (LsmHooksDecideWhatAProgramMay):
// a hook it disabled (bpf_lsm_disabled_hooks), a bpf_lsm_ function that is no hook,
ALLOWS_ALL("lsm/vm_enough_memory", disabled_hook)
ALLOWS_ALL("lsm/verify_prog", not_a_hook)

// a sleepable program at a hook that may not sleep (sleepable_lsm_hooks), and at one that may,
SEC("lsm.s/task_free")
void sleepable_at_task_free(unsigned long long *ctx) {
}

// the IMA hashes: at a sleepable hook from a sleepable program only,
#define HASHES(section, name, helper, type)                     \
  SEC(section) int name(unsigned long long *ctx) {              \
    char digest[32];                                            \
    helper((struct type *)ctx[0], digest, sizeof digest);       \
    return 0;                                                   \
  }

HASHES("lsm.s/file_open", ima_hash_sleepable, bpf_ima_file_hash, file)
HASHES("lsm/file_open", ima_hash_not_sleepable, bpf_ima_file_hash, file)
HASHES("lsm/inode_permission", ima_hash_at_hook_that_cannot_sleep, bpf_ima_inode_hash, inode)

// the link's cookie (a trampoline's: not a cgroup LSM program's),
SEC("lsm/file_open")
int cookie(unsigned long long *ctx) {
  return bpf_get_attach_cookie(ctx) == 7 ? -1 : 0;
}

SEC("lsm_cgroup/file_open")
int cgroup_cookie(unsigned long long *ctx) {
  return bpf_get_attach_cookie(ctx) == 7 ? 0 : 1;
}

// and a cgroup LSM program's socket options, at the socket hooks that offer them.
SEC("lsm_cgroup/socket_post_create")
int cgroup_sockopt(unsigned long long *ctx) {
  struct socket *sock = (void *)ctx[0];
  int mark = 7;
  struct sock *sk = sock->sk;
  if (!sk) return 1;
  bpf_setsockopt(sk, 1 /* SOL_SOCKET */, 36 /* SO_MARK */, &mark, sizeof mark);
  return 1;
}

SEC("lsm_cgroup/file_open")
int cgroup_sockopt_at_file_open(unsigned long long *ctx) {
  int mark = 7;
  bpf_setsockopt((void *)ctx[0], 1, 36, &mark, sizeof mark);
  return 1;
}

SEC("lsm/socket_post_create")
int sockopt_not_cgroup(unsigned long long *ctx) {
  struct socket *sock = (void *)ctx[0];
  int mark = 7;
  struct sock *sk = sock->sk;
  if (!sk) return 0;
  bpf_setsockopt(sk, 1, 36, &mark, sizeof mark);
  return 0;
}
