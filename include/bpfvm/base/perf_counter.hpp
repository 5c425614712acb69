// A hardware event of the calling thread (perf_event_open: CPU cycles, retired instructions), counted
// in user and kernel mode alike... only where the host exposes the PMU: a VM without one refuses, and
// open() says so.
#pragma once

#include <cstdint>

#include "bpfvm/base/result.hpp"

namespace bpfvm::os {

class PerfCounter {
 public:
  enum class Event { kCycles, kInstructions };
  // Counts `event` for the calling thread from now on.
  static Result<PerfCounter> open(Event event);
  PerfCounter(PerfCounter&& other) noexcept : fd_(other.fd_) { other.fd_ = -1; }
  PerfCounter& operator=(PerfCounter&&) = delete;
  ~PerfCounter();
  std::uint64_t read() const;

 private:
  explicit PerfCounter(int fd) : fd_(fd) {}
  int fd_;
};

}  // namespace bpfvm::os
