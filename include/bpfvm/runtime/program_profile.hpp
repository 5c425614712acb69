// A program's profile, shared with other processes: `bpfvm prog profile` (in any process) turns
// profiling on, and while it is on, every run of the program in the process that loaded it adds its
// count, time and host counters (cycles, instructions) here. The memory is a page under the registry
// (<pin root>/.registry/profile-<id>), made with the program's record.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "bpfvm/base/result.hpp"
#include "bpfvm/base/shared_memory.hpp"

namespace bpfvm::runtime {

struct ProgramProfileData {
  std::uint64_t magic;
  std::atomic<std::uint32_t> profilers;  // how many profilers are watching: count while > 0
  // The host could not count them: cycles then come from the time-stamp counter (reference cycles at
  // the TSC's rate, not the core's), instructions are not counted.
  std::atomic<std::uint32_t> cycles_from_tsc, instructions_missing;
  std::atomic<std::uint64_t> runs, run_ns, cycles, instructions;
};

class ProgramProfile {
 public:
  static Result<std::shared_ptr<ProgramProfile>> create(const std::string& path);
  static Result<std::shared_ptr<ProgramProfile>> open(const std::string& path);
  ProgramProfileData& data() const { return *reinterpret_cast<ProgramProfileData*>(memory_.data()); }
  bool on() const { return data().profilers.load(std::memory_order_relaxed) != 0; }
  // Adds one run; `measure` runs the program.
  template <typename F>
  auto record(F&& measure) const;
  const std::string& path() const { return memory_.path(); }

 private:
  explicit ProgramProfile(os::SharedMemory memory) : memory_(std::move(memory)) {}
  os::SharedMemory memory_;
};

// The calling thread's counters, opened on first use: -1 when the host has none.
struct ThreadCounterValues {
  std::int64_t cycles = -1, instructions = -1;
  std::uint64_t tsc = 0;
};
ThreadCounterValues read_thread_counters();

template <typename F>
auto ProgramProfile::record(F&& measure) const {
  const ThreadCounterValues before = read_thread_counters();
  const auto t0 = std::chrono::steady_clock::now();
  auto result = measure();
  const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - t0).count();
  const ThreadCounterValues after = read_thread_counters();
  ProgramProfileData& d = data();
  d.runs.fetch_add(1, std::memory_order_relaxed);
  d.run_ns.fetch_add(static_cast<std::uint64_t>(ns), std::memory_order_relaxed);
  if (before.cycles >= 0) {
    d.cycles.fetch_add(static_cast<std::uint64_t>(after.cycles - before.cycles), std::memory_order_relaxed);
  } else {
    d.cycles.fetch_add(after.tsc - before.tsc, std::memory_order_relaxed);
    d.cycles_from_tsc.store(1, std::memory_order_relaxed);
  }
  if (before.instructions >= 0) {
    d.instructions.fetch_add(static_cast<std::uint64_t>(after.instructions - before.instructions), std::memory_order_relaxed);
  } else {
    d.instructions_missing.store(1, std::memory_order_relaxed);
  }
  return result;
}

}  // namespace bpfvm::runtime
