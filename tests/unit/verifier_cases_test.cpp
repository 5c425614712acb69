// The data-driven verifier cases (tests/verifier/*.cases): each small program gets the verdict its case
// states, and, as root, the kernel's verifier agrees unless the case says it differs on purpose.
#include <gtest/gtest.h>
#include <linux/bpf.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "bpfvm/isa/assembler.hpp"
#include "bpfvm/isa/codec.hpp"
#include "bpfvm/verifier/verifier.hpp"

namespace bpfvm::verifier {
namespace {

struct Case {
  std::string file, name, source, fragment;
  bool accept = true;
  bool kernel_differs = false;
  int line = 0;
};

std::vector<Case> read_cases(const std::filesystem::path& file) {
  std::vector<Case> cases;
  std::ifstream in(file);
  std::string line;
  bool in_source = false;
  for (int n = 1; std::getline(in, line); ++n) {
    if (line.starts_with("== ")) {
      cases.push_back({file.filename().string(), line.substr(3), "", "", true, false, n});
      in_source = false;
    } else if (cases.empty()) {
      continue;
    } else if (!in_source && line == "--") {
      in_source = true;
    } else if (!in_source && line.starts_with("expect: ")) {
      const std::string e = line.substr(8);
      cases.back().accept = e == "accept";
      if (const auto q = e.find('"'); q != std::string::npos) cases.back().fragment = e.substr(q + 1, e.rfind('"') - q - 1);
    } else if (!in_source && line == "kernel: differs") {
      cases.back().kernel_differs = true;
    } else if (in_source) {
      cases.back().source += line + "\n";
    }
  }
  return cases;
}

// The kernel's verdict for a socket filter, or nullopt without bpf().
std::optional<bool> kernel_accepts(std::span<const isa::RawInsn> insns) {
  if (::geteuid() != 0) return std::nullopt;
  const auto wire = isa::to_wire(insns);
  union bpf_attr a {};
  a.prog_type = BPF_PROG_TYPE_SOCKET_FILTER;
  a.insns = reinterpret_cast<std::uint64_t>(wire.data());
  a.insn_cnt = static_cast<std::uint32_t>(insns.size());
  a.license = reinterpret_cast<std::uint64_t>("GPL");
  const long fd = ::syscall(__NR_bpf, BPF_PROG_LOAD, &a, sizeof a);
  if (fd >= 0) {
    ::close(static_cast<int>(fd));
    return true;
  }
  if (errno == EPERM || errno == ENOSYS) return std::nullopt;
  return false;
}

TEST(VerifierCases, EveryCaseGetsItsVerdict) {
  int total = 0, rejected = 0, kernel_compared = 0;
  for (const auto& entry : std::filesystem::directory_iterator(BPFVM_VERIFIER_CASES_DIR)) {
    if (entry.path().extension() != ".cases") continue;
    for (const Case& c : read_cases(entry.path())) {
      SCOPED_TRACE(fmt::format("{}:{}: {}", c.file, c.line, c.name));
      ++total;
      rejected += !c.accept;
      auto insns = isa::assemble(c.source, isa::AsmSyntax::kKernel);
      Result<VerifierStats> verdict = insns ? verify(*insns) : Result<VerifierStats>(insns.error());
      if (c.accept) {
        EXPECT_TRUE(verdict) << verdict.error().to_string();
      } else {
        ASSERT_FALSE(verdict) << "accepted";
        EXPECT_NE(verdict.error().to_string().find(c.fragment), std::string::npos)
            << "message: " << verdict.error().to_string() << "\nexpected to contain: " << c.fragment;
      }
      if (!insns || c.kernel_differs) continue;
      if (const auto kernel = kernel_accepts(*insns)) {
        EXPECT_EQ(*kernel, c.accept) << "the kernel's verifier " << (*kernel ? "accepts" : "rejects") << " it";
        ++kernel_compared;
      }
    }
  }
  EXPECT_GT(total, 40);
  std::printf("%d cases (%d unsafe), %d also given to the kernel\n", total, rejected, kernel_compared);
}

}  // namespace
}  // namespace bpfvm::verifier
