/* The kernel's uprobes on the same object, for bench/uprobe_overhead.sh:
 *   kernel_uprobe OBJ BINARY FUNCTION -- COMMAND...
 * loads OBJ into the kernel with libbpf, attaches its program to FUNCTION of BINARY in every process
 * (an uprobe or an uretprobe as its section says), runs COMMAND and prints the count in its map "hits".
 * Exits 77 when the kernel refuses (not root, no uprobes). */
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char** argv) {
  if (argc < 6 || strcmp(argv[4], "--") != 0) {
    fprintf(stderr, "usage: %s OBJ BINARY FUNCTION -- COMMAND...\n", argv[0]);
    return 2;
  }
  libbpf_set_print(NULL);
  struct bpf_object* obj = bpf_object__open_file(argv[1], NULL);
  if (!obj || bpf_object__load(obj) != 0) {
    fprintf(stderr, "the kernel does not load %s\n", argv[1]);
    return 77;
  }
  struct bpf_program* prog = bpf_object__next_program(obj, NULL);
  LIBBPF_OPTS(bpf_uprobe_opts, opts, .func_name = argv[3],
              .retprobe = strncmp(bpf_program__section_name(prog), "uretprobe", 9) == 0);
  struct bpf_link* link = bpf_program__attach_uprobe_opts(prog, -1, argv[2], 0, &opts);
  if (!link) {
    fprintf(stderr, "the kernel does not attach an uprobe to %s:%s\n", argv[2], argv[3]);
    return 77;
  }
  const pid_t child = fork();
  if (child == 0) {
    execvp(argv[5], argv + 5);
    _exit(127);
  }
  int status = 0;
  waitpid(child, &status, 0);
  __u32 key = 0;
  __u64 hits = 0;
  bpf_map_lookup_elem(bpf_map__fd(bpf_object__find_map_by_name(obj, "hits")), &key, &hits);
  printf("hits %llu\n", (unsigned long long)hits);
  bpf_link__destroy(link);
  bpf_object__close(obj);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
}
