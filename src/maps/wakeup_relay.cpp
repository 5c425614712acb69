#include "wakeup_relay.hpp"

namespace bpfvm::maps {

namespace {
constexpr int kPollMs = 20;  // how soon the thread notices it must stop
}

Result<std::unique_ptr<WakeupRelay>> WakeupRelay::start(std::function<std::uint32_t()> current,
                                                        std::function<void(std::uint32_t, int)> wait, bool signal_now) {
  std::unique_ptr<WakeupRelay> relay(new WakeupRelay);
  relay->event_ = BPFVM_TRY(os::EventFd::create());
  if (signal_now) relay->event_.signal();
  WakeupRelay* r = relay.get();
  relay->thread_ = std::thread([r, current = std::move(current), wait = std::move(wait)] {
    std::uint32_t seen = current();
    while (!r->stop_.load(std::memory_order_acquire)) {
      wait(seen, kPollMs);
      const std::uint32_t now = current();
      if (now != seen) {
        seen = now;
        r->event_.signal();
      }
    }
  });
  return relay;
}

WakeupRelay::~WakeupRelay() {
  stop_.store(true, std::memory_order_release);
  if (thread_.joinable()) thread_.join();
}

}  // namespace bpfvm::maps
