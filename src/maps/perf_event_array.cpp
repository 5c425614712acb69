#include "bpfvm/maps/perf_event_array.hpp"

#include <linux/bpf.h>
#include <linux/perf_event.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <climits>
#include <cstring>
#include <ctime>
#include <string>

#include "array_keys.hpp"
#include "bpfvm/base/process.hpp"
#include "bpfvm/base/wakeup.hpp"
#include "map_header.hpp"

namespace bpfvm::maps {

struct PerfEventArray::Shared {
  std::atomic<std::uint32_t> outputs;  // bumped by every output: readers wait on it
  std::atomic<std::uint32_t> waiters;  // readers asleep on `outputs`
  std::uint8_t reserved[56];
};

struct PerfEventArray::Slot {
  std::atomic<std::uint32_t> seq;  // bumped by every change of the slot
  std::uint32_t present;
  char path[248];  // the event's file ("" for an event private to the process that installed it)
};

Result<std::size_t> PerfEventArray::payload_size(const MapDef& def) {
  static_assert(sizeof(Shared) == 64 && sizeof(Slot) == 256);
  // fd_array_map_alloc_check + array_map_alloc_check.
  if (def.key_size != 4 || def.value_size != 4) {
    return make_error(Errc::kInvalid, "a perf_event_array's key_size and value_size must be 4");
  }
  constexpr std::uint32_t kAllowed = BPF_F_NUMA_NODE | BPF_F_RDONLY | BPF_F_WRONLY | BPF_F_PRESERVE_ELEMS;
  if (def.map_flags & ~kAllowed) {
    return make_error(Errc::kInvalid, "map_flags 0x{:x} are invalid for a perf_event_array", def.map_flags);
  }
  if (def.max_entries > (1u << 20)) return make_error(Errc::kTooBig, "a perf_event_array of {} slots is too large", def.max_entries);
  return sizeof(Shared) + sizeof(Slot) * static_cast<std::size_t>(def.max_entries);
}

PerfEventArray::PerfEventArray(const MapDef& def, os::SharedMemory memory)
    : Map(def, std::move(memory)), local_(new Local[def.max_entries]) {}

PerfEventArray::~PerfEventArray() {
  std::lock_guard lock(mutex_);
  for (std::uint32_t i = 0; i < def().max_entries; ++i) drop_counter(local_[i]);
}

void PerfEventArray::drop_counter(Local& local) {
  if (local.counter_fd >= 0) ::close(local.counter_fd);
  local.counter_fd = -1;
  local.counter_seq = 0;
}

Result<void> PerfEventArray::set_counter(const void* key, const Counter& counter, std::uint64_t flags) {
  static_assert(sizeof(Counter) <= sizeof(Slot::path));
  if (flags != BPF_ANY) return make_error(Errc::kInvalid, "a perf_event_array takes BPF_ANY updates only");
  BPFVM_TRY(check_user_write());
  const std::uint32_t i = BPFVM_TRY(index_of(key));
  std::lock_guard lock(mutex_);
  SpinGuard guard(header()->lock);
  Slot* s = slot(i);
  std::memset(s->path, 0, sizeof s->path);
  std::memcpy(s->path, &counter, sizeof counter);
  s->present = 2;
  const std::uint32_t seq = s->seq.load(std::memory_order_relaxed) + 1;
  s->seq.store(seq, std::memory_order_release);
  set_local(i, seq, nullptr);
  Local& local = local_[i];
  drop_counter(local);
  local.counter_fd = counter.fd;
  local.counter_seq = seq;
  return {};
}

int PerfEventArray::read(std::uint32_t index, std::uint32_t cpu, std::uint32_t tid, CounterValue* out) {
  *out = {};
  if (index == BPF_F_CURRENT_CPU) index = cpu;
  if (index >= def().max_entries) return -E2BIG;
  Slot* s = slot(index);
  std::uint32_t present, seq;
  Counter c;
  {
    SpinGuard guard(header()->lock);
    present = s->present;
    seq = s->seq.load(std::memory_order_relaxed);
    std::memcpy(&c, s->path, sizeof c);
  }
  if (present == 0) return -ENOENT;
  if (present == 1) {
    // A BPF output event counts nothing; read only on its own CPU, as any per-CPU event.
    std::shared_ptr<PerfEvent> ev = event(index);
    if (!ev) return -ENOENT;
    return ev->cpu() == cpu ? 0 : -EINVAL;
  }
  // perf_event_read_local: a per-CPU event of this CPU, or a per-thread one of this thread.
  if (c.cpu >= 0 ? static_cast<std::uint32_t>(c.cpu) != cpu : static_cast<std::uint32_t>(c.tid) != tid) return -EINVAL;
  std::lock_guard lock(mutex_);
  Local& local = local_[index];
  if (local.counter_seq != seq) {
    drop_counter(local);
    // Another process's descriptor: taken with pidfd_getfd (Linux 5.6; the holder must be one this
    // process may ptrace).
    const int pidfd = static_cast<int>(::syscall(SYS_pidfd_open, c.pid, 0));
    if (pidfd < 0) return -EOPNOTSUPP;
    local.counter_fd = static_cast<int>(::syscall(SYS_pidfd_getfd, pidfd, c.fd, 0));
    ::close(pidfd);
    if (local.counter_fd < 0) return -EOPNOTSUPP;
    // The slot comes from a shared file: read only what is a perf event (a pipe's read would block).
    if (!os::is_perf_event_fd(local.counter_fd)) {
      drop_counter(local);
      return -EINVAL;
    }
    local.counter_seq = seq;
  }
  std::uint64_t buf[8] = {};
  if (::read(local.counter_fd, buf, sizeof buf) < static_cast<ssize_t>(sizeof buf[0])) return -EINVAL;
  // read(2)'s layout by read_format: [nr,] [time_enabled,] [time_running,] value...
  std::size_t at = (c.read_format & PERF_FORMAT_GROUP) ? 1 : 0;
  const bool has_enabled = c.read_format & PERF_FORMAT_TOTAL_TIME_ENABLED;
  const bool has_running = c.read_format & PERF_FORMAT_TOTAL_TIME_RUNNING;
  const std::uint64_t enabled = has_enabled ? buf[at++] : 0;
  const std::uint64_t running = has_running ? buf[at++] : 0;
  if (c.read_format & PERF_FORMAT_GROUP) {
    out->counter = buf[at];
  } else {
    out->counter = buf[0];
  }
  // Times the event's read_format does not ask for: the time since it was opened, as for an event that
  // was never multiplexed (software events never are).
  const std::uint64_t since = os::clock_ns(CLOCK_MONOTONIC) - c.opened_ns;
  out->enabled = has_enabled ? enabled : since;
  out->running = has_running ? running : since;
  return 0;
}

void PerfEventArray::set_local(std::uint32_t index, std::uint32_t seq, std::shared_ptr<PerfEvent> event) {
  Local& local = local_[index];
  local.seq.store(0, std::memory_order_seq_cst);  // outputs reading the entry now go the slow way
  local.raw.store(event.get(), std::memory_order_seq_cst);
  if (local.event && local.event != event) retired_.push_back(std::move(local.event));
  local.event = std::move(event);
  local.seq.store(seq, std::memory_order_seq_cst);
  // An output counted in flight may still use a retired event; one that starts later reads the new one.
  if (in_flight_.load(std::memory_order_seq_cst) == 0) retired_.clear();
}

PerfEvent* PerfEventArray::cached(std::uint32_t index) const {
  const Local& local = local_[index];
  const std::uint32_t seq = local.seq.load(std::memory_order_acquire);
  if (seq == 0 || seq != slot(index)->seq.load(std::memory_order_acquire)) return nullptr;
  PerfEvent* raw = local.raw.load(std::memory_order_acquire);
  return local.seq.load(std::memory_order_acquire) == seq ? raw : nullptr;
}

Result<std::shared_ptr<Map>> PerfEventArray::create(const MapDef& def, const std::string& storage_dir) {
  const std::size_t payload = BPFVM_TRY(payload_size(def));
  auto memory = BPFVM_TRY(allocate_map_memory(def, payload, storage_dir));
  return std::shared_ptr<Map>(new PerfEventArray(def, std::move(memory)));
}

Result<std::shared_ptr<Map>> PerfEventArray::attach(const MapDef& def, os::SharedMemory memory) {
  const std::size_t payload = BPFVM_TRY(payload_size(def));
  if (memory.size() != sizeof(MapHeader) + payload) {
    return make_error(Errc::kInvalid, "'{}' has the wrong size for its perf_event_array", memory.path());
  }
  return std::shared_ptr<Map>(new PerfEventArray(def, std::move(memory)));
}

PerfEventArray::Shared* PerfEventArray::shared() const { return reinterpret_cast<Shared*>(payload()); }
PerfEventArray::Slot* PerfEventArray::slot(std::uint32_t index) const {
  return reinterpret_cast<Slot*>(payload() + sizeof(Shared)) + index;
}

Result<std::uint32_t> PerfEventArray::index_of(const void* key) const {
  std::uint32_t index;
  std::memcpy(&index, key, 4);
  if (index >= def().max_entries) {
    return make_error(Errc::kTooBig, "index {} is past max_entries {}", index, def().max_entries);
  }
  return index;
}

Result<void> PerfEventArray::set_event(const void* key, std::shared_ptr<PerfEvent> event, std::uint64_t flags) {
  if (flags != BPF_ANY) return make_error(Errc::kInvalid, "a perf_event_array takes BPF_ANY updates only");
  BPFVM_TRY(check_user_write());
  const std::uint32_t i = BPFVM_TRY(index_of(key));
  if (event->path().size() >= sizeof(Slot::path)) {
    return make_error(Errc::kTooBig, "the perf buffer's path '{}' is too long", event->path());
  }
  std::lock_guard lock(mutex_);
  SpinGuard guard(header()->lock);
  Slot* s = slot(i);
  std::memset(s->path, 0, sizeof s->path);
  std::memcpy(s->path, event->path().data(), event->path().size());
  s->present = 1;
  const std::uint32_t seq = s->seq.load(std::memory_order_relaxed) + 1;
  s->seq.store(seq, std::memory_order_release);
  set_local(i, seq, std::move(event));
  drop_counter(local_[i]);
  return {};
}

Result<void> PerfEventArray::erase(const void* key) {
  BPFVM_TRY(check_user_write());
  const std::uint32_t i = BPFVM_TRY(index_of(key));
  std::lock_guard lock(mutex_);
  SpinGuard guard(header()->lock);
  Slot* s = slot(i);
  if (!s->present) return make_error(Errc::kNotFound, "slot {} is empty", i);
  s->present = 0;
  std::memset(s->path, 0, sizeof s->path);
  const std::uint32_t seq = s->seq.load(std::memory_order_relaxed) + 1;
  s->seq.store(seq, std::memory_order_release);
  set_local(i, seq, nullptr);
  drop_counter(local_[i]);
  return {};
}

std::shared_ptr<PerfEvent> PerfEventArray::event(std::uint32_t index) {
  if (index >= def().max_entries) return nullptr;
  Slot* s = slot(index);
  std::lock_guard lock(mutex_);
  Local& local = local_[index];
  const std::uint32_t seq = s->seq.load(std::memory_order_acquire);
  if (local.seq.load(std::memory_order_relaxed) == seq) return local.event;
  // Another process changed the slot: open the event it names.
  std::string path;
  bool present;
  {
    SpinGuard guard(header()->lock);
    present = s->present == 1;  // (2: a counter, no event file)
    path.assign(s->path, strnlen(s->path, sizeof s->path));
  }
  std::shared_ptr<PerfEvent> event;
  if (present && !path.empty()) {
    auto opened = PerfEvent::open(path);
    if (opened) event = std::move(*opened);
  }
  set_local(index, seq, event);
  return event;
}

int PerfEventArray::output(std::uint32_t index, std::uint32_t cpu,
                           std::span<const std::span<const std::uint8_t>> parts) {
  if (index == BPF_F_CURRENT_CPU) index = cpu;
  if (index >= def().max_entries) return -E2BIG;
  // The slot's event as this process last opened it, without the mutex or a reference count while the
  // slot is unchanged (every output of a program); else through event().
  struct InFlight {
    std::atomic<std::uint32_t>& n;
    explicit InFlight(std::atomic<std::uint32_t>& count) : n(count) { n.fetch_add(1, std::memory_order_seq_cst); }
    ~InFlight() { n.fetch_sub(1, std::memory_order_seq_cst); }
  } in_flight(in_flight_);
  PerfEvent* ev = cached(index);
  std::shared_ptr<PerfEvent> opened;
  if (!ev) {
    opened = event(index);
    ev = opened.get();
  }
  if (!ev) {
    // A counting event of the kernel's takes no samples (bpf_perf_event_output: EINVAL).
    return slot(index)->present == 2 ? -EINVAL : -ENOENT;
  }
  // The event must be the running CPU's (event->oncpu != smp_processor_id()).
  if (ev->cpu() != cpu) return -EOPNOTSUPP;
  if (const int r = ev->output(parts); r != 0) return r;
  notify();
  return 0;
}

std::uint32_t PerfEventArray::output_count() const { return shared()->outputs.load(std::memory_order_seq_cst); }

void PerfEventArray::notify() const {
  // Paired with wait(): either the reader sees the new count, or this sees the reader waiting.
  shared()->outputs.fetch_add(1, std::memory_order_seq_cst);
  if (shared()->waiters.load(std::memory_order_seq_cst) != 0) {
    os::futex_wake_all(shared()->outputs);
  }
}

bool PerfEventArray::wait(std::uint32_t seen, int timeout_ms) const {
  Shared* s = shared();
  s->waiters.fetch_add(1, std::memory_order_seq_cst);
  if (s->outputs.load(std::memory_order_seq_cst) == seen) {
    os::futex_wait(s->outputs, seen, timeout_ms);
  }
  s->waiters.fetch_sub(1, std::memory_order_seq_cst);
  return s->outputs.load(std::memory_order_seq_cst) != seen;
}

// User space cannot read a perf event back (no map_fd_sys_lookup_elem): the kernel answers ENOTSUPP.
Result<void> PerfEventArray::lookup(const void*, void*) const {
  return make_error(Errc::kNotSupported, "a perf_event_array's slots cannot be read");
}

Result<void> PerfEventArray::update(const void*, const void*, std::uint64_t) {
  return make_error(Errc::kInvalid, "a perf_event_array holds perf events: install them with set_event (bpf() takes their fds)");
}

Result<void> PerfEventArray::next_key(const void* key, void* next) const {
  return array_next_key(def().max_entries, key, next);
}

// Programs cannot look up a perf_event_array (the verifier refuses map_lookup_elem on one).
void* PerfEventArray::lookup_in_place(const void*) { return nullptr; }

}  // namespace bpfvm::maps
