// fentry on do_sys_openat2 (its struct open_how read directly through the BTF pointer) into a ring
// buffer: tests/interpose/libbpf_app_test.sh loads it from a libbpf application.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
struct { __uint(type, BPF_MAP_TYPE_RINGBUF); __uint(max_entries, 4096); } rb SEC(".maps");
struct ev { __u64 flags; char name[64]; };
SEC("fentry/do_sys_openat2") int BPF_PROG(fe, int dfd, const char *filename, struct open_how *how) {
  struct ev *e = bpf_ringbuf_reserve(&rb, sizeof(*e), 0);
  if (!e) return 0;
  e->flags = how->flags;
  bpf_probe_read_user_str(e->name, sizeof(e->name), filename);
  bpf_ringbuf_submit(e, 0);
  return 0;
}
char LICENSE[] SEC("license") = "GPL";
