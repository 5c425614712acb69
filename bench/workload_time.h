// The bench workloads' own loop time: with $WORKLOAD_TIME_FILE set, the nanoseconds from t0 to t1
// (CLOCK_MONOTONIC) are written there, so that a benchmark can compare steady states without the start
// of the process and of whatever runs it (bench/wall_time.sh's loop_time).
#pragma once
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static inline void write_loop_time(const struct timespec* t0, const struct timespec* t1) {
  const char* out = getenv("WORKLOAD_TIME_FILE");
  if (!out) return;
  FILE* f = fopen(out, "w");
  if (!f) return;
  fprintf(f, "%lld\n", (long long)(t1->tv_sec - t0->tv_sec) * 1000000000LL + (t1->tv_nsec - t0->tv_nsec));
  fclose(f);
}
