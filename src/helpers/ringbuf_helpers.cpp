// Ring buffer helpers: ringbuf_output (130), ringbuf_reserve (131), ringbuf_submit (132),
// ringbuf_discard (133), ringbuf_query (134).
#include <linux/bpf.h>

#include <cerrno>

#include "bpfvm/maps/ringbuf.hpp"
#include "helper_args.hpp"

namespace bpfvm::helpers {

namespace {

maps::RingBuffer* as_ringbuf(std::uint64_t arg, CallContext* ctx) {
  maps::Map* map = as_map(arg, ctx);
  if (!map || map->def().type != BPF_MAP_TYPE_RINGBUF) return nullptr;
  return static_cast<maps::RingBuffer*>(map);
}

std::uint64_t ringbuf_output(std::uint64_t map_arg, std::uint64_t data, std::uint64_t size, std::uint64_t flags,
                             std::uint64_t, CallContext* ctx) {
  maps::RingBuffer* rb = as_ringbuf(map_arg, ctx);
  if (!rb || (size && !readable(ctx, data, size))) return errno_result(EFAULT);
  if (const int r = rb->output(reinterpret_cast<const void*>(data), size, flags); r != 0) return errno_result(-r);
  return 0;
}

std::uint64_t ringbuf_reserve(std::uint64_t map_arg, std::uint64_t size, std::uint64_t flags, std::uint64_t,
                              std::uint64_t, CallContext* ctx) {
  maps::RingBuffer* rb = as_ringbuf(map_arg, ctx);
  if (!rb) return 0;
  void* rec = rb->reserve(size, flags);
  if (rec && ctx->checked()) ctx->allow_region({reinterpret_cast<std::uint64_t>(rec), size, true, "ringbuf record"});
  return reinterpret_cast<std::uint64_t>(rec);
}

// The verifier proves a submitted pointer came from reserve; without it, find the ring buffer it
// belongs to among those the program uses.
template <bool kDiscard>
std::uint64_t ringbuf_commit(std::uint64_t sample, std::uint64_t flags, std::uint64_t, std::uint64_t, std::uint64_t,
                             CallContext* ctx) {
  if (flags & ~static_cast<std::uint64_t>(BPF_RB_NO_WAKEUP | BPF_RB_FORCE_WAKEUP)) return 0;
  maps::RingBuffer* owner = maps::RingBuffer::owner_of(reinterpret_cast<const void*>(sample), !ctx->checked());
  if (!owner) {
    ctx->fail(make_error(Errc::kFault, "bpf_ringbuf_{} of 0x{:x}, which is not a reserved record",
                         kDiscard ? "discard" : "submit", sample));
    return 0;
  }
  owner->commit(reinterpret_cast<void*>(sample), flags, kDiscard);
  return 0;
}

std::uint64_t ringbuf_query(std::uint64_t map_arg, std::uint64_t flags, std::uint64_t, std::uint64_t, std::uint64_t,
                            CallContext* ctx) {
  maps::RingBuffer* rb = as_ringbuf(map_arg, ctx);
  return rb ? rb->query(flags) : 0;
}

}  // namespace

void install_ringbuf_helpers(Registry& table) {
  table.set(BPF_FUNC_ringbuf_output, ringbuf_output);
  table.set(BPF_FUNC_ringbuf_reserve, ringbuf_reserve);
  table.set(BPF_FUNC_ringbuf_submit, ringbuf_commit<false>);
  table.set(BPF_FUNC_ringbuf_discard, ringbuf_commit<true>);
  table.set(BPF_FUNC_ringbuf_query, ringbuf_query);
}

}  // namespace bpfvm::helpers
