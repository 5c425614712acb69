// The scenario of tests/progs/timer_runs.bpf.c, for one side (the kernel through libbpf, or bpfvm): its
// programs run in order, the timers expire, user space writes and deletes elements whose timers are
// pending, and what the maps hold at the end is returned, for a test to compare or check.
#pragma once

#include <chrono>
#include <cstdint>
#include <cstring>
#include <functional>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

namespace bpfvm::testing {

// struct elem of timer_runs.bpf.c.
struct TimerElem {
  std::int64_t fired, key_seen, again, cancelled;
  std::uint64_t timer[2];
};

struct TimerSide {
  std::function<void(const char* program)> run;
  // lookup returns false when there is no such element.
  std::function<bool(const char* map, const void* key, void* value)> lookup;
  std::function<void(const char* map, const void* key, const void* value)> update;
  std::function<void(const char* map, const void* key)> erase;
};

// bpfvm's side: the programs of `object` (a runtime::Object) test-run on `frame`, its maps through their
// user-space face.
template <typename Object>
TimerSide bpfvm_timer_side(Object& object, std::vector<std::uint8_t> frame) {
  return TimerSide{
      [&object, frame](const char* name) {
        auto r = object.find_program(name)->test_run({frame, {}, 1});
        ASSERT_TRUE(r) << name << ": " << r.error().to_string();
        EXPECT_EQ(r->retval, 0u) << name;
      },
      [&object](const char* map, const void* key, void* value) { return bool(object.find_map(map)->impl().lookup(key, value)); },
      [&object](const char* map, const void* key, const void* value) {
        EXPECT_TRUE(object.find_map(map)->impl().update(key, value, 0));
      },
      [&object](const char* map, const void* key) { EXPECT_TRUE(object.find_map(map)->impl().erase(key)); }};
}

struct TimerOutcome {
  std::int64_t results[16] = {};
  TimerElem array[5] = {};
  TimerElem hash77 = {};
  bool hash88 = true;  // whether the deleted element is still there
};

inline TimerOutcome run_timer_scenario(const TimerSide& side) {
  for (const char* p : {"codes", "arm_array", "arm_hash", "arm_self_cancel", "arm_absolute", "arm_to_delete"}) side.run(p);
  // The expiries (microseconds away), waited for up to 5 s: array elements 1-3 once, hash element 77
  // four times.
  const std::int64_t k77 = 77, k88 = 88;
  const auto done = [&] {
    TimerElem e{};
    for (std::uint32_t k = 1; k <= 3; ++k) {
      if (!side.lookup("atimers", &k, &e) || e.fired < 1) return false;
    }
    return side.lookup("htimers", &k77, &e) && e.fired >= 4;
  };
  for (int i = 0; i < 500 && !done(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  // User space writes element 0, whose 10 s timer is pending, and deletes hash element 88 (pending too).
  const std::uint32_t k0 = 0;
  const TimerElem written{.fired = 100, .key_seen = 0, .again = 0, .cancelled = 0, .timer = {~0ull, ~0ull}};
  side.update("atimers", &k0, &written);
  side.erase("htimers", &k88);
  side.run("after_write");
  std::this_thread::sleep_for(std::chrono::milliseconds(50));  // nothing more may fire
  TimerOutcome out;
  for (std::uint32_t i = 0; i < 16; ++i) side.lookup("results", &i, &out.results[i]);
  for (std::uint32_t i = 0; i < 5; ++i) side.lookup("atimers", &i, &out.array[i]);
  side.lookup("htimers", &k77, &out.hash77);
  TimerElem gone{};
  out.hash88 = side.lookup("htimers", &k88, &gone);
  return out;
}

}  // namespace bpfvm::testing
