// Code a constant rules out, as libbpf-tools have it: a `const volatile` setting (.rodata, frozen before
// the programs load, so its loads are constants) and a CO-RE existence check whose guarded access the
// loader poisons (the field is in no kernel). The kernel explores neither branch, and neither does bpfvm;
// the poisoned call in dead code does not refuse the program.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>

const volatile int mode = 0;

struct task_struct___gone {
  int no_such_field_anywhere;
} __attribute__((preserve_access_index));

SEC("socket")
int rodata_rules_out(struct __sk_buff *skb) {
  if (mode == 1) return *(volatile int *)(long)skb->len;  // unsafe: a number used as a pointer
  return 7;
}

SEC("raw_tracepoint/test")
int core_rules_out(void *ctx) {
  struct task_struct___gone *t = (void *)bpf_get_current_task();
  if (bpf_core_field_exists(t->no_such_field_anywhere)) return BPF_CORE_READ(t, no_such_field_anywhere);
  return 9;
}

char LICENSE[] SEC("license") = "GPL";
