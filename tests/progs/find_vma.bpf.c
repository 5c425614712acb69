// bpf_find_vma (180): the current task's memory area that holds an address, given to a callback, which
// reads it as programs read the kernel's vm_area_struct (plain loads through the BTF pointer, CO-RE
// relocated against the running kernel's BTF): bounds, flags, page offset, the file's name. Run with
// test_run, the task being the test's own thread, on the kernel and on bpfvm (KernelOracle.FindVma).
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct qstr {
  unsigned int len;
  const unsigned char *name;
} __attribute__((preserve_access_index));
struct dentry {
  struct qstr d_name;
} __attribute__((preserve_access_index));
struct path {
  struct dentry *dentry;
} __attribute__((preserve_access_index));
struct file {
  struct path f_path;
} __attribute__((preserve_access_index));
struct vm_area_struct {
  unsigned long vm_start;
  unsigned long vm_end;
  unsigned long vm_flags;
  unsigned long vm_pgoff;
  struct file *vm_file;
} __attribute__((preserve_access_index));
struct task_struct {
  int pid;
} __attribute__((preserve_access_index));

struct out {
  long long ret;
  unsigned long long start, end, flags, pgoff;
  unsigned int found, has_file, name_len, pad;
  char name[64];
};

struct {
  __uint(type, BPF_MAP_TYPE_ARRAY);
  __uint(max_entries, 1);
  __type(key, __u32);
  __type(value, struct out);
} vma_out SEC(".maps");

static long on_vma(struct task_struct *task, struct vm_area_struct *vma, struct out *o) {
  o->found = 1;
  o->start = vma->vm_start;
  o->end = vma->vm_end;
  o->flags = vma->vm_flags;
  o->pgoff = vma->vm_pgoff;
  struct file *f = vma->vm_file;
  if (f) {
    struct dentry *d = f->f_path.dentry;
    o->has_file = 1;
    o->name_len = d->d_name.len;
    bpf_probe_read_kernel_str(o->name, sizeof o->name, d->d_name.name);
  }
  return 0;
}

// ctx: the address, the flags.
SEC("raw_tp/sys_enter")
int find_vma(unsigned long long *ctx) {
  struct out o = {};
  __u32 zero = 0;
  o.ret = bpf_find_vma(bpf_get_current_task_btf(), ctx[0], on_vma, &o, ctx[1]);
  bpf_map_update_elem(&vma_out, &zero, &o, 0);
  return 0;
}

char LICENSE[] SEC("license") = "GPL";
