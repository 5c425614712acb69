// Packet helpers: bpf_skb_load_bytes (26) copies bytes of the packet from skb->data on,
// bpf_csum_diff (28) computes the checksum difference of two word buffers, bpf_xdp_adjust_head (44)
// moves an XDP packet's start (net/core/filter.c).
#include <linux/bpf.h>

#include <cerrno>
#include <climits>
#include <cstring>

#include "bpfvm/helpers/helpers.hpp"
#include "bpfvm/helpers/run_env.hpp"
#include "helper_args.hpp"

namespace bpfvm::helpers {

namespace {

std::uint64_t err(int e) { return static_cast<std::uint64_t>(-static_cast<std::int64_t>(e)); }

// skb_load_bytes(skb, offset, to, len): 0, or -EFAULT with `to` cleared when the bytes are not all in
// the packet (skb_header_pointer).
std::uint64_t skb_load_bytes(std::uint64_t, std::uint64_t offset, std::uint64_t to, std::uint64_t len, std::uint64_t,
                             CallContext* ctx) {
  const auto* env = static_cast<const RunEnv*>(ctx->user());
  auto* out = reinterpret_cast<std::uint8_t*>(to);
  const auto off = static_cast<std::uint32_t>(offset);
  const auto n = static_cast<std::uint32_t>(len);
  if (!ctx->may_access(to, n, true)) return err(EFAULT);
  const std::span<const std::uint8_t> packet = env ? env->packet : std::span<const std::uint8_t>{};
  if (off > INT_MAX || static_cast<std::uint64_t>(off) + n > packet.size()) {
    std::memset(out, 0, n);
    return err(EFAULT);
  }
  std::memcpy(out, packet.data() + off, n);
  return 0;
}

// csum_diff(from, from_size, to, to_size, seed): the ones' complement sum of seed, the complement of
// every word of `from` and every word of `to`, folded to 16 bits. Sizes must be multiples of 4 and fit
// the kernel's 512-byte scratch buffer together (-EINVAL otherwise, as before Linux 6.12; 6.18 sums
// whatever its per-CPU scratch buffer held for the odd bytes).
std::uint64_t csum_diff(std::uint64_t from, std::uint64_t from_size, std::uint64_t to, std::uint64_t to_size,
                        std::uint64_t seed, CallContext* ctx) {
  const auto fs = static_cast<std::uint32_t>(from_size), ts = static_cast<std::uint32_t>(to_size);
  if (((fs | ts) & 3) != 0 || static_cast<std::uint64_t>(fs) + ts > 512) return err(EINVAL);
  if ((fs && !ctx->may_access(from, fs, false)) || (ts && !ctx->may_access(to, ts, false))) return err(EFAULT);
  std::uint64_t acc = static_cast<std::uint32_t>(seed);
  for (std::uint32_t i = 0; i < fs; i += 4) {
    std::uint32_t w;
    std::memcpy(&w, reinterpret_cast<const std::uint8_t*>(from) + i, 4);
    acc += static_cast<std::uint32_t>(~w);
  }
  for (std::uint32_t i = 0; i < ts; i += 4) {
    std::uint32_t w;
    std::memcpy(&w, reinterpret_cast<const std::uint8_t*>(to) + i, 4);
    acc += w;
  }
  while (acc >> 32) acc = (acc & 0xffffffffu) + (acc >> 32);
  // Since Linux 6.12 the result is folded to 16 bits on every architecture (csum_from32to16).
  acc = (acc & 0xffff) + (acc >> 16);
  acc = (acc & 0xffff) + (acc >> 16);
  return acc;
}

// xdp_adjust_head(ctx, delta): moves the packet's start by `delta` bytes (negative: into the headroom,
// to push headers; positive: to pull them), keeping metadata just before it. The start may not pass
// the room the kernel keeps for its struct xdp_frame at the buffer's start, nor leave less than an
// Ethernet header (bpf_xdp_adjust_head).
std::uint64_t xdp_adjust_head(std::uint64_t, std::uint64_t delta, std::uint64_t, std::uint64_t, std::uint64_t,
                              CallContext* ctx) {
  constexpr std::uint64_t kXdpFrameSize = 40;  // sizeof(struct xdp_frame) on 64-bit hosts
  constexpr std::uint64_t kEthHeader = 14;
  const auto* env = static_cast<const RunEnv*>(ctx->user());
  if (!env || !env->xdp.data || !env->xdp.hard_start) return err(ENOTSUP);
  const RunEnv::XdpPointers& x = env->xdp;
  const auto offset = static_cast<std::int64_t>(static_cast<std::int32_t>(delta));
  const std::uint64_t metalen = *x.data - *x.data_meta;
  const std::uint64_t data_start = x.hard_start + kXdpFrameSize + metalen;
  const std::uint64_t data = *x.data + static_cast<std::uint64_t>(offset);
  if (data < data_start || data > *x.data_end - kEthHeader) return err(EINVAL);
  if (metalen) {
    std::memmove(reinterpret_cast<void*>(*x.data_meta + static_cast<std::uint64_t>(offset)),
                 reinterpret_cast<const void*>(*x.data_meta), metalen);
  }
  *x.data_meta += static_cast<std::uint64_t>(offset);
  *x.data = data;
  return 0;
}

// Ones' complement arithmetic of the kernel's checksum helpers (include/net/checksum.h).
std::uint32_t csum_add(std::uint32_t a, std::uint32_t b) {
  const std::uint32_t r = a + b;
  return r + (r < b);
}
std::uint32_t csum_sub(std::uint32_t a, std::uint32_t b) { return csum_add(a, ~b); }
std::uint16_t csum_fold(std::uint32_t x) {
  x = (x & 0xffff) + (x >> 16);
  x = (x & 0xffff) + (x >> 16);
  return static_cast<std::uint16_t>(~x);
}

// The packet as the program may write it (tc programs write it directly too).
std::uint8_t* writable_packet(const RunEnv* env) {
  return env ? const_cast<std::uint8_t*>(env->packet.data()) : nullptr;
}

// Updates the 16-bit checksum at `field` for a 0 (a precomputed difference), 2- or 4-byte change
// (csum_replace_by_diff, csum_replace2, csum_replace4). False for another size.
bool replace_checksum(std::uint8_t* field, std::uint64_t from, std::uint64_t to, std::uint64_t size) {
  std::uint16_t sum;
  std::memcpy(&sum, field, 2);
  switch (size) {
    case 0: sum = csum_fold(csum_add(static_cast<std::uint32_t>(to), ~static_cast<std::uint32_t>(sum) & 0xffff)); break;
    case 2: {
      // ~(~sum - from + to) in 16-bit ones' complement.
      std::uint32_t x = static_cast<std::uint16_t>(~sum);
      x += static_cast<std::uint16_t>(~static_cast<std::uint16_t>(from));
      x = (x & 0xffff) + (x >> 16);
      x += static_cast<std::uint16_t>(to);
      x = (x & 0xffff) + (x >> 16);
      sum = static_cast<std::uint16_t>(~x);
      break;
    }
    case 4:
      sum = csum_fold(csum_add(csum_sub(~static_cast<std::uint32_t>(sum) & 0xffff, static_cast<std::uint32_t>(from)),
                               static_cast<std::uint32_t>(to)));
      break;
    default: return false;
  }
  std::memcpy(field, &sum, 2);
  return true;
}

// skb_store_bytes(skb, offset, from, len, flags): writes len bytes at offset from skb->data.
std::uint64_t skb_store_bytes(std::uint64_t, std::uint64_t offset, std::uint64_t from, std::uint64_t len,
                              std::uint64_t flags, CallContext* ctx) {
  const auto* env = static_cast<const RunEnv*>(ctx->user());
  if (flags & ~(std::uint64_t{BPF_F_RECOMPUTE_CSUM} | std::uint64_t{BPF_F_INVALIDATE_HASH})) return err(EINVAL);
  const auto off = static_cast<std::uint32_t>(offset);
  const auto n = static_cast<std::uint32_t>(len);
  if (off > 0xffff) return err(EFAULT);
  if (!env || static_cast<std::uint64_t>(off) + n > env->packet.size()) return err(EFAULT);
  if (!ctx->may_access(from, n, false)) return err(EFAULT);
  std::memmove(writable_packet(env) + off, reinterpret_cast<const void*>(from), n);
  return 0;
}

// l3_csum_replace(skb, offset, from, to, flags): the checksum at offset updated for a field that
// changed from `from` to `to` (flags: its size, 2 or 4, or 0 for a precomputed difference in `to`).
std::uint64_t l3_csum_replace(std::uint64_t, std::uint64_t offset, std::uint64_t from, std::uint64_t to,
                              std::uint64_t flags, CallContext* ctx) {
  const auto* env = static_cast<const RunEnv*>(ctx->user());
  if (flags & ~static_cast<std::uint64_t>(BPF_F_HDR_FIELD_MASK)) return err(EINVAL);
  const auto off = static_cast<std::uint32_t>(offset);
  if (off > 0xffff || (off & 1)) return err(EFAULT);
  if (!env || static_cast<std::uint64_t>(off) + 2 > env->packet.size()) return err(EFAULT);
  if (!replace_checksum(writable_packet(env) + off, from, to, flags & BPF_F_HDR_FIELD_MASK)) return err(EINVAL);
  return 0;
}

// l4_csum_replace: the same for a TCP/UDP checksum, with its flags: a pseudo-header field (no
// difference for a test packet's checksum state), and a 0 checksum (UDP: none) kept or marked.
std::uint64_t l4_csum_replace(std::uint64_t, std::uint64_t offset, std::uint64_t from, std::uint64_t to,
                              std::uint64_t flags, CallContext* ctx) {
  const auto* env = static_cast<const RunEnv*>(ctx->user());
  const std::uint64_t known = std::uint64_t{BPF_F_HDR_FIELD_MASK} | std::uint64_t{BPF_F_PSEUDO_HDR} |
                              std::uint64_t{BPF_F_MARK_MANGLED_0} | std::uint64_t{BPF_F_MARK_ENFORCE} |
                              std::uint64_t{BPF_F_IPV6};
  if (flags & ~known) return err(EINVAL);
  const auto off = static_cast<std::uint32_t>(offset);
  if (off > 0xffff || (off & 1)) return err(EFAULT);
  if (!env || static_cast<std::uint64_t>(off) + 2 > env->packet.size()) return err(EFAULT);
  std::uint8_t* field = writable_packet(env) + off;
  const bool mangled_0 = flags & BPF_F_MARK_MANGLED_0, enforce = flags & BPF_F_MARK_ENFORCE;
  std::uint16_t sum;
  std::memcpy(&sum, field, 2);
  if (mangled_0 && !enforce && sum == 0) return 0;
  const std::uint64_t size = flags & BPF_F_HDR_FIELD_MASK;
  if (size == 0 && from != 0) return err(EINVAL);
  if (!replace_checksum(field, from, to, size)) return err(EINVAL);
  std::memcpy(&sum, field, 2);
  if (mangled_0 && sum == 0) {
    sum = 0xffff;  // CSUM_MANGLED_0
    std::memcpy(field, &sum, 2);
  }
  return 0;
}

// redirect(ifindex, flags): TC_ACT_REDIRECT (tc) or XDP_REDIRECT (XDP) for valid flags; where the
// packet goes is the runtime's business after the program (test runs only report the verdict).
std::uint64_t redirect(std::uint64_t, std::uint64_t flags, std::uint64_t, std::uint64_t, std::uint64_t,
                       CallContext* ctx) {
  const auto* env = static_cast<const RunEnv*>(ctx->user());
  if (env && env->prog_type == BPF_PROG_TYPE_XDP) return flags ? XDP_ABORTED : XDP_REDIRECT;
  if (flags & ~static_cast<std::uint64_t>(BPF_F_INGRESS)) return 2;  // TC_ACT_SHOT
  return 7;  // TC_ACT_REDIRECT
}

// bpf_redirect_map (51), XDP: XDP_REDIRECT when the map's slot `key` holds a device, CPU or socket
// (or with BPF_F_BROADCAST, a devmap's every device), else the action in the flags' low two bits; bad
// flags abort (__bpf_xdp_redirect_map). Where the packet would go is the kernel's business: bpfvm's
// test runs report the verdict.
std::uint64_t redirect_map(std::uint64_t map_arg, std::uint64_t key, std::uint64_t flags, std::uint64_t,
                           std::uint64_t, CallContext* ctx) {
  maps::Map* map = as_map(map_arg, ctx);
  if (!map) return XDP_ABORTED;
  constexpr std::uint64_t kActions = 3;  // XDP_ABORTED, XDP_DROP, XDP_PASS, XDP_TX
  const bool devmap = map->def().type == BPF_MAP_TYPE_DEVMAP || map->def().type == BPF_MAP_TYPE_DEVMAP_HASH;
  const std::uint64_t allowed = kActions | (devmap ? (BPF_F_BROADCAST | BPF_F_EXCLUDE_INGRESS) : 0);
  if (flags & ~allowed) return XDP_ABORTED;
  if (flags & BPF_F_BROADCAST) return XDP_REDIRECT;
  const auto index = static_cast<std::uint32_t>(key);
  return map->lookup_in_place(&index) ? std::uint64_t{XDP_REDIRECT} : flags & kActions;
}

}  // namespace

void install_packet_helpers(Registry& table) {
  table.set(BPF_FUNC_redirect_map, redirect_map);
  table.set(BPF_FUNC_skb_store_bytes, skb_store_bytes);
  table.set(BPF_FUNC_l3_csum_replace, l3_csum_replace);
  table.set(BPF_FUNC_l4_csum_replace, l4_csum_replace);
  table.set(BPF_FUNC_redirect, redirect);
  table.set(BPF_FUNC_xdp_adjust_head, xdp_adjust_head);
  table.set(BPF_FUNC_skb_load_bytes, skb_load_bytes);
  table.set(BPF_FUNC_csum_diff, csum_diff);
}

}  // namespace bpfvm::helpers
