// A libbpf application reading perf counters from a program (perf_counters.bpf.c): it opens CPU 0's and
// CPU 1's CPU clock, its own task clock and a BPF output event (mapped, as a perf buffer maps it), puts
// them in a perf_event_array, runs the program once on CPU 0 and prints what each read gave, as a
// class (an errno, zero, a positive count) that the kernel and bpfvm must agree on.
// Usage: perf_counters OBJECT
#define _GNU_SOURCE
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/perf_event.h>
#include <sched.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

static int open_event(int type, int config, int pid, int cpu) {
  struct perf_event_attr a = {0};
  a.size = sizeof a;
  a.type = type;
  a.config = config;
  return (int)syscall(SYS_perf_event_open, &a, pid, cpu, -1, PERF_FLAG_FD_CLOEXEC);
}

int main(int argc, char** argv) {
  if (argc != 2) return 2;
  cpu_set_t one;
  CPU_ZERO(&one);
  CPU_SET(0, &one);
  if (sched_setaffinity(0, sizeof one, &one) != 0) return perror("sched_setaffinity"), 1;
  struct bpf_object* obj = bpf_object__open(argv[1]);
  if (!obj || bpf_object__load(obj)) return fprintf(stderr, "cannot load %s\n", argv[1]), 1;
  const int map = bpf_map__fd(bpf_object__find_map_by_name(obj, "counters"));
  const int fds[4] = {open_event(PERF_TYPE_SOFTWARE, PERF_COUNT_SW_CPU_CLOCK, -1, 0),
                      open_event(PERF_TYPE_SOFTWARE, PERF_COUNT_SW_CPU_CLOCK, -1, 1),
                      open_event(PERF_TYPE_SOFTWARE, PERF_COUNT_SW_TASK_CLOCK, 0, -1),
                      open_event(PERF_TYPE_SOFTWARE, PERF_COUNT_SW_BPF_OUTPUT, -1, 0)};
  for (int i = 0; i < 4; ++i) {
    if (fds[i] < 0) return perror("perf_event_open"), 1;
  }
  if (mmap(NULL, 2 * 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fds[3], 0) == MAP_FAILED) return perror("mmap"), 1;
  for (int i = 0; i < 4; ++i) {
    if (bpf_map_update_elem(map, &i, &fds[i], BPF_ANY) != 0) return fprintf(stderr, "update slot %d: %m\n", i), 1;
  }
  usleep(10000);  // the clocks count
  LIBBPF_OPTS(bpf_test_run_opts, run, .flags = BPF_F_TEST_RUN_ON_CPU, .cpu = 0);
  if (bpf_prog_test_run_opts(bpf_program__fd(bpf_object__find_program_by_name(obj, "readers")), &run) != 0) {
    return perror("test run"), 1;
  }
  const int res = bpf_map__fd(bpf_object__find_map_by_name(obj, "res"));
  for (int i = 0; i < 15; ++i) {
    long v = 0;
    bpf_map_lookup_elem(res, &i, &v);
    if (v < 0) printf("%d: errno %ld\n", i, -v);
    else printf("%d: %s\n", i, v == 0 ? "zero" : v == 1 ? "one" : "count");
  }
  return 0;
}
