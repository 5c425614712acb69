// Tracing programs (BPF_PROG_TYPE_TRACING: tp_btf, fentry, fexit), judged against their target in the
// running kernel's BTF: the arguments are the context, a pointer to a kernel struct is an object the
// program may read field by field (PTR_TO_BTF_ID), never write. Each case also goes to the running
// kernel (root, BTF): bpfvm must give its verdict. Skips visibly without /sys/kernel/btf/vmlinux.
#include <gtest/gtest.h>
#include <linux/bpf.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <filesystem>
#include <string>
#include <vector>

#include "bpfvm/isa/assembler.hpp"
#include "bpfvm/isa/codec.hpp"
#include "bpfvm/runtime/runtime.hpp"
#include "bpfvm/runtime/verifier_platform.hpp"

namespace bpfvm::runtime {
namespace {

struct Loaded {
  bool ok = false;
  std::string log;
};

Loaded load(Runtime* rt, const std::string& source, std::uint32_t attach_type, std::uint32_t btf_id) {
  auto insns = isa::assemble(source, isa::AsmSyntax::kKernel);
  EXPECT_TRUE(insns) << insns.error().to_string();
  const auto wire = isa::to_wire(*insns);
  std::string log(1 << 16, '\0');
  union bpf_attr a {};
  a.prog_type = BPF_PROG_TYPE_TRACING;
  a.expected_attach_type = attach_type;
  a.attach_btf_id = btf_id;
  a.insns = reinterpret_cast<std::uint64_t>(wire.data());
  a.insn_cnt = static_cast<std::uint32_t>(wire.size() / 8);
  a.license = reinterpret_cast<std::uint64_t>("GPL");
  a.log_buf = reinterpret_cast<std::uint64_t>(log.data());
  a.log_size = static_cast<std::uint32_t>(log.size());
  a.log_level = 1;
  const long fd = rt ? rt->bpf(BPF_PROG_LOAD, &a, sizeof a) : ::syscall(__NR_bpf, BPF_PROG_LOAD, &a, sizeof a);
  if (fd >= 0 && !rt) ::close(static_cast<int>(fd));
  // bpfvm judges a tracing program and then refuses it (it cannot attach in user space): its log says
  // whether it was safe.
  if (rt) return {std::string(log.c_str()).find("the program is safe") != std::string::npos, log.c_str()};
  return {fd >= 0, log.c_str()};
}

class Tracing : public ::testing::Test {
 protected:
  void SetUp() override {
    auto btf = obj::running_kernel_btf();
    if (!btf) GTEST_SKIP() << "no kernel BTF: " << btf.error().to_string();
    btf_ = *btf;
    dir_ = std::filesystem::temp_directory_path() / ("bpfvm-tracing-" + std::to_string(::getpid()));
    rt_ = std::make_unique<Runtime>(RuntimeOptions{dir_.string()});
    const std::uint32_t task = btf_->find_struct("task_struct");
    ASSERT_NE(task, 0u);
    task_size_ = btf_->type_size(task);
    auto pid = btf_->member_place(task, "pid");
    auto parent = btf_->member_place(task, "real_parent");
    ASSERT_TRUE(pid && parent);
    pid_ = pid->offset;
    parent_ = parent->offset;
  }
  void TearDown() override {
    rt_.reset();
    if (!dir_.empty()) std::filesystem::remove_all(dir_);
  }

