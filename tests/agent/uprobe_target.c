/* The traced program of the agent's tests: calls add_one N times (and work, which has a loop), forks,
 * waits for a file, crashes, calls lib_add of a library it loads with dlopen, makes failing
 * syscalls, or opens paths in memory it unmaps, as asked. */
#include <dlfcn.h>
#include <linux/futex.h>
#include <fcntl.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

__attribute__((noinline)) int add_one(int x) { __asm__ volatile(""); return x + 1; }
__attribute__((noinline)) long work(long a, long b) {
  long s = 0;
  for (long i = 0; i < a; i++) s += i * b;
  return s;
}
__attribute__((noinline)) int after_work(int x) { return x * 3; }

static void* bad_closes(void* n) {
  for (long i = 0; i < (long)n; i++) close(-1);
  return NULL;
}

/* n rounds of: a page holding a path, open() of it (a probe reads the path), mprotect(PROT_NONE) and
 * open() again, munmap and open() again (the kernel says EFAULT to both; so must the probe's read).
 * Each round has a page of its own, from a range reserved first, so that no other mapping (of the
 * other thread) comes at an address unmapped here; and both threads have made a first syscall (an open
 * of "/", whose event is the first of the thread's: what a tracer maps for a thread, it maps then)
 * before either unmaps anything, so that no mapping made for the other thread lands in a page just
 * unmapped (the kernel's probe would read it too). */
