/* libbpfvm-early.so: the LD_AUDIT module that records a process's syscalls until its agent starts
 * (early_log.h says why and how). Freestanding: no libc (an audit module gets a namespace of its own,
 * and a second libc there would be a second malloc and more syscalls to hide); raw syscalls only, all
 * made from this module's code, which the dispatch lets through.
 *
 * Fails open: when the dispatch cannot be turned on (a kernel before 5.11) nothing changes; a syscall
 * that cannot be performed from a signal handler ends the window and runs as made; a SIGSYS that is not
 * the dispatch's is given back to the process as it came. */
#define _GNU_SOURCE 1
#include <elf.h>
#include <link.h>
#include <linux/prctl.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <sys/ucontext.h>

#include "early_log.h"

#define EXPORT __attribute__((visibility("default")))

struct kernel_sigaction {
  void* handler;
  unsigned long flags;
  void* restorer;
  uint64_t mask;
};
#define K_SA_SIGINFO 0x4UL
#define K_SA_NODEFER 0x40000000UL
#define K_SA_RESTORER 0x04000000UL
#define SIGSYS_BIT (1ULL << (SIGSYS - 1))
#ifndef SYS_USER_DISPATCH
#define SYS_USER_DISPATCH 2 /* si_code of the dispatch's SIGSYS (asm-generic/siginfo.h) */
#endif
#define UNBLOCKABLE ((1ULL << (SIGKILL - 1)) | (1ULL << (SIGSTOP - 1)))

static long sys6(long nr, long a, long b, long c, long d, long e, long f) {
  register long r10 __asm__("r10") = d;
  register long r8 __asm__("r8") = e;
  register long r9 __asm__("r9") = f;
  long ret;
  __asm__ volatile("syscall"
                   : "=a"(ret)
                   : "a"(nr), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8), "r"(r9)
                   : "rcx", "r11", "memory");
  return ret;
}

/* The handler's way back (SA_RESTORER), inside the module like every syscall it makes. */
__attribute__((naked)) static void restore_rt(void) { __asm__ volatile("mov $15, %eax\n\tsyscall\n\tud2"); }

static struct bpfvm_early_log* g_log;
static long g_pid;
static int g_agent_seen;
/* The process's SIGSYS: its action before the window (or the one it set in it) and whether it had the
 * signal blocked; the window keeps the module's action in the kernel and SIGSYS unblocked meanwhile. */
static struct kernel_sigaction g_process_action;
static int g_process_blocks_sigsys;

static void copy_bytes(void* dst, const void* src, size_t n) {
  unsigned char* d = dst;
  const unsigned char* s = src;
  while (n--) *d++ = *s++;
}

/* The process's memory, without faulting on a bad pointer (the kernel would answer EFAULT). */
static long read_memory(void* dst, uint64_t src, size_t n) {
  struct {
    void* base;
    size_t len;
  } local = {dst, n}, remote = {(void*)src, n};
  return sys6(SYS_process_vm_readv, g_pid, (long)&local, 1, (long)&remote, 1, 0);
}
static long write_memory(uint64_t dst, const void* src, size_t n) {
  struct {
    const void* base;
    size_t len;
  } local = {src, n}, remote = {(void*)dst, n};
  return sys6(SYS_process_vm_writev, g_pid, (long)&local, 1, (long)&remote, 1, 0);
}

/* Which arguments of a syscall name a path (the ones the loader and a library's start make). */
static uint32_t path_args(long nr) {
  switch (nr) {
    case SYS_open: case SYS_access: case SYS_stat: case SYS_lstat: case SYS_readlink: case SYS_execve:
    case SYS_mkdir: case SYS_unlink: case SYS_chdir: case SYS_truncate: case SYS_statfs: case SYS_rmdir:
    case SYS_creat: case SYS_chmod: case SYS_chown: case SYS_lchown:
      return 1u << 0;
    case SYS_openat: case SYS_faccessat: case SYS_newfstatat: case SYS_statx: case SYS_readlinkat:
    case SYS_execveat: case SYS_openat2: case SYS_faccessat2: case SYS_mkdirat: case SYS_unlinkat:
    case SYS_fchmodat: case SYS_fchownat:
      return 1u << 1;
    default:
      return 0;
  }
}

