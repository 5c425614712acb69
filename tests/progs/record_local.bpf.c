// A record type only a local variable holds (libbpf-tools' shape): clang leaves it out of .BTF, and
// obj::find_dwarf_record_struct finds it in the DWARF.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

enum kind { KIND_OPEN = 1, KIND_CLOSE = 2 };
typedef unsigned int u32;

struct event {
  u32 pid;
  enum kind kind;
  char comm[16];
  unsigned short flags : 3, mode : 13;
  long long values[2][3];
  void *where;
};

struct {
  __uint(type, BPF_MAP_TYPE_RINGBUF);
  __uint(max_entries, 4096);
} events SEC(".maps");

SEC("tracepoint/syscalls/sys_enter_openat")
int record(void *ctx) {
  struct event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
  if (!e) return 0;
  e->pid = 1;
  e->kind = KIND_OPEN;
  e->mode = 7;
  bpf_ringbuf_submit(e, 0);
  return 0;
}

char LICENSE[] SEC("license") = "GPL";