static pthread_barrier_t unmaps_ready;
static void* unmaps(void* n) {
  char* range = mmap(NULL, 4096 * (long)n, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (range == MAP_FAILED) abort();
  const int root = open("/", O_RDONLY);
  if (root >= 0) close(root);
  pthread_barrier_wait(&unmaps_ready);
  for (long i = 0; i < (long)n; i++) {
    char* p = range + 4096 * i;
    if (mprotect(p, 4096, PROT_READ | PROT_WRITE) != 0) abort();
    strcpy(p, "/nonexistent/bpfvm-unmap-test");
    if (open(p, O_RDONLY) >= 0) abort();
    mprotect(p, 4096, PROT_NONE);
    if (open(p, O_RDONLY) >= 0) abort();
    munmap(p, 4096);
    if (open(p, O_RDONLY) >= 0) abort();
  }
  return NULL;
}

static void* nothing(void* a) { return a; }

static volatile sig_atomic_t usr1;
static void on_usr1(int sig) { (void)sig; usr1++; }

/* Signals sent by syscalls: to itself by kill (caught), tgkill (ignored) and sigqueue, to a child by
 * kill; to its process group (itself and the child); kill twice while blocked (the second already
 * pending); none for signal 0 or no such process. */
static void signals(void) {
  signal(SIGUSR1, on_usr1);
  signal(SIGUSR2, SIG_IGN);
  kill(getpid(), SIGUSR1);
  syscall(SYS_tgkill, getpid(), (pid_t)syscall(SYS_gettid), SIGUSR2);
  union sigval v = {.sival_int = 7};
  sigqueue(getpid(), SIGUSR1, v);
  setpgid(0, 0);  /* a process group of its own, and its child's: kill(0) reaches both */
  pid_t c = fork();
  if (c == 0) {
    pause();
    _exit(0);
  }
  usleep(50000);     /* the child settled (under the agent: its watcher thread made, signals unblocked) */
  kill(0, SIGUSR2);  /* ignored by both */
  kill(c, SIGTERM);
  waitpid(c, NULL, 0);
  sigset_t set, old;
  sigemptyset(&set);
  sigaddset(&set, SIGUSR1);
  sigprocmask(SIG_BLOCK, &set, &old);
  kill(getpid(), SIGUSR1);
  kill(getpid(), SIGUSR1);
  sigprocmask(SIG_SETMASK, &old, NULL);
  kill(getpid(), 0);
  kill(999999999, SIGTERM);
  printf("usr1 %d\n", (int)usr1);
}

/* A signal to a thread while a probe's program runs on it: another thread sends it SIGUSR1 20 ms after
 * the thread called signal_point (whose program runs until the handler has run, or 300 ms). The handler
 * makes a syscall of its own (getppid). */
static volatile sig_atomic_t handled;
static volatile int calling;
static pid_t main_tid;
static void on_usr1_probe(int sig) {
  (void)sig;
  handled = 1;
  syscall(SYS_getppid);
}
__attribute__((noinline)) int signal_point(volatile sig_atomic_t* flag) { __asm__ volatile(""); return *flag; }
static void* sends_usr1(void* a) {
  while (!calling) usleep(1000);
  usleep(20000);
  syscall(SYS_tgkill, getpid(), main_tid, SIGUSR1);
  return a;
}
static void signal_in_probe(void) {
  signal(SIGUSR1, on_usr1_probe);
  main_tid = (pid_t)syscall(SYS_gettid);
  pthread_t t;
  pthread_create(&t, NULL, sends_usr1, NULL);
  calling = 1;
  const int seen = signal_point(&handled);
  pthread_join(t, NULL);
  printf("handled %d before the body %d\n", (int)handled, seen);
}

/* Signal actions as the process sets and reads them: SA_SIGINFO|SA_RESETHAND (reset after one
 * delivery), signal() read back by sigaction; then two threads and a SIGTERM to the process, which ends
 * it (each thread of it reports SIGKILL, as the kernel makes it). */
static volatile sig_atomic_t infos, plain;
static void on_info(int sig, siginfo_t* info, void* uc) {
  (void)uc;
  if (sig == SIGUSR1 && info->si_signo == SIGUSR1 && info->si_code == SI_TKILL) infos++;
}
static void on_plain(int sig) { if (sig == SIGUSR2) plain++; }
static void* sleeps(void* a) {
  for (;;) pause();
  return a;
}
static void actions(void) {
  struct sigaction sa, old;
  memset(&sa, 0, sizeof sa);
  sa.sa_sigaction = on_info;
  sa.sa_flags = SA_SIGINFO | SA_RESETHAND;
  sigaction(SIGUSR1, &sa, NULL);
  raise(SIGUSR1);
  sigaction(SIGUSR1, NULL, &old);
  signal(SIGUSR2, on_plain);
  raise(SIGUSR2);
  struct sigaction now;
  sigaction(SIGUSR2, NULL, &now);
  sigaction(SIGTERM, NULL, &sa);
  printf("info %d reset %d plain %d read %d term %d\n", (int)infos, old.sa_handler == SIG_DFL, (int)plain,
         now.sa_handler == on_plain && (now.sa_flags & SA_RESTART) != 0, sa.sa_handler == SIG_DFL);
  fflush(stdout);
  pthread_t a, b;
  pthread_create(&a, NULL, sleeps, NULL);
  pthread_create(&b, NULL, sleeps, NULL);
  usleep(20000);
  kill(getpid(), SIGTERM);
  pause();
}

/* A SIGTRAP handler of its own, set after the probes were placed (int3 ones, when asked), and two int3
 * traps of its own: its handler sees both, the probes still fire. */
static volatile sig_atomic_t traps;
static void on_trap(int sig) { if (sig == SIGTRAP) traps++; }

/* kill(-1): two children with a SIGUSR1 handler, signalled with every other process of the user (run
 * as a user of its own), each ends when it has it. */
static void killall(void) {
  signal(SIGUSR1, on_usr1);
  pid_t c[2];
  for (int i = 0; i < 2; i++) {
    c[i] = fork();
    if (c[i] == 0) {
      while (!usr1) pause();
      _exit(0);
    }
  }
  usleep(50000);
  signal(SIGUSR1, SIG_IGN);  /* itself is not signalled anyway (kill_something_info) */
  kill(-1, SIGUSR1);
  for (int i = 0; i < 2; i++) waitpid(c[i], NULL, 0);
}

static void* waits_for(void* file) {
  while (access(file, F_OK) != 0) usleep(1000);
  return NULL;
}

/* A fork, a vfork, a posix_spawn of /bin/true and a thread, each waited for. */
static void spawns(void) {
  extern char** environ;
  pid_t p = fork();
  if (p == 0) _exit(0);
  waitpid(p, NULL, 0);
  p = vfork();
  if (p == 0) _exit(0);
  waitpid(p, NULL, 0);
  char* args[] = {"/bin/true", NULL};
  if (posix_spawn(&p, "/bin/true", NULL, NULL, args, environ) == 0) waitpid(p, NULL, 0);
  pthread_t t;
  pthread_create(&t, NULL, nothing, NULL);
  pthread_join(t, NULL);
}

static long calls(int n) {
  long t = 0;
  for (int i = 0; i < n; i++) t += add_one(i) + work(3, i);
  return t;
}

static void* calls_thread(void* n) { return (void*)calls((int)(long)n); }

/* Rounds of 10000 calls until FILE exists (one access() between). */
static void* calls_until(void* file) {
  while (access((const char*)file, F_OK) != 0) calls(10000);
  return NULL;
}

/* Rounds of malloc and free of 1 MiB from the heap's top: each grows it (brk) and trims it (brk) with
 * malloc's arena lock held. 1000 at a time until FILE exists (one access() between), then 1000 more. */
static void brks(const char* file) {
  mallopt(M_MMAP_THRESHOLD, 64 << 20);
  mallopt(M_TRIM_THRESHOLD, 0);
  mallopt(M_TOP_PAD, 0);
  for (int last = 0; last < 2;) {
    for (int i = 0; i < 1000; i++) {
      volatile char* p = malloc(1 << 20);
      if (p) p[0] = 1;
      free((void*)p);
    }
    if (last || access(file, F_OK) == 0) last++;
  }
}

/* The threads of a forked child, seen by its parent: while the child waits on a futex (on its way out,
 * as far as the agent knows), then once it has forked a child of its own (glibc's fork holds malloc's
 * locks at its clone) and waited for it. A child that does not come back within 10 s is reported stuck
 * and killed. */
static int task_count(pid_t pid) {
  char path[64];
  int n = 0;
  snprintf(path, sizeof path, "/proc/%d/status", pid);
  FILE* f = fopen(path, "r");
  char line[256];
  while (f && fgets(line, sizeof line, f)) {
    if (!strncmp(line, "Threads:", 8)) n = atoi(line + 8);
  }
  if (f) fclose(f);
  return n;
}

static int futex_until(volatile int* word, int value, int tries) {
  const struct timespec tick = {0, 100000000};
  for (int i = 0; __atomic_load_n(word, __ATOMIC_ACQUIRE) < value; i++) {
    if (tries && i >= tries) return 0;
    syscall(SYS_futex, word, FUTEX_WAIT, __atomic_load_n(word, __ATOMIC_ACQUIRE), tries ? &tick : NULL, NULL, 0);
  }
  return 1;
}

static void futex_set(volatile int* word, int value) {
  __atomic_store_n(word, value, __ATOMIC_RELEASE);
  syscall(SYS_futex, word, FUTEX_WAKE, 1, NULL, NULL, 0);
}

/* `forks` - 1 forks whose children exit at once first (a process's fork count decides when the agent
 * patches its syscall instructions, if nothing did before: see the agent's kPatchAtFork). */
static int fork_threads(int forks) {
  for (int i = 1; i < forks; i++) {
    const pid_t c = fork();
    if (c == 0) _exit(0);
    if (c < 0 || waitpid(c, NULL, 0) != c) return 1;
  }
  volatile int* w = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (w == MAP_FAILED) return 1;
  const pid_t child = fork();
  if (child == 0) {
    futex_until(&w[0], 1, 0);
    const pid_t grandchild = fork();
    if (grandchild == 0) _exit(0);
    if (grandchild < 0 || waitpid(grandchild, NULL, 0) != grandchild) _exit(3);
    futex_set(&w[1], 1);
    futex_until(&w[0], 2, 0);
    _exit(0);
  }
  struct timespec pause = {0, 300000000};
  nanosleep(&pause, NULL);
  printf("threads before %d\n", task_count(child));
  futex_set(&w[0], 1);
  if (!futex_until(&w[1], 1, 100)) {
    printf("child stuck\n");
    kill(child, SIGKILL);
    waitpid(child, NULL, 0);
    return 1;
  }
  int after = 0;
  for (int i = 0; i < 200 && (after = task_count(child)) < 2; i++) {
    struct timespec ms = {0, 5000000};
    nanosleep(&ms, NULL);
  }
  printf("threads after %d\n", after);
  futex_set(&w[0], 2);
  int st = 0;
  waitpid(child, &st, 0);
  return WIFEXITED(st) ? WEXITSTATUS(st) : 1;
}

/* A forked child whose first syscalls other than those on the way out come from a signal handler: the
 * agent's watcher must not start there (the handler may have interrupted malloc, whose lock starting a
 * thread takes), and starts at the next syscall after it. */
static volatile int in_handler_threads;
static void count_in_handler(int sig) {
  (void)sig;
  (void)getuid();
  in_handler_threads = task_count(getpid());
}
static int fork_signal(void) {
  const pid_t child = fork();
  if (child == 0) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = count_in_handler;
    sigaction(SIGUSR1, &sa, NULL);
    raise(SIGUSR1);
    (void)getuid();
    printf("in handler threads %d\nafter handler threads %d\n", in_handler_threads, task_count(getpid()));
    fflush(stdout);
    _exit(0);
  }
  int st = 0;
  if (child < 0 || waitpid(child, &st, 0) != child) return 1;
  return WIFEXITED(st) ? WEXITSTATUS(st) : 1;
}

