// The kernel as the JIT's oracle: random XDP programs of every instruction class the kernel takes
// (ALU32/64 with division, signed division and shifts at their edges, movsx, byte swaps, jmp/jmp32,
// packet and stack loads and stores with sign extension, atomics, bpf-to-bpf calls, a helper) are
// loaded into the running kernel and into bpfvm (the JIT, and the interpreter), run with the same
// packet through BPF_PROG_TEST_RUN, and must leave the same packet: the programs copy every register
// and their stack into it. Needs root for bpf(); skips cleanly otherwise.
#include <gtest/gtest.h>
#include <linux/bpf.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <filesystem>

#include "bpfvm/isa/codec.hpp"
#include "bpfvm/isa/disasm.hpp"
#include "bpfvm/runtime/runtime.hpp"
#include "random_program.hpp"

namespace bpfvm::runtime {
namespace {

std::uint64_t ptr(const void* p) { return reinterpret_cast<std::uint64_t>(p); }

struct KernelRun {
  std::string refused;  // the verifier log when the kernel did not load the program
  std::uint32_t retval = 0;
  std::vector<std::uint8_t> data_out;
};

KernelRun run_in_kernel(const std::vector<isa::RawInsn>& insns, const std::vector<std::uint8_t>& data) {
  KernelRun out;
  const auto wire = isa::to_wire(insns);
  static char log[1 << 16];
  log[0] = 0;
  union bpf_attr a {};
  a.prog_type = BPF_PROG_TYPE_XDP;
  a.insns = ptr(wire.data());
  a.insn_cnt = static_cast<std::uint32_t>(insns.size());
  a.license = ptr("GPL");
  a.log_buf = ptr(log);
  a.log_size = sizeof log;
  a.log_level = 1;
  const int fd = static_cast<int>(syscall(__NR_bpf, BPF_PROG_LOAD, &a, sizeof a));
  if (fd < 0) {
    // A log that overflowed (ENOSPC) is not the reason; try once more without one.
    out.refused = std::string(log).substr(0, 4000);
    if (out.refused.empty()) out.refused = std::strerror(errno);
    return out;
  }
  out.data_out.resize(data.size());
  union bpf_attr t {};
  t.test.prog_fd = static_cast<std::uint32_t>(fd);
  t.test.data_in = ptr(data.data());
  t.test.data_size_in = static_cast<std::uint32_t>(data.size());
  t.test.data_out = ptr(out.data_out.data());
  t.test.data_size_out = static_cast<std::uint32_t>(out.data_out.size());
  t.test.repeat = 1;
  if (syscall(__NR_bpf, BPF_PROG_TEST_RUN, &t, sizeof t) != 0) out.refused = std::string("test_run: ") + std::strerror(errno);
  out.retval = t.test.retval;
  out.data_out.resize(t.test.data_size_out);
  close(fd);
  return out;
}

class JitKernelOracle : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root for bpf()";
    root_ = std::filesystem::temp_directory_path() / ("bpfvm-jit-oracle-" + std::to_string(::getpid()));
    std::filesystem::remove_all(root_);
    rt_ = std::make_unique<Runtime>(RuntimeOptions{root_.string()});
    // Probe: a kernel that refuses even "r0 = 2; exit" gives no verdicts here.
    const std::vector<isa::RawInsn> pass = {{0xb7, 0, 0, 0, XDP_PASS}, {0x95, 0, 0, 0, 0}};
    if (!run_in_kernel(pass, std::vector<std::uint8_t>(64)).refused.empty()) GTEST_SKIP() << "bpf() refuses programs here";
  }
  void TearDown() override {
    std::error_code ec;
    std::filesystem::remove_all(root_, ec);
  }
  std::filesystem::path root_;
  std::unique_ptr<Runtime> rt_;
};

TEST_F(JitKernelOracle, RandomProgramsLeaveTheSamePacketAsTheKernel) {
  const std::uint64_t seeds = test::random_seed_count(600);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(seeds > 600 ? 86400 : 25);
  int compared = 0;
  for (std::uint64_t seed = 1; seed <= seeds && std::chrono::steady_clock::now() < deadline; ++seed) {
    const auto p = test::random_program(seed, test::RandomProgram::Form::kKernel, 20 + seed % 60);
    const KernelRun want = run_in_kernel(p.insns, p.mem);
    ASSERT_TRUE(want.refused.empty()) << "seed " << seed << ": the kernel refused a generated program:\n"
                                      << want.refused << "\n" << isa::disassemble(p.insns);
    for (ExecMode mode : {ExecMode::kJit, ExecMode::kInterpreter}) {
      ProgramLoadRequest req;
      req.prog_type = BPF_PROG_TYPE_XDP;
      req.name = "random";
      req.license = "GPL";
      req.insns = p.insns;
      req.mode = mode;
      std::string log;
      auto prog = rt_->load_program(req, &log);
      ASSERT_TRUE(prog) << "seed " << seed << ": bpfvm refused what the kernel accepts: " << log << "\n"
                        << isa::disassemble(p.insns);
      TestRunRequest run;
      run.data_in = p.mem;
      auto got = (*prog)->test_run(run);
      ASSERT_TRUE(got) << "seed " << seed << ": " << got.error().to_string();
      const char* engine = mode == ExecMode::kJit ? "jit" : "interpreter";
      ASSERT_EQ(got->retval, want.retval) << "seed " << seed << " (" << engine << ")";
      ASSERT_EQ(got->data_out.size(), want.data_out.size());
      for (std::size_t i = 0; i < got->data_out.size(); i += 8) {
        std::uint64_t g = 0, w = 0;
        std::memcpy(&g, got->data_out.data() + i, std::min<std::size_t>(8, got->data_out.size() - i));
        std::memcpy(&w, want.data_out.data() + i, std::min<std::size_t>(8, got->data_out.size() - i));
        ASSERT_EQ(g, w) << "seed " << seed << " (" << engine << "): packet bytes " << i << "-" << i + 7
                        << (i >= test::RandomProgram::kStackAt  ? " (the stack)"
                            : i >= test::RandomProgram::kRegsAt ? " (the registers r0-r5, r7-r9)"
                                                                : "")
                        << " differ\n" << isa::disassemble(p.insns);
      }
    }
    ++compared;
  }
  EXPECT_GE(compared, 50);
  RecordProperty("programs", compared);
}

}  // namespace
}  // namespace bpfvm::runtime
