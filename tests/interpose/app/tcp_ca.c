// A libbpf application that loads a TCP congestion control (tcp_ca.bpf.c: struct_ops programs) and
// registers it (bpf_map__attach_struct_ops), printing what each step gave; the kernel registers it, and
// the application unregisters it at once.
// Usage: tcp_ca OBJECT
#include <bpf/libbpf.h>
#include <errno.h>
#include <stdio.h>

int main(int argc, char** argv) {
  if (argc != 2) return 2;
  libbpf_set_print(NULL);
  struct bpf_object* obj = bpf_object__open(argv[1]);
  if (!obj) return 1;
  const int loaded = bpf_object__load(obj);
  int n = 0;
  struct bpf_program* prog;
  bpf_object__for_each_program(prog, obj) n += bpf_program__fd(prog) >= 0;
  printf("load: %d, %d programs\n", loaded, n);
  struct bpf_link* link = bpf_map__attach_struct_ops(bpf_object__find_map_by_name(obj, "bpfvm_test_ca"));
  printf("register: %d\n", link ? 0 : -errno);
  bpf_link__destroy(link);
  bpf_object__close(obj);
  return loaded == 0 ? 0 : 1;
}
