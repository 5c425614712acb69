// Programs look up hashes without the writers' lock: a lookup that overlaps a change of the chains must
// still find every key that stays in the map, and never return another key's value.
#include <gtest/gtest.h>
#include <linux/bpf.h>

#include <atomic>
#include <cstring>
#include <thread>

#include "bpfvm/maps/map.hpp"

namespace bpfvm::maps {
namespace {

TEST(HashLookupFromPrograms, FindsStableKeysWhileOthersComeAndGo) {
  constexpr std::uint32_t kStable = 64, kChurn = 448;
  auto map = create_map({BPF_MAP_TYPE_HASH, 4, 8, kStable + kChurn, 0, "churn"});
  ASSERT_TRUE(map);
  for (std::uint32_t k = 0; k < kStable; ++k) {
    const std::uint64_t v = k * 1000;
    ASSERT_TRUE((*map)->update(&k, &v, BPF_ANY));
  }
  std::atomic<bool> stop{false};
  std::thread writer([&] {
    std::uint32_t round = 0;
    while (!stop.load(std::memory_order_relaxed)) {
      for (std::uint32_t k = kStable; k < kStable + kChurn; ++k) {
        const std::uint64_t v = k * 1000;
        (void)(*map)->update(&k, &v, BPF_ANY);
      }
      for (std::uint32_t k = kStable; k < kStable + kChurn; ++k) (void)(*map)->erase(&k);
      ++round;
    }
  });
  std::uint64_t misses = 0, wrong = 0;
  const auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(300);
  while (std::chrono::steady_clock::now() < end) {
    for (std::uint32_t k = 0; k < kStable; ++k) {
      const void* v = (*map)->lookup_in_place(&k);
      if (!v) {
        ++misses;
        continue;
      }
      std::uint64_t value;
      std::memcpy(&value, v, 8);
      if (value != k * 1000) ++wrong;
    }
  }
  stop = true;
  writer.join();
  EXPECT_EQ(misses, 0u);
  EXPECT_EQ(wrong, 0u);
}

// User-space lookups copy without the lock too; an update in place that overlaps a copy makes it retry,
// so a copied value is never half old, half new.
TEST(HashLookupFromUserSpace, CopiesAreNeverTorn) {
  auto map = create_map({BPF_MAP_TYPE_HASH, 4, 64, 4, 0, "torn"});
  ASSERT_TRUE(map);
  const std::uint32_t key = 1;
  std::uint64_t value[8] = {};
  ASSERT_TRUE((*map)->update(&key, value, BPF_ANY));
  std::atomic<bool> stop{false};
  std::thread writer([&] {
    std::uint64_t v[8];
    for (std::uint64_t n = 1; !stop.load(std::memory_order_relaxed); ++n) {
      for (auto& w : v) w = n;
      (void)(*map)->update(&key, v, BPF_EXIST);
    }
  });
  std::uint64_t torn = 0;
  const auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(300);
  while (std::chrono::steady_clock::now() < end) {
    std::uint64_t got[8];
    ASSERT_TRUE((*map)->lookup(&key, got));
    for (int i = 1; i < 8; ++i) torn += got[i] != got[0];
  }
  stop = true;
  writer.join();
  EXPECT_EQ(torn, 0u);
}

}  // namespace
}  // namespace bpfvm::maps
