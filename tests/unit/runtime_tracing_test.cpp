// Tracing programs (BPF_PROG_TYPE_TRACING: tp_btf, fentry, fexit), judged against their target in the
// running kernel's BTF: the arguments are the context, a pointer to a kernel struct is an object the
// program may read field by field (PTR_TO_BTF_ID), never write. Each case also goes to the running
// kernel (root, BTF): bpfvm must give its verdict. Skips visibly without /sys/kernel/btf/vmlinux.
#include <gtest/gtest.h>
#include <linux/bpf.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstring>

#include <filesystem>
#include <string>
#include <vector>

#include "bpfvm/isa/assembler.hpp"
#include "bpfvm/isa/codec.hpp"
#include "bpfvm/runtime/runtime.hpp"
#include "bpfvm/runtime/verifier_platform.hpp"
#include "bpfvm/verifier/verifier.hpp"

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
  if (fd >= 0) {
    if (rt) (void)rt->close_fd(static_cast<int>(fd));
    else ::close(static_cast<int>(fd));
  }
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

// Tracing programs run (bpfvm gives fentry/fexit on syscall entries and tp_btf on sys_enter/sys_exit
// events), and their loads through kernel objects are the kernel's PROBE_MEM loads: a NULL, unmapped
// or non-canonical object reads as 0, a real one as itself, in the JIT and the interpreter.
TEST_F(Tracing, LoadsThroughKernelObjectsNeverFault) {
  auto id = VerifierPlatform::find_btf_target(*btf_, BPF_TRACE_RAW_TP, "sched_switch");
  ASSERT_TRUE(id) << id.error().to_string();
  // prev->pid + prev->real_parent->pid
  auto insns = isa::assemble(fmt::format("r6 = *(u64 *)(r1 +8)\nr0 = *(u32 *)(r6 +{})\nr6 = *(u64 *)(r6 +{})\n"
                                         "r1 = *(u32 *)(r6 +{})\nr0 += r1\nexit",
                                         pid_, parent_, pid_),
                             isa::AsmSyntax::kKernel);
  ASSERT_TRUE(insns) << insns.error().to_string();
  std::vector<std::uint8_t> task(task_size_), parent(task_size_);
  const std::uint32_t pid = 4242, parent_pid = 17;
  std::memcpy(task.data() + pid_, &pid, 4);
  std::memcpy(parent.data() + pid_, &parent_pid, 4);
  for (const ExecMode mode : {ExecMode::kJit, ExecMode::kInterpreter}) {
    SCOPED_TRACE(mode == ExecMode::kJit ? "jit" : "interpreter");
    ProgramLoadRequest req;
    req.prog_type = BPF_PROG_TYPE_TRACING;
    req.expected_attach_type = BPF_TRACE_RAW_TP;
    req.attach_btf_id = *id;
    req.insns = *insns;
    req.license = "GPL";
    req.mode = mode;
    auto prog = rt_->load_program(std::move(req));
    ASSERT_TRUE(prog) << prog.error().to_string();
    EXPECT_EQ((*prog)->attach_target(), "sched_switch");
    std::uint64_t args[4] = {};
    const auto run = [&](std::uint64_t prev) {
      args[1] = prev;
      auto r = (*prog)->run(args, sizeof args, {});
      EXPECT_TRUE(r) << r.error().to_string();
      return r ? *r : ~0ull;
    };
    EXPECT_EQ(run(0), 0u);                      // NULL: both loads read 0
    EXPECT_EQ(run(0x10), 0u);                   // the first page
    EXPECT_EQ(run(0xdead000000000000ull), 0u);  // not canonical
    const std::uint64_t parent_at = reinterpret_cast<std::uint64_t>(parent.data());
    std::memcpy(task.data() + parent_, &parent_at, 8);
    EXPECT_EQ(run(reinterpret_cast<std::uint64_t>(task.data())), pid + parent_pid);
    std::memset(task.data() + parent_, 0, 8);  // real_parent NULL: its pid reads 0
    EXPECT_EQ(run(reinterpret_cast<std::uint64_t>(task.data())), pid);
    // A page just unmapped.
    void* page = ::mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    ASSERT_NE(page, MAP_FAILED);
    ::munmap(page, 4096);
    EXPECT_EQ(run(reinterpret_cast<std::uint64_t>(page)), 0u);
  }
}

// The verifier reports where the loads through kernel objects are (the engines' ProbeLoads).
TEST_F(Tracing, VerifierMarksLoadsThroughKernelObjects) {
  auto id = VerifierPlatform::find_btf_target(*btf_, BPF_TRACE_RAW_TP, "sched_switch");
  ASSERT_TRUE(id) << id.error().to_string();
  VerifierPlatform platform(BPF_PROG_TYPE_TRACING, {}, true);
  platform.set_expected_attach_type(BPF_TRACE_RAW_TP);
  ASSERT_TRUE(platform.set_btf_target(btf_, *id));
  std::vector<bool> marks;
  verifier::VerifierOptions options;
  options.probe_loads = &marks;
  auto fixed = isa::assemble(fmt::format("r2 = *(u64 *)(r1 +8)\n*(u64 *)(r10 -8) = r2\nr3 = *(u64 *)(r10 -8)\n"
                                         "r0 = *(u32 *)(r3 +{})\nr0 = 0\nexit", pid_),
                             isa::AsmSyntax::kKernel);
  ASSERT_TRUE(fixed);
  ASSERT_TRUE(verifier::verify(*fixed, platform, options));
  // the context (a u64 of the arguments) and the stack are plain; task->pid is through a kernel object
  EXPECT_EQ(marks, (std::vector<bool>{false, false, false, true, false, false}));
}

}  // namespace
}  // namespace bpfvm::runtime
