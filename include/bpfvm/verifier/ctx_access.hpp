// Which instructions access the program's context, and at which offsets.
//
// The kernel rewrites context accesses at load time (convert_ctx_access): a program reads
// `xdp_md->data` as a u32 at offset 0 and the kernel turns that into a 64-bit pointer load from its own
// xdp_buff. To do the same, the runtime needs to know which loads and stores go through a pointer to
// the context; this analysis finds them by tracking, through registers, stack spills and bpf-to-bpf
// calls, where the context pointer (r1 at entry) flows. The verifier proper will subsume it.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "bpfvm/base/result.hpp"
#include "bpfvm/isa/insn.hpp"

namespace bpfvm::verifier {

struct CtxAccess {
  std::size_t insn = 0;
  std::int32_t offset = 0;  // from the start of the context
  std::uint8_t size = 0;    // bytes
  enum class Kind { kLoad, kStore } kind = Kind::kLoad;
};

// Every load and store through the context pointer, in instruction order. An instruction reached with
// the context pointer on one path and another pointer on another, or with a context pointer whose
// offset is not a constant, is rejected as the kernel rejects it (EACCES).
Result<std::vector<CtxAccess>> find_ctx_accesses(std::span<const isa::RawInsn> insns);

}  // namespace bpfvm::verifier
