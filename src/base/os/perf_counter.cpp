#include "bpfvm/base/perf_counter.hpp"

#include <linux/perf_event.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace bpfvm::os {

Result<PerfCounter> PerfCounter::open(Event event) {
  perf_event_attr attr{};
  attr.size = sizeof attr;
  attr.type = PERF_TYPE_HARDWARE;
  attr.config = event == Event::kCycles ? PERF_COUNT_HW_CPU_CYCLES : PERF_COUNT_HW_INSTRUCTIONS;
  attr.exclude_hv = 1;
  const long fd = ::syscall(SYS_perf_event_open, &attr, 0, -1, -1, PERF_FLAG_FD_CLOEXEC);
  if (fd < 0) {
    return make_error(Errc::kNotSupported, "perf_event_open({}): {}",
                      event == Event::kCycles ? "cycles" : "instructions", std::strerror(errno));
  }
  return PerfCounter(static_cast<int>(fd));
}

PerfCounter::~PerfCounter() {
  if (fd_ >= 0) ::close(fd_);
}

std::uint64_t PerfCounter::read() const {
  std::uint64_t v = 0;
  if (::read(fd_, &v, sizeof v) != sizeof v) return 0;
  return v;
}

}  // namespace bpfvm::os
