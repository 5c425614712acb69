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

}  // namespace

void install_packet_helpers(Registry& table) {
  table.set(BPF_FUNC_xdp_adjust_head, xdp_adjust_head);
  table.set(BPF_FUNC_skb_load_bytes, skb_load_bytes);
  table.set(BPF_FUNC_csum_diff, csum_diff);
}

}  // namespace bpfvm::helpers
