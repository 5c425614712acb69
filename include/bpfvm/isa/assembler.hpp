// Assemblers for two text syntaxes.
//
// kKernel: the syntax the disassembler prints (bpftool / the verifier log), so that
//   assemble(disassemble(p)) == p for every valid program. Accepts bpftool's "N: (xx)" prefixes
//   (the opcode in parentheses settles "r1 = 5" (mov) versus "(18) r1 = 0x5" (lddw)), its source
//   lines (";"), its "opcodes" byte lines, and, as an extension, labels ("name:") as jump targets.
//   Without an opcode hint, "rD = <decimal>" is a mov and "rD = 0x<hex>" is a 64-bit load.
// kConformance: the bpf_conformance suite's syntax ("mov %r0, 1", "ldxw %r1, [%r2+4]",
//   "jeq %r1, 0x5, +3", "lock cmpxchg [%r10-8], %r1", "call local fn", labels on their own line; the
//   label "exit" also names the first exit instruction).
//
// Errors carry the line and column of the offending token in their Location.
#pragma once

#include <string_view>
#include <vector>

#include "bpfvm/base/result.hpp"
#include "bpfvm/isa/insn.hpp"

namespace bpfvm::isa {

enum class AsmSyntax { kKernel, kConformance };

Result<std::vector<RawInsn>> assemble(std::string_view text, AsmSyntax syntax, std::string_view file = {});

}  // namespace bpfvm::isa
