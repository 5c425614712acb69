// Dynptr helpers: dynptr_from_mem (197), ringbuf_reserve_dynptr (198), ringbuf_submit_dynptr (199),
// ringbuf_discard_dynptr (200), dynptr_read (201), dynptr_write (202), dynptr_data (203), and
// user_ringbuf_drain (209), whose callback gets each sample as a dynptr.
//
// A struct bpf_dynptr is 16 opaque bytes on the program's stack. bpfvm lays it out as the kernel's
// struct bpf_dynptr_kern does (include/linux/bpf.h): the data's address, then a word with the size in
// its low 24 bits, the kind above (bits 28-30) and read-only in the top bit, then the offset of the
// view into the data. A null dynptr (all zero) is what a failed constructor leaves: every helper
// refuses it, as the kernel's do.
#include <linux/bpf.h>

#include <cerrno>
#include <cstring>

#include "bpfvm/maps/ringbuf.hpp"
#include "helper_args.hpp"

namespace bpfvm::helpers {

namespace {

struct Dynptr {
  std::uint64_t data;
  std::uint32_t size_kind;
  std::uint32_t offset;
};
static_assert(sizeof(Dynptr) == sizeof(struct bpf_dynptr));

constexpr std::uint32_t kMaxSize = (1u << 24) - 1;  // DYNPTR_MAX_SIZE
constexpr std::uint32_t kKindShift = 28, kReadOnly = 1u << 31;
enum Kind : std::uint32_t { kLocal = 1, kRingbuf = 2 };  // enum bpf_dynptr_type

Dynptr* as_dynptr(std::uint64_t p) { return reinterpret_cast<Dynptr*>(p); }
std::uint32_t size_of(const Dynptr& d) { return d.size_kind & kMaxSize; }
void make(Dynptr& d, std::uint64_t data, std::uint32_t size, Kind kind) {
  d.data = data;
  d.size_kind = size | (static_cast<std::uint32_t>(kind) << kKindShift);
  d.offset = 0;
}
void make_null(Dynptr& d) { d = Dynptr{}; }

// Whether [offset, offset + len) lies in the dynptr's view (bpf_dynptr_check_off_len).
bool in_bounds(const Dynptr& d, std::uint64_t offset, std::uint64_t len) {
  return offset <= size_of(d) && len <= size_of(d) - offset;
}

std::uint64_t dynptr_from_mem(std::uint64_t data, std::uint64_t size, std::uint64_t flags, std::uint64_t out,
                              std::uint64_t, CallContext*) {
  Dynptr& d = *as_dynptr(out);
  if (size > kMaxSize) {
    make_null(d);
    return errno_result(E2BIG);
  }
  if (flags != 0) {
    make_null(d);
    return errno_result(EINVAL);
  }
  make(d, data, static_cast<std::uint32_t>(size), kLocal);
  return 0;
}

std::uint64_t ringbuf_reserve_dynptr(std::uint64_t map_arg, std::uint64_t size, std::uint64_t flags, std::uint64_t out,
                                     std::uint64_t, CallContext* ctx) {
  Dynptr& d = *as_dynptr(out);
  maps::Map* map = as_map(map_arg, ctx);
  if (!map || map->def().type != BPF_MAP_TYPE_RINGBUF) {
    make_null(d);
    return errno_result(EINVAL);
  }
  if (flags != 0) {
    make_null(d);
    return errno_result(EINVAL);
  }
  if (size > kMaxSize) {
    make_null(d);
    return errno_result(E2BIG);
  }
  void* rec = static_cast<maps::RingBuffer*>(map)->reserve(size, 0);
  if (!rec) {  // no room: -EINVAL, as Linux (6.18) answers (KernelOracle.Dynptrs)
    make_null(d);
    return errno_result(EINVAL);
  }
  if (ctx->checked()) ctx->allow_region({reinterpret_cast<std::uint64_t>(rec), size, true, "ringbuf record"});
  make(d, reinterpret_cast<std::uint64_t>(rec), static_cast<std::uint32_t>(size), kRingbuf);
  return 0;
}

// Submits or discards the dynptr's record; a null dynptr (the reservation failed) has none. The
// dynptr is null afterwards.
template <bool kDiscard>
std::uint64_t ringbuf_commit_dynptr(std::uint64_t p, std::uint64_t flags, std::uint64_t, std::uint64_t, std::uint64_t,
                                    CallContext* ctx) {
  Dynptr& d = *as_dynptr(p);
  if (d.data == 0) return 0;
  maps::RingBuffer* owner = maps::RingBuffer::owner_of(reinterpret_cast<const void*>(d.data), !ctx->checked());
  if (!owner) {
    ctx->fail(make_error(Errc::kFault, "bpf_ringbuf_{}_dynptr of a dynptr whose data 0x{:x} is no reserved record",
                         kDiscard ? "discard" : "submit", d.data));
    return 0;
  }
  owner->commit(reinterpret_cast<void*>(d.data), flags & (BPF_RB_NO_WAKEUP | BPF_RB_FORCE_WAKEUP), kDiscard);
  make_null(d);
  return 0;
}

std::uint64_t dynptr_read(std::uint64_t dst, std::uint64_t len, std::uint64_t src, std::uint64_t offset,
                          std::uint64_t flags, CallContext* ctx) {
  const Dynptr& d = *as_dynptr(src);
  if (d.data == 0 || flags != 0) return errno_result(EINVAL);
  if (!in_bounds(d, offset, len)) return errno_result(E2BIG);
  const std::uint64_t from = d.data + d.offset + offset;
  if (len && !readable(ctx, from, len)) return errno_result(EFAULT);
  std::memmove(reinterpret_cast<void*>(dst), reinterpret_cast<const void*>(from), len);
  return 0;
}

std::uint64_t dynptr_write(std::uint64_t dst, std::uint64_t offset, std::uint64_t src, std::uint64_t len,
                           std::uint64_t flags, CallContext* ctx) {
  const Dynptr& d = *as_dynptr(dst);
  if (d.data == 0 || (d.size_kind & kReadOnly) || flags != 0) return errno_result(EINVAL);
  if (!in_bounds(d, offset, len)) return errno_result(E2BIG);
  const std::uint64_t to = d.data + d.offset + offset;
  if (len && !ctx->may_access(to, len, true)) return errno_result(EFAULT);
  std::memmove(reinterpret_cast<void*>(to), reinterpret_cast<const void*>(src), len);
  return 0;
}

// A pointer to `len` bytes of the data at `offset`, or NULL (a null or read-only dynptr, out of
// bounds); the verifier sizes the slice by the constant `len`.
std::uint64_t dynptr_data(std::uint64_t p, std::uint64_t offset, std::uint64_t len, std::uint64_t, std::uint64_t,
                          CallContext*) {
  const Dynptr& d = *as_dynptr(p);
  if (d.data == 0 || (d.size_kind & kReadOnly) || !in_bounds(d, offset, len)) return 0;
  return d.data + d.offset + offset;
}

// bpf_user_ringbuf_drain(map, callback, ctx, flags): callback(&dynptr, ctx) for each sample user space
// committed, the dynptr a local one over the sample; the number of samples, or the drain's error.
std::uint64_t user_ringbuf_drain(std::uint64_t map_arg, std::uint64_t callback, std::uint64_t callback_ctx,
                                 std::uint64_t flags, std::uint64_t, CallContext* ctx) {
  if (flags & ~static_cast<std::uint64_t>(BPF_RB_NO_WAKEUP | BPF_RB_FORCE_WAKEUP)) return errno_result(EINVAL);
  maps::Map* map = as_map(map_arg, ctx);
  if (!map || map->def().type != BPF_MAP_TYPE_USER_RINGBUF) return errno_result(EINVAL);
  bool failed = false;
  const long r = static_cast<maps::RingBuffer*>(map)->drain([&](std::uint8_t* sample, std::uint32_t size) -> long {
    Dynptr d;
    make(d, reinterpret_cast<std::uint64_t>(sample), size, kLocal);
    if (ctx->checked()) {
      ctx->allow_region({reinterpret_cast<std::uint64_t>(&d), sizeof d, false, "user ring buffer sample dynptr"});
      ctx->allow_region({reinterpret_cast<std::uint64_t>(sample), size, false, "user ring buffer sample"});
    }
    auto ret = ctx->call_function(callback, {reinterpret_cast<std::uint64_t>(&d), callback_ctx, 0, 0, 0});
    if (!ret) {
      ctx->fail(std::move(ret).error().with_context("bpf_user_ringbuf_drain callback"));
      failed = true;
      return 1;
    }
    return static_cast<long>(*ret);
  });
  if (failed) return 0;
  return static_cast<std::uint64_t>(static_cast<std::int64_t>(r));
}

}  // namespace

void install_dynptr_helpers(Registry& table) {
  table.set(BPF_FUNC_user_ringbuf_drain, user_ringbuf_drain);
  table.set(BPF_FUNC_dynptr_from_mem, dynptr_from_mem);
  table.set(BPF_FUNC_ringbuf_reserve_dynptr, ringbuf_reserve_dynptr);
  table.set(BPF_FUNC_ringbuf_submit_dynptr, ringbuf_commit_dynptr<false>);
  table.set(BPF_FUNC_ringbuf_discard_dynptr, ringbuf_commit_dynptr<true>);
  table.set(BPF_FUNC_dynptr_read, dynptr_read);
  table.set(BPF_FUNC_dynptr_write, dynptr_write);
  table.set(BPF_FUNC_dynptr_data, dynptr_data);
}

}  // namespace bpfvm::helpers
