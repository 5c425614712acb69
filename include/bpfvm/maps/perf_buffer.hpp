// A reader of a perf_event_array, as libbpf's perf_buffer: one BPF output event per CPU (slot i holds
// CPU i's event, for min(CPUs, max_entries) slots), polled together. Samples arrive with the CPU they
// were written on; lost counts arrive as the PERF_RECORD_LOST records the kernel writes.
//
// The events are files next to the map's own (when the map is shared), so programs in other processes
// that use the map write into this reader's buffers. The reader empties its slots when it goes.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <vector>

#include "bpfvm/maps/perf_event_array.hpp"

namespace bpfvm::maps {

class PerfBuffer {
 public:
  using SampleFn = std::function<void(std::uint32_t cpu, std::span<const std::uint8_t> data)>;
  using LostFn = std::function<void(std::uint32_t cpu, std::uint64_t count)>;

  // `data_pages` per CPU, a power of 2 (libbpf's page_cnt).
  static Result<std::unique_ptr<PerfBuffer>> open(std::shared_ptr<Map> map, std::size_t data_pages,
                                                   SampleFn sample, LostFn lost = {});
  ~PerfBuffer();  // (defined where WakeupRelay is complete)
  PerfBuffer(const PerfBuffer&) = delete;
  PerfBuffer& operator=(const PerfBuffer&) = delete;

  // Reads every record there is; returns how many.
  std::size_t consume();
  // Waits up to `timeout_ms` (-1: no limit) for records, then reads them; returns how many (0 on
  // timeout).
  std::size_t poll(int timeout_ms);
  // An eventfd that becomes readable when a program writes to one of this reader's buffers (as libbpf's
  // perf_buffer__epoll_fd): for event loops. Readable at once when records are waiting. Drain it (read
  // 8 bytes), then consume().
  Result<int> wakeup_fd();
  // The event of a CPU, for readers that want the raw mmap view.
  const PerfEvent* event(std::uint32_t cpu) const;
  std::size_t cpus() const { return events_.size(); }

 private:
  PerfBuffer(std::shared_ptr<Map> map, SampleFn sample, LostFn lost);
  PerfEventArray& array() const { return static_cast<PerfEventArray&>(*map_); }

  std::shared_ptr<Map> map_;
  SampleFn sample_;
  LostFn lost_;
  std::vector<std::shared_ptr<PerfEvent>> events_;  // by CPU
  std::unique_ptr<class WakeupRelay> relay_;
};

}  // namespace bpfvm::maps
