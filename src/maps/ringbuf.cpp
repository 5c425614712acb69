#include "bpfvm/maps/ringbuf.hpp"

#include <linux/bpf.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <mutex>
#include <vector>
#include <climits>
#include <cstring>
#include <ctime>

#include "bpfvm/base/wakeup.hpp"
#include "map_header.hpp"
#include "wakeup_relay.hpp"

namespace bpfvm::maps {

namespace {

constexpr std::size_t kPage = 4096;
// File layout: page 0 = MapHeader + notify counter, page 1 = consumer page, page 2 = producer page,
// then the data (mirrored).
constexpr std::size_t kConsumerPage = kPage, kProducerPage = 2 * kPage, kDataOffset = 3 * kPage;
constexpr std::size_t kNotifyOffset = 256;  // in page 0, after the header
// How many consumers sleep on the notify counter: producers make the futex call only when one does.
constexpr std::size_t kWaitersOffset = kNotifyOffset + 4;
constexpr std::uint32_t kHeaderSize = BPF_RINGBUF_HDR_SZ;
// A user ring buffer's drain in progress (rb->busy), in page 0 where user space does not map it.
constexpr std::size_t kDrainBusyOffset = kNotifyOffset + 8;

std::atomic<std::uint64_t>& atomic64(std::uint8_t* p) { return *reinterpret_cast<std::atomic<std::uint64_t>*>(p); }
std::atomic<std::uint32_t>& atomic32(std::uint8_t* p) { return *reinterpret_cast<std::atomic<std::uint32_t>*>(p); }

}  // namespace

// Live ring buffers, so that a record pointer can be traced back to its buffer.
namespace {
std::mutex& registry_mutex() {
  static std::mutex* m = new std::mutex;
  return *m;
}
std::vector<RingBuffer*>& registry() {
  static auto* r = new std::vector<RingBuffer*>;
  return *r;
}
// How many ring buffers this process has destroyed (under the registry's lock).
std::atomic<std::uint64_t> g_destroyed{0};
// The ring buffer a thread last submitted to, with the data's range it had, as of g_destroyed.
struct LastOwner {
  RingBuffer* ring = nullptr;
  std::uintptr_t lo = 0, hi = 0;
  std::uint64_t destroyed = 0;
};
thread_local LastOwner t_last_owner;
}  // namespace

RingBuffer::RingBuffer(const MapDef& def, os::SharedMemory memory) : Map(def, std::move(memory)) {
  std::lock_guard lock(registry_mutex());
  registry().push_back(this);
}

RingBuffer::~RingBuffer() {
  std::lock_guard lock(registry_mutex());
  std::erase(registry(), this);
  g_destroyed.fetch_add(1, std::memory_order_release);
}

RingBuffer* RingBuffer::owner_of(const void* sample, bool verified) {
  const auto s = reinterpret_cast<std::uintptr_t>(sample);
  if (verified) {
    // The thread's last ring buffer, without the lock, when the record lies in its data and no ring
    // buffer has gone since that was seen: a verified program submits only what it reserved, from a map
    // it holds for its run, so the record's buffer was live before this call, and a range it lies in is
    // its buffer's (another's would have had to go first, which the count says did not happen).
    const LastOwner& last = t_last_owner;
    if (last.ring && s >= last.lo && s < last.hi && last.destroyed == g_destroyed.load(std::memory_order_acquire) &&
        last.ring->is_reserved(sample)) {
      return last.ring;
    }
  }
  std::lock_guard lock(registry_mutex());
  for (RingBuffer* rb : registry()) {
    if (rb->is_reserved(sample)) {
      const auto lo = reinterpret_cast<std::uintptr_t>(rb->data());
      t_last_owner = {rb, lo, lo + 2 * rb->size(), g_destroyed.load(std::memory_order_relaxed)};
      return rb;
    }
  }
  return nullptr;
}

Result<void> RingBuffer::check(const MapDef& def) {
  if (def.key_size != 0 || def.value_size != 0) return make_error(Errc::kInvalid, "a ring buffer has key_size and value_size 0");
  const std::uint32_t n = def.max_entries;
  if (n < kPage || (n & (n - 1)) != 0) {
    return make_error(Errc::kInvalid, "a ring buffer's max_entries (its size) must be a power of 2 and a multiple of the page size");
  }
  if (n > (1u << 30)) return make_error(Errc::kTooBig, "a ring buffer of {} bytes is too large", n);
  if (def.map_flags & ~static_cast<std::uint32_t>(BPF_F_NUMA_NODE)) {
    return make_error(Errc::kInvalid, "map_flags 0x{:x} are invalid for a ring buffer", def.map_flags);
  }
  return {};
}

Result<std::shared_ptr<Map>> RingBuffer::create(const MapDef& def, const std::string& storage_dir) {
  BPFVM_TRY(check(def));
  const std::size_t total = kDataOffset + def.max_entries;
  auto memory = storage_dir.empty()
                    ? os::SharedMemory::anonymous_mirrored(total, kDataOffset)
                    : os::SharedMemory::create_mirrored(storage_dir + "/" + os::unique_name("map-"), total, kDataOffset);
  if (!memory) return std::move(memory).error();
  init_map_header(*memory, def);
  return std::shared_ptr<Map>(new RingBuffer(def, std::move(*memory)));
}

Result<std::shared_ptr<RingBuffer>> RingBuffer::open_or_create(const std::string& path, std::uint32_t size,
                                                              const std::string& name) {
  const MapDef def{BPF_MAP_TYPE_RINGBUF, 0, 0, size, 0, name, 0};
  BPFVM_TRY(check(def));
  for (int attempt = 0; attempt < 50; ++attempt) {
    auto created = os::SharedMemory::create_mirrored(path, kDataOffset + size, kDataOffset);
    if (created) {
      init_map_header(*created, def);
      auto rb = std::shared_ptr<RingBuffer>(new RingBuffer(def, std::move(*created)));
      rb->mark_pinned();  // it outlives this process
      return rb;
    }
    if (created.error().errno_value() != EEXIST) return std::move(created).error();
    auto opened = open_shared_map(path);
    if (opened && (*opened)->def().type == BPF_MAP_TYPE_RINGBUF) {
      return std::static_pointer_cast<RingBuffer>(*opened);
    }
    ::usleep(1000);  // another process is still writing its header
  }
  return make_error(Errc::kInvalid, "'{}' is not a ring buffer", path);
}

Result<std::shared_ptr<Map>> RingBuffer::attach(const MapDef& def, os::SharedMemory memory) {
  BPFVM_TRY(check(def));
  if (memory.size() != kDataOffset + def.max_entries) return make_error(Errc::kInvalid, "'{}' has the wrong size", memory.path());
  // Map it again with the mirror.
  auto mirrored = BPFVM_TRY(os::SharedMemory::open_mirrored(memory.path(), kDataOffset));
  return std::shared_ptr<Map>(new RingBuffer(def, std::move(mirrored)));
}

std::uint8_t* RingBuffer::base() const { return reinterpret_cast<std::uint8_t*>(header()); }
std::uint8_t* RingBuffer::data_mut() const { return base() + kDataOffset; }
std::uint64_t* RingBuffer::consumer_pos() const { return reinterpret_cast<std::uint64_t*>(base() + kConsumerPage); }
const std::uint64_t* RingBuffer::producer_pos() const {
  return reinterpret_cast<const std::uint64_t*>(base() + kProducerPage);
}
const std::uint8_t* RingBuffer::data() const { return data_mut(); }

void* RingBuffer::reserve(std::uint64_t size, std::uint64_t flags) {
  if (flags != 0) return nullptr;
  // The kernel refuses records larger than what fits with the header (RINGBUF_MAX_RECORD_SZ).
  if (size > UINT32_MAX / 4 || round8(size + kHeaderSize) > this->size()) return nullptr;
  const std::uint64_t total = round8(size + kHeaderSize);
  SpinGuard guard(header()->lock);
  auto& prod = atomic64(base() + kProducerPage);
  auto& cons = atomic64(base() + kConsumerPage);
  const std::uint64_t p = prod.load(std::memory_order_relaxed);
  const std::uint64_t c = cons.load(std::memory_order_acquire);
  if (p - c + total > this->size()) return nullptr;  // no room: the consumer is behind
  std::uint8_t* hdr = data_mut() + (p & (this->size() - 1));
  atomic32(hdr).store(static_cast<std::uint32_t>(size) | BPF_RINGBUF_BUSY_BIT, std::memory_order_relaxed);
  const auto pg_off = static_cast<std::uint32_t>((hdr - base()) / kPage);
  std::memcpy(hdr + 4, &pg_off, 4);
  prod.store(p + total, std::memory_order_release);
  return hdr + kHeaderSize;
}

bool RingBuffer::is_reserved(const void* sample) const {
  const auto* s = static_cast<const std::uint8_t*>(sample);
  const std::uint8_t* lo = data() + kHeaderSize;
  if (s < lo || s >= data() + 2 * size() || (s - data()) % 8 != 0) return false;
  const std::uint32_t len = atomic32(const_cast<std::uint8_t*>(s) - kHeaderSize).load(std::memory_order_acquire);
  return (len & BPF_RINGBUF_BUSY_BIT) != 0;
}

void RingBuffer::commit(void* sample, std::uint64_t flags, bool discard) {
  std::uint8_t* hdr = static_cast<std::uint8_t*>(sample) - kHeaderSize;
  // A record reserved near the end may be addressed through the mirror; its header is the same memory.
  auto& len = atomic32(hdr);
  std::uint32_t v = len.load(std::memory_order_relaxed) & ~BPF_RINGBUF_BUSY_BIT;
  if (discard) v |= BPF_RINGBUF_DISCARD_BIT;
  // An exchange, a full barrier (as the kernel's xchg of the header): the producer position stored at
  // reserve is visible before consumer_pos is read below. Paired with the barrier a consumer makes
  // between storing consumer_pos and reading producer_pos before it sleeps (sleep()), so that either
  // this sees the consumer caught up and wakes it, or the consumer sees this record.
  len.exchange(v, std::memory_order_seq_cst);
  // Wake the consumer if asked, or (by default) when it has caught up with this record.
  const std::uint64_t rec_pos = static_cast<std::uint64_t>(hdr - data_mut()) & (size() - 1);
  const std::uint64_t cons = atomic64(base() + kConsumerPage).load(std::memory_order_acquire);
  const bool wake = (flags & BPF_RB_FORCE_WAKEUP) ||
                    (!(flags & BPF_RB_NO_WAKEUP) && (cons & (size() - 1)) == rec_pos);
  if (wake) notify();
}

int RingBuffer::output(const void* data_in, std::uint64_t size_in, std::uint64_t flags) {
  if (flags & ~static_cast<std::uint64_t>(BPF_RB_NO_WAKEUP | BPF_RB_FORCE_WAKEUP)) return -EINVAL;
  void* rec = reserve(size_in, 0);
  if (!rec) return -EAGAIN;
  std::memcpy(rec, data_in, size_in);
  commit(rec, flags, false);
  return 0;
}

std::uint64_t RingBuffer::query(std::uint64_t flags) const {
  const std::uint64_t p = atomic64(base() + kProducerPage).load(std::memory_order_acquire);
  const std::uint64_t c = atomic64(base() + kConsumerPage).load(std::memory_order_acquire);
  switch (flags) {
    case BPF_RB_AVAIL_DATA: return p - c;
    case BPF_RB_RING_SIZE: return size();
    case BPF_RB_CONS_POS: return c;
    case BPF_RB_PROD_POS: return p;
    default: return 0;
  }
}

std::size_t RingBuffer::consume(const std::function<int(std::span<const std::uint8_t>)>& fn) {
  // The producers' position is read once per batch and the consumer's stored once per batch (before the
  // next read, and when fn stops early): each is a cache line the other side writes, so touching them
  // per record would make consumer and producers take turns on them.
  auto& cons = atomic64(base() + kConsumerPage);
  const auto& prod = atomic64(base() + kProducerPage);
  std::size_t count = 0;
  std::uint64_t c = cons.load(std::memory_order_relaxed);
  for (;;) {
    const std::uint64_t p = prod.load(std::memory_order_acquire);
    if (c >= p) break;
    const std::uint64_t start = c;
    bool stop = false, blocked = false;
    while (c < p && !stop) {
      std::uint8_t* hdr = data_mut() + (c & (size() - 1));
      const std::uint32_t len = atomic32(hdr).load(std::memory_order_acquire);
      const std::uint32_t n = len & ~(BPF_RINGBUF_BUSY_BIT | BPF_RINGBUF_DISCARD_BIT);
      // A record still being written, or a corrupt length: stop rather than read past the ring.
      if ((len & BPF_RINGBUF_BUSY_BIT) || round8(n + kHeaderSize) > size()) {
        blocked = true;
        break;
      }
      c += round8(n + kHeaderSize);
      if (!(len & BPF_RINGBUF_DISCARD_BIT)) {
        ++count;
        stop = fn({hdr + kHeaderSize, n}) != 0;
      }
    }
    if (c != start) cons.store(c, std::memory_order_release);
    if (stop || blocked) break;
  }
  return count;
}

long RingBuffer::drain(const std::function<long(std::uint8_t* sample, std::uint32_t size)>& fn) {
  constexpr long kMaxSamples = 128 * 1024;  // BPF_MAX_USER_RINGBUF_SAMPLES
  auto& busy = atomic32(base() + kDrainBusyOffset);
  std::uint32_t idle = 0;
  if (!busy.compare_exchange_strong(idle, 1, std::memory_order_acquire)) return -EBUSY;
  auto& cons = atomic64(base() + kConsumerPage);
  const auto& prod = atomic64(base() + kProducerPage);
  long samples = 0, discarded = 0, result = 0;
  for (long ret = 0; samples < kMaxSamples && ret == 0; ++samples) {
    const std::uint64_t c = cons.load(std::memory_order_acquire);
    const std::uint64_t p = prod.load(std::memory_order_acquire);
    if (c % 8 || p % 8) {
      result = -EINVAL;
      break;
    }
    if (c == p) break;  // no data
    std::uint8_t* hdr = data_mut() + (c & (size() - 1));
    const std::uint32_t len = atomic32(hdr).load(std::memory_order_acquire);
    const std::uint32_t n = len & ~(BPF_RINGBUF_BUSY_BIT | BPF_RINGBUF_DISCARD_BIT);
    const std::uint64_t total = round8(static_cast<std::uint64_t>(n) + kHeaderSize);
    if (total > p - c) {
      result = -EINVAL;  // past what the producer published
      break;
    }
    if (total > size() || n > (1u << 24) - 1) {
      result = -E2BIG;
      break;
    }
    if (len & BPF_RINGBUF_DISCARD_BIT) {
      cons.store(c + total, std::memory_order_release);
      ++discarded;
      continue;
    }
    if (len & BPF_RINGBUF_BUSY_BIT) break;  // still being written
    ret = fn(data_mut() + ((c + kHeaderSize) & (size() - 1)), n);
    cons.store(c + total, std::memory_order_release);
  }
  busy.store(0, std::memory_order_release);
  notify();  // a producer waiting for room
  return result ? result : samples - discarded;
}

std::size_t RingBuffer::consume_shared(const std::function<int(std::span<const std::uint8_t>)>& fn) {
  auto& cons = atomic64(base() + kConsumerPage);
  const auto& prod = atomic64(base() + kProducerPage);
  std::vector<std::uint8_t> copy;
  std::size_t count = 0;
  for (;;) {
    std::uint64_t c = cons.load(std::memory_order_acquire);
    if (c >= prod.load(std::memory_order_acquire)) break;
    const std::uint8_t* hdr = data_mut() + (c & (size() - 1));
    const std::uint32_t len = atomic32(const_cast<std::uint8_t*>(hdr)).load(std::memory_order_acquire);
    const std::uint32_t n = len & ~(BPF_RINGBUF_BUSY_BIT | BPF_RINGBUF_DISCARD_BIT);
    if ((len & BPF_RINGBUF_BUSY_BIT) || round8(n + kHeaderSize) > size()) {
      // Still being written (or another reader took it and a producer reuses the space): stop unless
      // consumer_pos moved meanwhile.
      if (cons.load(std::memory_order_acquire) == c) break;
      continue;
    }
    // Copied before the claim: once consumer_pos moves past it, producers may write over the space.
    // (The data is mirrored after the ring, so a record that wraps reads in one piece.)
    copy.assign(hdr + kHeaderSize, hdr + kHeaderSize + n);
    if (!cons.compare_exchange_strong(c, c + round8(n + kHeaderSize), std::memory_order_acq_rel)) continue;
    if (len & BPF_RINGBUF_DISCARD_BIT) continue;
    ++count;
    if (fn(copy) != 0) break;
  }
  return count;
}

void RingBuffer::notify() const {
  // Paired with sleep(): either the consumer sees the new count, or this sees the consumer waiting.
  auto& word = atomic32(base() + kNotifyOffset);
  word.fetch_add(1, std::memory_order_seq_cst);
  if (atomic32(base() + kWaitersOffset).load(std::memory_order_seq_cst) != 0) os::futex_wake_all(word);
}

void RingBuffer::sleep(std::uint32_t seen, std::uint64_t produced, int timeout_ms) const {
  auto& word = atomic32(base() + kNotifyOffset);
  auto& waiters = atomic32(base() + kWaitersOffset);
  waiters.fetch_add(1, std::memory_order_seq_cst);  // also the consumer's barrier (see commit)
  if (word.load(std::memory_order_seq_cst) == seen &&
      atomic64(base() + kProducerPage).load(std::memory_order_seq_cst) == produced) {
    os::futex_wait(word, seen, timeout_ms);
  }
  waiters.fetch_sub(1, std::memory_order_seq_cst);
}

std::uint32_t RingBuffer::notify_count() const { return atomic32(base() + kNotifyOffset).load(std::memory_order_acquire); }

void RingBuffer::wait_notify(std::uint32_t seen, std::uint64_t produced, int timeout_ms) const {
  sleep(seen, produced, timeout_ms);
}

bool RingBuffer::wait(int timeout_ms) const {
  auto& word = atomic32(base() + kNotifyOffset);
  const std::uint32_t seen = word.load(std::memory_order_acquire);
  const std::uint64_t c = atomic64(base() + kConsumerPage).load(std::memory_order_acquire);
  if (atomic64(base() + kProducerPage).load(std::memory_order_acquire) != c) return true;
  sleep(seen, c, timeout_ms);
  return word.load(std::memory_order_acquire) != seen || query(BPF_RB_AVAIL_DATA) != 0;
}

Result<int> RingBuffer::wakeup_fd() {
  std::lock_guard lock(relay_mutex_);
  if (!relay_) {
    auto& word = atomic32(base() + kNotifyOffset);
    relay_ = BPFVM_TRY(WakeupRelay::start([&word] { return word.load(std::memory_order_acquire); },
                                          [this](std::uint32_t seen, int ms) { sleep(seen, *producer_pos(), ms); },
                                          query(BPF_RB_AVAIL_DATA) != 0));
  }
  return relay_->fd();
}

Result<void> RingBuffer::lookup(const void*, void*) const { return make_error(Errc::kNotSupported, "ring buffers have no keys"); }
Result<void> RingBuffer::update(const void*, const void*, std::uint64_t) {
  return make_error(Errc::kNotSupported, "ring buffers have no keys");
}
Result<void> RingBuffer::erase(const void*) { return make_error(Errc::kNotSupported, "ring buffers have no keys"); }
Result<void> RingBuffer::next_key(const void*, void*) const {
  return make_error(Errc::kNotSupported, "ring buffers have no keys");
}
void* RingBuffer::lookup_in_place(const void*) { return nullptr; }

}  // namespace bpfvm::maps
