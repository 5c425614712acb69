// BPF_MAP_TYPE_STACK_TRACE as kernel/bpf/stackmap.c has it: the checks at create, ids that are the
// stack's jhash2 masked to the buckets, the same stack's id again, -EEXIST for another stack in a taken
// bucket unless BPF_F_REUSE_STACKID, BPF_F_FAST_STACK_CMP's hash-only match, and the syscall side
// (lookup zero-fills, update is EINVAL, delete and next_key). KernelOracle.StackIds checks the ids
// against the kernel's own.
#include <linux/bpf.h>

#include <cerrno>
#include <cstring>

#include <gtest/gtest.h>

#include "bpfvm/maps/stack_trace.hpp"

namespace bpfvm::maps {
namespace {

std::shared_ptr<Map> stack_map(std::uint32_t entries, std::uint32_t frames) {
  auto m = create_map({BPF_MAP_TYPE_STACK_TRACE, 4, frames * 8, entries, 0, "stacks"}, nullptr, "");
  EXPECT_TRUE(m) << m.error().to_string();
  return m ? *m : nullptr;
}

TEST(StackTraceMap, CreateChecksAsTheKernel) {
  auto errno_of = [](MapDef def) {
    auto m = create_map(def, nullptr, "");
    return m ? 0 : m.error().errno_value();
  };
  EXPECT_EQ(errno_of({BPF_MAP_TYPE_STACK_TRACE, 8, 64, 16, 0, "k"}), EINVAL);           // key_size 4 only
  EXPECT_EQ(errno_of({BPF_MAP_TYPE_STACK_TRACE, 4, 12, 16, 0, "v"}), EINVAL);           // value_size % 8
  EXPECT_EQ(errno_of({BPF_MAP_TYPE_STACK_TRACE, 4, 128 * 8, 16, 0, "d"}), EINVAL);      // > 127 frames
  EXPECT_EQ(errno_of({BPF_MAP_TYPE_STACK_TRACE, 4, 64, 0, 0, "z"}), EINVAL);            // no entries
  EXPECT_EQ(errno_of({BPF_MAP_TYPE_STACK_TRACE, 4, 64, 16, BPF_F_NO_PREALLOC, "f"}), EINVAL);
  EXPECT_EQ(errno_of({BPF_MAP_TYPE_STACK_TRACE, 4, 127 * 8, 16, 0, "ok"}), 0);
  auto m = stack_map(100, 4);
  ASSERT_TRUE(m);
  EXPECT_EQ(static_cast<StackTraceMap&>(*m).buckets(), 128u);  // rounded up to a power of two
}

TEST(StackTraceMap, JhashOfNothingIsItsInitialValue) {
  EXPECT_EQ(jhash2({}, 0), 0xdeadbeefu);
  EXPECT_EQ(jhash2({}, 1), 0xdeadbef0u);
}

TEST(StackTraceMap, IdsAndCollisions) {
  auto m = stack_map(1, 4);  // one bucket: every stack's id is 0
  ASSERT_TRUE(m);
  auto& s = static_cast<StackTraceMap&>(*m);
  const std::uint64_t a[] = {0x1000, 0x2000}, b[] = {0x3000, 0x4000, 0x5000};
  EXPECT_EQ(s.store(a, 0), 0);
  EXPECT_EQ(s.store(a, 0), 0);             // the same stack: its id again
  EXPECT_EQ(s.store(b, 0), -EEXIST);       // another stack where it is
  std::uint64_t value[4];
  const std::uint32_t id = 0;
  ASSERT_TRUE(s.lookup(&id, value));
  EXPECT_EQ(value[0], 0x1000u);
  EXPECT_EQ(value[1], 0x2000u);
  EXPECT_EQ(value[2], 0u);  // zero-filled past the stored frames
  EXPECT_EQ(s.store(b, BPF_F_REUSE_STACKID), 0);  // replaced
  ASSERT_TRUE(s.lookup(&id, value));
  EXPECT_EQ(value[2], 0x5000u);
  EXPECT_EQ(s.store(std::span<const std::uint64_t>(), 0), -EFAULT);
  // Frames past value_size are not kept.
  const std::uint64_t many[] = {1, 2, 3, 4, 5, 6};
  EXPECT_EQ(s.store(many, BPF_F_REUSE_STACKID), 0);
  ASSERT_TRUE(s.lookup(&id, value));
  EXPECT_EQ(value[3], 4u);
}

TEST(StackTraceMap, FastCompareMatchesByHashAlone) {
  auto m = stack_map(1024, 4);
  ASSERT_TRUE(m);
  auto& s = static_cast<StackTraceMap&>(*m);
  const std::uint64_t a[] = {0xaaaa, 0xbbbb};
  const long id = s.store(a, BPF_F_FAST_STACK_CMP);
  ASSERT_GE(id, 0);
  std::uint32_t words[4];
  std::memcpy(words, a, sizeof a);
  EXPECT_EQ(static_cast<std::uint32_t>(id), jhash2(words, 0) & 1023u);
  EXPECT_EQ(s.store(a, BPF_F_FAST_STACK_CMP), id);
}

TEST(StackTraceMap, SyscallSide) {
  auto m = stack_map(8, 2);
  ASSERT_TRUE(m);
  auto& s = static_cast<StackTraceMap&>(*m);
  std::uint32_t key = 0, next = 99;
  std::uint64_t value[2];
  EXPECT_EQ(s.next_key(nullptr, &next).error().errno_value(), ENOENT);  // empty
  EXPECT_EQ(s.lookup(&key, value).error().errno_value(), ENOENT);
  key = 8;
  EXPECT_EQ(s.lookup(&key, value).error().errno_value(), ENOENT);  // past the buckets
  EXPECT_EQ(s.erase(&key).error().errno_value(), EINVAL);
  EXPECT_EQ(s.update(&key, value, BPF_ANY).error().errno_value(), EINVAL);
  const std::uint64_t a[] = {1, 2}, b[] = {3, 4};
  const long ia = s.store(a, 0), ib = s.store(b, BPF_F_REUSE_STACKID);
  ASSERT_GE(ia, 0);
  ASSERT_GE(ib, 0);
  // next_key walks the buckets that hold a stack, in order; a key that holds none starts again at 0.
  const auto first = static_cast<std::uint32_t>(std::min(ia, ib)), second = static_cast<std::uint32_t>(std::max(ia, ib));
  ASSERT_TRUE(s.next_key(nullptr, &next));
  EXPECT_EQ(next, first);
  if (first != second) {
    ASSERT_TRUE(s.next_key(&first, &next));
    EXPECT_EQ(next, second);
  }
  EXPECT_EQ(s.next_key(&second, &next).error().errno_value(), ENOENT);
  key = 100;
  ASSERT_TRUE(s.next_key(&key, &next));
  EXPECT_EQ(next, first);
  ASSERT_TRUE(s.erase(&second));
  EXPECT_EQ(s.erase(&second).error().errno_value(), ENOENT);
}

}  // namespace
}  // namespace bpfvm::maps
