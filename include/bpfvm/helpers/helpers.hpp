// Helper functions by the kernel's ids, for programs run by bpfvm's vm.
//
// This first set covers maps and a few basics; the helpers issue adds the rest, their prototypes as
// data for the verifier, and the allowed set per program type. In checked mode (a program no verifier
// vouched for) every pointer a program passes is checked first: a map pointer must be a live map, a
// key or value must lie in memory the program may access; a bad one returns -EFAULT, never a crash.
#pragma once

#include "bpfvm/vm/helper.hpp"

namespace bpfvm::helpers {

// Adds every implemented helper to `table`.
void install(vm::HelperTable& table);

}  // namespace bpfvm::helpers
