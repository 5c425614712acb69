// kptr fields of map values (a pointer to a kernel struct tagged __kptr_untrusted or __kptr in BTF):
// loads give a pointer that may be NULL (untrusted, or RCU for a referenced one), only 8-byte loads
// and stores at the field, stores of that struct or NULL to an untrusted one only, never through a
// helper or an atomic, and bpf_kptr_xchg on referenced ones, whose result holds a reference.
// clang 14 emits no type tags (the fields are plain pointers there); the clang-19 build
// (kptrs_tagged.bpf.o) has them. Judged by the kernel too (corpus_kernel_oracle).
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#define __kptr_untrusted __attribute__((btf_type_tag("kptr_untrusted")))
#define __kptr __attribute__((btf_type_tag("kptr")))

struct task_struct { int pid; int tgid; } __attribute__((preserve_access_index));
struct val { long n; struct task_struct __kptr_untrusted *unref; struct task_struct __kptr *ref; };
struct { __uint(type, BPF_MAP_TYPE_ARRAY); __uint(max_entries, 1); __type(key, int); __type(value, struct val); } kp SEC(".maps");
struct {
  __uint(type, BPF_MAP_TYPE_TASK_STORAGE);
  __uint(map_flags, BPF_F_NO_PREALLOC);
  __type(key, int);
  __type(value, long);
} tstore SEC(".maps");

static struct val *value(void) {
  int k = 0;
  return bpf_map_lookup_elem(&kp, &k);
}

#define PROG(name) SEC("tp_btf/sys_enter") int name(void *ctx)

// (Without the tags these store a pointer in a plain field, which bpfvm refuses and the privileged
// kernel allows: only the tagged build has them.)
#if __clang_major__ >= 15
PROG(store_current) {
  struct val *v = value();
  if (v) v->unref = bpf_get_current_task_btf();
  return 0;
}
#endif
PROG(load_unref) {
  struct val *v = value();
  if (!v) return 0;
  struct task_struct *t = v->unref;
  if (t) v->n = t->pid;
  return 0;
}
SEC("tc")
int load_unref_tc(struct __sk_buff *skb) {
  struct val *v = value();
  if (!v) return 0;
  struct task_struct *t = v->unref;
  return t ? t->pid & 1 : 0;
}
PROG(load_ref) {
  struct val *v = value();
  if (!v) return 0;
  struct task_struct *t = v->ref;
  if (t) v->n = t->tgid;
  return 0;
}
#if __clang_major__ >= 15
PROG(store_ref) {
  struct val *v = value();
  if (v) v->ref = bpf_get_current_task_btf();
  return 0;
}
#endif
PROG(store_zero) {
  struct val *v = value();
  if (v) v->unref = 0;
  return 0;
}
PROG(store_number) {
  struct val *v = value();
  if (v) *(volatile long *)&v->unref = 5;
  return 0;
}
PROG(narrow_load) {
  struct val *v = value();
  return v ? *(volatile int *)&v->unref : 0;
}
PROG(unaligned_load) {
  struct val *v = value();
  return v ? *(volatile int *)((char *)&v->unref + 4) : 0;
}
PROG(atomic_add) {
  struct val *v = value();
  if (v) __sync_fetch_and_add((long *)&v->unref, 1);
  return 0;
}
PROG(through_a_helper) {
  int k = 0;
  struct val *v = value();
  if (v) bpf_map_update_elem(&kp, &k, v, BPF_ANY);
  return 0;
}
PROG(untrusted_to_helper) {
  struct val *v = value();
  if (!v) return 0;
  struct task_struct *t = v->unref;
  if (t) bpf_task_storage_get(&tstore, t, 0, 0);
  return 0;
}
PROG(rcu_to_helper) {
  struct val *v = value();
  if (!v) return 0;
  struct task_struct *t = v->ref;
  if (t) bpf_task_storage_get(&tstore, t, 0, 0);
  return 0;
}
PROG(xchg_keeps_reference) {
  struct val *v = value();
  if (!v) return 0;
  struct task_struct *old = bpf_kptr_xchg(&v->ref, 0);
  if (old) v->n = old->pid;
  return 0;
}
PROG(xchg_untrusted_field) {
  struct val *v = value();
  if (v) bpf_kptr_xchg(&v->unref, 0);
  return 0;
}
PROG(xchg_not_a_kptr) {
  struct val *v = value();
  if (v) bpf_kptr_xchg(&v->n, 0);
  return 0;
}
PROG(xchg_unreferenced_pointer) {
  struct val *v = value();
  if (!v) return 0;
  struct task_struct *old = bpf_kptr_xchg(&v->ref, bpf_get_current_task_btf());
  if (old) bpf_kptr_xchg(&v->ref, old);
  return 0;
}

char LICENSE[] SEC("license") = "GPL";
