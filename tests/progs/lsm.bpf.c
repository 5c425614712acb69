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

SEC("lsm/no_such_hook")
int no_such_hook(unsigned long long *ctx) {
  return 0;
}