/* Syscalls that must run where they were made: a new stack or context, or no return. */
static int ends_window(long nr) {
  return nr == SYS_rt_sigreturn || nr == SYS_clone || nr == SYS_clone3 || nr == SYS_fork || nr == SYS_vfork ||
         nr == SYS_execve || nr == SYS_execveat || nr == SYS_exit || nr == SYS_exit_group;
}

/* Reserves a record (a signal handler's syscalls, nested in this one's, append after it). */
static struct bpfvm_early_record* begin_record(long nr, const uint64_t* args) {
  struct bpfvm_early_log* log = g_log;
  char strings[6][BPFVM_EARLY_STRING_MAX];
  uint32_t lengths[6] = {0};
  uint32_t kept = 0, extra = 0;
  const uint32_t paths = path_args(nr);
  for (int i = 0; i < 6; ++i) {
    if (!(paths & (1u << i)) || args[i] == 0) continue;
    const long got = read_memory(strings[i], args[i], BPFVM_EARLY_STRING_MAX);
    if (got <= 0) continue;
    uint32_t n = 0;
    while (n < (uint32_t)got && strings[i][n] != '\0') ++n;
    if (n == (uint32_t)got) {
      if (n == BPFVM_EARLY_STRING_MAX) n = BPFVM_EARLY_STRING_MAX - 1; /* cut, as a probe read is */
      else continue;                                                   /* the string runs into a hole */
    }
    strings[i][n] = '\0';
    lengths[i] = n + 1;
    kept |= 1u << i;
    extra += n + 1;
  }
  const uint32_t size = (uint32_t)((sizeof(struct bpfvm_early_record) + extra + 7) & ~7u);
  const uint32_t room = log->size - (uint32_t)sizeof *log;
  const uint32_t at = __atomic_fetch_add(&log->used, size, __ATOMIC_RELAXED);
  if (at + size > room || at + size < at) {
    __atomic_fetch_sub(&log->used, size, __ATOMIC_RELAXED);
    __atomic_fetch_add(&log->dropped, 1, __ATOMIC_RELAXED);
    return NULL;
  }
  struct bpfvm_early_record* r = (struct bpfvm_early_record*)((char*)(log + 1) + at);
  r->size = size;
  r->nr = (int32_t)nr;
  for (int i = 0; i < 6; ++i) r->args[i] = args[i];
  r->ret = -38; /* ENOSYS until it returns */
  r->strings = kept;
  char* out = (char*)(r + 1);
  for (int i = 0; i < 6; ++i) {
    if (!(kept & (1u << i))) continue;
    copy_bytes(out, strings[i], lengths[i]);
    out += lengths[i];
  }
  __atomic_fetch_add(&log->count, 1, __ATOMIC_RELAXED);
  return r;
}

/* Ends the window: the dispatch off, the process's SIGSYS action and mask back (`mask`: the mask the
 * handler's return restores, or null outside a handler). */
static void close_window(uint64_t* mask, uint32_t why, long nr) {
  struct bpfvm_early_log* log = g_log;
  if (!log || log->end != BPFVM_EARLY_OPEN) return;
  log->selector = SYSCALL_DISPATCH_FILTER_ALLOW;
  sys6(SYS_prctl, PR_SET_SYSCALL_USER_DISPATCH, PR_SYS_DISPATCH_OFF, 0, 0, 0, 0);
  sys6(SYS_rt_sigaction, SIGSYS, (long)&g_process_action, 0, 8, 0, 0);
  if (g_process_blocks_sigsys) {
    if (mask) {
      *mask |= SIGSYS_BIT;
    } else {
      const uint64_t block = SIGSYS_BIT;
      sys6(SYS_rt_sigprocmask, SIG_BLOCK, (long)&block, 0, 8, 0, 0);
    }
  }
  log->end = why;
  log->end_nr = nr;
}

/* rt_sigaction of SIGSYS while the window is open: the process's action is kept aside (the kernel keeps
 * the module's) and put in place when the window closes. */
static long sigsys_action(const uint64_t* a) {
  if (a[3] != 8) return -22; /* EINVAL */
  struct kernel_sigaction wanted;
  if (a[1] && read_memory(&wanted, a[1], sizeof wanted) != (long)sizeof wanted) return -14; /* EFAULT */
  if (a[2] && write_memory(a[2], &g_process_action, sizeof g_process_action) != (long)sizeof g_process_action) {
    return -14;
  }
  if (a[1]) {
    wanted.mask &= ~UNBLOCKABLE;
    g_process_action = wanted;
  }
  return 0;
}

