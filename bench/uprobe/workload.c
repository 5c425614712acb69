/* The workload of bench/uprobe_overhead.sh: calls probed(), a function of two instructions, N times
 * and prints the nanoseconds per call. */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

__attribute__((noinline)) int probed(int x) {
  __asm__ volatile("");
  return x + 1;
}

int main(int argc, char** argv) {
  const long n = argc > 1 ? atol(argv[1]) : 1000000;
  struct timespec a, b;
  long total = 0;
  clock_gettime(CLOCK_MONOTONIC, &a);
  for (long i = 0; i < n; i++) total += probed((int)i);
  clock_gettime(CLOCK_MONOTONIC, &b);
  const double ns = ((b.tv_sec - a.tv_sec) * 1e9 + (b.tv_nsec - a.tv_nsec)) / (double)n;
  printf("%.2f ns/call (sum %ld)\n", ns, total);
  return 0;
}
