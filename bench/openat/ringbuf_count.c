// A libbpf application: loads OBJECT, attaches its programs, and counts the records of its ring buffer
// "events" whose file name is FILE, until SIGINT or SIGTERM; then prints "events N". (A ring buffer's
// producer drops what does not fit: lost events show as fewer.) Prints "attached" on stderr once its
// programs are attached. The same binary runs on the kernel and under `bpfvm run`.
#include <bpf/libbpf.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

struct event {
  unsigned pid, tid;
  char comm[16];
  char file[64];
};

static volatile sig_atomic_t stop;
static const char* file;
static long events;

static void on_signal(int sig) { (void)sig; stop = 1; }

static int on_event(void* ctx, void* data, size_t size) {
  (void)ctx;
  const struct event* e = data;
  if (size >= sizeof *e && strncmp(e->file, file, sizeof e->file) == 0) ++events;
  return 0;
}

int main(int argc, char** argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: ringbuf_count OBJECT FILE\n");
    return 2;
  }
  file = argv[2];
  struct bpf_object* obj = bpf_object__open_file(argv[1], NULL);
  if (!obj || bpf_object__load(obj)) {
    fprintf(stderr, "cannot load %s\n", argv[1]);
    return 1;
  }
  struct bpf_program* prog;
  bpf_object__for_each_program(prog, obj) {
    if (!bpf_program__attach(prog)) {
      fprintf(stderr, "cannot attach %s\n", bpf_program__name(prog));
      return 1;
    }
  }
  struct ring_buffer* rb = ring_buffer__new(bpf_object__find_map_fd_by_name(obj, "events"), on_event, NULL, NULL);
  if (!rb) {
    fprintf(stderr, "cannot open the ring buffer\n");
    return 1;
  }
  signal(SIGINT, on_signal);
  signal(SIGTERM, on_signal);
  fprintf(stderr, "attached\n");
  while (!stop) ring_buffer__poll(rb, 100);
  ring_buffer__consume(rb);
  printf("events %ld\n", events);
  ring_buffer__free(rb);
  bpf_object__close(obj);
  return 0;
}
