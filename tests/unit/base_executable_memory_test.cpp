// Executable memory: writable while the code is written, then executable, never both.
#include <gtest/gtest.h>

#include "bpfvm/base/executable_memory.hpp"
#include "memory_protections.hpp"

namespace bpfvm::os {
namespace {

using test::protections_of;

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
