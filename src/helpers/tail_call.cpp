// bpf_tail_call (12): continue in another program of a program array, on the same context. The
// caller does not resume; when the slot is empty, the index out of range or the chain already 33 long
// (MAX_TAIL_CALL_CNT), the call falls through and the caller continues, as in the kernel.
#include <linux/bpf.h>

#include "bpfvm/helpers/run_env.hpp"
#include "bpfvm/maps/prog_array.hpp"
#include "helper_args.hpp"

namespace bpfvm::helpers {

namespace {

constexpr std::uint32_t kMaxTailCalls = 33;

std::uint64_t tail_call(std::uint64_t, std::uint64_t map_arg, std::uint64_t index, std::uint64_t, std::uint64_t,
                        CallContext* ctx) {
  auto* env = static_cast<RunEnv*>(ctx->user());
  maps::Map* map = as_map(map_arg, ctx);
  if (!env || !env->tail_call || !map || map->def().type != BPF_MAP_TYPE_PROG_ARRAY) return 0;
  if (index >= map->def().max_entries || env->tail_calls >= kMaxTailCalls) return 0;
  auto target = static_cast<maps::ProgArray*>(map)->program(static_cast<std::uint32_t>(index));
  if (!target) return 0;
  auto r = env->tail_call(env->tail_call_self, target.get(), *env);
  if (!r) {
    ctx->fail(std::move(r).error().with_context(fmt::format("tail call to slot {}", index)));
    return 0;
  }
  ctx->request_exit();  // the tail-called program's r0 is the caller's result
  return *r;
}

}  // namespace

void install_tail_call_helper(Registry& table) { table.set(BPF_FUNC_tail_call, tail_call); }

}  // namespace bpfvm::helpers
