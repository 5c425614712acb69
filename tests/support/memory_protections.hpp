// The protections of the mapping that holds an address, from /proc/self/maps ("r-xp", "rw-p", ...),
// for tests of W^X.
#pragma once

#include <string>

namespace bpfvm::test {

std::string protections_of(const void* addr);

}  // namespace bpfvm::test
