// Turns a map's wake-ups (a counter in shared memory that producers bump and futex-wake, which works
// across processes) into an eventfd that an event loop can poll with the rest of its fds: a thread
// sleeps on the counter and signals the eventfd each time it moves. Private to src/maps.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <thread>

#include "bpfvm/base/wakeup.hpp"

namespace bpfvm::maps {

class WakeupRelay {
 public:
  // `current` reads the counter; `wait(seen, timeout_ms)` sleeps until it differs from `seen` or the
  // timeout passes. With `signal_now`, the eventfd starts readable (there is something to read already).
  static Result<std::unique_ptr<WakeupRelay>> start(std::function<std::uint32_t()> current,
                                                     std::function<void(std::uint32_t, int)> wait, bool signal_now);
  ~WakeupRelay();
  WakeupRelay(const WakeupRelay&) = delete;
  WakeupRelay& operator=(const WakeupRelay&) = delete;

  int fd() const { return event_.fd(); }
  // Clears the eventfd (a reader does this before it consumes).
  void drain() const { event_.drain(); }

 private:
  WakeupRelay() = default;
  os::EventFd event_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace bpfvm::maps
