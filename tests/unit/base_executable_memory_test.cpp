// Executable memory: writable while the code is written, then executable, never both.
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "bpfvm/base/executable_memory.hpp"

namespace bpfvm::os {
namespace {

std::string protections_of(const void* p) {
  const auto addr = reinterpret_cast<std::uint64_t>(p);
  std::ifstream maps("/proc/self/maps");
  std::string line;
  while (std::getline(maps, line)) {
    std::istringstream in(line);
    std::string range, perms;
    in >> range >> perms;
    const auto dash = range.find('-');
    if (addr >= std::stoull(range.substr(0, dash), nullptr, 16) && addr < std::stoull(range.substr(dash + 1), nullptr, 16)) {
      return perms;
    }
  }
  return "";
}

TEST(ExecutableMemory, WritableThenExecutableNeverBoth) {
  auto m = ExecutableMemory::allocate(100);
  ASSERT_TRUE(m);
  EXPECT_EQ(protections_of(m->data()), "rw-p");
  m->data()[0] = 0xc3;  // ret
  ASSERT_TRUE(m->seal());
  EXPECT_EQ(protections_of(m->data()), "r-xp");
  EXPECT_FALSE(m->seal());  // once
  EXPECT_FALSE(ExecutableMemory::allocate(0));
}

}  // namespace
}  // namespace bpfvm::os
