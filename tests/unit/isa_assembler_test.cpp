#include <gtest/gtest.h>

#include "bpfvm/isa/assembler.hpp"
#include "bpfvm/isa/codec.hpp"
#include "bpfvm/isa/disasm.hpp"

namespace bpfvm::isa {
namespace {

std::string conf(const char* text) {
  auto r = assemble(text, AsmSyntax::kConformance, "t.s");
  if (!r) return "error: " + r.error().to_string();
  std::string out = disassemble(*r);
  return out;
}

std::string kern_error(const char* text) {
  auto r = assemble(text, AsmSyntax::kKernel, "k.s");
  return r ? "ok" : r.error().to_string();
}

TEST(ConformanceSyntax, CoversTheSuitesForms) {
  EXPECT_EQ(conf("mov %r0, 1\nmov32 %r1, 0xffffffff\nadd %r0, %r1\nneg32 %r0\nexit"),
            "   0: (b7) r0 = 1\n   1: (b4) w1 = -1\n   2: (0f) r0 += r1\n   3: (84) w0 = -w0\n   4: (95) exit\n");
  EXPECT_EQ(conf("ldxw %r1, [%r2+4]\nldxsh %r1, [%r2-2]\nstxdw [%r10-8], %r1\nsth [%r1], 0x7\nexit"),
            "   0: (61) r1 = *(u32 *)(r2 +4)\n   1: (89) r1 = *(s16 *)(r2 -2)\n"
            "   2: (7b) *(u64 *)(r10 -8) = r1\n   3: (6a) *(u16 *)(r1 +0) = 7\n   4: (95) exit\n");
  EXPECT_EQ(conf("lock cmpxchg [%r10-8], %r1\nlock fetch xor32 [%r1+0], %r2\nlock add [%r1], %r3\nexit"),
            "   0: (db) r0 = atomic64_cmpxchg((u64 *)(r10 -8), r0, r1)\n"
            "   1: (c3) r2 = atomic_fetch_xor((u32 *)(r1 +0), r2)\n   2: (db) lock *(u64 *)(r1 +0) += r3\n"
            "   3: (95) exit\n");
  EXPECT_EQ(conf("movsx1632 %r1, %r2\nsdiv32 %r1, -3\nswap16 %r1\nbe64 %r1\nle16 %r1\nexit"),
            "   0: (bc) w1 = (s16)w2\n   1: (34) w1 s/= -3\n   2: (d7) r1 = bswap16 r1\n   3: (dc) r1 = be64 r1\n"
            "   4: (d4) r1 = le16 r1\n   5: (95) exit\n");
  EXPECT_EQ(conf("lddw %r0, 0x1122334455667788\nldabsh 4\nldindw %r2, 1\nexit"),
            "   0: (18) r0 = 0x1122334455667788\n   2: (28) r0 = *(u16 *)skb[4]\n"
            "   3: (40) r0 = *(u32 *)skb[r2 + 1]\n   4: (95) exit\n");
}

TEST(ConformanceSyntax, LabelsAndCalls) {
  EXPECT_EQ(conf("jeq %r1, 0x5, +1\nja done\ncall local f\ncall 6\ncall %r3\ndone:\nexit\nf:\nexit"),
            "   0: (15) if r1 == 0x5 goto pc+1\n   1: (05) goto pc+3\n   2: (85) call pc+3\n"
            "   3: (85) call bpf_trace_printk#6\n   4: (8d) callx r3\n   5: (95) exit\n   6: (95) exit\n");
  // "exit" names the first exit instruction; ja32 keeps its target in imm.
  EXPECT_EQ(conf("jne32 %r1, %r2, exit\nja32 exit\nexit"),
            "   0: (5e) if w1 != w2 goto pc+1\n   1: (06) gotol pc+0\n   2: (95) exit\n");
}

TEST(ConformanceSyntax, ErrorsCarryLineAndColumn) {
  EXPECT_EQ(conf("mov %r0, 1\nmov %r11, 1\nexit"), "error: t.s:2:5: expected a register %r0-%r10, found '%r11, 1'");
  EXPECT_EQ(conf("frob %r0\n"), "error: t.s:1:1: unknown mnemonic 'frob'");
  EXPECT_EQ(conf("ja nowhere\nexit"), "error: t.s:1:4: undefined label 'nowhere'");
  EXPECT_EQ(conf("a:\na:\nexit"), "error: t.s:2:1: label 'a' is defined twice");
  EXPECT_EQ(conf("mov %r0, 0x100000000\nexit"), "error: t.s:1:10: immediate 4294967296 does not fit in 32 bits");
  EXPECT_EQ(conf("ldxw %r1, [%r2+40000]\nexit"), "error: t.s:1:15: offset 40000 does not fit in 16 bits");
  EXPECT_EQ(conf("mov %r0, 1 2\nexit"), "error: t.s:1:12: unexpected '2' after the instruction");
}

TEST(KernelSyntax, AcceptsBpftoolOutputVerbatim) {
  const char* dump =
      "int prog(struct __sk_buff * skb):\n"
      "; return skb->len;\n"
      "   0: (bf) r6 = r1\n"
      "       bf 16 00 00 00 00 00 00\n"
      "   1: (85) call bpf_ktime_get_ns#269488\n"
      "   2: (18) r1 = 0x5\n"
      "   4: (95) exit\n";
  // The first line is bpftool's function header: not an instruction.
  EXPECT_NE(kern_error(dump), "ok");
  auto r = assemble(std::string_view(dump).substr(std::string_view(dump).find('\n') + 1), AsmSyntax::kKernel);
  ASSERT_TRUE(r) << r.error().to_string();
  EXPECT_EQ(disassemble(*r),
            "   0: (bf) r6 = r1\n   1: (85) call bpf_ktime_get_ns#5\n   2: (18) r1 = 0x5\n   4: (95) exit\n");
}

TEST(KernelSyntax, MovOrLddwWithoutHint) {
  auto r = assemble("r1 = 5\nr2 = 0x5\nr3 = 4294967296\nw4 = 0xffffffff\nexit", AsmSyntax::kKernel);
  ASSERT_TRUE(r);
  EXPECT_EQ(disassemble(*r), "   0: (b7) r1 = 5\n   1: (18) r2 = 0x5\n   3: (18) r3 = 0x100000000\n"
                             "   5: (b4) w4 = -1\n   6: (95) exit\n");
  // llvm-objdump's "ll" asks for the 64-bit load whatever the value.
  auto ll = assemble("r1 = 5 ll\nr2 = 0x123456789abcdef0 ll\nexit", AsmSyntax::kKernel);
  ASSERT_TRUE(ll) << ll.error().to_string();
  EXPECT_EQ(disassemble(*ll), "   0: (18) r1 = 0x5\n   2: (18) r2 = 0x123456789abcdef0\n   4: (95) exit\n");
}

TEST(KernelSyntax, LabelsAsAnExtension) {
  auto r = assemble("r0 = 0\npcount:\nr0 += 1\nif r0 < 10 goto pcount\ncall sub\nexit\nsub:\nexit", AsmSyntax::kKernel);
  ASSERT_TRUE(r) << r.error().to_string();
  EXPECT_EQ(disassemble(*r), "   0: (b7) r0 = 0\n   1: (07) r0 += 1\n   2: (a5) if r0 < 0xa goto pc-2\n"
                             "   3: (85) call pc+1\n   4: (95) exit\n   5: (95) exit\n");
}

TEST(KernelSyntax, Errors) {
  EXPECT_EQ(kern_error("r1 = r2 + 1\nexit"), "k.s:1:9: unexpected '+ 1' after the instruction");
  EXPECT_EQ(kern_error("(b7) r1 = 0x100000000\nexit"), "k.s:1:11: immediate 4294967296 does not fit in 32 bits");
  EXPECT_EQ(kern_error("(07) r1 = 5\nexit"),
            "k.s:1:1: opcode (07) does not match the instruction, which encodes as (b7)");
  EXPECT_EQ(kern_error("r1 = be16 r2\nexit"), "k.s:1:6: byte order conversion is in place: write 'rN = be16 rN'");
  EXPECT_EQ(kern_error("r1 = map[id:4]\nexit"),
            "k.s:1:6: map[id:N] names a loaded map and cannot be assembled; use map[fd:N] or map[idx:N]");
  EXPECT_EQ(kern_error("if r1 ~ r2 goto pc+1\nexit"),
            "k.s:1:7: expected a comparison (==, !=, >, >=, <, <=, s>, s>=, s<, s<=, &)");
  EXPECT_EQ(kern_error("*(u32 *)(r10 -4) = r11\nexit"), "k.s:1:20: expected a number");
  EXPECT_EQ(kern_error("r10 = 1\nexit"), "ok");  // the assembler writes what it is told; validate() rejects it
  EXPECT_EQ(kern_error("goto pc+40000\nexit"), "k.s:1:6: offset 40000 does not fit in 16 bits");
  EXPECT_EQ(kern_error("w1 = 5 ll\nexit"), "k.s:1:6: 'll' makes a 64-bit load; w registers are 32-bit");
  EXPECT_EQ(kern_error("call frob\nexit"), "k.s:1:6: undefined label 'frob'");
}

TEST(KernelSyntax, HelperNamesWithOrWithoutPrefixAndId) {
  auto r = assemble("call bpf_map_update_elem\ncall map_delete_elem\ncall unknown#300\nexit", AsmSyntax::kKernel);
  ASSERT_TRUE(r) << r.error().to_string();
  EXPECT_EQ((*r)[0].imm, 2);
  EXPECT_EQ((*r)[1].imm, 3);
  EXPECT_EQ((*r)[2].imm, 300);
}

}  // namespace
}  // namespace bpfvm::isa
