// Private to src/attach: the classic-BPF seccomp filter a launched tracee runs under.
#pragma once

#include <linux/filter.h>

#include <vector>

#include "bpfvm/attach/syscall_tracer.hpp"

namespace bpfvm::attach {

// SECCOMP_RET_TRACE for the selected x86-64 syscalls (entry or exit wanted), SECCOMP_RET_ALLOW for the
// rest; every syscall traces when the selection asks for all of them or for more than one jump reaches.
std::vector<sock_filter> seccomp_filter(const SyscallSelection& selection);

}  // namespace bpfvm::attach
