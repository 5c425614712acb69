// Helpers that call back into the program: loop (181), for_each_map_elem (164) and find_vma (180).
#include <linux/bpf.h>

#include <cerrno>
#include <vector>

#include "helper_args.hpp"

namespace bpfvm::helpers {

namespace {

constexpr std::uint64_t kMaxLoops = 1u << 23;  // BPF_MAX_LOOPS

// bpf_loop(nr_loops, callback, ctx, flags): callback(i, ctx) for i = 0.. until it returns non-zero;
// the number of iterations run.
std::uint64_t loop(std::uint64_t nr_loops, std::uint64_t callback, std::uint64_t callback_ctx, std::uint64_t flags,
                   std::uint64_t, CallContext* ctx) {
  if (flags != 0) return errno_result(EINVAL);
  if (nr_loops > kMaxLoops) return errno_result(E2BIG);
  for (std::uint64_t i = 0; i < nr_loops; ++i) {
    auto r = ctx->call_function(callback, {i, callback_ctx, 0, 0, 0});
    if (!r) {
      ctx->fail(std::move(r).error().with_context(fmt::format("bpf_loop callback, iteration {}", i)));
      return 0;
    }
    if (*r != 0) return i + 1;
  }
  return nr_loops;
}

// bpf_for_each_map_elem(map, callback, ctx, flags): callback(map, &key, &value, ctx) for each element
// until it returns 1; the number of elements visited.
std::uint64_t for_each_map_elem(std::uint64_t map_arg, std::uint64_t callback, std::uint64_t callback_ctx,
                                std::uint64_t flags, std::uint64_t, CallContext* ctx) {
  if (flags != 0) return errno_result(EINVAL);
  maps::Map* map = as_map(map_arg, ctx);
  if (!map) return errno_result(EFAULT);
  // The map types the kernel can walk for a program: arrays and hashes, per-CPU and LRU included
  // (per-CPU maps give the callback this CPU's value).
  switch (map->def().type) {
    case BPF_MAP_TYPE_ARRAY:
    case BPF_MAP_TYPE_PERCPU_ARRAY:
    case BPF_MAP_TYPE_HASH:
    case BPF_MAP_TYPE_PERCPU_HASH:
    case BPF_MAP_TYPE_LRU_HASH:
    case BPF_MAP_TYPE_LRU_PERCPU_HASH: break;
    default: return errno_result(EINVAL);
  }
  std::vector<std::uint8_t> key(map->def().key_size), next(map->def().key_size);
  const bool writable = !(map->def().map_flags & BPF_F_RDONLY_PROG);
  std::uint64_t visited = 0;
  bool first = true;
  while (map->next_key(first ? nullptr : key.data(), next.data())) {
    first = false;
    key = next;
    void* value = map->lookup_in_place(key.data());
    if (!value) continue;  // deleted meanwhile
    ctx->allow_region({reinterpret_cast<std::uint64_t>(key.data()), key.size(), false, "map key"});
    ctx->allow_region({reinterpret_cast<std::uint64_t>(value), map->def().value_size, writable, "map value"});
    ++visited;
    auto r = ctx->call_function(callback, {map_arg, reinterpret_cast<std::uint64_t>(key.data()),
                                           reinterpret_cast<std::uint64_t>(value), callback_ctx, 0});
    if (!r) {
      ctx->fail(std::move(r).error().with_context("bpf_for_each_map_elem callback"));
      return 0;
    }
    if (*r == 1) break;
  }
  return visited;
}

// bpf_find_vma(task, addr, callback, ctx, flags): callback(task, vma, ctx) with the task's memory area
// that holds addr (kernel/bpf/task_iter.c): 0; -ENOENT when no area holds it or the task has no memory
// (a kernel thread), -EINVAL for flags. The callback's result is not looked at. The area is one of the
// emulated kernel objects (KernelMemory::find_vma: the task's /proc/PID/smaps).
std::uint64_t find_vma(std::uint64_t task, std::uint64_t addr, std::uint64_t callback, std::uint64_t callback_ctx,
                       std::uint64_t flags, CallContext* ctx) {
  if (flags != 0) return errno_result(EINVAL);
  KernelMemory* kernel = env_of(ctx).kernel;
  const std::uint64_t vma = kernel ? kernel->find_vma(task, addr) : 0;
  if (vma == 0) return errno_result(ENOENT);
  auto r = ctx->call_function(callback, {task, vma, callback_ctx, 0, 0});
  if (!r) ctx->fail(std::move(r).error().with_context("bpf_find_vma callback"));
  return 0;
}

}  // namespace

void install_callback_helpers(Registry& table) {
  table.set(BPF_FUNC_loop, loop);
  table.set(BPF_FUNC_for_each_map_elem, for_each_map_elem);
  table.set(BPF_FUNC_find_vma, find_vma);
}

}  // namespace bpfvm::helpers
