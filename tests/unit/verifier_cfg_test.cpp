// The CFG pass: subprograms, successors and back edges of good programs; the kernel's structural
// rejections (a jump out of its function, a function that runs into the next, unreachable code).
#include <gtest/gtest.h>

#include <filesystem>

#include "bpfvm/isa/assembler.hpp"
#include "bpfvm/obj/object_spec.hpp"
#include "bpfvm/verifier/cfg.hpp"

namespace bpfvm::verifier {
namespace {

Result<Cfg> cfg_of(std::string_view source) {
  auto insns = isa::assemble(source, isa::AsmSyntax::kKernel);
  EXPECT_TRUE(insns) << (insns ? "" : insns.error().to_string());
  if (!insns) return make_error(Errc::kInvalid, "bad test source");
  return build_cfg(*insns);
}

std::string error_of(std::string_view source) {
  auto cfg = cfg_of(source);
  return cfg ? "accepted" : cfg.error().to_string();
}

TEST(Cfg, SubprogramsSuccessorsAndLoops) {
  auto cfg = cfg_of(
      "r0 = 0\n"             // 0
      "loop:\n"
      "r0 += 1\n"            // 1
      "if r0 < 10 goto loop\n"  // 2: back edge to 1
      "call sub\n"           // 3
      "r1 = 0x100000000\n"   // 4-5 (LDDW)
      "exit\n"               // 6
      "sub:\n"
      "if r1 == 0 goto out\n"  // 7
      "r0 = 1\n"             // 8
      "out:\n"
      "exit\n");             // 9
  ASSERT_TRUE(cfg) << cfg.error().to_string();
  ASSERT_EQ(cfg->subprogs.size(), 2u);
  EXPECT_EQ(cfg->subprogs[0].start, 0u);
  EXPECT_EQ(cfg->subprogs[0].end, 7u);
  EXPECT_EQ(cfg->subprogs[1].start, 7u);
  EXPECT_EQ(cfg->subprog_of(8), 1u);
  EXPECT_EQ(cfg->subprog_of(6), 0u);
  EXPECT_EQ(cfg->successors[2], (std::array<std::int32_t, 2>{3, 1}));
  EXPECT_EQ(cfg->successors[3], (std::array<std::int32_t, 2>{4, -1}));  // the call continues after it
  EXPECT_EQ(cfg->successors[4], (std::array<std::int32_t, 2>{6, -1}));  // past both LDDW slots
  EXPECT_FALSE(cfg->starts[5]);
  EXPECT_EQ(cfg->successors[6], (std::array<std::int32_t, 2>{-1, -1}));
  ASSERT_EQ(cfg->back_edges.size(), 1u);
  EXPECT_EQ(cfg->back_edges[0], (std::pair<std::uint32_t, std::uint32_t>{2, 1}));
}

TEST(Cfg, CallbacksNamedByReferenceAreFunctions) {
  // subprog[+N] counts from the slot after the LDDW's first, as the kernel does: +3 names insn 4.
  auto cfg = cfg_of("r2 = subprog[+3]\nr0 = 0\nexit\nr0 = 1\nexit\n");
  ASSERT_TRUE(cfg) << cfg.error().to_string();
  EXPECT_EQ(cfg->subprogs.size(), 2u);
}

TEST(Cfg, RejectsWhatTheKernelRejects) {
  EXPECT_NE(error_of("r0 = 0\nexit\nr0 = 1\nexit\n").find("unreachable insn 2"), std::string::npos);
  EXPECT_NE(error_of("goto out\nr0 = 1\nout:\nr0 = 0\nexit\n").find("unreachable insn 1"), std::string::npos);
  // A function nobody calls is unreachable too.
  EXPECT_NE(error_of("call f\nexit\ng:\nr0 = 2\nexit\nf:\nr0 = 1\nexit\n").find("unreachable insn 2"), std::string::npos);
  // Jumps may not cross into another function.
  EXPECT_NE(error_of("call f\nif r0 == 0 goto inside\nexit\nf:\nr0 = 1\ninside:\nexit\n").find("jump out of range from insn 1 to 4"),
            std::string::npos);
  // Each function ends with an exit or a jump.
  EXPECT_NE(error_of("call f\nexit\nf:\nr0 = 1\nr0 += 2\n").find("is not an exit"), std::string::npos);
  EXPECT_NE(error_of("call f\nr0 = 0\nf:\nexit\n").find("last insn is not an exit or jmp"), std::string::npos);
  // What isa::validate refuses comes through.
  EXPECT_NE(error_of("goto pc+5\nexit\n").find("out of range"), std::string::npos);
}

TEST(Cfg, LoopsOnlyThroughBackEdgesOnThePath) {
  // A diamond has no back edge; a self loop has one.
  auto diamond = cfg_of("if r1 == 0 goto a\nr0 = 1\ngoto b\na:\nr0 = 2\nb:\nexit\n");
  ASSERT_TRUE(diamond);
  EXPECT_TRUE(diamond->back_edges.empty());
  auto self = cfg_of("l:\nif r1 != 0 goto l\nr0 = 0\nexit\n");
  ASSERT_TRUE(self);
  ASSERT_EQ(self->back_edges.size(), 1u);
  EXPECT_EQ(self->back_edges[0].first, self->back_edges[0].second);
}

// Every program clang made for the test suite (all accepted by the kernel) has a CFG.
TEST(Cfg, EveryTestObjectProgram) {
#ifdef BPFVM_PROGS_DIR
  int programs = 0;
  for (const auto& entry : std::filesystem::directory_iterator(BPFVM_PROGS_DIR)) {
    if (entry.path().extension() != ".o") continue;
    auto spec = obj::open_object(entry.path().string());
    if (!spec) continue;  // objects that exist to be refused
    for (const auto& p : spec->programs) {
      if (p.link_error) continue;  // no code: it could not be linked
      auto cfg = build_cfg(p.insns);
      EXPECT_TRUE(cfg) << entry.path().filename().string() << ": " << p.name << ": " << cfg.error().to_string();
      ++programs;
    }
  }
  EXPECT_GT(programs, 50);
#else
  GTEST_SKIP() << "no BPF test objects";
#endif
}

}  // namespace
}  // namespace bpfvm::verifier
