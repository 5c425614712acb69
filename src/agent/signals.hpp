// Private to src/agent: the process's signal actions, with the agent's dispatcher standing in for them
// in the kernel, so that signal/signal_deliver is seen where the kernel reports it (get_signal: as a
// thread takes a signal, before the handler or the default action runs, with the action it meets).
//
// Once interposed, the kernel's action for a signal the process handles, or whose default action ends
// the process, is the dispatcher, with the process's own flags (SA_RESTART, SA_NODEFER, SA_ONSTACK,
// SA_RESETHAND...), mask and restorer, plus SA_SIGINFO. The dispatcher reports the delivery, then does
// what the process's action says: calls its handler (with the arguments its flags ask for), or, for a
// default action, puts SIG_DFL back and queues the same siginfo to the thread again, so that the signal
// ends the process as it would have (its wait status, and its core dump with the registers at the
// fault, as the kernel takes it again on the way out of the handler). The process's rt_sigaction calls
// come through the syscall handler (every syscall instruction is patched): they set and answer the
// process's actions as it set them, never the dispatcher.
//
// Not interposed: SIGKILL and SIGSTOP (no action), glibc's internal SIGCANCEL and SIGSETXID (32, 33),
// SIGTRAP once int3 probes hold it (their handler reports it; see trap_action), ignored signals and those
// whose default is to be ignored or to stop. What differs from the kernel: a fatal signal sent to a
// stopped process waits for SIGCONT (the kernel ends a stopped process at once), and /proc's SigCgt
// lists the interposed signals as caught.
#pragma once

#include <signal.h>

#include <cstdint>

#include "bpfvm/agent/hook.hpp"

namespace bpfvm::agent::detail {

// An action as the process set it (struct kernel_sigaction's handler and flags).
struct SignalAction {
  std::uint64_t handler = 0, flags = 0;
};

// Called by the dispatcher (in the signal handler, on the receiving thread) before the process's action.
// False when the agent holds the signal instead (`may_hold`: the caller can leave the action untaken):
// it came while the thread did the agent's own work, and the agent sends it to the thread again when
// that work ends, to be delivered then (the kernel delivers only on the way back to user space, never
// inside a program or a syscall's work).
using DeliverFn = bool (*)(int sig, const siginfo_t* info, SignalAction action, bool may_hold);

// Puts the dispatcher in place (once; later calls change only `deliver`). Only while every syscall
// instruction of the process is patched, so that its rt_sigaction calls come to signal_action_syscall.
void interpose_signals(DeliverFn deliver);
bool signals_interposed();
// The process's rt_sigaction (the syscall handler's case for SYS_rt_sigaction while interposed): performs
// it, with the dispatcher standing in where it should; rax the result, rcx = 1.
void signal_action_syscall(PtRegs* regs);
// In a forked child (its own copy of the table; a vfork child shares its parent's and leaves it alone).
void signals_forked();
// A delivery the dispatcher did not see (a SIGTRAP that is no int3 probe's), reported the same way.
void report_delivery(int sig, const siginfo_t* info, SignalAction action);

// While int3 probes hold SIGTRAP in the kernel (hook.cpp): the process's own action for it, the one a trap
// that is no probe's goes to, as struct kernel_sigaction words (handler, flags, restorer, mask); answers
// `old` and sets `set` where given. False (nothing done) when no int3 probe was ever placed. A process
// that sets its SIGTRAP action after int3 probes were placed so gets its traps without taking the
// probes' (its rt_sigaction comes through the syscall handler: every syscall instruction patched).
bool trap_action(const std::uint64_t* set, std::uint64_t* old);
// The process's own action for `sig` when the kernel's is `words` (struct kernel_sigaction): the table's
// where the dispatcher stands in, else `words` unchanged.
void process_action(int sig, std::uint64_t (&words)[4]);
// Sets the kernel's action for `sig` (struct kernel_sigaction words, its restorer the agent's) by the
// agent's own syscall, never the process's: the kernel's previous action in `old`. 0 or -errno.
std::int64_t set_kernel_action(int sig, std::uint64_t handler, std::uint64_t flags, std::uint64_t (&old)[4]);

// Whether the thread whose stack pointer is `sp` runs a signal handler: a signal frame as the kernel
// builds it (struct rt_sigframe: the restorer's address, then a ucontext whose uc_link is 0, whose
// flags have UC_SIGCONTEXT_SS, whose saved segments are the user's (cs 0x33, ss 0x2b) and whose fp state
// lies right above it) within 64 KiB above `sp`, read without faulting. A handler that longjmp'd out
// leaves its frame below the stack pointer, where it is not seen; a stale frame inside a live one's
// unwritten locals would be (and only make the caller wait for another syscall).
bool in_signal_handler(std::uint64_t sp);

// glibc's SIGSETXID (33; its set*id broadcast to every thread it made): `before` runs in each receiving
// thread, then glibc's own handler, then `after`. Installed once, by the agent's own rt_sigaction; false
// (nothing done) where glibc has no handler for it yet.
bool chain_setxid(void (*before)(), void (*after)());

}  // namespace bpfvm::agent::detail
