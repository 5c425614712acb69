// Dynptrs (struct bpf_dynptr): over a map value, over a ring buffer record (which holds its reservation
// until submitted or discarded), read, written and sliced; a user ring buffer's samples handed to a
// callback as dynptrs; bpf_find_vma's callback. Each program is judged by the kernel too
// (corpus_kernel_oracle): the accepted and the refused (leaks, overwrites, stale slices, misuse).
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct { __uint(type, BPF_MAP_TYPE_RINGBUF); __uint(max_entries, 4096); } rb SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_ARRAY); __uint(max_entries, 1); __type(key, int); __type(value, char[64]); } arr SEC(".maps");

SEC("tp/syscalls/sys_enter_getpid")
int local_map(void *ctx) {
  int k = 0;
  char *v = bpf_map_lookup_elem(&arr, &k);
  if (!v) return 0;
  struct bpf_dynptr d;
  bpf_dynptr_from_mem(v, 64, 0, &d);
  char buf[8];
  bpf_dynptr_read(buf, sizeof buf, &d, 0, 0);
  bpf_dynptr_write(&d, 8, buf, sizeof buf, 0);
  char *p = bpf_dynptr_data(&d, 0, 16);
  if (!p) return 0;
  return p[15];
}

SEC("tp/syscalls/sys_enter_getpid")
int local_stack(void *ctx) {
  char stack_mem[16] = {};
  struct bpf_dynptr s;
  bpf_dynptr_from_mem(stack_mem, 16, 0, &s);
  int k = 0;
  char *mem = bpf_map_lookup_elem(&arr, &k);
  if (!mem) return 0;
  struct bpf_dynptr d;
  bpf_dynptr_from_mem(mem, 16, 0, &d);
  char *p = bpf_dynptr_data(&d, 0, 8);
  if (!p) return 0;
  return p[7];
}

SEC("tp/syscalls/sys_enter_getpid")
int slice_oob(void *ctx) {
  int k = 0;
  char *mem = bpf_map_lookup_elem(&arr, &k);
  if (!mem) return 0;
  struct bpf_dynptr d;
  bpf_dynptr_from_mem(mem, 16, 0, &d);
  char *p = bpf_dynptr_data(&d, 0, 8);
  if (!p) return 0;
  return p[8];
}

SEC("tp/syscalls/sys_enter_getpid")
int slice_nocheck(void *ctx) {
  int k = 0;
  char *mem = bpf_map_lookup_elem(&arr, &k);
  if (!mem) return 0;
  struct bpf_dynptr d;
  bpf_dynptr_from_mem(mem, 16, 0, &d);
  char *p = bpf_dynptr_data(&d, 0, 8);
  return p[0];
}

SEC("tp/syscalls/sys_enter_getpid")
int rb_submit(void *ctx) {
  struct bpf_dynptr d;
  bpf_ringbuf_reserve_dynptr(&rb, 16, 0, &d);
  long *p = bpf_dynptr_data(&d, 0, 8);
  if (p) *p = 1;
  bpf_ringbuf_submit_dynptr(&d, 0);
  return 0;
}

SEC("tp/syscalls/sys_enter_getpid")
int rb_leak(void *ctx) {
  struct bpf_dynptr d;
  bpf_ringbuf_reserve_dynptr(&rb, 16, 0, &d);
  return 0;
}

SEC("tp/syscalls/sys_enter_getpid")
int rb_use_after_submit(void *ctx) {
  struct bpf_dynptr d;
  bpf_ringbuf_reserve_dynptr(&rb, 16, 0, &d);
  long *p = bpf_dynptr_data(&d, 0, 8);
  bpf_ringbuf_submit_dynptr(&d, 0);
  if (p) *p = 1;
  return 0;
}

SEC("tp/syscalls/sys_enter_getpid")
int rb_overwrite(void *ctx) {
  struct bpf_dynptr d;
  bpf_ringbuf_reserve_dynptr(&rb, 16, 0, &d);
  *(volatile long *)&d = 0;
  bpf_ringbuf_discard_dynptr(&d, 0);
  return 0;
}

SEC("tp/syscalls/sys_enter_getpid")
int local_overwrite(void *ctx) {
  int k = 0;
  char *mem = bpf_map_lookup_elem(&arr, &k);
  if (!mem) return 0;
  struct bpf_dynptr d;
  bpf_dynptr_from_mem(mem, 16, 0, &d);
  *(volatile long *)&d = 0;
  return 0;
}

