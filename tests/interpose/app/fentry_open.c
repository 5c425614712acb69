// A libbpf application of the usual shape: it opens and loads an object, attaches its fentry program
// with bpf_program__attach (libbpf's own choice of BPF_LINK_CREATE or BPF_RAW_TRACEPOINT_OPEN) and
// polls a ring buffer, printing the opens of files whose name contains argv[2]. Exits 0 after the first.
#include <bpf/libbpf.h>
#include <stdio.h>
#include <string.h>

struct ev {
  unsigned long long flags;
  char name[64];
};

static const char *wanted;
static int seen;

static int on_event(void *ctx, void *data, size_t size) {
  const struct ev *e = data;
  (void)ctx;
  if (size >= sizeof *e && strstr(e->name, wanted)) {
    printf("open %s flags %llx\n", e->name, e->flags);
    seen++;
  }
  return 0;
}

int main(int argc, char **argv) {
  if (argc != 3) return 2;
  wanted = argv[2];
  struct bpf_object *obj = bpf_object__open_file(argv[1], NULL);
  if (!obj || bpf_object__load(obj)) {
    fprintf(stderr, "cannot load %s\n", argv[1]);
    return 1;
  }
  struct bpf_link *link = bpf_program__attach(bpf_object__find_program_by_name(obj, "fe"));
  if (!link) {
    fprintf(stderr, "cannot attach\n");
    return 1;
  }
  struct ring_buffer *rb = ring_buffer__new(bpf_map__fd(bpf_object__find_map_by_name(obj, "rb")), on_event, NULL, NULL);
  if (!rb) return 1;
  printf("attached\n");
  fflush(stdout);
  for (int i = 0; i < 100 && !seen; i++) ring_buffer__poll(rb, 100);
  ring_buffer__free(rb);
  bpf_link__destroy(link);
  bpf_object__close(obj);
  return seen ? 0 : 3;
}
