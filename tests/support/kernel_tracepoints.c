/* The kernel as the oracle of bpfvm's tracepoint events: loads OBJ into the kernel with libbpf, attaches
 * every program where its section says, runs COMMAND, then prints map MAP as `bpfvm trace` prints a
 * hash of integers ("@MAP[key]: value", keys and values of 4 or 8 bytes).
 *   kernel_tracepoints OBJ MAP -- COMMAND...
 * Exits 77 when the kernel refuses (not root, no such tracepoint). */
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char** argv) {
  if (argc < 5 || strcmp(argv[3], "--") != 0) {
    fprintf(stderr, "usage: %s OBJ MAP -- COMMAND...\n", argv[0]);
    return 2;
  }
  libbpf_set_print(NULL);
  struct bpf_object* obj = bpf_object__open_file(argv[1], NULL);
  if (!obj || bpf_object__load(obj) != 0) {
    fprintf(stderr, "the kernel does not load %s\n", argv[1]);
    return 77;
  }
  struct bpf_program* prog;
  struct bpf_link* links[64];
  int n = 0;
  bpf_object__for_each_program(prog, obj) {
    if (n == 64 || !(links[n] = bpf_program__attach(prog))) {
      fprintf(stderr, "the kernel does not attach %s\n", bpf_program__section_name(prog));
      return 77;
    }
    n++;
  }
  struct bpf_map* map = bpf_object__find_map_by_name(obj, argv[2]);
  if (!map) {
    fprintf(stderr, "%s has no map %s\n", argv[1], argv[2]);
    return 2;
  }
  const pid_t child = fork();
  if (child == 0) {
    execvp(argv[4], argv + 4);
    _exit(127);
  }
  int status = 0;
  waitpid(child, &status, 0);
  const int fd = bpf_map__fd(map);
  const unsigned ks = bpf_map__key_size(map), vs = bpf_map__value_size(map);
  unsigned long long key = 0, next = 0, value = 0;
  void* prev = NULL;
  while (bpf_map_get_next_key(fd, prev, &next) == 0) {
    value = 0;
    if (bpf_map_lookup_elem(fd, &next, &value) == 0) {
      printf("@%s[%llu]: %llu\n", argv[2], ks == 4 ? (unsigned long long)(unsigned)next : next,
             vs == 4 ? (unsigned long long)(unsigned)value : value);
    }
    key = next;
    prev = &key;
  }
  while (n > 0) bpf_link__destroy(links[--n]);
  bpf_object__close(obj);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}
