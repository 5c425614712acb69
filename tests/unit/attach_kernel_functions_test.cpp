// Kprobes on kernel functions that are syscall entries: which names bpfvm serves, the registers each
// function has at a syscall (as the kernel's calling convention and fs/open.c give them), and the
// /proc/kallsyms view that makes loaders choose kprobes and find these names.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/openat2.h>
#include <linux/ptrace.h>
#include <sys/syscall.h>

#include <cstring>

#include "bpfvm/attach/kernel_functions.hpp"
#include "bpfvm/attach/syscall_probes.hpp"

namespace bpfvm::attach {
namespace {

struct pt_regs regs_of(const KernelFunction& f, int nr, std::array<std::uint64_t, 6> args, bool exit = false,
                       std::int64_t ret = 0, std::uint8_t* scratch = nullptr) {
  static std::uint8_t own[168];
  std::uint8_t out[168];
  kernel_function_regs(f, nr, args, exit, ret, 0x1000, 0x2000, out, scratch ? scratch : own);
  struct pt_regs r;
  std::memcpy(&r, out, sizeof r);
  return r;
}

TEST(KernelFunctions, TheSyscallEntriesAreServedAndNothingElse) {
  for (const char* name : {"__x64_sys_openat", "__se_sys_openat", "__do_sys_openat", "sys_openat", "ksys_read",
                           "do_sys_open", "do_sys_openat", "do_sys_openat2", "__x64_sys_execve"}) {
    EXPECT_TRUE(kernel_function(name)) << name;
  }
  for (const char* name : {"vfs_read", "__x64_sys_no_such", "tcp_v4_connect", "do_sys", "", "__x64_sys_"}) {
    EXPECT_FALSE(kernel_function(name)) << name;
  }
  const auto openat2 = *kernel_function("do_sys_openat2");
  for (const int nr : {SYS_open, SYS_openat, SYS_creat, SYS_openat2}) EXPECT_TRUE(openat2.covers(nr)) << nr;
  EXPECT_FALSE(openat2.covers(SYS_read));
  const auto open = *kernel_function("do_sys_open");
  EXPECT_TRUE(open.covers(SYS_openat));
  EXPECT_FALSE(open.covers(SYS_openat2));  // openat2 calls do_sys_openat2 directly
}

TEST(KernelFunctions, WrapperGetsAPointerToTheSyscallsRegisters) {
  std::uint8_t scratch[168];
  const auto r = regs_of(*kernel_function("__x64_sys_openat"), SYS_openat, {1, 2, 3, 4, 5, 6}, false, 0, scratch);
  ASSERT_EQ(r.rdi, reinterpret_cast<std::uintptr_t>(scratch));
  struct pt_regs inner;
  std::memcpy(&inner, scratch, sizeof inner);
  // (the syscall's fourth argument is in r10, as the entry code saved it: BCC's PT_REGS_PARM4_SYSCALL)
  EXPECT_EQ(inner.rdi, 1u);
  EXPECT_EQ(inner.rsi, 2u);
  EXPECT_EQ(inner.rdx, 3u);
  EXPECT_EQ(inner.r10, 4u);
  EXPECT_EQ(inner.r8, 5u);
  EXPECT_EQ(inner.r9, 6u);
  EXPECT_EQ(inner.orig_rax, static_cast<unsigned long>(SYS_openat));
}

TEST(KernelFunctions, PlainFunctionsGetTheArgumentsInTheCallingConvention) {
  const auto r = regs_of(*kernel_function("ksys_read"), SYS_read, {7, 8, 9, 10, 11, 12});
  EXPECT_EQ(r.rdi, 7u);
  EXPECT_EQ(r.rsi, 8u);
  EXPECT_EQ(r.rdx, 9u);
  EXPECT_EQ(r.rcx, 10u);  // a C function's fourth argument (the syscall's is r10)
  EXPECT_EQ(r.r8, 11u);
  EXPECT_EQ(r.r9, 12u);
  const auto ret = regs_of(*kernel_function("ksys_read"), SYS_read, {7, 8, 9, 0, 0, 0}, true, -14);
  EXPECT_EQ(static_cast<long>(ret.rax), -14);  // a kretprobe's PT_REGS_RC
}

TEST(KernelFunctions, DoSysOpenGetsWhatEachOpenSyscallPasses) {
  const auto f = *kernel_function("do_sys_open");
  const std::uint64_t name = 0x5000;
  // openat(dfd, name, flags, mode): O_LARGEFILE added on 64-bit (the kernel's value, 0100000)
  auto r = regs_of(f, SYS_openat, {3, name, O_RDONLY | O_CLOEXEC, 0, 0, 0});
  EXPECT_EQ(r.rdi, 3u);
  EXPECT_EQ(r.rsi, name);
  EXPECT_EQ(r.rdx, static_cast<std::uint64_t>(O_CLOEXEC | 0100000));
  // open(name, flags, mode): the current directory
  r = regs_of(f, SYS_open, {name, O_CREAT | O_WRONLY, 0644, 0, 0, 0});
  EXPECT_EQ(static_cast<int>(r.rdi), AT_FDCWD);
  EXPECT_EQ(r.rsi, name);
  EXPECT_EQ(r.rdx, static_cast<std::uint64_t>(O_CREAT | O_WRONLY | 0100000));
  EXPECT_EQ(r.rcx, 0644u);
  // creat(name, mode) is open(name, O_CREAT | O_WRONLY | O_TRUNC, mode)
  r = regs_of(f, SYS_creat, {name, 0600, 0, 0, 0, 0});
  EXPECT_EQ(r.rdx, static_cast<std::uint64_t>(O_CREAT | O_WRONLY | O_TRUNC | 0100000));
  EXPECT_EQ(r.rcx, 0600u);
}

TEST(KernelFunctions, DoSysOpenat2GetsAStructOpenHow) {
  const auto f = *kernel_function("do_sys_openat2");
  std::uint8_t scratch[168];
  // build_open_how: the mode only with O_CREAT or O_TMPFILE
  auto r = regs_of(f, SYS_openat, {static_cast<std::uint64_t>(AT_FDCWD), 0x5000, O_RDONLY, 0755, 0, 0}, false, 0, scratch);
  ASSERT_EQ(r.rdx, reinterpret_cast<std::uintptr_t>(scratch));
  struct open_how how;
  std::memcpy(&how, scratch, sizeof how);
  EXPECT_EQ(how.flags, 0100000u);
  EXPECT_EQ(how.mode, 0u);
  r = regs_of(f, SYS_openat, {3, 0x5000, O_CREAT | O_RDWR, 0640, 0, 0}, false, 0, scratch);
  std::memcpy(&how, scratch, sizeof how);
  EXPECT_EQ(how.flags, static_cast<std::uint64_t>(O_CREAT | O_RDWR | 0100000));
  EXPECT_EQ(how.mode, 0640u);
  // openat2: the caller's own struct, copied
  struct open_how given {};
  given.flags = O_RDONLY | O_DIRECTORY;
  given.resolve = RESOLVE_NO_SYMLINKS;
  r = regs_of(f, SYS_openat2, {3, 0x5000, reinterpret_cast<std::uintptr_t>(&given), sizeof given, 0, 0}, false, 0, scratch);
  std::memcpy(&how, scratch, sizeof how);
  EXPECT_EQ(how.flags, given.flags);
  EXPECT_EQ(how.resolve, given.resolve);
  EXPECT_EQ(r.rdi, 3u);
  EXPECT_EQ(r.rsi, 0x5000u);
}

TEST(KernelFunctions, KprobeSectionsParseAndNeedKprobePrograms) {
  auto p = parse_syscall_section("kprobe/do_sys_openat2", BPF_PROG_TYPE_KPROBE);
  ASSERT_TRUE(p) << p.error().to_string();
  EXPECT_EQ(p->kind, SyscallPoint::Kind::kKernelFunction);
  EXPECT_FALSE(p->exit);
  p = parse_syscall_section("kretprobe/__x64_sys_openat", BPF_PROG_TYPE_KPROBE);
  ASSERT_TRUE(p);
  EXPECT_TRUE(p->exit);
  EXPECT_FALSE(parse_syscall_section("kprobe/do_sys_openat2", BPF_PROG_TYPE_TRACEPOINT));
  const auto other = parse_syscall_section("kprobe/vfs_read", BPF_PROG_TYPE_KPROBE);
  ASSERT_FALSE(other);
  EXPECT_NE(other.error().message().find("vfs_read has no events in user space"), std::string::npos)
      << other.error().message();
}

TEST(KernelFunctions, KallsymsViewKeepsTheServedFunctionsAndData) {
  const std::string kernel =
      "ffffffff81000000 T _stext\n"
      "ffffffff81100000 T __x64_sys_openat\n"
      "ffffffff81100100 t do_sys_openat2\n"
      "ffffffff81100200 T do_sys_open\n"
      "ffffffff81100300 T bpf_trampoline_link_prog\n"
      "ffffffff81100400 T bpf_get_raw_tracepoint\n"
      "ffffffff81100500 T vfs_read\n"
      "ffffffff81100600 D sys_call_table\n"
      "ffffffffc0000000 t __x64_sys_openat\t[some_module]\n";
  const std::string view = kallsyms_view(kernel);
  EXPECT_EQ(view,
            "ffffffff81100000 T __x64_sys_openat\n"
            "ffffffff81100100 t do_sys_openat2\n"
            "ffffffff81100200 T do_sys_open\n"
            "ffffffff81100300 T bpf_trampoline_link_prog\n"  // (the kernel's mark of fentry, which bpfvm runs)
            "ffffffff81100600 D sys_call_table\n"
            "ffffffff81100200 T do_sys_openat\n");
  EXPECT_EQ(kallsyms_view(""), "");
  EXPECT_EQ(kallsyms_view("garbage\n\n x"), "");
}

}  // namespace
}  // namespace bpfvm::attach
