// The agent's reads of its process's memory (see user_memory.hpp).
#include "user_memory.hpp"

#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include <atomic>
#include <cstring>

#include "bpfvm/agent/syscall_sites.hpp"
#include "forked.hpp"

namespace bpfvm::agent::detail {

namespace {

constinit std::atomic<bool> g_fast{false};
constinit std::atomic<bool> g_disabled{false};
BPFVM_AGENT_FORKED constinit std::atomic<std::uint64_t> g_generation{2};
constinit std::atomic<std::uint32_t> g_writers{0};
constinit std::atomic<std::int64_t> g_in_flight{0};

constexpr std::uint64_t kPage = 4096;
constexpr std::size_t kSlots = 16;
struct Checked {
  std::uint64_t page = 0;        // address / kPage
  std::uint64_t generation = 0;  // 0: empty
};
// Per thread, so that no two threads race on an entry; trivially destructible, zero-initialised, and
// small (this is in every thread's static TLS: 256 bytes).
__attribute__((tls_model("initial-exec"))) thread_local Checked t_checked[kSlots];
__attribute__((tls_model("initial-exec"))) thread_local bool t_copying = false;

Checked& slot(std::uint64_t page) { return t_checked[page % (kSlots)]; }

bool kernel_read(pid_t pid, void* dst, std::uint64_t src, std::size_t size) {
  struct iovec local {dst, size};
  struct iovec remote {reinterpret_cast<void*>(src), size};
  return ::process_vm_readv(pid, &local, 1, &remote, 1, 0) == static_cast<ssize_t>(size);
}

}  // namespace

bool is_memory_syscall(std::uint64_t nr, const std::uint64_t* a) {
  switch (nr) {
    case SYS_munmap:
    case SYS_mremap:
    case SYS_mprotect:
    case SYS_pkey_mprotect:
    case SYS_brk:
    case SYS_shmdt:
    case SYS_remap_file_pages:
    case SYS_process_madvise:
      return true;
    case SYS_mmap:
      return (a[3] & MAP_FIXED) != 0;  // may replace what is there
    case SYS_shmat:
      return true;                     // SHM_REMAP replaces
    case SYS_madvise:
      // malloc's frequent ones leave the range readable (zero-filled); others may not (guard regions,
      // poisoning, removal of a file's pages).
      return a[2] != MADV_DONTNEED && a[2] != MADV_FREE && a[2] != MADV_WILLNEED && a[2] != MADV_NORMAL &&
             a[2] != MADV_RANDOM && a[2] != MADV_SEQUENTIAL && a[2] != MADV_HUGEPAGE && a[2] != MADV_NOHUGEPAGE;
    default:
      return false;
  }
}

std::int64_t memory_syscall(std::uint64_t nr, const std::uint64_t* args) {
  g_writers.fetch_add(1, std::memory_order_seq_cst);
  g_generation.fetch_add(1, std::memory_order_seq_cst);
  // This thread's own copy (a signal handler interrupted it) cannot finish first.
  const std::int64_t own = t_copying ? 1 : 0;
  while (g_in_flight.load(std::memory_order_seq_cst) > own) __builtin_ia32_pause();
  const std::int64_t ret = raw_syscall(nr, args);
  g_generation.fetch_add(1, std::memory_order_seq_cst);
  g_writers.fetch_sub(1, std::memory_order_seq_cst);
  return ret;
}

bool read(pid_t pid, void* dst, std::uint64_t src, std::size_t size) {
  if (size == 0) return true;
  if (src + size < src) return false;
  const std::uint64_t first = src / kPage, last = (src + size - 1) / kPage;
  if (g_fast.load(std::memory_order_relaxed) && last - first < kSlots) {
    t_copying = true;
    g_in_flight.fetch_add(1, std::memory_order_seq_cst);
    bool hit = g_writers.load(std::memory_order_seq_cst) == 0;
    const std::uint64_t gen = g_generation.load(std::memory_order_seq_cst);
    for (std::uint64_t p = first; hit && p <= last; ++p) hit = slot(p).page == p && slot(p).generation == gen;
    if (hit) std::memcpy(dst, reinterpret_cast<const void*>(src), size);
    g_in_flight.fetch_sub(1, std::memory_order_seq_cst);
    t_copying = false;
    if (hit) return true;
  }
  const bool quiet = g_writers.load(std::memory_order_seq_cst) == 0;
  const std::uint64_t gen = g_generation.load(std::memory_order_seq_cst);
  if (!kernel_read(pid, dst, src, size)) return false;
  // Remembered only when no memory syscall ran before or during the check.
  if (quiet && last - first < kSlots && g_writers.load(std::memory_order_seq_cst) == 0 &&
      g_generation.load(std::memory_order_seq_cst) == gen) {
    for (std::uint64_t p = first; p <= last; ++p) slot(p) = {p, gen};
  }
  return true;
}

void forked() {
  // The child's only thread is the one that forked: copies in flight in other threads did not come.
  store_if_changed(g_in_flight, t_copying ? 1 : 0);
  store_if_changed(g_writers, 0);
  g_generation.fetch_add(2);
}

void enable_fast_reads() {
  if (!g_disabled.load()) g_fast.store(true);
}
void disable_fast_reads() {
  g_disabled.store(true);
  g_fast.store(false);
}
bool fast_reads() { return g_fast.load(); }

}  // namespace bpfvm::agent::detail
