#include "bpfvm/attach/kernel_functions.hpp"

#include <fcntl.h>
#include <linux/ptrace.h>
#include <sys/syscall.h>

#include <cstring>

#include "bpfvm/attach/syscalls.hpp"
#include "bpfvm/base/process.hpp"

namespace bpfvm::attach {

namespace {

std::string_view after(std::string_view s, std::string_view prefix) {
  return s.starts_with(prefix) ? s.substr(prefix.size()) : std::string_view{};
}

KernelFunction of_syscalls(KernelFunction::Shape shape, std::initializer_list<int> nrs) {
  KernelFunction f;
  f.shape = shape;
  for (const int nr : nrs) f.nrs[f.count++] = nr;
  return f;
}

// Six arguments in the argument registers: the fourth in r10 (the syscall convention) or rcx (a C
// function's).
void put_args(struct pt_regs& regs, const std::array<std::uint64_t, 6>& args, bool syscall) {
  regs.rdi = args[0];
  regs.rsi = args[1];
  regs.rdx = args[2];
  (syscall ? regs.r10 : regs.rcx) = args[3];
  regs.r8 = args[4];
  regs.r9 = args[5];
}

// The kernel's O_LARGEFILE on x86-64 (asm-generic/fcntl.h); glibc's is 0 on 64-bit targets.
constexpr std::uint64_t kLargeFile = 0100000;

// struct open_how (include/uapi/linux/openat2.h)
struct OpenHow {
  std::uint64_t flags, mode, resolve;
};

// build_open_how (fs/open.c): the flags the syscall passed on, the mode only for flags that create, and
// O_PATH's flags alone when O_PATH is set.
OpenHow open_how_of(std::uint64_t flags, std::uint64_t mode) {
  OpenHow how{flags & 0xffffffffu, mode & 07777, 0};
  if (how.flags & O_PATH) how.flags &= O_DIRECTORY | O_NOFOLLOW | O_PATH | O_CLOEXEC;
  if (!(how.flags & (O_CREAT | __O_TMPFILE))) how.mode = 0;
  return how;
}

}  // namespace

std::optional<KernelFunction> kernel_function(std::string_view name) {
  using Shape = KernelFunction::Shape;
  // The open family's common paths (fs/open.c): every open syscall goes through do_sys_openat2, and all
  // but openat2 through do_sys_open first.
  if (name == "do_sys_openat2") return of_syscalls(Shape::kOpenat2, {SYS_open, SYS_openat, SYS_creat, SYS_openat2});
  if (name == "do_sys_open" || name == "do_sys_openat") return of_syscalls(Shape::kOpen, {SYS_open, SYS_openat, SYS_creat});
  struct Prefix {
    std::string_view text;
    Shape shape;
  };
  for (const Prefix p : {Prefix{"__x64_sys_", Shape::kRegsPointer}, Prefix{"__se_sys_", Shape::kArgs},
                         Prefix{"__do_sys_", Shape::kArgs}, Prefix{"sys_", Shape::kArgs}, Prefix{"ksys_", Shape::kArgs}}) {
    const std::string_view syscall = after(name, p.text);
    if (syscall.empty()) continue;
    if (const SyscallFormat* f = syscall_by_name(syscall)) return of_syscalls(p.shape, {f->nr});
    return std::nullopt;
  }
  return std::nullopt;
}

std::string kallsyms_view(std::string_view kernel) {
  std::string out;
  std::string_view do_sys_open_line;
  bool has_do_sys_openat = false;
  while (!kernel.empty()) {
    const auto nl = kernel.find('\n');
    const std::string_view line = kernel.substr(0, nl);
    kernel.remove_prefix(nl == std::string_view::npos ? kernel.size() : nl + 1);
    // "ADDRESS TYPE NAME[\t[MODULE]]"
    const auto a = line.find(' ');
    const auto b = a == std::string_view::npos ? a : line.find(' ', a + 1);
    if (b == std::string_view::npos) continue;
    std::string_view name = line.substr(b + 1);
    if (const auto tab = name.find('\t'); tab != std::string_view::npos) continue;  // a module's
    const char type = line[a + 1];
    // Functions: those bpfvm can probe. Data (tables that tools look up, such as btrfsdist's
    // btrfs_file_operations) as the kernel has it.
    // (bpf_trampoline_link_prog: the kernel's mark of fentry/fexit, which bpfvm runs on those functions;
    // BCC's support_kfunc looks for it)
    if ((type == 't' || type == 'T' || type == 'w' || type == 'W') && !kernel_function(name) &&
        name != "bpf_trampoline_link_prog") {
      continue;
    }
    out.append(line).push_back('\n');
    if (name == "do_sys_open") do_sys_open_line = line;
    if (name == "do_sys_openat") has_do_sys_openat = true;
  }
  if (!has_do_sys_openat && !do_sys_open_line.empty()) {
    out.append(do_sys_open_line.substr(0, do_sys_open_line.rfind(' '))).append(" do_sys_openat\n");
  }
  return out;
}

void syscall_regs(int nr, const std::array<std::uint64_t, 6>& args, bool exit, std::int64_t ret, std::uint64_t ip,
                  std::uint64_t sp, std::uint8_t* out) {
  static_assert(sizeof(struct pt_regs) == 168);
  struct pt_regs regs {};
  put_args(regs, args, true);
  regs.orig_rax = static_cast<unsigned long>(nr);
  regs.rax = exit ? static_cast<unsigned long>(ret) : static_cast<unsigned long>(-38L);  // -ENOSYS until it returns
  regs.rip = ip;
  regs.rsp = sp;
  std::memcpy(out, &regs, sizeof regs);
}

void kernel_function_regs(const KernelFunction& f, int nr, const std::array<std::uint64_t, 6>& args, bool exit,
                          std::int64_t ret, std::uint64_t ip, std::uint64_t sp, std::uint8_t* out, std::uint8_t* scratch) {
  struct pt_regs regs {};
  regs.rip = ip;
  regs.rsp = sp;
  switch (f.shape) {
    case KernelFunction::Shape::kRegsPointer:
      // The wrapper's argument: the syscall's registers as the entry code saved them.
      syscall_regs(nr, args, false, 0, ip, sp, scratch);
      regs.rdi = reinterpret_cast<std::uintptr_t>(scratch);
      break;
    case KernelFunction::Shape::kArgs:
      put_args(regs, args, false);
      break;
    case KernelFunction::Shape::kOpen:
    case KernelFunction::Shape::kOpenat2: {
      // (dfd, filename, flags, mode) as open, openat and creat call do_sys_open (O_LARGEFILE forced on
      // 64-bit, force_o_largefile), or do_sys_openat2's (dfd, filename, &how).
      std::uint64_t dfd = static_cast<std::uint64_t>(static_cast<std::int64_t>(AT_FDCWD)), name = args[0], flags = 0,
                    mode = 0;
      OpenHow how{};
      if (nr == SYS_open) {
        flags = args[1] | kLargeFile;
        mode = args[2];
      } else if (nr == SYS_creat) {
        flags = O_CREAT | O_WRONLY | O_TRUNC | kLargeFile;
        mode = args[1];
      } else {
        dfd = args[0];
        name = args[1];
        if (nr == SYS_openat) {
          flags = args[2] | kLargeFile;
          mode = args[3];
        }
      }
      if (nr == SYS_openat2) {
        // The kernel's copy of the caller's struct (copy_struct_from_user).
        if (!os::copy_own_memory(&how, reinterpret_cast<const void*>(args[2]), std::min<std::uint64_t>(args[3], sizeof how))) {
          how = {};
        }
      } else {
        how = open_how_of(flags, mode);
      }
      regs.rdi = dfd;
      regs.rsi = name;
      if (f.shape == KernelFunction::Shape::kOpen) {
        regs.rdx = flags;
        regs.rcx = mode;
      } else {
        std::memcpy(scratch, &how, sizeof how);
        regs.rdx = reinterpret_cast<std::uintptr_t>(scratch);
      }
      break;
    }
  }
  if (exit) regs.rax = static_cast<unsigned long>(ret);
  std::memcpy(out, &regs, sizeof regs);
}

}  // namespace bpfvm::attach
