// The workload of issue 18's target: THREADS threads (2 by default), each making ROUNDS rounds of
// openat + close + getpid, and a fork (the child exits at once) every 1000 of its rounds.
// Prints the number of openat calls it made ("opens N"), which a tracer's events are counted against.
// With $WORKLOAD_TIME_FILE set, the loop's own time (ns, CLOCK_MONOTONIC from the threads' common start
// to the last one's end) is written there: the steady state, without the start of whatever runs it.
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../workload_time.h"

static long rounds = 20000;
static const char* path = "/etc/hostname";
static pthread_barrier_t start;

static void* work(void* arg) {
  long* opens = arg;
  pthread_barrier_wait(&start);
  for (long i = 0; i < rounds; ++i) {
    const int fd = openat(AT_FDCWD, path, O_RDONLY);
    if (fd < 0) return NULL;
    ++*opens;
    close(fd);
    syscall(SYS_getpid);  // (glibc's getpid is the syscall too; this says so)
    if (i % 1000 == 999) {
      const pid_t child = fork();
      if (child == 0) _exit(0);
      if (child > 0) waitpid(child, NULL, 0);
    }
  }
  return NULL;
}

int main(int argc, char** argv) {
  if (argc > 1) rounds = atol(argv[1]);
  const int threads = argc > 2 ? atoi(argv[2]) : 2;
  if (argc > 3) path = argv[3];
  if (rounds <= 0 || threads <= 0 || threads > 64) {
    fprintf(stderr, "usage: target_workload [ROUNDS [THREADS(1-64) [PATH]]]\n");
    return 2;
  }
  pthread_t ids[64];
  long opens[64] = {0};
  pthread_barrier_init(&start, NULL, (unsigned)threads + 1);
  for (int t = 0; t < threads; ++t) {
    if (pthread_create(&ids[t], NULL, work, &opens[t]) != 0) return 1;
  }
  struct timespec t0, t1;
  pthread_barrier_wait(&start);
  clock_gettime(CLOCK_MONOTONIC, &t0);
  long total = 0;
  for (int t = 0; t < threads; ++t) {
    pthread_join(ids[t], NULL);
    total += opens[t];
  }
  clock_gettime(CLOCK_MONOTONIC, &t1);
  printf("opens %ld\n", total);
  write_loop_time(&t0, &t1);
  return total == rounds * threads ? 0 : 1;
}
