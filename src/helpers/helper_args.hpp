// Argument checks shared by helper implementations. Private to src/helpers.
#pragma once

#include <cstdint>

#include "bpfvm/helpers/helpers.hpp"
#include "bpfvm/helpers/run_env.hpp"
#include "bpfvm/maps/map.hpp"
#include "bpfvm/base/call_context.hpp"

namespace bpfvm::helpers {

// The map a program passed, or null when it is not a live map (checked mode only; in unchecked mode
// the verifier proved it is one).
inline maps::Map* as_map(std::uint64_t arg, CallContext* ctx) {
  void* p = reinterpret_cast<void*>(arg);
  if (ctx->checked() && !maps::Map::is_live(p)) return nullptr;
  return static_cast<maps::Map*>(p);
}

inline bool readable(CallContext* ctx, std::uint64_t addr, std::uint64_t size) {
  return addr != 0 && ctx->may_access(addr, size, false);
}

// The run's environment: the runner's, else the thread's.
inline const RunEnv& env_of(CallContext* ctx) {
  return ctx->user() ? *static_cast<const RunEnv*>(ctx->user()) : current_thread_env();
}

inline std::uint64_t errno_result(int err) { return static_cast<std::uint64_t>(-static_cast<std::int64_t>(err)); }

void install_map_helpers(Registry& table);
void install_basic_helpers(Registry& table);
void install_task_helpers(Registry& table);
void install_callback_helpers(Registry& table);
void install_ringbuf_helpers(Registry& table);
void install_dynptr_helpers(Registry& table);
void install_syscall_helpers(Registry& table);
void install_trace_helpers(Registry& table);
void install_lock_helpers(Registry& table);
void install_tail_call_helper(Registry& table);
void install_snprintf_helper(Registry& table);
void install_perf_event_helpers(Registry& table);
void install_packet_helpers(Registry& table);
void install_socket_helpers(Registry& table);
void install_timer_helpers(Registry& table);

}  // namespace bpfvm::helpers
