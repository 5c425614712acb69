// A BPF output perf event (the kernel's PERF_TYPE_SOFTWARE / PERF_COUNT_SW_BPF_OUTPUT event opened on
// one CPU): the ring buffer a perf_event_array slot points to and bpf_perf_event_output writes into.
//
// Memory layout as the kernel's perf mmap: a first page that starts with struct perf_event_mmap_page
// (data_head, data_tail, data_offset, data_size), then data_pages (a power of 2) pages of records that
// wrap around. A sample is a PERF_RECORD_SAMPLE with PERF_SAMPLE_RAW: perf_event_header, u32 size, then
// the raw bytes padded so that the record is a multiple of 8. When there is no room the sample is lost
// and counted; a PERF_RECORD_LOST {header, u64 id, u64 lost} goes before the next sample that fits.
//
// The memory is a shared file when the event is made in a storage directory, so a program in another
// process that finds the event in a shared perf_event_array writes to the same buffer.
#pragma once

#include <linux/perf_event.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>

#include "bpfvm/base/result.hpp"
#include "bpfvm/base/shared_memory.hpp"

namespace bpfvm::maps {

class PerfEvent {
 public:
  // A new event for `cpu` with `data_pages` pages of data (a power of 2), in a file in `storage_dir`
  // (anonymous memory when empty). The file is removed when this creator goes.
  static Result<std::shared_ptr<PerfEvent>> create(std::uint32_t cpu, std::size_t data_pages,
                                                   const std::string& storage_dir = {});
  // Opens an event another process (or this one) created, checking its layout.
  static Result<std::shared_ptr<PerfEvent>> open(const std::string& path);
  ~PerfEvent();
  PerfEvent(const PerfEvent&) = delete;
  PerfEvent& operator=(const PerfEvent&) = delete;

  std::uint32_t cpu() const;
  std::uint64_t id() const;  // the event's id, as PERF_RECORD_LOST carries it
  const std::string& path() const { return memory_.path(); }

  // Producer (bpf_perf_event_output): one PERF_RECORD_SAMPLE whose raw data is `parts` one after the
  // other. 0, or -ENOSPC (and one more lost sample) when the buffer has no room, -E2BIG for a sample
  // larger than a perf record can be (64 KiB). An errno, not an Error: a consumer slower than its
  // producers makes the full buffer the common case, and a program's output must stay cheap then.
  int output(std::span<const std::span<const std::uint8_t>> parts);

  // Consumer: the kernel's mmap view.
  const perf_event_mmap_page* mmap_page() const;
  const std::uint8_t* data() const;
  std::size_t data_size() const;
  // Passes each record from data_tail on to `sample` (the raw data, padding included, as libbpf's
  // perf_buffer passes it) or `lost` (the count of a PERF_RECORD_LOST), then moves data_tail past it.
  // Returns the number of records.
  using SampleFn = std::function<void(std::span<const std::uint8_t>)>;
  using LostFn = std::function<void(std::uint64_t)>;
  std::size_t consume(const SampleFn& sample, const LostFn& lost);
  bool has_data() const;
  // Samples lost since the event was made.
  std::uint64_t lost_total() const;

 private:
  PerfEvent(os::SharedMemory memory, bool owner);
  struct State;
  State* state() const;
  perf_event_mmap_page* page() const;
  void write_at(std::uint64_t pos, const void* bytes, std::size_t n);
  void read_at(std::uint64_t pos, void* bytes, std::size_t n) const;

  os::SharedMemory memory_;
  bool owner_ = false;
};

}  // namespace bpfvm::maps
