// Helpers of syscall programs (BPF_PROG_TYPE_SYSCALL, run by BPF_PROG_RUN from user space): sys_bpf
// (166), btf_find_by_name_kind (167), sys_close (168), kallsyms_lookup_name (179).
#include <linux/bpf.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "helper_args.hpp"

namespace bpfvm::helpers {

namespace {

// A NUL-terminated name of `size` bytes (bpf_btf_find_by_name_kind's and kallsyms_lookup_name's
// check: at least one character and the terminator in the last byte).
bool valid_name(std::uint64_t name, std::uint64_t size) {
  return size > 1 && reinterpret_cast<const char*>(name)[size - 1] == '\0';
}

// bpf(cmd, attr, size) with the caller's runtime: the commands the kernel lets a syscall program make
// (bpf_sys_bpf: maps, programs, BTF, links); the result or -errno.
std::uint64_t sys_bpf(std::uint64_t cmd, std::uint64_t attr, std::uint64_t size, std::uint64_t, std::uint64_t,
                      CallContext* ctx) {
  switch (cmd) {
    case BPF_MAP_CREATE:
    case BPF_MAP_DELETE_ELEM:
    case BPF_MAP_UPDATE_ELEM:
    case BPF_MAP_FREEZE:
    case BPF_MAP_GET_FD_BY_ID:
    case BPF_PROG_LOAD:
    case BPF_BTF_LOAD:
    case BPF_LINK_CREATE:
    case BPF_RAW_TRACEPOINT_OPEN: break;
    default: return errno_result(EINVAL);
  }
  const SyscallServices* sys = env_of(ctx).syscall;
  if (!sys) return errno_result(EOPNOTSUPP);
  const long r = sys->bpf(sys->self, static_cast<int>(cmd), reinterpret_cast<void*>(attr), static_cast<std::uint32_t>(size));
  return static_cast<std::uint64_t>(static_cast<std::int64_t>(r));
}

std::uint64_t sys_close(std::uint64_t fd, std::uint64_t, std::uint64_t, std::uint64_t, std::uint64_t, CallContext* ctx) {
  const SyscallServices* sys = env_of(ctx).syscall;
  if (!sys) return errno_result(EBADF);
  return static_cast<std::uint64_t>(static_cast<std::int64_t>(sys->close(sys->self, static_cast<int>(fd))));
}

// The id of the running kernel's type of that name and kind (the BTF object's fd in the upper half: 0,
// vmlinux's); -ENOENT when it has none.
std::uint64_t btf_find_by_name_kind(std::uint64_t name, std::uint64_t size, std::uint64_t kind, std::uint64_t flags,
                                    std::uint64_t, CallContext* ctx) {
  if (flags != 0 || !valid_name(name, size)) return errno_result(EINVAL);
  const SyscallServices* sys = env_of(ctx).syscall;
  if (!sys) return errno_result(ENOENT);
  const long id = sys->find_kernel_type(reinterpret_cast<const char*>(name), static_cast<std::uint32_t>(kind));
  return static_cast<std::uint64_t>(static_cast<std::int64_t>(id));
}

// Kernel symbols have no addresses in user space: every name is unknown (-ENOENT), *res 0.
std::uint64_t kallsyms_lookup_name(std::uint64_t name, std::uint64_t size, std::uint64_t flags, std::uint64_t res,
                                   std::uint64_t, CallContext*) {
  if (flags != 0 || !valid_name(name, size)) return errno_result(EINVAL);
  *reinterpret_cast<std::uint64_t*>(res) = 0;
  return errno_result(ENOENT);
}

}  // namespace

void install_syscall_helpers(Registry& table) {
  table.set(BPF_FUNC_sys_bpf, sys_bpf);
  table.set(BPF_FUNC_sys_close, sys_close);
  table.set(BPF_FUNC_btf_find_by_name_kind, btf_find_by_name_kind);
  table.set(BPF_FUNC_kallsyms_lookup_name, kallsyms_lookup_name);
}

}  // namespace bpfvm::helpers
