// bpf_spin_lock (93) and bpf_spin_unlock (94) on the struct bpf_spin_lock in a map value.
#include <linux/bpf.h>

#include <atomic>
#include <chrono>
#include <thread>

#include "bpfvm/helpers/run_env.hpp"
#include "helper_args.hpp"

namespace bpfvm::helpers {

namespace {

std::atomic<std::uint32_t>* lock_at(std::uint64_t addr, CallContext* ctx) {
  if (addr % 4 != 0 || !ctx->may_access(addr, 4, true)) return nullptr;
  return reinterpret_cast<std::atomic<std::uint32_t>*>(addr);
}

std::uint64_t spin_lock(std::uint64_t addr, std::uint64_t, std::uint64_t, std::uint64_t, std::uint64_t,
                        CallContext* ctx) {
  auto* word = lock_at(addr, ctx);
  auto* env = static_cast<RunEnv*>(ctx->user());
  if (!word || (env && env->held_lock)) {
    // The verifier allows one lock at a time, on a map value; a program that did not go through it
    // ends here instead of corrupting memory or deadlocking.
    ctx->fail(word ? make_error(Errc::kFault, "bpf_spin_lock while holding another lock")
                   : make_error(Errc::kFault, "bpf_spin_lock of 0x{:x}, which is not a lock in a map value", addr));
    return 0;
  }
  // Critical sections are short (the verifier forbids calls inside); a lock held for a second means a
  // program that never unlocks, and the run fails rather than hang.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(1);
  for (unsigned spins = 0; word->exchange(1, std::memory_order_acquire) != 0;) {
    if (++spins % 1024 == 0) {
      if (std::chrono::steady_clock::now() > deadline) {
        ctx->fail(make_error(Errc::kLimit, "bpf_spin_lock: the lock stayed held for a second"));
        return 0;
      }
      std::this_thread::yield();
    }
  }
  if (env) env->held_lock = word;
  return 0;
}

std::uint64_t spin_unlock(std::uint64_t addr, std::uint64_t, std::uint64_t, std::uint64_t, std::uint64_t,
                          CallContext* ctx) {
  auto* word = lock_at(addr, ctx);
  auto* env = static_cast<RunEnv*>(ctx->user());
  if (!word || (env && env->held_lock != word)) {
    ctx->fail(make_error(Errc::kFault, "bpf_spin_unlock of 0x{:x}, which this program does not hold", addr));
    return 0;
  }
  word->store(0, std::memory_order_release);
  if (env) env->held_lock = nullptr;
  return 0;
}

}  // namespace

void install_lock_helpers(Registry& table) {
  table.set(BPF_FUNC_spin_lock, spin_lock);
  table.set(BPF_FUNC_spin_unlock, spin_unlock);
}

}  // namespace bpfvm::helpers