SEC("tp/syscalls/sys_enter_getpid")
int local_overwrite_use(void *ctx) {
  int k = 0;
  char *mem = bpf_map_lookup_elem(&arr, &k);
  if (!mem) return 0;
  struct bpf_dynptr d;
  bpf_dynptr_from_mem(mem, 16, 0, &d);
  *(volatile long *)&d = 0;
  char b[4];
  return bpf_dynptr_read(b, 4, &d, 0, 0);
}

SEC("tp/syscalls/sys_enter_getpid")
int read_bytes(void *ctx) {
  int k = 0;
  char *mem = bpf_map_lookup_elem(&arr, &k);
  if (!mem) return 0;
  struct bpf_dynptr d;
  bpf_dynptr_from_mem(mem, 16, 0, &d);
  return *(volatile long *)&d;
}

SEC("tp/syscalls/sys_enter_getpid")
int uninit_use(void *ctx) {
  struct bpf_dynptr d;
  char b[4];
  return bpf_dynptr_read(b, 4, &d, 0, 0);
}

SEC("tp/syscalls/sys_enter_getpid")
int submit_local(void *ctx) {
  int k = 0;
  char *mem = bpf_map_lookup_elem(&arr, &k);
  if (!mem) return 0;
  struct bpf_dynptr d;
  bpf_dynptr_from_mem(mem, 16, 0, &d);
  bpf_ringbuf_submit_dynptr(&d, 0);
  return 0;
}

SEC("tp/syscalls/sys_enter_getpid")
int misaligned(void *ctx) {
  int k = 0;
  char *mem = bpf_map_lookup_elem(&arr, &k);
  if (!mem) return 0;
  char d[24];
  bpf_dynptr_from_mem(mem, 16, 0, (void *)(d + 4));
  return 0;
}

SEC("tp/syscalls/sys_enter_getpid")
int probe_into(void *ctx) {
  int k = 0;
  char *mem = bpf_map_lookup_elem(&arr, &k);
  if (!mem) return 0;
  struct bpf_dynptr d;
  bpf_dynptr_from_mem(mem, 16, 0, &d);
  bpf_probe_read_kernel(&d, 8, 0);
  return 0;
}

SEC("tp/syscalls/sys_enter_getpid")
int twice_reserve(void *ctx) {
  struct bpf_dynptr d;
  bpf_ringbuf_reserve_dynptr(&rb, 16, 0, &d);
  bpf_ringbuf_reserve_dynptr(&rb, 16, 0, &d);
  bpf_ringbuf_discard_dynptr(&d, 0);
  return 0;
}

SEC("tp/syscalls/sys_enter_getpid")
int from_mem_twice(void *ctx) {
  int k = 0;
  char *mem = bpf_map_lookup_elem(&arr, &k);
  if (!mem) return 0;
  struct bpf_dynptr d;
  bpf_dynptr_from_mem(mem, 16, 0, &d);
  bpf_dynptr_from_mem(mem, 16, 0, &d);
  char b[4];
  return bpf_dynptr_read(b, 4, &d, 0, 0);
}

SEC("tp/syscalls/sys_enter_getpid")
int data_var_len(void *ctx) {
  int k = 0;
  char *mem = bpf_map_lookup_elem(&arr, &k);
  if (!mem) return 0;
  struct bpf_dynptr d;
  bpf_dynptr_from_mem(mem, 16, 0, &d);
  unsigned n = bpf_get_prandom_u32() & 7;
  char *p = bpf_dynptr_data(&d, 0, n);
  return p != 0;
}

SEC("tp/syscalls/sys_enter_getpid")
int branches(void *ctx) {
  struct bpf_dynptr d;
  bpf_ringbuf_reserve_dynptr(&rb, 16, 0, &d);
  if (bpf_get_prandom_u32() & 1) bpf_ringbuf_submit_dynptr(&d, 0);
  else bpf_ringbuf_discard_dynptr(&d, 0);
  return 0;
}

SEC("tp/syscalls/sys_enter_getpid")
int dynptr_offset(void *ctx) {
  int k = 0;
  char *mem = bpf_map_lookup_elem(&arr, &k);
  if (!mem) return 0;
  struct bpf_dynptr d[2];
  bpf_dynptr_from_mem(mem, 16, 0, &d[1]);
  char b[4];
  return bpf_dynptr_read(b, 4, &d[1], 0, 0) + bpf_dynptr_read(b, 4, (void *)((char *)&d[1] + 8), 0, 0);
}

SEC("tp/syscalls/sys_enter_getpid")
int slice_after_overwrite(void *ctx) {
  int k = 0;
  char *mem = bpf_map_lookup_elem(&arr, &k);
  if (!mem) return 0;
  struct bpf_dynptr d;
  bpf_dynptr_from_mem(mem, 16, 0, &d);
  char *p = bpf_dynptr_data(&d, 0, 8);
  if (!p) return 0;
  *(volatile long *)&d = 0;
  return p[0];
}

