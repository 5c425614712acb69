#include "bpfvm/base/wakeup.hpp"

#include <linux/futex.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstring>
#include <ctime>

namespace bpfvm::os {

static_assert(sizeof(std::atomic<std::uint32_t>) == 4 && std::atomic<std::uint32_t>::is_always_lock_free);

namespace {
// The futex syscall made here, not through libc's syscall(): the agent, linked with this code, patches
// libc's syscall instructions, and its watcher thread must not be inside them when it does.
long futex(void* word, int op, std::uint32_t value, const struct timespec* ts) {
  long ret;
  register const struct timespec* r10 __asm__("r10") = ts;
  register long r8 __asm__("r8") = 0;
  register long r9 __asm__("r9") = 0;
  __asm__ volatile("syscall"
                   : "=a"(ret)
                   : "a"(static_cast<long>(SYS_futex)), "D"(word), "S"(static_cast<long>(op)),
                     "d"(static_cast<unsigned long>(value)), "r"(r10), "r"(r8), "r"(r9)
                   : "rcx", "r11", "memory", "cc");
  return ret;
}
}  // namespace

void futex_wait(std::atomic<std::uint32_t>& word, std::uint32_t expected, int timeout_ms) {
  struct timespec ts {timeout_ms / 1000, (timeout_ms % 1000) * 1'000'000L};
  // Not FUTEX_PRIVATE: the word may be in memory shared with other processes.
  futex(&word, FUTEX_WAIT, expected, timeout_ms < 0 ? nullptr : &ts);
}

void futex_wake_all(std::atomic<std::uint32_t>& word) { futex(&word, FUTEX_WAKE, INT_MAX, nullptr); }

Result<EventFd> EventFd::create() {
  EventFd e;
  e.fd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (e.fd_ < 0) return make_error(Errc::kIo, "eventfd: {}", std::strerror(errno));
  return e;
}

EventFd& EventFd::operator=(EventFd&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = other.fd_;
    other.fd_ = -1;
  }
  return *this;
}

EventFd::~EventFd() {
  if (fd_ >= 0) ::close(fd_);
}

void EventFd::eventfd_signal(int fd) {
  const std::uint64_t one = 1;
  [[maybe_unused]] const ssize_t n = ::write(fd, &one, sizeof one);  // EAGAIN: the counter is full, still readable
}

std::uint64_t EventFd::eventfd_drain(int fd) {
  std::uint64_t value = 0;
  return ::read(fd, &value, sizeof value) == sizeof value ? value : 0;
}

}  // namespace bpfvm::os
