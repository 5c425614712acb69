#include "bpfvm/maps/perf_event.hpp"

#include <atomic>
#include <cstring>
#include <vector>

#include "map_header.hpp"

namespace bpfvm::maps {

namespace {

constexpr std::size_t kPage = 4096;
constexpr std::uint64_t kEventMagic = 0x5645506d76667062;  // "bpfvmPEV"
constexpr std::size_t kMaxDataPages = 1u << 18;             // 1 GiB of data
// bpfvm's own state lives in the first page, after the part of perf_event_mmap_page the kernel uses.
constexpr std::size_t kStateOffset = 2048;
static_assert(sizeof(perf_event_mmap_page) <= kStateOffset);

// data_head and data_tail are shared with other threads and processes.
std::atomic_ref<__u64> atomic64(__u64& v) { return std::atomic_ref<__u64>(v); }

std::atomic<std::uint64_t> g_next_event_id{1};

// PERF_RECORD_LOST as the kernel writes it (no sample_id_all fields: libbpf's events do not ask for them).
struct LostRecord {
  perf_event_header header;
  std::uint64_t id;
  std::uint64_t lost;
};

}  // namespace

struct PerfEvent::State {
  std::uint64_t magic;
  std::uint64_t data_pages;
  std::uint64_t id;
  std::uint32_t cpu;
  std::atomic<std::uint32_t> lock;            // producers on threads that share a CPU slot
  std::atomic<std::uint64_t> lost_pending;    // lost since the last PERF_RECORD_LOST
  std::atomic<std::uint64_t> lost_total;
};

PerfEvent::PerfEvent(os::SharedMemory memory, bool owner) : memory_(std::move(memory)), owner_(owner) {}

PerfEvent::~PerfEvent() {
  if (owner_) memory_.unlink();
}

Result<std::shared_ptr<PerfEvent>> PerfEvent::create(std::uint32_t cpu, std::size_t data_pages,
                                                     const std::string& storage_dir) {
  if (data_pages == 0 || (data_pages & (data_pages - 1)) != 0) {
    return make_error(Errc::kInvalid, "a perf buffer's page count must be a power of 2, not {}", data_pages);
  }
  if (data_pages > kMaxDataPages) return make_error(Errc::kTooBig, "a perf buffer of {} pages is too large", data_pages);
  const std::size_t size = kPage * (1 + data_pages);
  auto memory = BPFVM_TRY(storage_dir.empty() ? os::SharedMemory::anonymous(size)
                                              : os::SharedMemory::create(storage_dir + "/" + os::unique_name("perf-"), size));
  auto* page = new (memory.data()) perf_event_mmap_page{};
  page->version = 0;
  page->compat_version = 0;
  page->data_offset = kPage;
  page->data_size = data_pages * kPage;
  auto* state = new (memory.data() + kStateOffset) State{};
  state->data_pages = data_pages;
  state->id = g_next_event_id.fetch_add(1, std::memory_order_relaxed);
  state->cpu = cpu;
  std::atomic_ref<std::uint64_t>(state->magic).store(kEventMagic, std::memory_order_release);
  return std::shared_ptr<PerfEvent>(new PerfEvent(std::move(memory), true));
}

Result<std::shared_ptr<PerfEvent>> PerfEvent::open(const std::string& path) {
  auto memory = BPFVM_TRY(os::SharedMemory::open(path));
  // The file may come from anywhere: check it before trusting a field.
  if (memory.size() < 2 * kPage) return make_error(Errc::kInvalid, "'{}' is not a bpfvm perf buffer", path);
  const auto* state = reinterpret_cast<const State*>(memory.data() + kStateOffset);
  const auto* page = reinterpret_cast<const perf_event_mmap_page*>(memory.data());
  const std::uint64_t magic = std::atomic_ref<std::uint64_t>(const_cast<std::uint64_t&>(state->magic)).load(std::memory_order_acquire);
  if (magic != kEventMagic || state->data_pages == 0 || state->data_pages > kMaxDataPages ||
      (state->data_pages & (state->data_pages - 1)) != 0 || memory.size() != kPage * (1 + state->data_pages) ||
      page->data_offset != kPage || page->data_size != state->data_pages * kPage) {
    return make_error(Errc::kInvalid, "'{}' is not a bpfvm perf buffer", path);
  }
  return std::shared_ptr<PerfEvent>(new PerfEvent(std::move(memory), false));
}

PerfEvent::State* PerfEvent::state() const { return reinterpret_cast<State*>(memory_.data() + kStateOffset); }
perf_event_mmap_page* PerfEvent::page() const { return reinterpret_cast<perf_event_mmap_page*>(memory_.data()); }
const perf_event_mmap_page* PerfEvent::mmap_page() const { return page(); }
const std::uint8_t* PerfEvent::data() const { return memory_.data() + kPage; }
// From this process's own mapping, never from the shared state: the reader maps the first page writable
// (data_tail), and a size it wrote there must not send a producer past its mapping.
std::size_t PerfEvent::data_size() const { return memory_.size() - kPage; }
std::uint32_t PerfEvent::cpu() const { return state()->cpu; }
std::uint64_t PerfEvent::id() const { return state()->id; }
std::uint64_t PerfEvent::lost_total() const { return state()->lost_total.load(std::memory_order_relaxed); }

void PerfEvent::write_at(std::uint64_t pos, const void* bytes, std::size_t n) {
  const std::size_t size = data_size(), off = pos & (size - 1), first = std::min(n, size - off);
  auto* d = memory_.data() + kPage;
  if (bytes) {
    std::memcpy(d + off, bytes, first);
    std::memcpy(d, static_cast<const std::uint8_t*>(bytes) + first, n - first);
  } else {
    std::memset(d + off, 0, first);
    std::memset(d, 0, n - first);
  }
}

void PerfEvent::read_at(std::uint64_t pos, void* bytes, std::size_t n) const {
  const std::size_t size = data_size(), off = pos & (size - 1), first = std::min(n, size - off);
  std::memcpy(bytes, data() + off, first);
  std::memcpy(static_cast<std::uint8_t*>(bytes) + first, data(), n - first);
}

int PerfEvent::output(std::span<const std::span<const std::uint8_t>> parts) {
  std::uint64_t raw = 0;
  for (const auto& p : parts) raw += p.size();
  // The raw data is padded so that u32 size + data ends on an 8-byte boundary (perf_sample_save_raw_data).
  const std::uint64_t raw_size = round8(raw + 4) - 4;
  const std::uint64_t record = sizeof(perf_event_header) + 4 + raw_size;
  if (record > UINT16_MAX) return -E2BIG;  // larger than a perf record's u16 size

  State* s = state();
  SpinGuard guard(s->lock);
  auto head_word = atomic64(page()->data_head);
  const std::uint64_t head = head_word.load(std::memory_order_relaxed);
  const std::uint64_t tail = atomic64(page()->data_tail).load(std::memory_order_acquire);
  const std::uint64_t lost = s->lost_pending.load(std::memory_order_relaxed);
  const std::uint64_t need = record + (lost ? sizeof(LostRecord) : 0);
  // The kernel keeps at least one byte free (CIRC_SPACE), so that a full ring never looks empty.
  if (head - tail + need >= data_size()) {
    s->lost_pending.fetch_add(1, std::memory_order_relaxed);
    s->lost_total.fetch_add(1, std::memory_order_relaxed);
    return -ENOSPC;
  }
  std::uint64_t pos = head;
  if (lost) {
    const LostRecord rec{{PERF_RECORD_LOST, 0, sizeof(LostRecord)}, s->id, lost};
    write_at(pos, &rec, sizeof rec);
    pos += sizeof rec;
    s->lost_pending.store(0, std::memory_order_relaxed);
  }
  // A BPF sample is written from kernel context: misc says so, as under the kernel.
  const perf_event_header header{PERF_RECORD_SAMPLE, PERF_RECORD_MISC_KERNEL, static_cast<std::uint16_t>(record)};
  write_at(pos, &header, sizeof header);
  const auto size32 = static_cast<std::uint32_t>(raw_size);
  write_at(pos + sizeof header, &size32, 4);
  std::uint64_t at = pos + sizeof header + 4;
  for (const auto& p : parts) {
    write_at(at, p.data(), p.size());
    at += p.size();
  }
  write_at(at, nullptr, raw_size - raw);
  head_word.store(pos + record, std::memory_order_release);
  return 0;
}

bool PerfEvent::has_data() const {
  return atomic64(page()->data_head).load(std::memory_order_acquire) !=
         atomic64(page()->data_tail).load(std::memory_order_relaxed);
}

std::size_t PerfEvent::consume(const SampleFn& sample, const LostFn& lost) {
  auto tail_word = atomic64(page()->data_tail);
  const std::uint64_t head = atomic64(page()->data_head).load(std::memory_order_acquire);
  std::uint64_t tail = tail_word.load(std::memory_order_relaxed);
  std::vector<std::uint8_t> record;
  std::size_t count = 0;
  while (tail < head) {
    perf_event_header h;
    read_at(tail, &h, sizeof h);
    // A corrupt size would walk off the records: stop and drop what is left.
    if (h.size < sizeof h || h.size % 8 != 0 || h.size > head - tail) {
      tail = head;
      break;
    }
    record.resize(h.size);
    read_at(tail, record.data(), h.size);  // a record that wraps is copied whole, as libbpf does
    if (h.type == PERF_RECORD_SAMPLE && h.size >= sizeof h + 4) {
      std::uint32_t n;
      std::memcpy(&n, record.data() + sizeof h, 4);
      if (n <= h.size - sizeof h - 4 && sample) sample({record.data() + sizeof h + 4, n});
    } else if (h.type == PERF_RECORD_LOST && h.size >= sizeof(LostRecord)) {
      LostRecord rec;
      std::memcpy(&rec, record.data(), sizeof rec);
      if (lost) lost(rec.lost);
    }
    tail += h.size;
    ++count;
  }
  tail_word.store(tail, std::memory_order_release);
  return count;
}

}  // namespace bpfvm::maps
