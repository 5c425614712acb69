// The one table that describes every opcode: what kind of instruction it is and which values each
// field may take. The decoder, the validator, the assemblers and the disassembler all read it, so a rule
// lives in exactly one place (as ubpf's per-opcode bounds table does).
#pragma once

#include <array>
#include <cstdint>

#include "bpfvm/isa/insn.hpp"

namespace bpfvm::isa {

enum class OpKind : std::uint8_t {
  kInvalid, kAlu, kEndian, kJump, kCondJump, kCall, kCallReg, kExit, kLoadImm64, kLoad, kStore,
  kAtomic, kPacketLoad,
};

// dst_reg: must be 0, any register read (r0-r10), or written (r0-r9: r10 is read-only).
enum class DstRule : std::uint8_t { kZero, kRead, kWrite };
// src_reg: must be 0, any register, an LDDW pseudo source (0-6), a call kind (0-2).
enum class SrcRule : std::uint8_t { kZero, kReg, kLddwPseudo, kCallKind };
// off: must be 0; any; 0 or 1 (div/mod: 1 = signed); 0/8/16/32 (mov: movsx width; 32 only for ALU64);
// 0 unless the call is a kfunc call.
enum class OffRule : std::uint8_t { kZero, kAny, kSignedFlag, kMovsx64, kMovsx32, kKfuncOnly };
// imm: must be 0; any; 16/32/64 (byte order); an atomic operation code.
enum class ImmRule : std::uint8_t { kZero, kAny, kEndianBits, kAtomicOp };

struct OpcodeInfo {
  OpKind kind = OpKind::kInvalid;
  DstRule dst = DstRule::kZero;
  SrcRule src = SrcRule::kZero;
  OffRule off = OffRule::kZero;
  ImmRule imm = ImmRule::kZero;
  std::uint8_t cpu = 1;  // lowest -mcpu=vN that has the opcode (field values may raise it)
};

namespace detail {
constexpr std::array<OpcodeInfo, 256> build_opcode_table() {
  std::array<OpcodeInfo, 256> t{};
  // ALU and ALU64 (RFC 9669 section 4.1).
  for (std::uint8_t cls : {kClassAlu, kClassAlu64}) {
    const std::uint8_t ops[] = {kAluAdd, kAluSub, kAluMul, kAluDiv, kAluOr,  kAluAnd, kAluLsh,
                                kAluRsh, kAluMod, kAluXor, kAluMov, kAluArsh};
    for (std::uint8_t op : ops) {
      const bool divmod = op == kAluDiv || op == kAluMod;
      t[cls | op | kSrcK] = {OpKind::kAlu, DstRule::kWrite, SrcRule::kZero,
                             divmod ? OffRule::kSignedFlag : OffRule::kZero, ImmRule::kAny, 1};
      OffRule xoff = OffRule::kZero;
      if (divmod) xoff = OffRule::kSignedFlag;
      if (op == kAluMov) xoff = cls == kClassAlu64 ? OffRule::kMovsx64 : OffRule::kMovsx32;
      t[cls | op | kSrcX] = {OpKind::kAlu, DstRule::kWrite, SrcRule::kReg, xoff, ImmRule::kZero, 1};
    }
    t[cls | kAluNeg | kSrcK] = {OpKind::kAlu, DstRule::kWrite, SrcRule::kZero, OffRule::kZero,
                                ImmRule::kZero, 1};
  }
  // Byte order: ALU class le (K) / be (X); ALU64 class K = unconditional bswap (cpu v4).
  t[kClassAlu | kAluEnd | kSrcK] = {OpKind::kEndian, DstRule::kWrite, SrcRule::kZero, OffRule::kZero,
                                    ImmRule::kEndianBits, 1};
  t[kClassAlu | kAluEnd | kSrcX] = t[kClassAlu | kAluEnd | kSrcK];
  t[kClassAlu64 | kAluEnd | kSrcK] = {OpKind::kEndian, DstRule::kWrite, SrcRule::kZero, OffRule::kZero,
                                      ImmRule::kEndianBits, 4};
  // Jumps (RFC 9669 section 4.3).
  for (std::uint8_t cls : {kClassJmp, kClassJmp32}) {
    const std::uint8_t cpu = cls == kClassJmp32 ? 3 : 1;
    const std::uint8_t conds[] = {kJmpJeq, kJmpJgt,  kJmpJge,  kJmpJset, kJmpJne, kJmpJsgt,
                                  kJmpJsge, kJmpJlt, kJmpJle, kJmpJslt, kJmpJsle};
    for (std::uint8_t op : conds) {
      const bool v2 = op == kJmpJlt || op == kJmpJle || op == kJmpJslt || op == kJmpJsle;
      const std::uint8_t c = cpu > 1 ? cpu : (v2 ? 2 : 1);
      t[cls | op | kSrcK] = {OpKind::kCondJump, DstRule::kRead, SrcRule::kZero, OffRule::kAny,
                             ImmRule::kAny, c};
      t[cls | op | kSrcX] = {OpKind::kCondJump, DstRule::kRead, SrcRule::kReg, OffRule::kAny,
                             ImmRule::kZero, c};
    }
  }
  t[kClassJmp | kJmpJa] = {OpKind::kJump, DstRule::kZero, SrcRule::kZero, OffRule::kAny, ImmRule::kZero, 1};
  t[kClassJmp32 | kJmpJa] = {OpKind::kJump, DstRule::kZero, SrcRule::kZero, OffRule::kZero, ImmRule::kAny, 4};
  t[kClassJmp | kJmpCall | kSrcK] = {OpKind::kCall, DstRule::kZero, SrcRule::kCallKind,
                                     OffRule::kKfuncOnly, ImmRule::kAny, 1};
  t[kClassJmp | kJmpCall | kSrcX] = {OpKind::kCallReg, DstRule::kRead, SrcRule::kZero, OffRule::kZero,
                                     ImmRule::kZero, 1};
  t[kClassJmp | kJmpExit] = {OpKind::kExit, DstRule::kZero, SrcRule::kZero, OffRule::kZero, ImmRule::kZero, 1};
  // Loads and stores (RFC 9669 section 5).
  for (std::uint8_t size : {kSizeW, kSizeH, kSizeB, kSizeDW}) {
    t[kClassLdx | kModeMem | size] = {OpKind::kLoad, DstRule::kWrite, SrcRule::kReg, OffRule::kAny,
                                      ImmRule::kZero, 1};
    if (size != kSizeDW) {
      t[kClassLdx | kModeMemSx | size] = {OpKind::kLoad, DstRule::kWrite, SrcRule::kReg, OffRule::kAny,
                                          ImmRule::kZero, 4};
      // Legacy packet access: r0 is the implicit destination, so dst must be 0 (as the kernel checks).
      t[kClassLd | kModeAbs | size] = {OpKind::kPacketLoad, DstRule::kZero, SrcRule::kZero,
                                       OffRule::kZero, ImmRule::kAny, 1};
      t[kClassLd | kModeInd | size] = {OpKind::kPacketLoad, DstRule::kZero, SrcRule::kReg,
                                       OffRule::kZero, ImmRule::kAny, 1};
    }
    t[kClassSt | kModeMem | size] = {OpKind::kStore, DstRule::kRead, SrcRule::kZero, OffRule::kAny,
                                     ImmRule::kAny, 1};
    t[kClassStx | kModeMem | size] = {OpKind::kStore, DstRule::kRead, SrcRule::kReg, OffRule::kAny,
                                      ImmRule::kZero, 1};
  }
  for (std::uint8_t size : {kSizeW, kSizeDW}) {
    t[kClassStx | kModeAtomic | size] = {OpKind::kAtomic, DstRule::kRead, SrcRule::kReg, OffRule::kAny,
                                         ImmRule::kAtomicOp, 1};
  }
  t[kClassLd | kModeImm | kSizeDW] = {OpKind::kLoadImm64, DstRule::kWrite, SrcRule::kLddwPseudo,
                                      OffRule::kZero, ImmRule::kAny, 1};
  return t;
}
}  // namespace detail

inline constexpr std::array<OpcodeInfo, 256> kOpcodeTable = detail::build_opcode_table();

inline const OpcodeInfo& opcode_info(std::uint8_t opcode) { return kOpcodeTable[opcode]; }

// The lowest clang -mcpu=vN that can emit this instruction (field values included: sdiv, movsx,
// fetch atomics).
int required_cpu(const RawInsn& insn);

}  // namespace bpfvm::isa
