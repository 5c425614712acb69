// What the vm tests share: programs from kernel-syntax text, and a helper whose answer shows that r1-r5
// and the user pointer arrived.
#pragma once

#include <gtest/gtest.h>

#include <vector>

#include "bpfvm/base/call_context.hpp"
#include "bpfvm/isa/assembler.hpp"

namespace bpfvm::test {

inline std::vector<isa::RawInsn> kasm(const char* text) {
  auto r = isa::assemble(text, isa::AsmSyntax::kKernel);
  EXPECT_TRUE(r) << r.error().to_string();
  return r ? *r : std::vector<isa::RawInsn>{};
}

// a + 10b + 100c + 1000d + 10000e + the run's user pointer.
inline std::uint64_t sum5(std::uint64_t a, std::uint64_t b, std::uint64_t c, std::uint64_t d, std::uint64_t e,
                          CallContext* ctx) {
  return a + 10 * b + 100 * c + 1000 * d + 10000 * e + reinterpret_cast<std::uint64_t>(ctx->user());
}

}  // namespace bpfvm::test
