// Random programs over every instruction class, for differential testing (interpreter vs JIT, bpfvm vs
// the kernel). A program works on `kMemSize` bytes at r6 and on the first 64 bytes of its stack; at exit
// it copies r0-r5 and r7-r9 to mem[kRegsAt..] and those stack bytes to mem[kStackAt..], so comparing
// mem (and r0) after a run compares the whole state. Control flow only goes forward (bpf-to-bpf calls
// return), so every program terminates.
#pragma once

#include <cstdint>
#include <vector>

#include "bpfvm/isa/insn.hpp"

namespace bpfvm::test {

struct RandomProgram {
  static constexpr std::size_t kMemSize = 400;
  static constexpr std::size_t kRegsAt = 256;   // r0-r5, r7-r9: 9 x 8 bytes
  static constexpr std::size_t kStackAt = 336;  // 64 stack bytes

  // Helper ids the vm form calls (the test installs them): kMix returns a hash of r1-r5; kMaybeExit
  // returns r1 and ends the program when r1 % 8 == 0.
  static constexpr std::int32_t kMix = 1;
  static constexpr std::int32_t kMaybeExit = 2;

  enum class Form {
    kVm,      // r1 = mem at entry; everything, including callx, LD_ABS/LD_IND and helper exits
    kKernel,  // an XDP program the kernel verifier accepts: mem is the packet (bounds-checked),
              // atomics on the stack only, helper calls to bpf_csum_diff, r0 = XDP_PASS at exit
  };

  std::vector<isa::RawInsn> insns;
  std::vector<std::uint8_t> mem;  // initial contents (kMemSize random bytes)
};

RandomProgram random_program(std::uint64_t seed, RandomProgram::Form form, std::size_t length = 60);

// How many seeds a differential test tries: `fallback`, or $BPFVM_RANDOM_SEEDS for a deeper run (which
// also lifts the test's time bound).
std::uint64_t random_seed_count(std::uint64_t fallback);

}  // namespace bpfvm::test
