// Private to src/agent: reading the process's own memory for probe_read_user without a syscall.
//
// process_vm_readv never faults, but it is a syscall with a page-table walk (about 3 us on this
// project's VM, most of an opensnoop event). A direct copy is safe only where the pages are known to be
// mapped and readable for as long as the copy runs. The agent knows when that can change: every
// `syscall` instruction of the process is patched (syscall_sites.hpp), so the syscalls that unmap or
// protect memory (munmap, mremap, mprotect, brk, shrinking or fixed mmaps, madvise that can fault,
// shmdt...) come through its handler, which calls memory_syscall() to perform them:
//   writer (memory_syscall): writers++, generation++; wait until no copy is in flight; the syscall;
//                            generation++, writers--.
//   reader (read):           in_flight++; if no writer and every page was checked (by a
//                            process_vm_readv that succeeded) under the current generation, memcpy;
//                            in_flight--. Otherwise process_vm_readv, and its pages are remembered,
//                            per thread, with the generation read before it.
// So a page copied directly was readable after the last memory syscall began, and none can begin until
// the copy ends. Direct copies are on only while every syscall instruction of every file the process
// maps is patched (enable_fast_reads); a file mapped later with syscall instructions that cannot be
// patched turns them off for good (disable_fast_reads). Not covered, and the reason they stay rare:
// a file truncated under a mapping (SIGBUS past its end), protection keys changed with WRPKRU, code
// generated at run time that makes its own munmap syscall, and a signal handler that unmaps the very
// memory a probe on the same thread was copying when the signal came.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <cstdint>

namespace bpfvm::agent::detail {

// Whether syscall `nr` with these arguments can unmap memory or make it unreadable.
bool is_memory_syscall(std::uint64_t nr, const std::uint64_t* args);
// Performs a memory syscall as the writer above; its result.
std::int64_t memory_syscall(std::uint64_t nr, const std::uint64_t* args);

// RunEnv::read_user for the agent (`pid`: this process's id, for process_vm_readv).
bool read(pid_t pid, void* dst, std::uint64_t src, std::size_t size);

// In a forked child (pthread_atfork): the other threads' state did not come along.
void forked();

void enable_fast_reads();
void disable_fast_reads();
bool fast_reads();

}  // namespace bpfvm::agent::detail
