#include "bpfvm/maps/perf_buffer.hpp"

#include <linux/bpf.h>

#include <algorithm>
#include <chrono>

#include "bpfvm/maps/cpu.hpp"
#include "wakeup_relay.hpp"

namespace bpfvm::maps {

Result<std::unique_ptr<PerfBuffer>> PerfBuffer::open(std::shared_ptr<Map> map, std::size_t data_pages, SampleFn sample,
                                                     LostFn lost) {
  if (!map || map->def().type != BPF_MAP_TYPE_PERF_EVENT_ARRAY) {
    return make_error(Errc::kInvalid, "a perf buffer reads a perf_event_array");
  }
  // Events of a shared map go next to it, where another process can open them.
  std::string dir;
  if (const std::string& path = map->storage_path(); !path.empty()) dir = path.substr(0, path.rfind('/'));
  std::unique_ptr<PerfBuffer> pb(new PerfBuffer(map, std::move(sample), std::move(lost)));
  const std::uint32_t n = std::min(possible_cpus(), map->def().max_entries);
  for (std::uint32_t cpu = 0; cpu < n; ++cpu) {
    auto event = BPFVM_TRY_CTX(PerfEvent::create(cpu, data_pages, dir), "perf buffer of CPU {}", cpu);
    BPFVM_TRY_CTX(pb->array().set_event(&cpu, event, BPF_ANY), "perf buffer of CPU {}", cpu);
    pb->events_.push_back(std::move(event));
  }
  return pb;
}

PerfBuffer::PerfBuffer(std::shared_ptr<Map> map, SampleFn sample, LostFn lost)
    : map_(std::move(map)), sample_(std::move(sample)), lost_(std::move(lost)) {}

PerfBuffer::~PerfBuffer() {
  relay_.reset();
  // As libbpf's perf_buffer__free: the slots this reader filled are emptied (if still its events).
  for (std::uint32_t cpu = 0; cpu < events_.size(); ++cpu) {
    if (array().event(cpu) == events_[cpu]) (void)array().erase(&cpu);
  }
}

Result<int> PerfBuffer::wakeup_fd() {
  if (!relay_) {
    bool waiting = false;
    for (const auto& e : events_) waiting = waiting || e->has_data();
    PerfEventArray* array = &this->array();
    relay_ = BPFVM_TRY(WakeupRelay::start([array] { return array->output_count(); },
                                          [array](std::uint32_t seen, int ms) { array->wait(seen, ms); }, waiting));
  }
  return relay_->fd();
}

const PerfEvent* PerfBuffer::event(std::uint32_t cpu) const {
  return cpu < events_.size() ? events_[cpu].get() : nullptr;
}

std::size_t PerfBuffer::consume() {
  std::size_t n = 0;
  for (std::uint32_t cpu = 0; cpu < events_.size(); ++cpu) {
    n += events_[cpu]->consume(
        [&](std::span<const std::uint8_t> data) {
          if (sample_) sample_(cpu, data);
        },
        [&](std::uint64_t count) {
          if (lost_) lost_(cpu, count);
        });
  }
  return n;
}

std::size_t PerfBuffer::poll(int timeout_ms) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  for (;;) {
    const std::uint32_t seen = array().output_count();
    if (std::size_t n = consume()) return n;
    int left = -1;
    if (timeout_ms >= 0) {
      const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      if (ms.count() <= 0) return 0;
      left = static_cast<int>(ms.count());
    }
    array().wait(seen, left);
  }
}

}  // namespace bpfvm::maps