  std::shared_ptr<const obj::Btf> btf_;
  std::filesystem::path dir_;
  std::unique_ptr<Runtime> rt_;
  std::uint32_t task_size_ = 0, pid_ = 0, parent_ = 0;
};

// sched_switch(bool preempt, struct task_struct *prev, struct task_struct *next, unsigned int prev_state).
TEST_F(Tracing, BtfTracepointArgumentsAreKernelObjects) {
  auto id = VerifierPlatform::find_btf_target(*btf_, BPF_TRACE_RAW_TP, "sched_switch");
  ASSERT_TRUE(id) << id.error().to_string();
  struct Case {
    const char* what;
    std::string source;
    bool accept;
  };
  const std::vector<Case> cases = {
      {"prev->pid", fmt::format("r1 = *(u64 *)(r1 +8)\nr0 = *(u32 *)(r1 +{})\nr0 = 0\nexit", pid_), true},
      {"prev->real_parent->pid",
       fmt::format("r1 = *(u64 *)(r1 +8)\nr1 = *(u64 *)(r1 +{})\nr0 = *(u32 *)(r1 +{})\nr0 = 0\nexit", parent_, pid_), true},
      {"preempt and prev_state as numbers", "r2 = *(u64 *)(r1 +0)\nr3 = *(u64 *)(r1 +24)\nr0 = r2\nr0 += r3\nexit", true},
      {"prev moved by a constant, then read",
       fmt::format("r1 = *(u64 *)(r1 +8)\nr1 += {}\nr0 = *(u32 *)(r1 +0)\nr0 = 0\nexit", pid_), true},
      {"a write into prev", fmt::format("r1 = *(u64 *)(r1 +8)\nr2 = 1\n*(u32 *)(r1 +{}) = r2\nr0 = 0\nexit", pid_), false},
      {"a read past the end of task_struct", fmt::format("r1 = *(u64 *)(r1 +8)\nr0 = *(u64 *)(r1 +{})\nr0 = 0\nexit", task_size_), false},
      {"half of a pointer member", fmt::format("r1 = *(u64 *)(r1 +8)\nr0 = *(u32 *)(r1 +{})\nr0 = 0\nexit", parent_), false},
      {"a fifth argument", "r0 = *(u64 *)(r1 +32)\nr0 = 0\nexit", false},
      {"a write into the arguments", "r2 = 0\n*(u64 *)(r1 +0) = r2\nr0 = 0\nexit", false},
      {"a variable offset into prev",
       "r2 = *(u64 *)(r1 +24)\nr2 &= 7\nr1 = *(u64 *)(r1 +8)\nr1 += r2\nr0 = *(u8 *)(r1 +0)\nr0 = 0\nexit", false},
  };
  const bool kernel = ::geteuid() == 0;
  int compared = 0;
  for (const Case& c : cases) {
    SCOPED_TRACE(c.what);
    const Loaded ours = load(rt_.get(), c.source, BPF_TRACE_RAW_TP, *id);
    EXPECT_EQ(ours.ok, c.accept) << ours.log;
    if (kernel) {
      const Loaded theirs = load(nullptr, c.source, BPF_TRACE_RAW_TP, *id);
      if (theirs.log.find("Permission denied") == std::string::npos) {
        EXPECT_EQ(theirs.ok, c.accept) << "the kernel's verdict differs:\n" << theirs.log;
        ++compared;
      }
    }
  }
  if (!kernel) GTEST_SKIP() << "not root: the cases were not given to the kernel";
  EXPECT_GT(compared, 0);
}

// fentry and fexit return 0 (check_return_code); fexit sees the return value after the arguments; a
// target the kernel does not have is refused with its name.
TEST_F(Tracing, FentryAndFexitRulesAndMissingTargets) {
  auto fentry = VerifierPlatform::find_btf_target(*btf_, BPF_TRACE_FENTRY, "do_unlinkat");
  if (!fentry) GTEST_SKIP() << fentry.error().to_string();
  EXPECT_TRUE(load(rt_.get(), "r0 = 0\nexit", BPF_TRACE_FENTRY, *fentry).ok);
  const Loaded one = load(rt_.get(), "r0 = 1\nexit", BPF_TRACE_FENTRY, *fentry);
  EXPECT_FALSE(one.ok);
  EXPECT_NE(one.log.find("R0"), std::string::npos) << one.log;
  // do_unlinkat(int dfd, struct filename *name): fexit's third u64 is the int it returns.
  EXPECT_TRUE(load(rt_.get(), "r0 = *(u64 *)(r1 +16)\nr0 = 0\nexit", BPF_TRACE_FEXIT, *fentry).ok);
  EXPECT_FALSE(load(rt_.get(), "r0 = *(u64 *)(r1 +16)\nr0 = 0\nexit", BPF_TRACE_FENTRY, *fentry).ok);
  auto missing = VerifierPlatform::find_btf_target(*btf_, BPF_TRACE_FENTRY, "no_such_function_here");
  ASSERT_FALSE(missing);
  EXPECT_NE(missing.error().to_string().find("no_such_function_here"), std::string::npos);
  EXPECT_FALSE(load(rt_.get(), "r0 = 0\nexit", BPF_TRACE_FENTRY, 0).ok);  // no target at all
}

}  // namespace
}  // namespace bpfvm::runtime
