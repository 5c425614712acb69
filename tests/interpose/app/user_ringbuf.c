// A libbpf application that produces into a user ring buffer (libbpf's user_ring_buffer: reserve,
// submit, discard) and runs the program that drains it (user_ringbuf.bpf.c), printing what each drain
// returned, the sum of the samples it saw and how many it saw.
// Usage: user_ringbuf OBJECT
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <stdio.h>

static int put(struct user_ring_buffer* rb, long v, int discard) {
  long* s = user_ring_buffer__reserve(rb, sizeof v);
  if (!s) return -1;
  *s = v;
  if (discard) user_ring_buffer__discard(rb, s);
  else user_ring_buffer__submit(rb, s);
  return 0;
}

static int drain(struct bpf_object* obj) {
  LIBBPF_OPTS(bpf_test_run_opts, run);
  if (bpf_prog_test_run_opts(bpf_program__fd(bpf_object__find_program_by_name(obj, "drain")), &run) != 0) return -1;
  const int out = bpf_map__fd(bpf_object__find_map_by_name(obj, "out"));
  long v[3] = {0, 0, 0};
  for (int k = 0; k < 3; ++k) bpf_map_lookup_elem(out, &k, &v[k]);
  printf("drained %ld sum %ld seen %ld\n", v[0], v[1], v[2]);
  return 0;
}

int main(int argc, char** argv) {
  if (argc != 2) return 2;
  struct bpf_object* obj = bpf_object__open(argv[1]);
  if (!obj || bpf_object__load(obj)) return fprintf(stderr, "cannot load %s\n", argv[1]), 1;
  struct user_ring_buffer* rb = user_ring_buffer__new(bpf_map__fd(bpf_object__find_map_by_name(obj, "samples")), NULL);
  if (!rb) return perror("user_ring_buffer__new"), 1;
  if (drain(obj)) return perror("test run"), 1;  // empty
  if (put(rb, 1, 0) || put(rb, 100, 1) || put(rb, 2, 0) || put(rb, 3, 0)) return perror("reserve"), 1;
  if (drain(obj)) return 1;  // 1 + 2 + 3, the discarded one skipped
  if (put(rb, 99, 0) || put(rb, 5, 0)) return perror("reserve"), 1;
  if (drain(obj)) return 1;  // stops at 99
  if (drain(obj)) return 1;  // then 5
  // Fill it: a reservation fails once the ring is full, and one drain makes room again.
  int n = 0;
  while (put(rb, 1, 0) == 0) ++n;
  printf("filled with %d samples\n", n);
  if (drain(obj)) return 1;
  printf("room again: %s\n", put(rb, 7, 0) == 0 ? "yes" : "no");
  user_ring_buffer__free(rb);
  return 0;
}
