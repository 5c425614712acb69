// The wire encoding of eBPF opcodes (RFC 9669 section 3 and the kernel's extensions).
//
// opcode byte = class (low 3 bits) | for ALU/JMP: source bit 0x08 and operation (high 4 bits)
//                                  | for loads/stores: size (bits 3-4) and mode (high 3 bits).
#pragma once

#include <cstdint>

namespace bpfvm::isa {

// Instruction classes (RFC 9669 section 3.1).
inline constexpr std::uint8_t kClassMask = 0x07;
inline constexpr std::uint8_t kClassLd = 0x00;
inline constexpr std::uint8_t kClassLdx = 0x01;
inline constexpr std::uint8_t kClassSt = 0x02;
inline constexpr std::uint8_t kClassStx = 0x03;
inline constexpr std::uint8_t kClassAlu = 0x04;
inline constexpr std::uint8_t kClassJmp = 0x05;
inline constexpr std::uint8_t kClassJmp32 = 0x06;
inline constexpr std::uint8_t kClassAlu64 = 0x07;

// Source operand for ALU and JMP (RFC 9669 section 4): K = immediate, X = register.
// For BPF_END it selects the byte order: K = to little endian, X = to big endian.
inline constexpr std::uint8_t kSrcMask = 0x08;
inline constexpr std::uint8_t kSrcK = 0x00;
inline constexpr std::uint8_t kSrcX = 0x08;

inline constexpr std::uint8_t kOpMask = 0xf0;
// ALU operations (RFC 9669 section 4.1).
inline constexpr std::uint8_t kAluAdd = 0x00;
inline constexpr std::uint8_t kAluSub = 0x10;
inline constexpr std::uint8_t kAluMul = 0x20;
inline constexpr std::uint8_t kAluDiv = 0x30;   // off = 1: sdiv
inline constexpr std::uint8_t kAluOr = 0x40;
inline constexpr std::uint8_t kAluAnd = 0x50;
inline constexpr std::uint8_t kAluLsh = 0x60;
inline constexpr std::uint8_t kAluRsh = 0x70;
inline constexpr std::uint8_t kAluNeg = 0x80;
inline constexpr std::uint8_t kAluMod = 0x90;   // off = 1: smod
inline constexpr std::uint8_t kAluXor = 0xa0;
inline constexpr std::uint8_t kAluMov = 0xb0;   // off = 8/16/32: movsx
inline constexpr std::uint8_t kAluArsh = 0xc0;
inline constexpr std::uint8_t kAluEnd = 0xd0;

// Jump operations (RFC 9669 section 4.3).
inline constexpr std::uint8_t kJmpJa = 0x00;
inline constexpr std::uint8_t kJmpJeq = 0x10;
inline constexpr std::uint8_t kJmpJgt = 0x20;
inline constexpr std::uint8_t kJmpJge = 0x30;
inline constexpr std::uint8_t kJmpJset = 0x40;
inline constexpr std::uint8_t kJmpJne = 0x50;
inline constexpr std::uint8_t kJmpJsgt = 0x60;
inline constexpr std::uint8_t kJmpJsge = 0x70;
inline constexpr std::uint8_t kJmpCall = 0x80;
inline constexpr std::uint8_t kJmpExit = 0x90;
inline constexpr std::uint8_t kJmpJlt = 0xa0;
inline constexpr std::uint8_t kJmpJle = 0xb0;
inline constexpr std::uint8_t kJmpJslt = 0xc0;
inline constexpr std::uint8_t kJmpJsle = 0xd0;

// Load/store size (RFC 9669 section 5.1).
inline constexpr std::uint8_t kSizeMask = 0x18;
inline constexpr std::uint8_t kSizeW = 0x00;
inline constexpr std::uint8_t kSizeH = 0x08;
inline constexpr std::uint8_t kSizeB = 0x10;
inline constexpr std::uint8_t kSizeDW = 0x18;

// Load/store mode.
inline constexpr std::uint8_t kModeMask = 0xe0;
inline constexpr std::uint8_t kModeImm = 0x00;
inline constexpr std::uint8_t kModeAbs = 0x20;  // legacy packet access
inline constexpr std::uint8_t kModeInd = 0x40;  // legacy packet access
inline constexpr std::uint8_t kModeMem = 0x60;
inline constexpr std::uint8_t kModeMemSx = 0x80;
inline constexpr std::uint8_t kModeAtomic = 0xc0;

// Atomic operations, in imm (RFC 9669 section 5.3).
inline constexpr std::int32_t kAtomicFetch = 0x01;
inline constexpr std::int32_t kAtomicXchg = 0xe0 | kAtomicFetch;
inline constexpr std::int32_t kAtomicCmpxchg = 0xf0 | kAtomicFetch;

// src_reg of a 64-bit immediate load (RFC 9669 section 5.4, and the kernel's BPF_PSEUDO_*).
enum class Pseudo : std::uint8_t {
  kImm64 = 0,
  kMapFd = 1,
  kMapValue = 2,
  kBtfId = 3,
  kFunc = 4,
  kMapIdx = 5,
  kMapIdxValue = 6,
};
inline constexpr std::uint8_t kPseudoMax = 6;

// src_reg of a call (RFC 9669 section 4.3.1).
inline constexpr std::uint8_t kCallHelper = 0;
inline constexpr std::uint8_t kCallLocal = 1;  // BPF_PSEUDO_CALL: imm = pc-relative target
inline constexpr std::uint8_t kCallKfunc = 2;  // BPF_PSEUDO_KFUNC_CALL: imm = BTF id, off = BTF fd index

inline constexpr int kNumRegisters = 11;  // r0-r10
inline constexpr int kFramePointer = 10;  // r10, read-only
inline constexpr int kStackSize = 512;    // bytes per frame
inline constexpr int kMaxCallFrames = 8;  // the kernel's MAX_CALL_FRAMES

constexpr std::uint8_t make_opcode(std::uint8_t cls, std::uint8_t op_or_size, std::uint8_t src_or_mode) {
  return static_cast<std::uint8_t>(cls | op_or_size | src_or_mode);
}

}  // namespace bpfvm::isa
