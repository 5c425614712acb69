// A syscall program (BPF_PROG_TYPE_SYSCALL, run by BPF_PROG_RUN with ctx_in): bpf() from the program
// (a map made and updated, a command it may not make), close(), a kernel type found by name, a kernel
// symbol looked up. Results go back in the context (KernelOracle.SyscallPrograms).
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct args {
  int value_in;
  int map_fd, update, bad_cmd, closed, close_again;
  long btf_id, missing_btf, bad_name, ksym;
  __u64 ksym_addr;
};

SEC("syscall")
int make_map(struct args *ctx) {
  union bpf_attr attr = {};
  attr.map_type = BPF_MAP_TYPE_ARRAY;
  attr.key_size = 4;
  attr.value_size = 4;
  attr.max_entries = 1;
  int fd = bpf_sys_bpf(BPF_MAP_CREATE, &attr, sizeof attr);
  ctx->map_fd = fd;
  if (fd < 0) return 1;
  int key = 0, value = ctx->value_in;
  union bpf_attr u = {};
  u.map_fd = fd;
  u.key = (unsigned long)&key;
  u.value = (unsigned long)&value;
  ctx->update = bpf_sys_bpf(BPF_MAP_UPDATE_ELEM, &u, sizeof u);
  ctx->bad_cmd = bpf_sys_bpf(BPF_MAP_LOOKUP_ELEM, &u, sizeof u);
  ctx->closed = bpf_sys_close(fd);
  ctx->close_again = bpf_sys_close(fd);
  char name[] = "task_struct", nope[] = "no_such_type_here";
  ctx->btf_id = bpf_btf_find_by_name_kind(name, sizeof name, 4 /* BTF_KIND_STRUCT */, 0);
  ctx->missing_btf = bpf_btf_find_by_name_kind(nope, sizeof nope, 4, 0);
  ctx->bad_name = bpf_btf_find_by_name_kind(name, sizeof name - 1, 4, 0);
  __u64 addr = 1;
  ctx->ksym = bpf_kallsyms_lookup_name(nope, sizeof nope, 0, &addr);
  ctx->ksym_addr = addr;
  return 0;
}

SEC("syscall")
int read_past_ctx(struct args *ctx) { return ((char *)ctx)[100]; }

char LICENSE[] SEC("license") = "GPL";
