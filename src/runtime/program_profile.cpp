#include "bpfvm/runtime/program_profile.hpp"

#include <optional>

#include "bpfvm/base/perf_counter.hpp"

namespace bpfvm::runtime {

namespace {

constexpr std::uint64_t kProfileMagic = 0x464f52506d766670;  // "pfvmPROF"

}  // namespace

Result<std::shared_ptr<ProgramProfile>> ProgramProfile::create(const std::string& path) {
  auto memory = BPFVM_TRY(os::SharedMemory::create(path, 4096));
  reinterpret_cast<ProgramProfileData*>(memory.data())->magic = kProfileMagic;
  return std::shared_ptr<ProgramProfile>(new ProgramProfile(std::move(memory)));
}

Result<std::shared_ptr<ProgramProfile>> ProgramProfile::open(const std::string& path) {
  auto memory = BPFVM_TRY(os::SharedMemory::open(path));
  if (memory.size() < sizeof(ProgramProfileData) ||
      reinterpret_cast<ProgramProfileData*>(memory.data())->magic != kProfileMagic) {
    return make_error(Errc::kInvalid, "'{}' is not a bpfvm program profile", path);
  }
  return std::shared_ptr<ProgramProfile>(new ProgramProfile(std::move(memory)));
}

ThreadCounterValues read_thread_counters() {
  struct Counters {
    std::optional<os::PerfCounter> cycles, instructions;
    Counters() {
      if (auto c = os::PerfCounter::open(os::PerfCounter::Event::kCycles)) cycles.emplace(std::move(*c));
      if (auto i = os::PerfCounter::open(os::PerfCounter::Event::kInstructions)) instructions.emplace(std::move(*i));
    }
  };
  thread_local Counters counters;
  ThreadCounterValues v;
  v.tsc = __builtin_ia32_rdtsc();
  if (counters.cycles) v.cycles = static_cast<std::int64_t>(counters.cycles->read());
  if (counters.instructions) v.instructions = static_cast<std::int64_t>(counters.instructions->read());
  return v;
}

}  // namespace bpfvm::runtime
