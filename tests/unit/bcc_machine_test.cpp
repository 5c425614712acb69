// What BCC needs of the machine: the kernel headers its programs include, made from the running kernel's
// BTF (the tree has BCC's layout, and a program written as BCC's tools write them compiles in it with
// BCC's own flags, kbuild_helper.cc: -nostdinc, the tree's include folders, -include
// include/linux/kconfig.h), and its Python package for any python3 (PYTHONPATH).
#include <gtest/gtest.h>

#include <cstdlib>

#include "bpfvm/base/file.hpp"
#include "bpfvm/base/process.hpp"
#include "bpfvm/bcc/kernel_headers.hpp"
#include "bpfvm/bcc/python.hpp"

namespace bpfvm::bcc {
namespace {

constexpr const char* kVmlinux = "/sys/kernel/btf/vmlinux";

TEST(KernelHeaders, TreeHasBccsLayout) {
  if (!os::exists(kVmlinux)) GTEST_SKIP() << "the kernel has no BTF";
  auto made = os::TempDirectory::create("bpfvm-kheaders");
  ASSERT_TRUE(made);
  const os::TempDirectory& tmp = *made;
  ASSERT_TRUE(write_kernel_headers(kVmlinux, tmp.path()));
  for (const char* f : {"include/linux/kconfig.h", "include/generated/autoconf.h", "include/linux/version.h",
                        "include/linux/sched.h", "include/uapi/linux/ptrace.h", "include/net/sock.h",
                        "include/uapi/linux/openat2.h", "arch/x86/include/asm/page.h", "include/bpfvm/vmlinux.h"}) {
    EXPECT_TRUE(os::exists(tmp.path() + "/" + f)) << f;
  }
  const auto version = os::read_text_file(tmp.path() + "/include/linux/version.h");
  ASSERT_TRUE(version);
  EXPECT_NE(version->find("#define LINUX_VERSION_CODE "), std::string::npos);
  const auto autoconf = os::read_text_file(tmp.path() + "/include/generated/autoconf.h");
  ASSERT_TRUE(autoconf);
  // What BCC's helpers.h requires, whatever the configuration file says.
  EXPECT_NE(autoconf->find("CONFIG_BPF_SYSCALL"), std::string::npos);
  EXPECT_NE(autoconf->find("CONFIG_ARCH_HAS_SYSCALL_WRAPPER"), std::string::npos);
}

TEST(KernelHeaders, BccStyleProgramCompilesInTheTree) {
  if (!os::exists(kVmlinux)) GTEST_SKIP() << "the kernel has no BTF";
  const auto clang = os::find_command("clang");
  if (!clang) GTEST_SKIP() << "no clang";
  auto made = os::TempDirectory::create("bpfvm-kheaders");
  ASSERT_TRUE(made);
  const os::TempDirectory& tmp = *made;
  const std::string tree = tmp.path() + "/tree";
  ASSERT_TRUE(write_kernel_headers(kVmlinux, tree));
  const std::string source = tmp.path() + "/prog.c";
  const std::string text = R"(
#include <uapi/linux/ptrace.h>
#include <uapi/linux/openat2.h>
#include <linux/sched.h>
#include <linux/fs.h>
#include <net/sock.h>
#include <net/inet_sock.h>
#include <net/inet_connection_sock.h>
#include <linux/tcp.h>
#include <net/tcp.h>
#include <uapi/linux/bpf.h>
#include <linux/version.h>
#include <asm/page.h>
#if LINUX_VERSION_CODE < KERNEL_VERSION(4, 0, 0) || !IS_ENABLED(CONFIG_BPF_SYSCALL)
#error "no version or configuration"
#endif
struct out { char comm[TASK_COMM_LEN]; char name[NAME_MAX]; u64 flags; };
int probe(struct pt_regs *ctx, int dfd, const char __user *filename, struct open_how *how) {
  struct task_struct *t = (struct task_struct *)0;
  struct sock *sk = (struct sock *)0;
  struct inet_sock *inet = (struct inet_sock *)sk;
  return t->tgid + sk->sk_family + inet->inet_dport + (how->flags & O_CREAT) + TASK_RUNNING + PAGE_SIZE +
         BPF_F_CURRENT_CPU + ctx->di + S_ISREG(t->pid) + MAJOR(0) + min(t->pid, 3) + max_t(u32, 1, 2) +
         tcp_sk(sk)->srtt_us + inet_sk(sk)->inet_sport + inet_csk(sk)->icsk_retransmits;
}
)";
  ASSERT_TRUE(os::write_file(source, std::span(reinterpret_cast<const std::uint8_t*>(text.data()), text.size())));
  const std::vector<std::string> argv = {*clang, "-target", "bpf", "-O2", "-nostdinc", "-I" + tree + "/arch/x86/include/",
                                         "-I" + tree + "/arch/x86/include/generated", "-I" + tree + "/include",
                                         "-I" + tree + "/arch/x86/include/uapi", "-I" + tree + "/include/uapi",
                                         "-include", tree + "/include/linux/kconfig.h", "-D__KERNEL__",
                                         "-Wno-unused-value", "-c", source, "-o", tmp.path() + "/prog.o"};
  const auto rc = os::run_process(argv);
  ASSERT_TRUE(rc) << rc.error().to_string();
  EXPECT_EQ(*rc, 0) << "clang could not compile a BCC-style program in the tree";
}

}  // namespace
}  // namespace bpfvm::bcc

namespace bpfvm::bcc {
namespace {

TEST(PythonPath, AppendsTheFolderOnce) {
  EXPECT_EQ(with_python_path(nullptr, "/c/python"), "/c/python");
  EXPECT_EQ(with_python_path("", "/c/python"), "/c/python");
  EXPECT_EQ(with_python_path("/mine", "/c/python"), "/mine:/c/python");
  EXPECT_EQ(with_python_path("/mine:/c/python", "/c/python"), "/mine:/c/python");
  EXPECT_EQ(with_python_path("/c/python:/mine", "/c/python"), "/c/python:/mine");
  EXPECT_EQ(with_python_path("/c/python2", "/c/python"), "/c/python2:/c/python");
}

TEST(PythonPath, LinksDebiansPackageAlone) {
  if (!os::is_directory("/usr/lib/python3/dist-packages/bcc")) GTEST_SKIP() << "python3-bpfcc is not installed";
  auto made = os::TempDirectory::create("bpfvm-python");
  ASSERT_TRUE(made);
  ::setenv("XDG_CACHE_HOME", made->path().c_str(), 1);
  const auto folder = python_package_path();
  ::unsetenv("XDG_CACHE_HOME");
  ASSERT_TRUE(folder);
  EXPECT_TRUE(os::exists(*folder + "/bcc/__init__.py"));
  EXPECT_FALSE(os::exists(*folder + "/apt"));  // nothing else of dist-packages
}

}  // namespace
}  // namespace bpfvm::bcc
