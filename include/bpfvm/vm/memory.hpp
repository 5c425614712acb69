// Memory a program may touch, for the interpreter's checked mode (defined with the helper calling
// convention in base/call_context.hpp).
#pragma once

#include "bpfvm/base/call_context.hpp"

namespace bpfvm::vm {

using bpfvm::MemoryRegion;

}  // namespace bpfvm::vm
