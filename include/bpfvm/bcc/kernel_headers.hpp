// The kernel headers BCC programs include, made from the running kernel's BTF, for machines without the
// kernel's development headers (most: Debian installs them only with linux-headers-RELEASE, and this
// kernel has no CONFIG_IKHEADERS).
//
// BCC compiles a program in a kernel tree ($BCC_KERNEL_SOURCE, else /lib/modules/RELEASE/build) with
// -include include/linux/kconfig.h first and the tree's include/, arch/x86/include/ and their uapi/
// folders on the path (src/cc/frontends/clang/kbuild_helper.cc). bpfvm's tree answers that layout:
//   include/linux/kconfig.h        IS_ENABLED and friends, generated/autoconf.h (the running kernel's
//                                  configuration), then every type of the kernel's BTF as C (the same
//                                  declarations as `bpfvm btf dump ... format c`, without CO-RE
//                                  attributes: BCC programs are compiled for this kernel) and the
//                                  kernel's common macros (annotations, limits, pages); it defines the
//                                  guard of linux/bpf.h, so BCC's own copy adds no second definition
//   include/linux/version.h        LINUX_VERSION_CODE of the running kernel, KERNEL_VERSION()
//   the headers BCC's tools and examples include (linux/sched.h, net/sock.h, uapi/linux/ptrace.h, ...)
//                                  each with the macros of its own that programs use (task states,
//                                  socket field names, open flags, ...); their types are all above
// A header outside that list is "file not found", clang's own words.
#pragma once

#include <string>

#include "bpfvm/base/result.hpp"

namespace bpfvm::bcc {

// The directory of the tree for the running kernel, made once per kernel (BTF, release, configuration)
// in the user's cache ($XDG_CACHE_HOME/bpfvm or ~/.cache/bpfvm, "kheaders-HASH"); an error when the
// kernel has no BTF (/sys/kernel/btf/vmlinux) or the cache cannot be written.
Result<std::string> kernel_headers();

// The same, made from `btf_path` (raw BTF) into `dir` (the tests').
Result<void> write_kernel_headers(const std::string& btf_path, const std::string& dir);

// Whether BCC finds the kernel's own headers on this machine (its check: the kernel tree's
// include/linux/kconfig.h under /lib/modules/RELEASE/build or .../source).
bool machine_has_kernel_headers();

}  // namespace bpfvm::bcc
