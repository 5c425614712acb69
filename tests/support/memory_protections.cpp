#include "memory_protections.hpp"

#include <cstdint>
#include <fstream>
#include <sstream>

namespace bpfvm::test {

std::string protections_of(const void* p) {
  const auto addr = reinterpret_cast<std::uint64_t>(p);
  std::ifstream maps("/proc/self/maps");
  std::string line;
  while (std::getline(maps, line)) {
    std::istringstream in(line);
    std::string range, perms;
    in >> range >> perms;
    const auto dash = range.find('-');
    const std::uint64_t lo = std::stoull(range.substr(0, dash), nullptr, 16);
    const std::uint64_t hi = std::stoull(range.substr(dash + 1), nullptr, 16);
    if (addr >= lo && addr < hi) return perms;
  }
  return "";
}

}  // namespace bpfvm::test
