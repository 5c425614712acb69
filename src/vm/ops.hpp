// Private to src/vm: the interpreter's pre-decoded instruction stream.
//
// One Op per 8-byte slot, so op indices are instruction indices (jump targets and fault messages need
// no translation); the second slot of an LDDW is a never-executed filler. Each Op names one fully
// specialised operation (ADD64_IMM, JSGT32_REG, ...), so the loop body does no decoding at all.
#pragma once

#include <cstdint>
#include <vector>

#include "bpfvm/base/result.hpp"
#include "bpfvm/isa/insn.hpp"
#include "bpfvm/vm/helper.hpp"

namespace bpfvm::vm::detail {

#define BPFVM_OP4(X, N) X(N##64_IMM) X(N##64_REG) X(N##32_IMM) X(N##32_REG)
#define BPFVM_FOR_EACH_OP(X)                                                                      \
  BPFVM_OP4(X, ADD) BPFVM_OP4(X, SUB) BPFVM_OP4(X, MUL) BPFVM_OP4(X, DIV) BPFVM_OP4(X, SDIV)     \
  BPFVM_OP4(X, MOD) BPFVM_OP4(X, SMOD) BPFVM_OP4(X, OR) BPFVM_OP4(X, AND) BPFVM_OP4(X, XOR)      \
  BPFVM_OP4(X, LSH) BPFVM_OP4(X, RSH) BPFVM_OP4(X, ARSH) BPFVM_OP4(X, MOV)                       \
  X(NEG64) X(NEG32) X(MOVSX64_8) X(MOVSX64_16) X(MOVSX64_32) X(MOVSX32_8) X(MOVSX32_16)         \
  X(LE16) X(LE32) X(LE64) X(BE16) X(BE32) X(BE64)                                                \
  BPFVM_OP4(X, JEQ) BPFVM_OP4(X, JGT) BPFVM_OP4(X, JGE) BPFVM_OP4(X, JSET) BPFVM_OP4(X, JNE)     \
  BPFVM_OP4(X, JSGT) BPFVM_OP4(X, JSGE) BPFVM_OP4(X, JLT) BPFVM_OP4(X, JLE) BPFVM_OP4(X, JSLT)   \
  BPFVM_OP4(X, JSLE)                                                                             \
  X(JA) X(CALL_HELPER) X(CALL_LOCAL) X(CALLX) X(EXIT) X(LDDW) X(FILLER)                          \
  X(LDXB) X(LDXH) X(LDXW) X(LDXDW) X(LDXSB) X(LDXSH) X(LDXSW) X(PROBE_LDX)                       \
  X(STB) X(STH) X(STW) X(STDW) X(STXB) X(STXH) X(STXW) X(STXDW)                                  \
  X(ATOMIC_ADD32) X(ATOMIC_OR32) X(ATOMIC_AND32) X(ATOMIC_XOR32)                                 \
  X(ATOMIC_FETCH_ADD32) X(ATOMIC_FETCH_OR32) X(ATOMIC_FETCH_AND32) X(ATOMIC_FETCH_XOR32)         \
  X(ATOMIC_XCHG32) X(ATOMIC_CMPXCHG32)                                                           \
  X(ATOMIC_ADD64) X(ATOMIC_OR64) X(ATOMIC_AND64) X(ATOMIC_XOR64)                                 \
  X(ATOMIC_FETCH_ADD64) X(ATOMIC_FETCH_OR64) X(ATOMIC_FETCH_AND64) X(ATOMIC_FETCH_XOR64)         \
  X(ATOMIC_XCHG64) X(ATOMIC_CMPXCHG64)                                                           \
  X(LDABSB) X(LDABSH) X(LDABSW) X(LDINDB) X(LDINDH) X(LDINDW)

enum class IOp : std::uint8_t {
#define BPFVM_ENUM(name) name,
  BPFVM_FOR_EACH_OP(BPFVM_ENUM)
#undef BPFVM_ENUM
  kCount
};

struct Op {
  IOp code;
  std::uint8_t dst;
  std::uint8_t src;
  std::uint8_t aux = 0;  // PROBE_LDX: the size in bytes, | 0x80 when the load sign-extends
  std::int32_t off;    // memory offset, or the absolute target of a jump or local call
  std::uint64_t imm;   // sign-extended immediate, 64-bit immediate, or a HelperFn for CALL_HELPER
};
static_assert(sizeof(Op) == 16);

// Translates a validated program; fails on what the interpreter cannot run (unknown helper ids,
// kfunc calls, unresolved map references). The loads `probes` marks become PROBE_LDX (imm: probes.read).
Result<std::vector<Op>> predecode(std::span<const isa::RawInsn> program, const HelperTable& helpers,
                                  const ProbeLoads& probes = {});

}  // namespace bpfvm::vm::detail
