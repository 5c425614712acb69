// BPF_MAP_TYPE_RINGBUF with the kernel's memory layout, so that a consumer written against the kernel's
// ring buffer ABI works unchanged: a consumer page (consumer_pos), a producer page (producer_pos), then
// max_entries data bytes mapped twice in a row. Each record starts with an 8-byte header: u32 length
// with BPF_RINGBUF_BUSY_BIT while it is being written and BPF_RINGBUF_DISCARD_BIT when discarded, and
// u32 pg_off; records start at 8-byte boundaries.
//
// Producers (programs, on any thread or process) serialise on the map's spin lock to reserve; commit
// is a single atomic store. Consumers wake through a futex on a counter in the map's first page, which
// works across processes (the kernel uses its own wait queue and epoll).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <span>

#include "bpfvm/maps/map.hpp"

namespace bpfvm::maps {

class RingBuffer final : public Map {
 public:
  static Result<std::shared_ptr<Map>> create(const MapDef& def, const std::string& storage_dir);
  static Result<std::shared_ptr<Map>> attach(const MapDef& def, os::SharedMemory memory);
  ~RingBuffer() override;
  // The ring buffer at a fixed path (a trace pipe every process shares): opened if it exists, else made
  // with `size` bytes of data and kept when its users go.
  static Result<std::shared_ptr<RingBuffer>> open_or_create(const std::string& path, std::uint32_t size,
                                                            const std::string& name);

  // bpf_ringbuf_reserve: a record of `size` bytes, or null when there is no room (or bad flags).
  void* reserve(std::uint64_t size, std::uint64_t flags);
  // bpf_ringbuf_submit / bpf_ringbuf_discard. `sample` must come from reserve (is_reserved checks).
  void commit(void* sample, std::uint64_t flags, bool discard);
  bool is_reserved(const void* sample) const;
  // The live ring buffer whose data holds this reserved record, or null (a program no verifier vouched
  // for may give any pointer). `verified`: the pointer came from a reservation of a map the program holds
  // (the verifier's proof), which lets the thread's last answer stand without the registry's lock.
  static RingBuffer* owner_of(const void* sample, bool verified);
  // bpf_ringbuf_output: reserve, copy, submit. 0, -EINVAL for bad flags, -EAGAIN when the ring has no
  // room (the kernel's answer; an errno, not an Error, since a full ring is a consumer falling behind).
  int output(const void* data, std::uint64_t size, std::uint64_t flags);
  // BPF_MAP_TYPE_USER_RINGBUF, the same layout with user space the producer (libbpf's user_ring_buffer:
  // it reserves at producer_pos, writes, clears BUSY or sets DISCARD) and a program the consumer:
  // bpf_user_ringbuf_drain passes each committed sample to `fn` (which returns non-zero to stop),
  // skipping discarded ones, up to 128Ki samples; consumer_pos moves past each. Returns the samples
  // given to fn, or -EBUSY while another drain runs, -EINVAL/-E2BIG for corrupt positions or lengths
  // (__bpf_user_ringbuf_peek's checks).
  long drain(const std::function<long(std::uint8_t* sample, std::uint32_t size)>& fn);

  // bpf_ringbuf_query: BPF_RB_AVAIL_DATA, BPF_RB_RING_SIZE, BPF_RB_CONS_POS, BPF_RB_PROD_POS.
  std::uint64_t query(std::uint64_t flags) const;

  // The consumer's view (the kernel's mmap layout).
  std::uint64_t* consumer_pos() const;
  const std::uint64_t* producer_pos() const;
  const std::uint8_t* data() const;  // 2 * size() readable bytes (the second half mirrors the first)
  std::uint64_t size() const { return def().max_entries; }

  // Calls `fn` for each committed, not discarded record from consumer_pos on, and moves consumer_pos
  // past every finished record. Stops at a record still being written, or when fn returns non-zero.
  // Returns the number of records passed to fn.
  std::size_t consume(const std::function<int(std::span<const std::uint8_t>)>& fn);
  // The same for a ring several readers consume at once, each record going to one of them (the trace
  // pipe, as the kernel's trace_pipe reads consume lines): a reader copies a record out, then claims it
  // by moving consumer_pos past it with a compare-and-swap; only the reader that wins passes it to fn.
  std::size_t consume_shared(const std::function<int(std::span<const std::uint8_t>)>& fn);
  // Waits until a producer notifies or `timeout_ms` passes (-1: forever); true if notified.
  bool wait(int timeout_ms) const;
  // The producers' notification counter, and a wait until it moves past `seen`, or the producer
  // position moves from `produced` (what the reader has seen or consumed up to: a record committed
  // while the reader was finishing does not get lost), or `timeout_ms` passes: for a reader that
  // tracks readiness itself (an application's epoll on the map's fd, interpose).
  std::uint32_t notify_count() const;
  void wait_notify(std::uint32_t seen, std::uint64_t produced, int timeout_ms) const;
  // An eventfd that becomes readable when producers notify (as epoll on the kernel's ring buffer fd):
  // for event loops that wait on several sources. Readable at once when records are waiting. The
  // reader drains it (read 8 bytes) and then consumes.
  Result<int> wakeup_fd();

  // Keyed operations are not supported by ring buffers.
  Result<void> lookup(const void* key, void* value) const override;
  Result<void> update(const void* key, const void* value, std::uint64_t flags) override;
  Result<void> erase(const void* key) override;
  Result<void> next_key(const void* key, void* next) const override;
  void* lookup_in_place(const void* key) override;

 private:
  RingBuffer(const MapDef& def, os::SharedMemory memory);
  static Result<void> check(const MapDef& def);
  std::uint8_t* base() const;  // the start of the mapping (pg_off counts pages from here)
  std::uint8_t* data_mut() const;
  void notify() const;
  // A consumer's futex wait, counted as a waiter: until the counter moves past `seen`, the producer
  // position differs from `produced`, or `timeout_ms` passes.
  void sleep(std::uint32_t seen, std::uint64_t produced, int timeout_ms) const;

  std::mutex relay_mutex_;
  std::unique_ptr<class WakeupRelay> relay_;
};

}  // namespace bpfvm::maps