/* rt_sigprocmask while the window is open: the mask the handler's return restores is the thread's mask
 * as the process made it, with SIGSYS left unblocked (a blocked SIGSYS of the dispatch would end the
 * process); the process sees the mask it asked for. */
static long sigprocmask_call(const uint64_t* a, uint64_t* mask) {
  if (a[3] != 8) return -22;
  const uint64_t now = (*mask & ~SIGSYS_BIT) | (g_process_blocks_sigsys ? SIGSYS_BIT : 0);
  uint64_t set = 0;
  if (a[1]) {
    if (a[0] != SIG_BLOCK && a[0] != SIG_UNBLOCK && a[0] != SIG_SETMASK) return -22;
    if (read_memory(&set, a[1], sizeof set) != (long)sizeof set) return -14;
  }
  if (a[2] && write_memory(a[2], &now, sizeof now) != (long)sizeof now) return -14;
  if (!a[1]) return 0;
  uint64_t next = a[0] == SIG_BLOCK ? now | set : a[0] == SIG_UNBLOCK ? now & ~set : set;
  next &= ~UNBLOCKABLE;
  g_process_blocks_sigsys = (next & SIGSYS_BIT) != 0;
  *mask = next & ~SIGSYS_BIT;
  return 0;
}

static void on_sigsys(int sig, siginfo_t* info, void* context) {
  (void)sig;
  ucontext_t* uc = context;
  greg_t* g = uc->uc_mcontext.gregs;
  uint64_t* mask = (uint64_t*)&uc->uc_sigmask;
  if (info->si_code != SYS_USER_DISPATCH || !g_log || g_log->end != BPFVM_EARLY_OPEN) {
    /* Not the dispatch's (a seccomp filter's trap): the window ends and the signal goes to the
     * process's own action, with its siginfo. */
    close_window(mask, BPFVM_EARLY_FOREIGN_SIGSYS, info->si_syscall);
    const long tid = sys6(SYS_gettid, 0, 0, 0, 0, 0, 0);
    sys6(SYS_rt_tgsigqueueinfo, g_pid, tid, SIGSYS, (long)info, 0, 0);
    return;
  }
  const long nr = g[REG_RAX];
  const uint64_t args[6] = {(uint64_t)g[REG_RDI], (uint64_t)g[REG_RSI], (uint64_t)g[REG_RDX],
                            (uint64_t)g[REG_R10], (uint64_t)g[REG_R8],  (uint64_t)g[REG_R9]};
  if (nr == BPFVM_EARLY_HANDOVER_NR && args[0] == BPFVM_EARLY_HANDOVER_ARG && args[1] == BPFVM_EARLY_HANDOVER_ARG2) {
    close_window(mask, BPFVM_EARLY_HANDED_OVER, nr);
    g[REG_RAX] = (greg_t)(uintptr_t)g_log;
    return;
  }
  if (ends_window(nr)) {
    close_window(mask, BPFVM_EARLY_ENDED_BY_SYSCALL, nr);
    g[REG_RIP] -= 2; /* the syscall instruction (two bytes, as int 0x80 and sysenter) runs again, as made */
    return;
  }
  struct bpfvm_early_record* r = begin_record(nr, args);
  long ret;
  if (nr == SYS_rt_sigaction && args[0] == SIGSYS) ret = sigsys_action(args);
  else if (nr == SYS_rt_sigprocmask) ret = sigprocmask_call(args, mask);
  else ret = sys6(nr, (long)args[0], (long)args[1], (long)args[2], (long)args[3], (long)args[4], (long)args[5]);
  if (r) {
    r->ret = ret;
    r->call_addr = (uint64_t)info->si_call_addr;
  }
  g[REG_RAX] = ret;
}

