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

}  // namespace bpfvm::verifier
