// Programs on two threads for a while (BPFVM_STRESS_SECONDS, default 10) against concurrent user-space
// updates of the same maps: atomic adds are never lost, the hash stays consistent, nothing crashes.
#include <gtest/gtest.h>
#include <linux/bpf.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <thread>

#include "bpfvm/runtime/object.hpp"

namespace bpfvm::runtime {
namespace {

#ifdef BPFVM_PROGS_DIR
TEST(Stress, TwoProgramThreadsAndUserSpaceUpdates) {
  const char* env = std::getenv("BPFVM_STRESS_SECONDS");
  const double seconds = env ? std::atof(env) : 10.0;
  const auto root = std::filesystem::temp_directory_path() / ("bpfvm-stress-" + std::to_string(::getpid()));
  Runtime rt(RuntimeOptions{root.string()});
  auto obj = Object::open_file(rt, std::string(BPFVM_PROGS_DIR) + "/maps.bpf.o");
  ASSERT_TRUE(obj) << obj.error().to_string();
  auto add_total = obj->find_program("add_total");    // __sync_fetch_and_add(shared_total[0], skb->len)
  auto count_runs = obj->find_program("count_runs");  // counts[0] += 1 (not atomic), pairs[7] = ...
  auto pairs = obj->find_map("pairs");
  std::vector<std::uint8_t> frame(14 + 20 + 100, 0);  // skb->len = 120
  frame[12] = 0x08;
  frame[14] = 0x45;

  std::atomic<bool> stop{false};
  std::atomic<std::uint64_t> runs{0}, failures{0};
  auto program_thread = [&] {
    while (!stop.load(std::memory_order_relaxed)) {
      auto a = add_total->test_run({frame, {}, 1});
      auto b = count_runs->test_run({frame, {}, 1});
      if (!a || !b || a->retval != 0) failures.fetch_add(1);
      runs.fetch_add(1, std::memory_order_relaxed);
    }
  };
  std::atomic<std::uint64_t> user_ops{0};
  auto user_thread = [&] {
    std::uint32_t k = 0;
    std::uint8_t value[16] = {};
    while (!stop.load(std::memory_order_relaxed)) {
      k = (k * 1103515245u + 12345u) % 32;
      value[0] = static_cast<std::uint8_t>(k);
      if (k % 3 == 0) {
        (void)pairs->impl().erase(&k);
      } else {
        (void)pairs->impl().update(&k, value, BPF_ANY);  // may be E2BIG when full: fine
      }
      user_ops.fetch_add(1, std::memory_order_relaxed);
    }
  };
  std::thread t1(program_thread), t2(program_thread), t3(user_thread);
  std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
  stop = true;
  t1.join();
  t2.join();
  t3.join();

  EXPECT_EQ(failures.load(), 0u);
  EXPECT_GT(runs.load(), 1000u);
  EXPECT_GT(user_ops.load(), 1000u);
  // Every atomic add landed.
  const std::uint32_t zero = 0;
  std::uint64_t total = 0;
  ASSERT_TRUE(obj->find_map("shared_total")->impl().lookup(&zero, &total));
  EXPECT_EQ(total, runs.load() * 120);
  // The hash is whole: a walk ends, finds at most max_entries keys, and each key looks up.
  std::uint32_t key = 0, next = 0, found = 0;
  bool first = true;
  std::uint8_t value[16];
  while (pairs->impl().next_key(first ? nullptr : &key, &next)) {
    first = false;
    key = next;
    ASSERT_LE(++found, pairs->def().max_entries);
    EXPECT_TRUE(pairs->impl().lookup(&key, value));
  }
  std::filesystem::remove_all(root);
}
#endif

}  // namespace
}  // namespace bpfvm::runtime