SEC("tp/syscalls/sys_enter_getpid")
int write_slice_rb(void *ctx) {
  struct bpf_dynptr d;
  bpf_ringbuf_reserve_dynptr(&rb, 16, 0, &d);
  char *p = bpf_dynptr_data(&d, 0, 16);
  if (p) p[15] = 1;
  bpf_ringbuf_discard_dynptr(&d, 0);
  return 0;
}

SEC("tp/syscalls/sys_enter_getpid")
int var_size_reserve(void *ctx) {
  struct bpf_dynptr d;
  bpf_ringbuf_reserve_dynptr(&rb, bpf_get_prandom_u32() & 63, 0, &d);
  bpf_ringbuf_discard_dynptr(&d, 0);
  return 0;
}

static long cb(void *d, void *ctx) { return 0; }
SEC("tp/syscalls/sys_enter_getpid")
int spilled_pointer(void *ctx) {
  struct bpf_dynptr d;
  bpf_ringbuf_reserve_dynptr(&rb, 16, 0, &d);
  struct bpf_dynptr *volatile pd = &d;
  bpf_ringbuf_submit_dynptr(pd, 0);
  return 0;
}

struct { __uint(type, BPF_MAP_TYPE_USER_RINGBUF); __uint(max_entries, 4096); } urb SEC(".maps");

static long on_sample(struct bpf_dynptr *d, void *ctx) {
  long v = 0;
  bpf_dynptr_read(&v, sizeof v, d, 0, 0);
  long *p = bpf_dynptr_data(d, 0, 8);
  if (p) v += *p;
  *(long *)ctx += v;
  return 0;
}

SEC("tp/syscalls/sys_enter_getpid")
int drain(void *ctx) {
  long sum = 0;
  bpf_user_ringbuf_drain(&urb, on_sample, &sum, 0);
  return sum & 1;
}

static long bad_sample(struct bpf_dynptr *d, void *ctx) {
  bpf_ringbuf_submit_dynptr(d, 0);
  return 0;
}

SEC("tp/syscalls/sys_enter_getpid")
int drain_release(void *ctx) {
  bpf_user_ringbuf_drain(&urb, bad_sample, 0, 0);
  return 0;
}

static long ret2(struct bpf_dynptr *d, void *ctx) { return 2; }

SEC("tp/syscalls/sys_enter_getpid")
int drain_ret(void *ctx) {
  bpf_user_ringbuf_drain(&urb, ret2, 0, 0);
  return 0;
}

SEC("tp/syscalls/sys_enter_getpid")
int drain_wrong_map(void *ctx) {
  bpf_user_ringbuf_drain(&rb, on_sample, 0, 0);
  return 0;
}

struct vm_area_struct { unsigned long vm_start, vm_end; } __attribute__((preserve_access_index));
static long on_vma(struct task_struct *t, struct vm_area_struct *vma, void *ctx) {
  *(unsigned long *)ctx = vma->vm_end - vma->vm_start;
  return 0;
}

SEC("tp_btf/sys_enter")
int vma(void *ctx) {
  unsigned long size = 0;
  struct task_struct *t = (void *)bpf_get_current_task_btf();
  bpf_find_vma(t, 0x400000, on_vma, &size, 0);
  return 0;
}

SEC("tp_btf/sys_enter")
int vma_untrusted(void *ctx) {
  unsigned long size = 0;
  struct task_struct *t = (void *)bpf_get_current_task();
  bpf_find_vma(t, 0, on_vma, &size, 0);
  return 0;
}

SEC("tp/syscalls/sys_enter_getpid")
int loop_reserve(void *ctx) {
  for (int i = 0; i < 8; i++) {
    struct bpf_dynptr d;
    bpf_ringbuf_reserve_dynptr(&rb, 8, 0, &d);
    long *p = bpf_dynptr_data(&d, 0, 8);
    if (p) *p = i;
    if (i & 1) bpf_ringbuf_submit_dynptr(&d, 0);
    else bpf_ringbuf_discard_dynptr(&d, 0);
  }
  return 0;
}

SEC("tp/syscalls/sys_enter_getpid")
int branch_leak(void *ctx) {
  struct bpf_dynptr d;
  bpf_ringbuf_reserve_dynptr(&rb, 8, 0, &d);
  if (bpf_get_prandom_u32() & 1) return 0;
  bpf_ringbuf_discard_dynptr(&d, 0);
  return 0;
}

char LICENSE[] SEC("license") = "GPL";
