/* Private to src/agent: the record of a process's syscalls from before its agent starts, shared by
 * libbpfvm-early.so (early.c, which writes it) and the agent (early.cpp, which reads it). C, so that the
 * freestanding early module can include it.
 *
 * The dynamic loader makes a program's first syscalls (ld.so.cache, its libraries, their segments)
 * before any preloaded library runs; the kernel's tracepoints see them, so a tool such as opensnoop
 * shows them. `bpfvm run` loads libbpfvm-early.so as an LD_AUDIT module, which ld.so loads before
 * /etc/ld.so.preload, LD_PRELOAD and the program's libraries. It turns on Syscall User Dispatch
 * (prctl PR_SET_SYSCALL_USER_DISPATCH, Linux 5.11; Documentation/admin-guide/syscall-user-dispatch.rst):
 * every syscall made outside its own code raises SIGSYS, whose handler records the call (its number,
 * arguments, the path strings it names, its result) in this log and performs it from inside the module.
 * The agent's first act in the process is the hand-over syscall below: the handler turns the dispatch
 * off, puts back the process's SIGSYS action and mask, and returns the log's address. */
#ifndef BPFVM_AGENT_EARLY_LOG_H
#define BPFVM_AGENT_EARLY_LOG_H

#include <stdint.h>

#define BPFVM_EARLY_MAGIC 0x62706676656172ULL /* the log's first word */
#define BPFVM_EARLY_VERSION 1u
/* The hand-over: getppid (SYS_getppid, 110), which every sandbox's seccomp filter lets through, with
 * two arguments no caller passes (the kernel ignores them). With the window open the dispatch traps it
 * and the early module answers the log's address; without (no early module, or a window another
 * syscall ended) the kernel answers the parent's pid, which is below 2^32 where no user address is. */
#define BPFVM_EARLY_HANDOVER_NR 110L
#define BPFVM_EARLY_HANDOVER_ARG 0x6276656172687dULL
#define BPFVM_EARLY_HANDOVER_ARG2 0x68616e646f766572ULL
#define BPFVM_EARLY_LOG_SIZE (1u << 20)
#define BPFVM_EARLY_STRING_MAX 256u /* a path argument is kept up to this many bytes, NUL included */

/* Why the window closed: the agent took the log over, or the process made a syscall that cannot be
 * performed from a signal handler (it then runs as made, untraced, and the log ends there). */
enum bpfvm_early_end {
  BPFVM_EARLY_OPEN = 0,
  BPFVM_EARLY_HANDED_OVER = 1,
  BPFVM_EARLY_ENDED_BY_SYSCALL = 2, /* clone, fork, execve, exit, rt_sigreturn...: `end_nr` says which */
  BPFVM_EARLY_NO_AGENT = 3,         /* ld.so finished loading and the agent was not among the objects */
  BPFVM_EARLY_FOREIGN_SIGSYS = 4,   /* a SIGSYS not of the dispatch (a seccomp trap): given back */
};

struct bpfvm_early_log {
  uint64_t magic;
  uint32_t version;
  uint32_t size;    /* bytes mapped, header included */
  uint32_t used;    /* bytes of records after the header */
  uint32_t count;   /* records */
  uint32_t dropped; /* syscalls performed but not recorded (the log was full) */
  uint32_t end;     /* enum bpfvm_early_end */
  int64_t end_nr;
  uint8_t selector; /* the dispatch's selector byte (SYSCALL_DISPATCH_FILTER_ALLOW / _BLOCK) */
  uint8_t pad[7];
};

struct bpfvm_early_record {
  uint32_t size; /* the whole record, strings included; a multiple of 8 */
  int32_t nr;
  uint64_t args[6];
  int64_t ret;
  uint64_t call_addr; /* the address after the syscall instruction */
  uint32_t strings;   /* bit i: args[i] was a path, kept after the record (NUL-terminated, in order) */
  uint32_t pad;
};

#endif
