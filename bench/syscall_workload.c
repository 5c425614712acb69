// A syscall-heavy workload for bench/trace_overhead.sh: N rounds of open + read + close of a small
// file, each with a few cheap syscalls around it (getppid), and a fork every 1000 rounds, so a tracer
// that follows the tree and stops at opens has work of each kind. With $WORKLOAD_TIME_FILE set, the loop's
// own time (ns, from CLOCK_MONOTONIC around it) is written there: the steady state, without the start of
// the process and of whatever runs it.
#include <fcntl.h>
#include <stdio.h>
#include <time.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "workload_time.h"

int main(int argc, char** argv) {
  const long rounds = argc > 1 ? atol(argv[1]) : 20000;
  const char* path = argc > 2 ? argv[2] : "/etc/hostname";
  char buf[256];
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  for (long i = 0; i < rounds; ++i) {
    const int fd = open(path, O_RDONLY);
    if (fd < 0) return 1;
    if (read(fd, buf, sizeof buf) < 0) return 1;
    close(fd);
    for (int k = 0; k < 4; ++k) syscall(SYS_getppid);
    if (i % 1000 == 999) {
      const pid_t child = fork();
      if (child == 0) _exit(0);
      waitpid(child, NULL, 0);
    }
  }
  clock_gettime(CLOCK_MONOTONIC, &t1);
  write_loop_time(&t0, &t1);
  return 0;
}