/* This module's code: the dispatch lets the syscalls made from it through. */
extern const ElfW(Ehdr) __ehdr_start;
static int own_code(uint64_t* start, uint64_t* len) {
  const ElfW(Ehdr)* eh = &__ehdr_start;
  const ElfW(Phdr)* ph = (const ElfW(Phdr)*)((const char*)eh + eh->e_phoff);
  uint64_t lo = ~0ULL, hi = 0;
  const uint64_t base = (uint64_t)(uintptr_t)eh;  /* the first PT_LOAD maps offset 0 at vaddr 0 */
  for (int i = 0; i < eh->e_phnum; ++i) {
    if (ph[i].p_type != PT_LOAD || !(ph[i].p_flags & PF_X)) continue;
    const uint64_t from = base + ph[i].p_vaddr, to = from + ph[i].p_memsz;
    if (from < lo) lo = from;
    if (to > hi) hi = to;
  }
  if (hi <= lo) return 0;
  *start = lo;
  *len = hi - lo;
  return 1;
}

static void open_window(void) {
  uint64_t start, len;
  if (!own_code(&start, &len)) return;
  void* at = (void*)sys6(SYS_mmap, 0, BPFVM_EARLY_LOG_SIZE, 3 /* PROT_READ|WRITE */, 0x22 /* PRIVATE|ANON */, -1, 0);
  if ((unsigned long)at > -4096UL) return;
  struct bpfvm_early_log* log = at;
  log->magic = BPFVM_EARLY_MAGIC;
  log->version = BPFVM_EARLY_VERSION;
  log->size = BPFVM_EARLY_LOG_SIZE;
  log->selector = SYSCALL_DISPATCH_FILTER_ALLOW;
  g_pid = sys6(SYS_getpid, 0, 0, 0, 0, 0, 0);
  struct kernel_sigaction mine = {(void*)on_sigsys, K_SA_SIGINFO | K_SA_NODEFER | K_SA_RESTORER, (void*)restore_rt, 0};
  if (sys6(SYS_rt_sigaction, SIGSYS, (long)&mine, (long)&g_process_action, 8, 0, 0) != 0) goto unmap;
  const uint64_t unblock = SIGSYS_BIT;
  uint64_t old_mask = 0;
  sys6(SYS_rt_sigprocmask, SIG_UNBLOCK, (long)&unblock, (long)&old_mask, 8, 0, 0);
  g_process_blocks_sigsys = (old_mask & SIGSYS_BIT) != 0;
  g_log = log;
  log->selector = SYSCALL_DISPATCH_FILTER_BLOCK;
  if (sys6(SYS_prctl, PR_SET_SYSCALL_USER_DISPATCH, PR_SYS_DISPATCH_ON, (long)start, (long)len,
           (long)&log->selector, 0) == 0) {
    return;
  }
  g_log = 0;  /* no dispatch here: as if the module were absent */
  sys6(SYS_rt_sigaction, SIGSYS, (long)&g_process_action, 0, 8, 0, 0);
  if (g_process_blocks_sigsys) sys6(SYS_rt_sigprocmask, SIG_BLOCK, (long)&unblock, 0, 8, 0, 0);
unmap:
  sys6(SYS_munmap, (long)at, BPFVM_EARLY_LOG_SIZE, 0, 0, 0, 0);
}

/* ld.so loads audit modules before the program's libraries and calls this first. */
EXPORT unsigned int la_version(unsigned int version) {
  if (version < 1) return 0;
  open_window();
  return 1;
}

EXPORT unsigned int la_objopen(struct link_map* map, Lmid_t lmid, uintptr_t* cookie) {
  (void)lmid;
  (void)cookie;
  static const char kAgent[] = "/libbpfvm-agent.so";
  const char* name = map->l_name;
  if (name) {
    size_t n = 0;
    while (name[n]) ++n;
    const size_t k = sizeof kAgent - 1;
    if (n >= k) {
      size_t i = 0;
      while (i < k && name[n - k + i] == kAgent[i]) ++i;
      if (i == k) g_agent_seen = 1;
    }
  }
  return 0; /* no symbol binding audits: the process's calls stay as fast as without the module */
}

/* Every object is loaded: without the agent among them nobody would take the log over. */
EXPORT void la_preinit(uintptr_t* cookie) {
  (void)cookie;
  if (g_agent_seen || !g_log) return;
  close_window(0, BPFVM_EARLY_NO_AGENT, 0);
  struct bpfvm_early_log* log = g_log;
  g_log = 0;
  sys6(SYS_munmap, (long)log, log->size, 0, 0, 0, 0);
}