int main(int argc, char** argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: %s { calls N | brks FILE 0 | threadcalls N | threaduntil FILE 0 | fork N | forkthreads N | forksignal 1 | wait FILE N | threadwait FILE N | crash N | int3 N | dlopen LIB N | closes N | unmaps N | spawns 1 | signals 1 | signalprobe 1 | threadexit 1 }\n", argv[0]);
    return 2;
  }
  const int n = atoi(argv[argc - 1]);
  if (!strcmp(argv[1], "calls")) {
    printf("total %ld\n", calls(n));
  } else if (!strcmp(argv[1], "brks")) {  /* brk up and down, inside malloc and free, until FILE exists */
    brks(argv[2]);
    printf("done\n");
  } else if (!strcmp(argv[1], "threadcalls")) {  /* n calls in each of 3 threads at once */
    pthread_t a, b;
    pthread_create(&a, NULL, calls_thread, (void*)(long)n);
    pthread_create(&b, NULL, calls_thread, (void*)(long)n);
    calls(n);
    pthread_join(a, NULL);
    pthread_join(b, NULL);
  } else if (!strcmp(argv[1], "threaduntil")) {  /* calls in each of 3 threads at once until FILE exists */
    pthread_t a, b;
    pthread_create(&a, NULL, calls_until, argv[2]);
    pthread_create(&b, NULL, calls_until, argv[2]);
    calls_until(argv[2]);
    pthread_join(a, NULL);
    pthread_join(b, NULL);
    printf("done\n");
  } else if (!strcmp(argv[1], "forkthreads")) {
    return fork_threads(n);
  } else if (!strcmp(argv[1], "forksignal")) {
    return fork_signal();
  } else if (!strcmp(argv[1], "fork")) {  /* n calls here and n in a child */
    pid_t c = fork();
    calls(n);
    if (c == 0) _exit(0);
    int st;
    waitpid(c, &st, 0);
  } else if (!strcmp(argv[1], "wait")) {
    while (access(argv[2], F_OK) != 0) usleep(1000);
    calls(n);
  } else if (!strcmp(argv[1], "threadwait")) {  /* a second thread, then n close(-1) once FILE exists */
    pthread_t t;
    pthread_create(&t, NULL, waits_for, argv[2]);
    while (access(argv[2], F_OK) != 0) usleep(1000);
    bad_closes((void*)(long)n);
    pthread_join(t, NULL);
  } else if (!strcmp(argv[1], "dlopen")) {
    void* lib = dlopen(argv[2], RTLD_NOW);
    int (*lib_add)(int) = lib ? (int (*)(int))dlsym(lib, "lib_add") : NULL;
    if (!lib_add) {
      fprintf(stderr, "%s\n", dlerror());
      return 1;
    }
    long t = 0;
    for (int i = 0; i < n; i++) t += lib_add(i);
    printf("lib total %ld\n", t);
  } else if (!strcmp(argv[1], "closes")) {  /* n close(-1) in each of 2 threads and in a forked child */
    pthread_t a, b;
    pthread_create(&a, NULL, bad_closes, (void*)(long)n);
    pthread_create(&b, NULL, bad_closes, (void*)(long)n);
    pthread_join(a, NULL);
    pthread_join(b, NULL);
    pid_t c = fork();
    if (c == 0) {
      bad_closes((void*)(long)n);
      _exit(0);
    }
    int st;
    waitpid(c, &st, 0);
  } else if (!strcmp(argv[1], "unmaps")) {  /* n rounds in each of 2 threads */
    pthread_t a, b;
    pthread_barrier_init(&unmaps_ready, NULL, 2);
    pthread_create(&a, NULL, unmaps, (void*)(long)n);
    pthread_create(&b, NULL, unmaps, (void*)(long)n);
    pthread_join(a, NULL);
    pthread_join(b, NULL);
  } else if (!strcmp(argv[1], "threadexit")) {  /* exit(0) while two other threads block */
    pthread_t a, b;
    pthread_create(&a, NULL, waits_for, "/nonexistent/bpfvm-never");
    pthread_create(&b, NULL, waits_for, "/nonexistent/bpfvm-never");
    usleep(20000);
    exit(0);
  } else if (!strcmp(argv[1], "signals")) {
    signals();
  } else if (!strcmp(argv[1], "signalprobe")) {
    signal_in_probe();
  } else if (!strcmp(argv[1], "actions")) {
    actions();
  } else if (!strcmp(argv[1], "killall")) {
    killall();
  } else if (!strcmp(argv[1], "own_trap")) {
    calls(n);
    struct sigaction sa, old;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_trap;
    sigaction(SIGTRAP, &sa, &old);
    __asm__ volatile("int3");
    __asm__ volatile("int3");
    calls(n);
    struct sigaction now;
    sigaction(SIGTRAP, NULL, &now);
    printf("traps %d was-default %d now-ours %d\n", (int)traps, old.sa_handler == SIG_DFL, now.sa_handler == on_trap);
  } else if (!strcmp(argv[1], "spawns")) {
    spawns();
  } else if (!strcmp(argv[1], "crash")) {
    calls(n);
    *(volatile int*)0 = 1;
  } else if (!strcmp(argv[1], "int3")) {  /* a breakpoint of its own: SIGTRAP kills it */
    calls(n);
    __asm__ volatile("int3");
  }
  return after_work(0);
}
