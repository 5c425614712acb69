// The exploration on scalars, the stack and control flow: safe programs pass with their statistics,
// unsafe ones fail at the right instruction with the kernel's reason.
#include <gtest/gtest.h>

#include "bpfvm/isa/assembler.hpp"
#include "bpfvm/verifier/verifier.hpp"

namespace bpfvm::verifier {
namespace {

Result<VerifierStats> check(std::string_view source, VerifierOptions options = {}) {
  auto insns = isa::assemble(source, isa::AsmSyntax::kKernel);
  EXPECT_TRUE(insns) << (insns ? "" : insns.error().to_string());
  if (!insns) return make_error(Errc::kInvalid, "bad test source");
  return verify(*insns, options);
}

// "insn N: message" of a rejection, or "accepted".
std::string verdict(std::string_view source) {
  auto r = check(source);
  if (r) return "accepted";
  const auto& loc = r.error().location();
  return fmt::format("insn {}: {}", loc.insn ? std::to_string(*loc.insn) : "?", r.error().message());
}

TEST(Explore, SafeProgramsPass) {
  EXPECT_EQ(verdict("r0 = 0\nexit\n"), "accepted");
  // Stack round trip, spilled and filled; arithmetic on what comes back.
  EXPECT_EQ(verdict("r1 = 7\n*(u64 *)(r10 -8) = r1\nr0 = *(u64 *)(r10 -8)\nr0 += 1\nexit\n"), "accepted");
  // Bytes written one way read another way.
  EXPECT_EQ(verdict("*(u32 *)(r10 -8) = 1\n*(u32 *)(r10 -4) = 2\nr0 = *(u16 *)(r10 -6)\nexit\n"), "accepted");
  // A stack pointer moved by constants.
  EXPECT_EQ(verdict("r2 = r10\nr2 += -16\n*(u64 *)(r2 +8) = 0\nr0 = *(u64 *)(r10 -8)\nexit\n"), "accepted");
}

TEST(Explore, UninitialisedRegistersAndStack) {
  EXPECT_EQ(verdict("exit\n").substr(0, 19), "insn 0: R0 !read_ok");
  EXPECT_EQ(verdict("r0 = r2\nexit\n").substr(0, 19), "insn 0: R2 !read_ok");
  // Only one side of a branch sets r0.
  EXPECT_EQ(verdict("if r1 == 0 goto out\nr0 = 1\nout:\nexit\n").substr(0, 19), "insn 2: R0 !read_ok");
  // Unwritten stack is an unknown number (the kernel's allow_uninit_stack for privileged loaders).
  EXPECT_EQ(verdict("r0 = *(u64 *)(r10 -8)\nexit\n"), "accepted");
}

TEST(Explore, StackBoundsAndFramePointer) {
  EXPECT_NE(verdict("*(u64 *)(r10 -520) = 0\nr0 = 0\nexit\n").find("invalid write to stack R10 off=-520 size=8"),
            std::string::npos);
  // Stack accesses are aligned to their size, whatever the architecture (the kernel's strict check).
  EXPECT_NE(verdict("*(u64 *)(r10 -4) = 0\nr0 = 0\nexit\n").find("misaligned stack access off 0+0+-4 size 8"),
            std::string::npos);
  EXPECT_NE(verdict("*(u64 *)(r10 +8) = 0\nr0 = 0\nexit\n").find("invalid write to stack R10 off=8 size=8"),
            std::string::npos);
  EXPECT_NE(verdict("r0 = *(u32 *)(r10 +0)\nexit\n").find("invalid read from stack R10 off=0"), std::string::npos);
  // Writing r10 is refused already when the instruction is decoded.
  EXPECT_NE(verdict("r10 = 0\nr0 = 0\nexit\n").find("insn 0: opcode 0xb7: writes r10"), std::string::npos);
  // A stack pointer moved by an unknown amount cannot be dereferenced.
  // (A quotient is unknown to the verifier, as to the kernel's.)
  EXPECT_NE(verdict("r3 = 5\nr3 /= 3\nr2 = r10\nr2 += r3\nr0 = *(u64 *)(r2 -8)\nexit\n").find("insn 3: math between fp pointer and register with unbounded min value is not allowed"),
            std::string::npos);
  EXPECT_NE(verdict("r2 = r10\nr2 += r1\nr0 = 0\nexit\n").find("insn 1: R2 pointer op pointer prohibited"),
            std::string::npos);
  // Never-written stack reads as an unknown number, as the kernel lets a privileged loader read it.
  EXPECT_NE(verdict("r3 = *(u64 *)(r10 -8)\nr0 = *(u8 *)(r3 +0)\nexit\n").find("R3 invalid mem access 'scalar'"),
            std::string::npos);
}

TEST(Explore, PointersStayPointers) {
  EXPECT_EQ(verdict("r0 = r10\nexit\n"), "insn 1: R0 leaks addr as return value");
  EXPECT_NE(verdict("r1 = 5\nr0 = *(u64 *)(r1 +0)\nexit\n").find("R1 invalid mem access 'scalar'"), std::string::npos);
  EXPECT_NE(verdict("r2 = r10\nr2 *= 2\nr0 = 0\nexit\n").find("R2 pointer arithmetic with *= operator prohibited"),
            std::string::npos);
  EXPECT_EQ(verdict("w2 = w10\nw2 += 1\nr0 = 0\nexit\n"), "accepted");  // a 32-bit copy is just a number
  EXPECT_NE(verdict("r2 = r10\nw2 += 1\nr0 = 0\nexit\n").find("32-bit pointer arithmetic prohibited"), std::string::npos);
  EXPECT_NE(verdict("r2 = r10\n*(u32 *)(r10 -8) = r2\nr0 = 0\nexit\n").find("invalid size of register spill"),
            std::string::npos);
  // A spilled pointer comes back a pointer: returning it leaks it.
  EXPECT_EQ(verdict("*(u64 *)(r10 -8) = r10\nr0 = *(u64 *)(r10 -8)\nexit\n"), "insn 2: R0 leaks addr as return value");
  EXPECT_EQ(verdict("r2 = r10\nr2 += -8\nr0 = r10\nr0 -= r2\nexit\n"), "accepted");  // fp - (fp-8) = 8
}

TEST(Explore, BranchesLearnAndPrune) {
  // After `if r1 > 4 goto out`, r1 is 0..4 on the fall-through side: the stack index stays in bounds.
  EXPECT_EQ(verdict("*(u64 *)(r10 -8) = 0\n"
                    "r1 = *(u8 *)(r10 -8)\n"  // an unknown byte (here 0, but the verifier sees 0..255)
                    "r0 = 0\n"
                    "if r1 > 4 goto out\n"
                    "r2 = r10\nr2 += -8\n"
                    "r0 = r1\n"
                    "out:\n"
                    "exit\n"),
            "accepted");
  // An impossible side is not explored: r0 is set on the only side that happens.
  EXPECT_EQ(verdict("r1 = 3\nif r1 > 5 goto bad\nr0 = 0\nexit\nbad:\nexit\n"), "accepted");
  // Diamonds join: the second half is explored once per distinct state, not once per path.
  std::string src = "r0 = 0\n";
  for (int i = 0; i < 30; ++i) src += fmt::format("if r1 == {} goto l{}\nr2 = 1\nl{}:\n", i, i, i);
  src += "exit\n";
  auto r = check(src);
  ASSERT_TRUE(r) << r.error().to_string();
  EXPECT_LT(r->insns_processed, 5000u);  // 2^30 paths without pruning
  EXPECT_GT(r->pruned, 0u);
}

TEST(Explore, LoopsMustEnd) {
  auto bounded = check("r0 = 0\nloop:\nr0 += 1\nif r0 < 100 goto loop\nexit\n");
  ASSERT_TRUE(bounded) << bounded.error().to_string();
  EXPECT_GT(bounded->insns_processed, 200u);  // explored iteration by iteration
  EXPECT_EQ(verdict("r0 = 0\nloop:\ngoto loop\n"), "insn 1: infinite loop detected at insn 1");
  EXPECT_EQ(verdict("r0 = 0\nloop:\nif r0 == 0 goto loop\nexit\n"), "insn 1: infinite loop detected at insn 1");
  // A loop that never repeats a state but never ends hits the limit of processed instructions.
  VerifierOptions small;
  small.insn_limit = 10000;
  auto endless = check("r0 = 0\nloop:\nr0 += 1\nif r0 != 0 goto loop\nexit\n", small);
  ASSERT_FALSE(endless);
  EXPECT_NE(endless.error().message().find("BPF program is too large. Processed 10001 insn"), std::string::npos);
}

TEST(Explore, WithoutAPlatformNothingOutsideIsReachable) {
  // The bare verify() knows no helpers, maps or context fields.
  EXPECT_NE(verdict("call 5\nexit\n").find("invalid func unknown#5"), std::string::npos);
  EXPECT_NE(verdict("r0 = *(u32 *)(r1 +0)\nexit\n").find("invalid bpf_context access off=0 size=4"), std::string::npos);
  EXPECT_NE(verdict("r1 = map[fd:3]\nr0 = 0\nexit\n").find("fd 3 is not pointing to valid bpf_map"), std::string::npos);
}

}  // namespace
}  // namespace bpfvm::verifier
