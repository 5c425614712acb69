// The control flow graph of a program, the verifier's first pass (the kernel's check_subprogs and
// check_cfg): the subprograms (the entry function and every function a local call or a function
// reference names), each instruction's successors, and the back edges (loops, which the later passes
// must prove bounded). Rejected here, with the instruction and the reason: jumps that leave their
// subprogram, a subprogram whose last instruction is not an exit or a jump, instructions no path
// reaches, and everything isa::validate refuses.
#pragma once

#include <array>
#include <cstdint>
#include <span>
#include <utility>
#include <vector>

#include "bpfvm/base/result.hpp"
#include "bpfvm/isa/insn.hpp"

namespace bpfvm::verifier {

struct Subprogram {
  std::uint32_t start = 0, end = 0;  // instruction slots [start, end)
};

struct Cfg {
  // Per slot: the decoded instruction (the second slot of an LDDW repeats it) and whether it starts one.
  std::vector<isa::Insn> insns;
  std::vector<std::uint8_t> starts;
  std::vector<Subprogram> subprogs;  // by start; [0] is the entry function
  // Per slot: up to two successors in the same subprogram, -1 when absent. A local call's successor is
  // the next instruction (the callee is another subprogram's entry).
  std::vector<std::array<std::int32_t, 2>> successors;
  std::vector<std::pair<std::uint32_t, std::uint32_t>> back_edges;  // (from, to): to starts a loop

  std::uint32_t subprog_of(std::uint32_t slot) const;
  std::size_t size() const { return insns.size(); }
};

Result<Cfg> build_cfg(std::span<const isa::RawInsn> program);

// A call of a helper that calls back into the program (bpf_loop, bpf_for_each_map_elem): verified code
// runs inside it, with the caller's stack reachable through the callback's context.
bool calls_callback(const isa::Insn& insn);

}  // namespace bpfvm::verifier
