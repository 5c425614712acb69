#include <gtest/gtest.h>

#include "bpfvm/isa/assembler.hpp"
#include "bpfvm/isa/validate.hpp"

namespace bpfvm::isa {
namespace {

std::vector<RawInsn> kasm(const char* text) {
  auto r = assemble(text, AsmSyntax::kKernel);
  EXPECT_TRUE(r) << r.error().to_string();
  return r ? *r : std::vector<RawInsn>{};
}

std::string why(std::span<const RawInsn> p) {
  auto r = validate(p);
  return r ? "ok" : r.error().to_string();
}

TEST(Validate, AcceptsAWellFormedProgram) { EXPECT_EQ(why(kasm("r0 = 1\nif r0 > 2 goto pc+1\nexit\nexit")), "ok"); }

TEST(Validate, RejectsEmpty) { EXPECT_EQ(why({}), "program is empty"); }

TEST(Validate, JumpOutOfRangeNamesTargetAndSize) {
  EXPECT_EQ(why(kasm("goto pc+5\nexit")), "instruction 0: jump out of range (target 6, program has 2)");
  EXPECT_EQ(why(kasm("r0 = 0\ngoto pc-3\nexit")), "instruction 1: jump out of range (target -1, program has 3)");
  EXPECT_EQ(why(kasm("call pc+4\nexit")), "instruction 0: jump out of range (target 5, program has 2)");
}

TEST(Validate, JumpIntoTheMiddleOfLddw) {
  EXPECT_EQ(why(kasm("goto pc+1\nr1 = 0x100000000\nexit")),
            "instruction 0: jump into the middle of a 64-bit immediate load at 1");
}

TEST(Validate, TruncatedLddw) {
  std::vector<RawInsn> p = {{0xb7, 0, 0, 0, 0}, {0x18, 1, 0, 0, 1}};
  EXPECT_EQ(why(p), "instruction 1: truncated 64-bit immediate load: the second slot is missing");
}

TEST(Validate, FallingOffTheEnd) {
  EXPECT_EQ(why(kasm("r0 = 0\nexit\nr0 = 1")),
            "instruction 2: last instruction is not an exit or an unconditional jump: control would run off the "
            "end of the program");
}

TEST(Validate, BadInstructionIsLocated) {
  std::vector<RawInsn> p = {{0xb7, 0, 0, 0, 0}, {0x8f, 0, 0, 0, 0}, {0x95, 0, 0, 0, 0}};
  EXPECT_EQ(why(p), "instruction 1: unknown opcode 0x8f");
}

}  // namespace
}  // namespace bpfvm::isa
