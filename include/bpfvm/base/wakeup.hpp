// Waking other threads and processes: a futex on a 32-bit word (shared memory works across processes),
// and an eventfd that an event loop can poll.
#pragma once

#include <atomic>
#include <cstdint>

#include "bpfvm/base/result.hpp"

namespace bpfvm::os {

// Sleeps while `word` holds `expected`, until futex_wake or `timeout_ms` (-1: no limit). Returns at once
// when the word already differs. Spurious returns happen: callers check their condition again.
void futex_wait(std::atomic<std::uint32_t>& word, std::uint32_t expected, int timeout_ms);
// Wakes every thread (of any process) sleeping on `word`.
void futex_wake_all(std::atomic<std::uint32_t>& word);

// An eventfd (non-blocking, close-on-exec): readable while its counter is not zero.
class EventFd {
 public:
  static Result<EventFd> create();
  EventFd() = default;
  EventFd(EventFd&& other) noexcept : fd_(other.fd_) { other.fd_ = -1; }
  EventFd& operator=(EventFd&& other) noexcept;
  EventFd(const EventFd&) = delete;
  EventFd& operator=(const EventFd&) = delete;
  ~EventFd();

  int fd() const { return fd_; }
  void signal() const { eventfd_signal(fd_); }         // adds 1 to the counter
  std::uint64_t drain() const { return eventfd_drain(fd_); }  // reads and clears the counter (0 when it was clear)
  // Takes a descriptor over (it closes it when it goes).
  static EventFd adopt(int fd) {
    EventFd e;
    e.fd_ = fd;
    return e;
  }
  // Gives the descriptor up: the caller owns (and closes) it.
  int release() {
    const int fd = fd_;
    fd_ = -1;
    return fd;
  }

  static void eventfd_signal(int fd);
  static std::uint64_t eventfd_drain(int fd);

 private:
  int fd_ = -1;
};

}  // namespace bpfvm::os
