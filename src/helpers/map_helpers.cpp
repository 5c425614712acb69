// Map helpers: lookup (1), update (2), delete (3), push (87), pop (88), peek (89).
#include <linux/bpf.h>

#include <cerrno>

#include "bpfvm/helpers/run_env.hpp"
#include "bpfvm/maps/map.hpp"
#include "helper_args.hpp"

namespace bpfvm::helpers {

namespace {

std::uint64_t map_lookup_elem(std::uint64_t map_arg, std::uint64_t key_arg, std::uint64_t, std::uint64_t,
                              std::uint64_t, CallContext* ctx) {
  maps::Map* map = as_map(map_arg, ctx);
  if (!map || !readable(ctx, key_arg, map->def().key_size)) return 0;
  void* value = map->lookup_in_place(reinterpret_cast<const void*>(key_arg));
  if (value && ctx->checked() && !map->inner_def()) {
    const bool writable = !(map->def().map_flags & BPF_F_RDONLY_PROG);
    ctx->allow_region({reinterpret_cast<std::uint64_t>(value), map->def().value_size, writable, "map value"});
  }
  return reinterpret_cast<std::uint64_t>(value);
}

std::uint64_t map_update_elem(std::uint64_t map_arg, std::uint64_t key_arg, std::uint64_t value_arg,
                              std::uint64_t flags, std::uint64_t, CallContext* ctx) {
  maps::Map* map = as_map(map_arg, ctx);
  if (!map || !readable(ctx, key_arg, map->def().key_size) || !readable(ctx, value_arg, map->def().value_size)) {
    return errno_result(EFAULT);
  }
  if (map->inner_def()) return errno_result(EINVAL);  // programs cannot replace inner maps
  auto r = map->update_from_program(reinterpret_cast<const void*>(key_arg), reinterpret_cast<const void*>(value_arg),
                                    flags);
  return r ? 0 : errno_result(r.error().errno_value());
}

std::uint64_t map_delete_elem(std::uint64_t map_arg, std::uint64_t key_arg, std::uint64_t, std::uint64_t,
                              std::uint64_t, CallContext* ctx) {
  maps::Map* map = as_map(map_arg, ctx);
  if (!map || !readable(ctx, key_arg, map->def().key_size)) return errno_result(EFAULT);
  auto r = map->erase_from_program(reinterpret_cast<const void*>(key_arg));
  return r ? 0 : errno_result(r.error().errno_value());
}

// bpf_map_push_elem (87), bpf_map_pop_elem (88), bpf_map_peek_elem (89): queues, stacks, bloom filters.
std::uint64_t map_push_elem(std::uint64_t map_arg, std::uint64_t value_arg, std::uint64_t flags, std::uint64_t,
                            std::uint64_t, CallContext* ctx) {
  maps::Map* map = as_map(map_arg, ctx);
  if (!map || !readable(ctx, value_arg, map->def().value_size)) return errno_result(EFAULT);
  auto r = map->push(reinterpret_cast<const void*>(value_arg), flags);
  return r ? 0 : errno_result(r.error().errno_value());
}

std::uint64_t map_pop_elem(std::uint64_t map_arg, std::uint64_t value_arg, std::uint64_t, std::uint64_t,
                           std::uint64_t, CallContext* ctx) {
  maps::Map* map = as_map(map_arg, ctx);
  if (!map || !ctx->may_access(value_arg, map->def().value_size, true)) return errno_result(EFAULT);
  auto r = map->pop(reinterpret_cast<void*>(value_arg));
  return r ? 0 : errno_result(r.error().errno_value());
}

std::uint64_t map_peek_elem(std::uint64_t map_arg, std::uint64_t value_arg, std::uint64_t, std::uint64_t,
                            std::uint64_t, CallContext* ctx) {
  maps::Map* map = as_map(map_arg, ctx);
  if (!map || !ctx->may_access(value_arg, map->def().value_size, true)) return errno_result(EFAULT);
  auto r = map->peek(reinterpret_cast<void*>(value_arg));
  return r ? 0 : errno_result(r.error().errno_value());
}

// bpf_get_local_storage (81): the program's cgroup storage of the map's type (this CPU's slot of a
// per-CPU one); never NULL for a program the verifier passed.
std::uint64_t get_local_storage(std::uint64_t map_arg, std::uint64_t, std::uint64_t, std::uint64_t, std::uint64_t,
                                CallContext* ctx) {
  maps::Map* map = as_map(map_arg, ctx);
  const auto* env = static_cast<const RunEnv*>(ctx->user());
  if (!map || !env) return 0;
  std::uint8_t* p = nullptr;
  if (map->def().type == BPF_MAP_TYPE_CGROUP_STORAGE) {
    p = env->cgroup_storage;
  } else if (map->def().type == BPF_MAP_TYPE_PERCPU_CGROUP_STORAGE && env->percpu_cgroup_storage) {
    p = env->percpu_cgroup_storage + std::size_t{env->cpu} * env->percpu_stride;
  }
  if (p && ctx->checked()) ctx->allow_region({reinterpret_cast<std::uint64_t>(p), map->def().value_size, true, "cgroup storage"});
  return reinterpret_cast<std::uint64_t>(p);
}

}  // namespace

void install_map_helpers(Registry& table) {
  table.set(BPF_FUNC_get_local_storage, get_local_storage);
  table.set(BPF_FUNC_map_push_elem, map_push_elem);
  table.set(BPF_FUNC_map_pop_elem, map_pop_elem);
  table.set(BPF_FUNC_map_peek_elem, map_peek_elem);
  table.set(BPF_FUNC_map_lookup_elem, map_lookup_elem);
  table.set(BPF_FUNC_map_update_elem, map_update_elem);
  table.set(BPF_FUNC_map_delete_elem, map_delete_elem);
}

}  // namespace bpfvm::helpers
