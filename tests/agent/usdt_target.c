/* The USDT probes of the agent's tests (sys/sdt.h): demo:tick with a semaphore and three arguments (a
 * register, a negative value, a field in memory), at one site; demo:point at two sites. `ticks N` makes
 * N ticks and says how often the semaphore was up; `threads N` has two threads make N ticks each;
 * `spin FILE` has two threads tick until FILE exists (links come and go meanwhile). */
#define _SDT_HAS_SEMAPHORES 1
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sdt.h>
#include <unistd.h>

unsigned short demo_tick_semaphore __attribute__((section(".probes"))) = 0;
unsigned short demo_point_semaphore __attribute__((section(".probes"))) = 0;

struct item { long pad; int field; };

static long enabled;

__attribute__((noinline)) void tick(long i, struct item* it) {
  if (demo_tick_semaphore) __atomic_fetch_add(&enabled, 1, __ATOMIC_RELAXED);
  STAP_PROBE3(demo, tick, i, -i, it->field);
  if (i % 2) STAP_PROBE1(demo, point, i);
  else STAP_PROBE1(demo, point, 1000 + i);
}

static const char* stop_file;
static long spun[2];

static void* spin(void* which) {
  struct item it = {0, 7};
  long i = 0;
  while (access(stop_file, F_OK) != 0) {
    for (int k = 0; k < 1000; k++) tick(i++, &it);
  }
  spun[(long)which] = i;
  return NULL;
}

static void* ticks(void* n) {
  struct item it = {0, 7};
  for (long i = 0; i < (long)n; i++) {
    tick(i, &it);
    if ((long)n > 100000 && i % 1000 == 0) usleep(100);  /* a longer run, for links to come and go */
  }
  return NULL;
}

int main(int argc, char** argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: %s { ticks N | threads N | spin FILE }\n", argv[0]);
    return 2;
  }
  const long n = atol(argv[2]);  /* not for spin */
  if (!strcmp(argv[1], "ticks")) {
    ticks((void*)n);
  } else if (!strcmp(argv[1], "spin")) {
    stop_file = argv[2];
    pthread_t a, b;
    pthread_create(&a, NULL, spin, (void*)0);
    pthread_create(&b, NULL, spin, (void*)1);
    pthread_join(a, NULL);
    pthread_join(b, NULL);
    printf("ticks %ld semaphore %d\n", spun[0] + spun[1], demo_tick_semaphore);
    return spun[0] > 0 && spun[1] > 0 ? 0 : 1;
  } else {
    pthread_t a, b;
    pthread_create(&a, NULL, ticks, (void*)n);
    pthread_create(&b, NULL, ticks, (void*)n);
    pthread_join(a, NULL);
    pthread_join(b, NULL);
  }
  printf("enabled %ld\n", enabled);
  return 0;
}
