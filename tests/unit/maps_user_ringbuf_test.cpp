// BPF_MAP_TYPE_USER_RINGBUF: user space produces with the kernel's record layout (as libbpf's
// user_ring_buffer writes it), RingBuffer::drain consumes as bpf_user_ringbuf_drain does.
#include <gtest/gtest.h>
#include <linux/bpf.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <vector>

#include "bpfvm/maps/ringbuf.hpp"

namespace bpfvm::maps {
namespace {

// A producer writing as libbpf's user_ring_buffer does: a header at producer_pos (BUSY until
// submitted), the sample, producer_pos moved past both (8-aligned).
struct Producer {
  RingBuffer& rb;
  std::uint64_t* prod() { return const_cast<std::uint64_t*>(rb.producer_pos()); }
  std::uint8_t* at(std::uint64_t pos) { return const_cast<std::uint8_t*>(rb.data()) + (pos & (rb.size() - 1)); }
  std::uint32_t* put(std::uint64_t value, bool busy = false, bool discard = false) {
    const std::uint64_t p = *prod();
    auto* hdr = reinterpret_cast<std::uint32_t*>(at(p));
    hdr[0] = 8u | (busy ? std::uint32_t{BPF_RINGBUF_BUSY_BIT} : 0u) | (discard ? std::uint32_t{BPF_RINGBUF_DISCARD_BIT} : 0u);
    hdr[1] = 0;
    std::memcpy(at(p + 8), &value, 8);
    reinterpret_cast<std::atomic<std::uint64_t>*>(prod())->store(p + 16, std::memory_order_release);
    return hdr;
  }
};

TEST(UserRingBuffer, DrainPassesCommittedSamplesSkipsDiscardedAndStopsAtBusy) {
  auto map = create_map(MapDef{BPF_MAP_TYPE_USER_RINGBUF, 0, 0, 4096, 0, "urb"});
  ASSERT_TRUE(map) << map.error().to_string();
  auto& rb = static_cast<RingBuffer&>(**map);
  Producer p{rb};
  std::vector<std::uint64_t> seen;
  auto collect = [&](std::uint8_t* s, std::uint32_t n) -> long {
    std::uint64_t v = 0;
    EXPECT_EQ(n, 8u);
    std::memcpy(&v, s, 8);
    seen.push_back(v);
    return v == 99 ? 1 : 0;
  };
  EXPECT_EQ(rb.drain(collect), 0);  // empty
  p.put(1);
  p.put(100, false, true);  // discarded
  p.put(2);
  std::uint32_t* busy = p.put(3, true);
  EXPECT_EQ(rb.drain(collect), 2);  // 1, 2; the busy one waits
  EXPECT_EQ(seen, (std::vector<std::uint64_t>{1, 2}));
  busy[0] &= ~BPF_RINGBUF_BUSY_BIT;
  p.put(99);
  p.put(5);
  EXPECT_EQ(rb.drain(collect), 2);  // 3, then 99 stops it
  EXPECT_EQ(rb.drain(collect), 1);  // 5
  EXPECT_EQ(seen, (std::vector<std::uint64_t>{1, 2, 3, 99, 5}));
  EXPECT_EQ(*rb.consumer_pos(), *rb.producer_pos());
  // Corrupt positions and lengths: the kernel's errors, nothing passed on.
  reinterpret_cast<std::atomic<std::uint64_t>*>(p.prod())->store(*p.prod() + 4);
  EXPECT_EQ(rb.drain(collect), -EINVAL);  // a misaligned producer position
  reinterpret_cast<std::atomic<std::uint64_t>*>(p.prod())->store(*rb.consumer_pos());
  p.put(7)[0] = 5000;  // longer than the ring
  EXPECT_EQ(rb.drain(collect), -EINVAL);  // past what the producer published
  EXPECT_EQ(seen.size(), 5u);
}

}  // namespace
}  // namespace bpfvm::maps
