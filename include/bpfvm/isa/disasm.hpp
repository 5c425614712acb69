// The disassembler: instructions as the kernel prints them in the verifier log and in
// `bpftool prog dump xlated` (kernel/bpf/disasm.c's format), e.g.
//   "   0: (b7) r1 = 33"
//   "   1: (6b) *(u16 *)(r10 -4) = r1"
//   "   4: (18) r1 = 0x57202c6f6c6c6548"
//   "  10: (85) call bpf_trace_printk#6"
// Instructions newer than a given kernel's printer (cpu v4: movsx, sdiv, bswap, gotol, ldsx) use the
// format of the kernel that introduced them.
#pragma once

#include <cstddef>
#include <optional>
#include <span>
#include <string>

#include "bpfvm/isa/insn.hpp"

namespace bpfvm::isa {

// Names for what instructions refer to by number. The defaults print numbers: helper names from the
// kernel's helper ids, "map[fd:3]" for a map fd, "map[idx:0]" for a map index. The runtime overrides
// them to print "map[id:7]" as bpftool does for loaded programs.
class SymbolResolver {
 public:
  virtual ~SymbolResolver() = default;
  // Text that replaces "bpf_name#id" / "pc+N" in a call, or nullopt for the default.
  virtual std::optional<std::string> call_target(const Call& call, std::size_t index) const;
  // Text of the right-hand side of a 64-bit immediate load, or nullopt for the default.
  virtual std::optional<std::string> imm64(const LoadImm64& insn, std::size_t index) const;
};

struct DisasmOptions {
  bool opcodes = false;  // bpftool's "opcodes": the raw bytes on a line under each instruction
  const SymbolResolver* resolver = nullptr;
};

// One instruction, without its index: "(b7) r1 = 33". `slots` starts at the instruction (an LDDW also
// reads the next slot). An instruction that does not decode prints "(xx) invalid: <reason>".
std::string format_insn(std::span<const RawInsn> slots, std::size_t index = 0,
                        const SymbolResolver* resolver = nullptr);

// A whole program as `bpftool prog dump xlated` prints it: one "%4d: " line per instruction.
std::string disassemble(std::span<const RawInsn> program, const DisasmOptions& options = {});

}  // namespace bpfvm::isa
