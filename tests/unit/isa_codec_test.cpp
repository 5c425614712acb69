// Every valid opcode form: decode/encode round trip, disassemble/assemble round trip, and field rules.
#include <gtest/gtest.h>

#include "bpfvm/isa/assembler.hpp"
#include "bpfvm/isa/codec.hpp"
#include "bpfvm/isa/disasm.hpp"
#include "bpfvm/isa/opcode_table.hpp"

namespace bpfvm::isa {
namespace {

// One raw instruction (plus LDDW's second slot) for each valid combination of opcode and the field
// values its rules allow, with registers and offsets that satisfy the rules.
std::vector<std::vector<RawInsn>> all_valid_forms() {
  std::vector<std::vector<RawInsn>> out;
  for (int code = 0; code < 256; ++code) {
    const OpcodeInfo& info = opcode_info(static_cast<std::uint8_t>(code));
    if (info.kind == OpKind::kInvalid) continue;
    std::vector<std::int16_t> offs = {0};
    if (info.off == OffRule::kAny) offs = {-3, 7};
    if (info.off == OffRule::kSignedFlag) offs = {0, 1};
    if (info.off == OffRule::kMovsx64) offs = {0, 8, 16, 32};
    if (info.off == OffRule::kMovsx32) offs = {0, 8, 16};
    std::vector<std::int32_t> imms = {0};
    if (info.imm == ImmRule::kAny) imms = {-5, 0x12345678};
    if (info.imm == ImmRule::kEndianBits) imms = {16, 32, 64};
    if (info.imm == ImmRule::kAtomicOp) imms = {0x00, 0x01, 0x40, 0x41, 0x50, 0x51, 0xa0, 0xa1, 0xe1, 0xf1};
    std::vector<std::uint8_t> srcs = {0};
    if (info.src == SrcRule::kReg) srcs = {2};
    if (info.src == SrcRule::kLddwPseudo) srcs = {0, 1, 2, 3, 4, 5, 6};
    if (info.src == SrcRule::kCallKind) srcs = {0, 1, 2};
    const std::uint8_t dst = info.dst == DstRule::kZero ? 0 : 3;
    for (std::int16_t off : offs) {
      for (std::int32_t imm : imms) {
        for (std::uint8_t src : srcs) {
          RawInsn r{static_cast<std::uint8_t>(code), dst, src, off, imm};
          if (info.kind == OpKind::kAlu && (code & kOpMask) == kAluNeg) r.src = 0;
          if (info.kind == OpKind::kCall && src != kCallKfunc) r.off = 0;
          if (info.kind == OpKind::kCall && src == kCallKfunc) r.off = 2;
          if (info.kind == OpKind::kCall && src == kCallHelper) r.imm = 6;
          if (info.kind == OpKind::kLoadImm64) {
            r.imm = 0x1234;
            out.push_back({r, RawInsn{0, 0, 0, 0, src == 0 ? -2 : (src == 2 || src == 6 ? 16 : 0)}});
          } else {
            out.push_back({r});
          }
        }
      }
    }
  }
  return out;
}

TEST(OpcodeTable, CountsTheInstructionSet) {
  int valid = 0;
  for (int code = 0; code < 256; ++code) valid += opcode_info(static_cast<std::uint8_t>(code)).kind != OpKind::kInvalid;
  // ALU/ALU64: 12 ops x 2 sources + neg = 25 each, + 2 + 1 byte-order opcodes; JMP/JMP32: 11 conditions
  // x 2 + ja, + call, callx, exit in JMP; LDX 4 + LDXSX 3, ST 4, STX 4, atomics 2, LDDW 1, LD_ABS/IND 6.
  EXPECT_EQ(valid, 25 * 2 + 3 + 23 * 2 + 3 + 7 + 4 + 4 + 2 + 1 + 6);
}

TEST(Codec, EveryValidFormRoundTrips) {
  auto forms = all_valid_forms();
  ASSERT_GT(forms.size(), 200u);
  for (const auto& raw : forms) {
    auto insn = decode(raw);
    ASSERT_TRUE(insn) << format_insn(raw) << ": " << insn.error().to_string();
    std::vector<RawInsn> back;
    encode(*insn, back);
    EXPECT_EQ(back, raw) << format_insn(raw);
  }
}

TEST(Codec, AssembleOfDisassembleIsIdentityForEveryForm) {
  for (const auto& raw : all_valid_forms()) {
    std::vector<RawInsn> program = raw;
    const std::string text = disassemble(program);
    auto again = assemble(text, AsmSyntax::kKernel);
    ASSERT_TRUE(again) << text << again.error().to_string();
    EXPECT_EQ(*again, program) << text;
  }
}

TEST(Codec, WireBytesAreLittleEndian) {
  RawInsn r{0x18, 1, 2, -4, 0x01020304};
  auto b = to_bytes(r);
  EXPECT_EQ(b, (std::array<std::uint8_t, 8>{0x18, 0x21, 0xfc, 0xff, 0x04, 0x03, 0x02, 0x01}));
  EXPECT_EQ(from_bytes(b), r);
  EXPECT_FALSE(from_wire(std::vector<std::uint8_t>(12)));
  EXPECT_EQ(from_wire(std::vector<std::uint8_t>(16))->size(), 2u);
}

struct BadCase {
  RawInsn insn;
  const char* message;
};

class CodecRejects : public ::testing::TestWithParam<BadCase> {};

TEST_P(CodecRejects, WithAReason) {
  std::vector<RawInsn> slots = {GetParam().insn};
  auto r = decode(slots);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message().find(GetParam().message), std::string::npos) << r.error().message();
}

INSTANTIATE_TEST_SUITE_P(
    Fields, CodecRejects,
    ::testing::Values(BadCase{{0x00, 0, 0, 0, 0}, "unknown opcode 0x00"},
                      BadCase{{0xff, 0, 0, 0, 0}, "unknown opcode 0xff"},
                      BadCase{{0xb7, 1, 3, 0, 0}, "src_reg is 3, must be 0"},
                      BadCase{{0xb7, 10, 0, 0, 0}, "writes r10"},
                      BadCase{{0xb7, 11, 0, 0, 0}, "dst_reg is 11"},
                      BadCase{{0xbf, 1, 12, 0, 0}, "src_reg is 12"},
                      BadCase{{0x07, 1, 0, 5, 0}, "off is 5, must be 0"},
                      BadCase{{0x3f, 1, 2, 2, 0}, "must be 0 (unsigned) or 1 (signed)"},
                      BadCase{{0xbc, 1, 2, 32, 0}, "8, 16 (movsx)"},
                      BadCase{{0xbf, 1, 2, 24, 0}, "8, 16, 32 (movsx)"},
                      BadCase{{0xd4, 1, 0, 0, 8}, "must be 16, 32 or 64"},
                      BadCase{{0xdf, 1, 0, 0, 16}, "unknown opcode 0xdf"},
                      BadCase{{0xdb, 1, 2, 0, 0x02}, "not an atomic operation"},
                      BadCase{{0xdb, 1, 10, 0, 0x01}, "writes its result to r10"},
                      BadCase{{0x85, 0, 3, 0, 1}, "not a call kind"},
                      BadCase{{0x85, 0, 0, 1, 1}, "off is 1"},
                      BadCase{{0x95, 0, 0, 0, 1}, "imm is 1"},
                      BadCase{{0x18, 1, 7, 0, 0}, "not a 64-bit immediate source"},
                      BadCase{{0x18, 1, 0, 0, 0}, "second slot is missing"},
                      BadCase{{0x20, 1, 0, 0, 0}, "dst_reg is 1"},
                      BadCase{{0x38, 0, 0, 0, 0}, "unknown opcode 0x38"},
                      BadCase{{0x06, 0, 0, 1, 0}, "off is 1"}));

TEST(Codec, RequiredCpu) {
  EXPECT_EQ(required_cpu({0xb7, 1, 0, 0, 1}), 1);
  EXPECT_EQ(required_cpu({0xa5, 1, 0, 0, 1}), 2);     // jlt
  EXPECT_EQ(required_cpu({0x16, 1, 0, 0, 1}), 3);     // jeq32
  EXPECT_EQ(required_cpu({0xdb, 1, 2, 0, 0x01}), 3);  // fetch add
  EXPECT_EQ(required_cpu({0xdb, 1, 2, 0, 0x00}), 1);  // lock add (xadd)
  EXPECT_EQ(required_cpu({0x3f, 1, 2, 1, 0}), 4);     // sdiv
  EXPECT_EQ(required_cpu({0xd7, 1, 0, 0, 16}), 4);    // bswap
  EXPECT_EQ(required_cpu({0x06, 0, 0, 0, 5}), 4);     // gotol
  EXPECT_EQ(required_cpu({0x91, 1, 2, 0, 0}), 4);     // ldxsb
}

}  // namespace
}  // namespace bpfvm::isa
