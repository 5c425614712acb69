// Which registers and stack slots matter from each instruction on, computed backwards over the CFG
// before exploring, so that state pruning compares only what matters (the role of the kernel's
// liveness marks and precision backtracking, done here statically and conservatively).
//
//  - live: the value may be read on some path before it is overwritten. A dead register or slot
//    cannot affect anything, so pruning ignores it.
//  - demanded: a scalar's value (not only its type) may decide safety on some path: it may reach a
//    branch condition, a memory access's offset (through pointer arithmetic), a helper's argument
//    register or a callback's or function's result. A scalar that is live but not demanded only
//    flows into values nothing checks (counters, hashes, keys and buffers a helper reads, return
//    values), so any number covers any other there.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

#include "bpfvm/verifier/cfg.hpp"
#include "bpfvm/verifier/platform.hpp"

namespace bpfvm::verifier {

struct Liveness {
  // Per instruction slot, at its entry: bit r for register r; bit i of a slot mask for the 8-byte slot
  // fp-8*(i+1) of the function's own frame.
  std::vector<std::uint16_t> live_regs, demanded_regs;
  std::vector<std::uint64_t> live_slots, demanded_slots;
};

// With a platform, a helper call reads only the argument registers its prototype has, demands only
// those whose value may decide safety (not ARG_ANYTHING), and reads only the stack its pointer
// arguments may reach; without one, every call reads r1-r5 and the whole stack.
Liveness compute_liveness(const Cfg& cfg, const Platform* platform = nullptr);

// The same facts, where a conditional jump's operands are demanded only once a path's values decided
// it (one side, or neither, could be taken; or it refined copies of a number): the kernel marks
// precise only what decided a path (check_cond_jmp_op's mark_chain_precision on a known outcome), and
// a state that covers a new one is complete, so every jump its paths decided has been named by then.
// The explorer marks such numbers along the deciding path (Explorer::mark_precise); what it cannot
// follow it demands here for every path: demand_branch and demand update the facts incrementally,
// backwards from the instruction. With every_branch_demands,
// the analysis is also blind to what the explorer learns: both sides of every 64-bit addition or
// subtraction of registers are demanded (one may be a number added to a pointer).
class LivenessSolver {
 public:
  LivenessSolver(const Cfg& cfg, const Platform* platform, bool every_branch_demands);
  ~LivenessSolver();
  LivenessSolver(const LivenessSolver&) = delete;
  LivenessSolver& operator=(const LivenessSolver&) = delete;
  const Liveness& facts() const;
  void demand_branch(std::uint32_t pc);
  // Registers whose values decide safety at `pc` (a number added to a pointer there), and what flows
  // into them.
  void demand(std::uint32_t pc, std::uint16_t regs, std::uint64_t slots = 0);
  // The slots of the function's own stack an access of `size` bytes at reg+off at `pc` may touch: none
  // when reg cannot point into the stack, nullopt when it may at an offset not known here.
  std::optional<std::uint64_t> slots_through(std::uint32_t pc, std::uint8_t reg, std::int32_t off, int size) const;

 private:
  void propagate(std::uint32_t pc);
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace bpfvm::verifier
