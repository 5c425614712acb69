// The printer against the kernel's formats, one line per instruction kind (table-driven), both ways.
#include <gtest/gtest.h>

#include "bpfvm/isa/assembler.hpp"
#include "bpfvm/isa/codec.hpp"
#include "bpfvm/isa/disasm.hpp"

namespace bpfvm::isa {
namespace {

struct Golden {
  std::vector<RawInsn> raw;
  const char* text;
};

class DisasmGolden : public ::testing::TestWithParam<Golden> {};

TEST_P(DisasmGolden, PrintsTheKernelFormat) { EXPECT_EQ(format_insn(GetParam().raw), GetParam().text); }

TEST_P(DisasmGolden, AssemblesBack) {
  auto r = assemble(GetParam().text, AsmSyntax::kKernel);
  ASSERT_TRUE(r) << r.error().to_string();
  EXPECT_EQ(*r, GetParam().raw);
}

INSTANTIATE_TEST_SUITE_P(
    Kinds, DisasmGolden,
    ::testing::Values(
        Golden{{{0xb7, 1, 0, 0, 33}}, "(b7) r1 = 33"},
        Golden{{{0xb7, 1, 0, 0, -1}}, "(b7) r1 = -1"},
        Golden{{{0xb4, 6, 0, 0, 0}}, "(b4) w6 = 0"},
        Golden{{{0xbf, 6, 1, 0, 0}}, "(bf) r6 = r1"},
        Golden{{{0xbc, 0, 6, 0, 0}}, "(bc) w0 = w6"},
        Golden{{{0x6b, 10, 1, -4, 0}}, "(6b) *(u16 *)(r10 -4) = r1"},
        Golden{{{0x62, 10, 0, -8, 7}}, "(62) *(u32 *)(r10 -8) = 7"},
        Golden{{{0x7a, 1, 0, 16, -2}}, "(7a) *(u64 *)(r1 +16) = -2"},
        Golden{{{0x18, 1, 0, 0, 0x6c6c6548}, {0, 0, 0, 0, 0x57202c6f}}, "(18) r1 = 0x57202c6f6c6c6548"},
        Golden{{{0x18, 1, 1, 0, 3}, {0, 0, 0, 0, 0}}, "(18) r1 = map[fd:3]"},
        Golden{{{0x18, 3, 2, 0, 4}, {0, 0, 0, 0, 8}}, "(18) r3 = map[fd:4][0]+8"},
        Golden{{{0x18, 1, 5, 0, 0}, {0, 0, 0, 0, 0}}, "(18) r1 = map[idx:0]"},
        Golden{{{0x18, 1, 6, 0, 1}, {0, 0, 0, 0, 4}}, "(18) r1 = map[idx:1]+4"},
        Golden{{{0x18, 1, 3, 0, 77}, {0, 0, 0, 0, 0}}, "(18) r1 = btf_id[77]"},
        Golden{{{0x18, 2, 4, 0, 5}, {0, 0, 0, 0, 0}}, "(18) r2 = subprog[+5]"},
        Golden{{{0x85, 0, 0, 0, 6}}, "(85) call bpf_trace_printk#6"},
        Golden{{{0x85, 0, 0, 0, 1}}, "(85) call bpf_map_lookup_elem#1"},
        Golden{{{0x85, 0, 0, 0, 99999}}, "(85) call unknown#99999"},
        Golden{{{0x85, 0, 1, 0, 3}}, "(85) call pc+3"},
        Golden{{{0x85, 0, 2, 0, 1234}}, "(85) call kernel-function#1234"},
        Golden{{{0x85, 0, 2, 3, 1234}}, "(85) call kernel-function#1234 (module btf 3)"},
        Golden{{{0x8d, 3, 0, 0, 0}}, "(8d) callx r3"},
        Golden{{{0x95, 0, 0, 0, 0}}, "(95) exit"},
        Golden{{{0x25, 1, 0, 3, 5}}, "(25) if r1 > 0x5 goto pc+3"},
        Golden{{{0x15, 1, 0, 18, 0}}, "(15) if r1 == 0x0 goto pc+18"},
        Golden{{{0x55, 2, 0, -5, -1}}, "(55) if r2 != 0xffffffff goto pc-5"},
        Golden{{{0x6d, 1, 2, 1, 0}}, "(6d) if r1 s> r2 goto pc+1"},
        Golden{{{0x16, 1, 0, 2, 7}}, "(16) if w1 == 0x7 goto pc+2"},
        Golden{{{0xde, 1, 2, 2, 0}}, "(de) if w1 s<= w2 goto pc+2"},
        Golden{{{0x45, 1, 0, 1, 8}}, "(45) if r1 & 0x8 goto pc+1"},
        Golden{{{0x05, 0, 0, 1, 0}}, "(05) goto pc+1"},
        Golden{{{0x06, 0, 0, 0, -70000}}, "(06) gotol pc-70000"},
        Golden{{{0x61, 0, 1, 4, 0}}, "(61) r0 = *(u32 *)(r1 +4)"},
        Golden{{{0x79, 4, 3, 0, 0}}, "(79) r4 = *(u64 *)(r3 +0)"},
        Golden{{{0x91, 4, 3, -1, 0}}, "(91) r4 = *(s8 *)(r3 -1)"},
        Golden{{{0x81, 4, 3, 2, 0}}, "(81) r4 = *(s32 *)(r3 +2)"},
        Golden{{{0xdb, 1, 2, 0, 0x00}}, "(db) lock *(u64 *)(r1 +0) += r2"},
        Golden{{{0xc3, 1, 2, 4, 0x50}}, "(c3) lock *(u32 *)(r1 +4) &= r2"},
        Golden{{{0xdb, 1, 2, 0, 0x41}}, "(db) r2 = atomic64_fetch_or((u64 *)(r1 +0), r2)"},
        Golden{{{0xc3, 1, 2, 0, 0x01}}, "(c3) r2 = atomic_fetch_add((u32 *)(r1 +0), r2)"},
        Golden{{{0xdb, 1, 3, 0, 0xe1}}, "(db) r3 = atomic64_xchg((u64 *)(r1 +0), r3)"},
        Golden{{{0xdb, 1, 3, 0, 0xf1}}, "(db) r0 = atomic64_cmpxchg((u64 *)(r1 +0), r0, r3)"},
        Golden{{{0xc3, 1, 3, -8, 0xf1}}, "(c3) r0 = atomic_cmpxchg((u32 *)(r1 -8), r0, r3)"},
        Golden{{{0x07, 1, 0, 0, -16}}, "(07) r1 += -16"},
        Golden{{{0x0c, 6, 7, 0, 0}}, "(0c) w6 += w7"},
        Golden{{{0x67, 0, 0, 0, 3}}, "(67) r0 <<= 3"},
        Golden{{{0xc7, 0, 0, 0, 3}}, "(c7) r0 s>>= 3"},
        Golden{{{0x3f, 1, 2, 1, 0}}, "(3f) r1 s/= r2"},
        Golden{{{0x94, 1, 0, 1, 3}}, "(94) w1 s%= 3"},
        Golden{{{0x9f, 1, 2, 0, 0}}, "(9f) r1 %= r2"},
        Golden{{{0x87, 1, 0, 0, 0}}, "(87) r1 = -r1"},
        Golden{{{0x84, 1, 0, 0, 0}}, "(84) w1 = -w1"},
        Golden{{{0xbf, 1, 2, 8, 0}}, "(bf) r1 = (s8)r2"},
        Golden{{{0xbc, 1, 2, 16, 0}}, "(bc) w1 = (s16)w2"},
        Golden{{{0xdc, 1, 0, 0, 16}}, "(dc) r1 = be16 r1"},
        Golden{{{0xd4, 1, 0, 0, 64}}, "(d4) r1 = le64 r1"},
        Golden{{{0xd7, 1, 0, 0, 32}}, "(d7) r1 = bswap32 r1"},
        Golden{{{0x30, 0, 0, 0, 5}}, "(30) r0 = *(u8 *)skb[5]"},
        Golden{{{0x48, 0, 3, 0, 2}}, "(48) r0 = *(u16 *)skb[r3 + 2]"}));

TEST(Disasm, ProgramListingMatchesBpftool) {
  auto p = assemble("r1 = 0x57202c6f6c6c6548\n*(u64 *)(r10 -16) = r1\nexit\n", AsmSyntax::kKernel);
  ASSERT_TRUE(p);
  EXPECT_EQ(disassemble(*p),
            "   0: (18) r1 = 0x57202c6f6c6c6548\n"
            "   2: (7b) *(u64 *)(r10 -16) = r1\n"
            "   3: (95) exit\n");
  DisasmOptions opt;
  opt.opcodes = true;
  EXPECT_EQ(disassemble(*p, opt),
            "   0: (18) r1 = 0x57202c6f6c6c6548\n"
            "       18 01 00 00 48 65 6c 6c 00 00 00 00 6f 2c 20 57\n"
            "   2: (7b) *(u64 *)(r10 -16) = r1\n"
            "       7b 1a f0 ff 00 00 00 00\n"
            "   3: (95) exit\n"
            "       95 00 00 00 00 00 00 00\n");
}

TEST(Disasm, InvalidInstructionSaysWhy) {
  std::vector<RawInsn> p = {{0x8f, 0, 0, 0, 0}};
  EXPECT_EQ(format_insn(p), "(8f) invalid: unknown opcode 0x8f");
}

// What the kernel's verifier writes into a loaded program, as `bpftool prog dump xlated` prints it; a
// user program with these fields is still refused by decode() (and so by the loader).
TEST(Disasm, KernelInsertedInstructions) {
  const std::vector<std::pair<RawInsn, std::string>> cases = {
      {{0xbc, 0, 0, 0, 1}, "(bc) w0 = w0"},                           // BPF_ZEXT_REG after cmpxchg
      {{0xbc, 3, 3, 0, 1}, "(bc) w3 = w3"},
      {{0xbf, 0, 0, -1, 0}, "(bf) r0 = &(void __percpu *)(r0)"},      // BPF_MOV64_PERCPU_REG
      {{0xc2, 0, 0, 0, 0}, "(c2) nospec"},                              // BPF_ST | BPF_NOSPEC
      {{0xbc, 0, 1, 0, 1}, "(bc) invalid: opcode 0xbc: imm is 1, must be 0 (reserved)"},  // not a zext
  };
  for (const auto& [raw, text] : cases) {
    std::vector<RawInsn> p = {raw};
    EXPECT_EQ(format_insn(p), text);
  }
  std::vector<RawInsn> zext = {{0xbc, 0, 0, 0, 1}};
  EXPECT_FALSE(decode(zext));
}

TEST(Disasm, ResolverReplacesNames) {
  struct Ids : SymbolResolver {
    std::optional<std::string> imm64(const LoadImm64& l, std::size_t) const override {
      return "map[id:" + std::to_string(l.imm_lo + 100) + "]";
    }
  } ids;
  std::vector<RawInsn> p = {{0x18, 1, 1, 0, 3}, {0, 0, 0, 0, 0}};
  EXPECT_EQ(format_insn(p, 0, &ids), "(18) r1 = map[id:103]");
}

}  // namespace
}  // namespace bpfvm::isa
