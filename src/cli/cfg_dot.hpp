// Private to src/cli: `prog dump xlated PROG visual`, the control flow graph in DOT as bpftool draws it:
// one dashed cluster per function ("func_N ()"), an ENTRY and an EXIT node, one record node per basic
// block listing its instructions (numbered from the function's start, as bpftool numbers them), and an
// edge per successor.
#pragma once

#include <span>
#include <string>

#include "bpfvm/base/result.hpp"
#include "bpfvm/isa/disasm.hpp"
#include "bpfvm/isa/insn.hpp"

namespace bpfvm::cli {

Result<std::string> cfg_dot(std::span<const isa::RawInsn> insns, const isa::SymbolResolver* resolver);

}  // namespace bpfvm::cli
