#include "bpfvm/maps/cpu.hpp"

#include <atomic>
#include <cstdio>
#include <thread>

#include "bpfvm/base/file.hpp"

namespace bpfvm::maps {

namespace {
// "0-3", "0,2-5": the highest CPU number + 1, as the kernel sizes per-CPU data.
std::uint32_t parse_possible(const std::string& text) {
  std::uint32_t highest = 0;
  unsigned a = 0, b = 0;
  const char* p = text.c_str();
  while (*p) {
    int n = 0;
    if (std::sscanf(p, "%u-%u%n", &a, &b, &n) == 2 && n > 0) {
      highest = std::max<std::uint32_t>(highest, b);
    } else if (std::sscanf(p, "%u%n", &a, &n) == 1 && n > 0) {
      highest = std::max<std::uint32_t>(highest, a);
    } else {
      break;
    }
    p += n;
    if (*p == ',') ++p;
    if (*p == '\n') break;
  }
  return highest + 1;
}
}  // namespace

std::uint32_t possible_cpus() {
  static const std::uint32_t count = [] {
    auto text = os::read_text_file("/sys/devices/system/cpu/possible");
    if (text) return std::min<std::uint32_t>(parse_possible(*text), 4096);
    const unsigned hw = std::thread::hardware_concurrency();
    return hw ? hw : 1u;
  }();
  return count;
}

namespace {
// Constant-initialised and trivially destructible: no TLS init function, no guard, safe in a signal
// handler and after the thread's C++ thread-locals are gone.
__attribute__((tls_model("initial-exec"))) thread_local std::uint32_t t_slot_plus_one = 0;
}  // namespace

std::uint32_t this_cpu() {
  std::uint32_t s = t_slot_plus_one;
  if (s == 0) [[unlikely]] {
    static std::atomic<std::uint32_t> next{0};
    s = next.fetch_add(1, std::memory_order_relaxed) % possible_cpus() + 1;
    t_slot_plus_one = s;
  }
  return s - 1;
}

std::intptr_t this_cpu_tls_offset() {
  return reinterpret_cast<const char*>(&t_slot_plus_one) - static_cast<const char*>(__builtin_thread_pointer());
}

}  // namespace bpfvm::maps
