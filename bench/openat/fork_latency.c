// What a fork costs a process: FORKS times fork(), the child exiting at once, the parent waiting for it,
// with a second thread idle (as the openat workload has threads, and as the agent adds its own). The
// loop's time goes to $WORKLOAD_TIME_FILE (bench/workload_time.h); it prints the mean in microseconds.
// bench/openat_overhead.sh runs it untraced and under `bpfvm run` (the agent idle): the forks are where
// the idle agent's cost on the openat workload was (every mapping of a loaded library is copied by each
// fork and torn down by each exit).
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../workload_time.h"

static void* idle(void* arg) {
  (void)arg;
  for (;;) pause();
  return NULL;
}

int main(int argc, char** argv) {
  const long forks = argc > 1 ? atol(argv[1]) : 300;
  if (forks <= 0) {
    fprintf(stderr, "usage: fork_latency [FORKS]\n");
    return 2;
  }
  pthread_t thread;
  if (pthread_create(&thread, NULL, idle, NULL) != 0) return 1;
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  for (long i = 0; i < forks; ++i) {
    const pid_t child = fork();
    if (child == 0) _exit(0);
    if (child < 0 || waitpid(child, NULL, 0) != child) return 1;
  }
  clock_gettime(CLOCK_MONOTONIC, &t1);
  write_loop_time(&t0, &t1);
  printf("%.0f us a fork+exit+wait\n", ((t1.tv_sec - t0.tv_sec) * 1e9 + (t1.tv_nsec - t0.tv_nsec)) / 1e3 / forks);
  return 0;
}
