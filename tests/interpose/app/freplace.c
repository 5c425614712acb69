// A libbpf application that loads a tc program (freplace_target.bpf.o) and then extensions of its
// function handle() (freplace.bpf.o: bpf_program__set_attach_target), one at a time, printing each
// load's result and the line of its verifier log that says why, then attaches the first (bpf_program__attach_freplace).
// Usage: freplace TARGET_OBJECT EXTENSION_OBJECT PROGRAM...
#include <bpf/libbpf.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

int main(int argc, char** argv) {
  if (argc < 4) return 2;
  libbpf_set_print(NULL);
  struct bpf_object* target = bpf_object__open(argv[1]);
  if (!target || bpf_object__load(target)) {
    printf("target: %d\n", -errno);
    return 1;
  }
  const int target_fd = bpf_program__fd(bpf_object__find_program_by_name(target, "classify"));
  int first_ok = -1;
  for (int i = 3; i < argc; ++i) {
    struct bpf_object* ext = bpf_object__open(argv[2]);
    if (!ext) return 1;
    struct bpf_program* prog;
    bpf_object__for_each_program(prog, ext) bpf_program__set_autoload(prog, strcmp(bpf_program__name(prog), argv[i]) == 0);
    prog = bpf_object__find_program_by_name(ext, argv[i]);
    if (!prog) return 1;
    static char log[65536];
    log[0] = 0;
    bpf_program__set_log_buf(prog, log, sizeof log);
    bpf_program__set_attach_target(prog, target_fd, "handle");
    const int r = bpf_object__load(ext);
    // (the verifier's verdict: bpfvm's "error at insn" line, else the log's first line)
    char* why = strstr(log, "error at insn");
    if (!why) why = log;
    char* nl = strchr(why, '\n');
    if (nl) *nl = 0;
    printf("%s: %d%s%s\n", argv[i], r, r ? " " : "", r ? why : "");
    if (r == 0 && first_ok < 0) {
      first_ok = i;
      struct bpf_link* link = bpf_program__attach_freplace(prog, target_fd, "handle");
      printf("attach: %d\n", link ? 0 : -errno);
      bpf_link__destroy(link);
    }
    bpf_object__close(ext);
  }
  bpf_object__close(target);
  return 0;
}
