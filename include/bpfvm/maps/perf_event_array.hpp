// BPF_MAP_TYPE_PERF_EVENT_ARRAY: slots of BPF output perf events, usually one per CPU, that
// bpf_perf_event_output writes samples to. User space puts events in slots (the kernel takes perf event
// fds; the runtime resolves them, set_event) and reads them with PerfBuffer. A slot may instead hold a
// counting event of the kernel's own (a CPU clock, a hardware counter: set_counter), which
// bpf_perf_event_read(_value) reads (read).
//
// Kernel semantics (kernel/bpf/arraymap.c, kernel/trace/bpf_trace.c): key and value are 4 bytes; update
// takes BPF_ANY only (EINVAL), an index past max_entries is E2BIG, deleting an empty slot ENOENT, user
// space lookup is not supported (ENOTSUPP); output to an index past the end is E2BIG, to an empty slot
// ENOENT, to an event of another CPU EOPNOTSUPP, to a full buffer ENOSPC.
//
// Shared: the slots live in the map's shared memory and name their event's file, so a program in
// another process writes to the events a reader installed. Every output bumps a counter in the map
// that readers wait on (a futex, woken only when a reader sleeps).
#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <span>
#include <vector>

#include "bpfvm/maps/map.hpp"
#include "bpfvm/maps/perf_event.hpp"

namespace bpfvm::maps {

class PerfEventArray final : public Map {
 public:
  static Result<std::shared_ptr<Map>> create(const MapDef& def, const std::string& storage_dir);
  static Result<std::shared_ptr<Map>> attach(const MapDef& def, os::SharedMemory memory);

  // BPF_MAP_UPDATE_ELEM with a perf event: puts `event` in slot `key`.
  Result<void> set_event(const void* key, std::shared_ptr<PerfEvent> event, std::uint64_t flags);
  // The event in a slot (opened from its file when another process installed it), or null.
  std::shared_ptr<PerfEvent> event(std::uint32_t index);

  // bpf_perf_event_output from a program running on `cpu`: `index` is the slot (BPF_F_CURRENT_CPU for
  // slot `cpu`); the sample is `parts` one after the other. Returns 0 or a negative errno.
  int output(std::uint32_t index, std::uint32_t cpu, std::span<const std::span<const std::uint8_t>> parts);

  // A counting perf event of the kernel's (perf_event_open(2)): the process that holds it and its
  // descriptor there (the map now owns that descriptor: it closes it when the slot changes), where it
  // counts (a CPU; or -1 and a thread), its read_format, and when it was opened (CLOCK_MONOTONIC ns).
  struct Counter {
    std::int32_t pid = 0, fd = -1, cpu = -1, tid = 0;
    std::uint64_t read_format = 0, opened_ns = 0;
  };
  Result<void> set_counter(const void* key, const Counter& counter, std::uint64_t flags);
  // bpf_perf_event_read(_value) from a program on `cpu` in thread `tid` (perf_event_read_local): the
  // slot's counter, which must count this CPU or this thread (EINVAL otherwise); a BPF output event counts
  // nothing (0). Returns 0 or a negative errno: E2BIG past the end, ENOENT for an empty slot.
  struct CounterValue {
    std::uint64_t counter = 0, enabled = 0, running = 0;
  };
  int read(std::uint32_t index, std::uint32_t cpu, std::uint32_t tid, CounterValue* out);
  ~PerfEventArray() override;

  // Readers: the output counter, and a wait until it moves past `seen` or `timeout_ms` passes (-1: no
  // limit). Returns true if it moved.
  std::uint32_t output_count() const;
  bool wait(std::uint32_t seen, int timeout_ms) const;

  Result<void> lookup(const void* key, void* value) const override;
  Result<void> update(const void* key, const void* value, std::uint64_t flags) override;
  Result<void> erase(const void* key) override;
  Result<void> next_key(const void* key, void* next) const override;
  void* lookup_in_place(const void* key) override;

 private:
  PerfEventArray(const MapDef& def, os::SharedMemory memory);
  static Result<std::size_t> payload_size(const MapDef& def);
  struct Shared;
  struct Slot;
  Shared* shared() const;
  Slot* slot(std::uint32_t index) const;
  Result<std::uint32_t> index_of(const void* key) const;
  void notify() const;

  // This process's view of each slot's event. Outputs read `seq` and `raw` without the mutex (a seqlock:
  // seq 0 while a writer changes the entry); events replaced while outputs may be using them wait in
  // `retired_` until none is in flight.
  struct Local {
    std::atomic<std::uint32_t> seq{0};
    std::atomic<PerfEvent*> raw{nullptr};
    std::shared_ptr<PerfEvent> event;
    // A counter slot's descriptor in this process (the owner's own, or one pidfd_getfd took), this
    // process's to close, as of slot seq `counter_seq`.
    int counter_fd = -1;
    std::uint32_t counter_seq = 0;
  };
  void drop_counter(Local& local);  // under mutex_
  void set_local(std::uint32_t index, std::uint32_t seq, std::shared_ptr<PerfEvent> event);  // under mutex_
  PerfEvent* cached(std::uint32_t index) const;
  mutable std::mutex mutex_;
  std::unique_ptr<Local[]> local_;
  std::vector<std::shared_ptr<PerfEvent>> retired_;
  mutable std::atomic<std::uint32_t> in_flight_{0};
};

}  // namespace bpfvm::maps
