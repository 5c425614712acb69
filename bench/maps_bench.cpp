// Map benchmarks, measured in one run and printed as ratios:
//  - hash and array lookup/update from user space: bpfvm's map, its bpf() command, std::unordered_map,
//    and (as root) the kernel's map through bpf();
//  - map operations from a program (100 per run through test_run, both JITs): hash, array, per-CPU
//    array and per-CPU hash lookups, hash and array updates, lru_hash updates that evict,
//    bpf_ringbuf_output, bpf_ringbuf_reserve + submit and bpf_perf_event_output of 16-byte records
//    (the buffers drained between runs), each minus the same program without the calls;
//  - lru_hash updates that evict, lpm_trie lookups (user space and from a program), against the kernel;
//  - ring buffer and perf buffer throughput from a program: one thread runs it, one consumer thread
//    reads (the kernel's through libbpf's ring_buffer and perf_buffer, bpfvm's through its own).
// Arguments pick sections: user, program, lru, lpm, ringbuf, perf (default: all).
#include <bpf/libbpf.h>
#include <linux/bpf.h>
#include <linux/perf_event.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>
#include <thread>
#include <unordered_map>
#include <functional>
#include <map>
#include <cstring>

#include "bpfvm/isa/assembler.hpp"
#include "bpfvm/isa/codec.hpp"
#include "bpfvm/maps/cpu.hpp"
#include "bpfvm/maps/perf_buffer.hpp"
#include "bpfvm/maps/ringbuf.hpp"
#include "bpfvm/runtime/runtime.hpp"

using namespace bpfvm;
using Clock = std::chrono::steady_clock;

namespace {

long kbpf(int cmd, union bpf_attr* a) { return ::syscall(__NR_bpf, cmd, a, sizeof *a); }

template <typename Fn>
double ns_per_op(std::uint64_t ops, Fn fn) {
  fn();  // warm up
  const auto t0 = Clock::now();
  for (std::uint64_t i = 0; i < ops; ++i) fn();
  return std::chrono::duration<double, std::nano>(Clock::now() - t0).count() / static_cast<double>(ops);
}

void row(const char* what, double ns, double base, const char* base_name) {
  if (base > 0) {
    std::printf("%-46s %9.1f ns   %6.2fx %s\n", what, ns, ns / base, base_name);
  } else {
    std::printf("%-46s %9.1f ns\n", what, ns);
  }
}

constexpr std::uint32_t kEntries = 1024;

// A map of kEntries with 8-byte values, in bpfvm (rt) or in the kernel (null).
int create(runtime::Runtime* rt, std::uint32_t type, std::uint32_t key_size = 4, std::uint32_t flags = 0) {
  union bpf_attr a {};
  a.map_type = type;
  a.key_size = key_size;
  a.value_size = 8;
  a.max_entries = kEntries;
  a.map_flags = flags;
  return static_cast<int>(rt ? rt->bpf(BPF_MAP_CREATE, &a, sizeof a) : kbpf(BPF_MAP_CREATE, &a));
}

long elem(runtime::Runtime* rt, int cmd, int fd, const void* key, void* value) {
  union bpf_attr a {};
  a.map_fd = static_cast<std::uint32_t>(fd);
  a.key = reinterpret_cast<std::uint64_t>(key);
  a.value = reinterpret_cast<std::uint64_t>(value);
  return rt ? rt->bpf(cmd, &a, sizeof a) : kbpf(cmd, &a);
}

// A program that runs `body` (the loop counter in r6, the context in r9) 100 times, or an empty loop,
// and returns 0.
std::vector<std::uint8_t> loop_program(const std::string& body, bool with_body) {
  const std::string src =
      "r9 = r1\nr6 = 0\nloop:\n" + (with_body ? body : std::string()) + "r6 += 1\nif r6 < 100 goto loop\nr0 = 0\nexit\n";
  return isa::to_wire(*isa::assemble(src, isa::AsmSyntax::kKernel));
}

// 100 updates of keys 0..99 (existing keys, value = the key).
std::vector<std::uint8_t> update_program(int map_fd, bool with_updates) {
  return loop_program(fmt::format("*(u32 *)(r10 -4) = r6\n*(u64 *)(r10 -16) = r6\nr1 = map[fd:{}]\nr2 = r10\n"
                                  "r2 += -4\nr3 = r10\nr3 += -16\nr4 = 0\ncall 2\n", map_fd),
                      with_updates);
}

// 100 lookups of keys 0..99.
std::vector<std::uint8_t> lookup_program(int map_fd, bool with_lookups) {
  return loop_program(fmt::format("*(u32 *)(r10 -4) = r6\nr1 = map[fd:{}]\nr2 = r10\nr2 += -4\ncall 1\n", map_fd),
                      with_lookups);
}

int load(runtime::Runtime* rt, const std::vector<std::uint8_t>& wire) {
  union bpf_attr a {};
  a.prog_type = BPF_PROG_TYPE_SOCKET_FILTER;
  a.insns = reinterpret_cast<std::uint64_t>(wire.data());
  a.insn_cnt = static_cast<std::uint32_t>(wire.size() / 8);
  a.license = reinterpret_cast<std::uint64_t>("GPL");
  return static_cast<int>(rt ? rt->bpf(BPF_PROG_LOAD, &a, sizeof a) : kbpf(BPF_PROG_LOAD, &a));
}

// Average ns per run over `repeat` runs, as test_run reports it.
double test_run(runtime::Runtime* rt, int prog_fd, std::uint32_t repeat) {
  std::vector<std::uint8_t> pkt(64, 0);
  pkt[12] = 0x08;
  pkt[14] = 0x45;
  union bpf_attr a {};
  a.test.prog_fd = static_cast<std::uint32_t>(prog_fd);
  a.test.data_in = reinterpret_cast<std::uint64_t>(pkt.data());
  a.test.data_size_in = static_cast<std::uint32_t>(pkt.size());
  a.test.repeat = repeat;
  const long rc = rt ? rt->bpf(BPF_PROG_TEST_RUN, &a, sizeof a) : kbpf(BPF_PROG_TEST_RUN, &a);
  return rc == 0 ? a.test.duration : -1.0;
}

struct Bench {
  runtime::Runtime& rt;
  bool kernel;
};
constexpr std::uint64_t kOps = 1'000'000;
constexpr std::uint32_t kRepeat = 5000;

void bench_user_space(Bench& b, std::uint32_t type) {
  runtime::Runtime& rt = b.rt;
  const bool kernel = b.kernel;
  const char* name = type == BPF_MAP_TYPE_HASH ? "hash" : "array";
  const int ours = create(&rt, type);
  const int theirs = kernel ? create(nullptr, type) : -1;
  std::unordered_map<std::uint32_t, std::uint64_t> um;
  auto map = std::get<std::shared_ptr<runtime::Map>>(*rt.object_for_fd(ours));
  for (std::uint32_t k = 0; k < kEntries; ++k) {
    std::uint64_t v = k;
    elem(&rt, BPF_MAP_UPDATE_ELEM, ours, &k, &v);
    if (kernel) elem(nullptr, BPF_MAP_UPDATE_ELEM, theirs, &k, &v);
    um[k] = v;
  }
  std::uint32_t key = 0;
  std::uint64_t value = 0;
  auto next = [&] { key = (key * 7 + 1) % kEntries; };
  std::printf("%s, %u entries, user space\n", name, kEntries);
  const double um_lookup = ns_per_op(kOps, [&] { next(); value += um.find(key)->second; });
  const double direct = ns_per_op(kOps, [&] { next(); (void)map->impl().lookup(&key, &value); });
  const double via_bpf = ns_per_op(kOps, [&] { next(); elem(&rt, BPF_MAP_LOOKUP_ELEM, ours, &key, &value); });
  const double k_lookup = kernel ? ns_per_op(kOps, [&] { next(); elem(nullptr, BPF_MAP_LOOKUP_ELEM, theirs, &key, &value); }) : 0;
  row("  lookup, std::unordered_map", um_lookup, 0, "");
  row("  lookup, bpfvm Map::lookup", direct, um_lookup, "of unordered_map");
  row("  lookup, bpfvm bpf(BPF_MAP_LOOKUP_ELEM)", via_bpf, k_lookup, "of the kernel's");
  if (kernel) row("  lookup, kernel bpf(BPF_MAP_LOOKUP_ELEM)", k_lookup, 0, "");
  const double um_update = ns_per_op(kOps, [&] { next(); um[key] = value; });
  const double o_update = ns_per_op(kOps, [&] { next(); elem(&rt, BPF_MAP_UPDATE_ELEM, ours, &key, &value); });
  const double k_update = kernel ? ns_per_op(kOps, [&] { next(); elem(nullptr, BPF_MAP_UPDATE_ELEM, theirs, &key, &value); }) : 0;
  row("  update, std::unordered_map", um_update, 0, "");
  row("  update, bpfvm bpf(BPF_MAP_UPDATE_ELEM)", o_update, k_update, "of the kernel's");
  if (kernel) row("  update, kernel bpf(BPF_MAP_UPDATE_ELEM)", k_update, 0, "");
  std::printf("\n");
}

// From programs: (run with 100 calls - run without) / 100, on a map filled with keys 0..99. bpfvm's and
// the kernel's runs alternate, 7 rounds, and each keeps its least disturbed (smallest) time: machine
// noise then hits both sides alike. `drain(ours, theirs)` runs after each run (outside the timing):
// buffers that programs fill are emptied there.
struct Calls {
  const char* title;
  const char* what;
  std::function<int(runtime::Runtime*)> make_map;
  std::function<std::vector<std::uint8_t>(int, bool)> program;
  std::function<void(int, int)> drain = [](int, int) {};
  std::uint32_t repeat = kRepeat;
};

void program_calls(Bench& b, const Calls& c) {
  const int ours = c.make_map(&b.rt);
  const int o_with_fd = load(&b.rt, c.program(ours, true)), o_without_fd = load(&b.rt, c.program(ours, false));
  int theirs = -1, k_with_fd = -1, k_without_fd = -1;
  if (b.kernel) {
    theirs = c.make_map(nullptr);
    k_with_fd = load(nullptr, c.program(theirs, true));
    k_without_fd = load(nullptr, c.program(theirs, false));
  }
  if (o_with_fd < 0 || (b.kernel && k_with_fd < 0)) {
    std::printf("%s, from a program: %s: the program did not load (bpfvm %d, kernel %d)\n\n", c.title, c.what, o_with_fd,
                k_with_fd);
    return;
  }
  double best[4] = {1e18, 1e18, 1e18, 1e18};
  for (int round = 0; round < 7; ++round) {
    best[0] = std::min(best[0], test_run(&b.rt, o_with_fd, c.repeat));
    c.drain(ours, theirs);
    best[1] = std::min(best[1], test_run(&b.rt, o_without_fd, c.repeat));
    if (b.kernel) {
      best[2] = std::min(best[2], test_run(nullptr, k_with_fd, c.repeat));
      c.drain(ours, theirs);
      best[3] = std::min(best[3], test_run(nullptr, k_without_fd, c.repeat));
    }
  }
  const double o_prog = (best[0] - best[1]) / 100;
  const double k_prog = b.kernel ? (best[2] - best[3]) / 100 : 0;
  // Programs loaded through bpf(BPF_PROG_LOAD) run in the JIT (the default engine), as the kernel's do.
  std::printf("%s, from a program (both JITs)\n", c.title);
  row(fmt::format("  {}, bpfvm", c.what).c_str(), o_prog, k_prog, "of the kernel's (JIT)");
  if (b.kernel) row(fmt::format("  {}, kernel", c.what).c_str(), k_prog, 0, "");
  std::printf("\n");
}

// A map of `type` with keys 0..99 holding their key (every CPU's value, for per-CPU maps).
int make_filled(runtime::Runtime* rt, std::uint32_t type, std::uint32_t entries = kEntries) {
  union bpf_attr a {};
  a.map_type = type;
  a.key_size = 4;
  a.value_size = 8;
  a.max_entries = entries;
  const int fd = static_cast<int>(rt ? rt->bpf(BPF_MAP_CREATE, &a, sizeof a) : kbpf(BPF_MAP_CREATE, &a));
  const bool per_cpu = type == BPF_MAP_TYPE_PERCPU_ARRAY || type == BPF_MAP_TYPE_PERCPU_HASH;
  std::vector<std::uint64_t> v(per_cpu ? maps::possible_cpus() : 1);
  for (std::uint32_t k = 0; k < std::min<std::uint32_t>(100, entries); ++k) {
    std::fill(v.begin(), v.end(), k);
    elem(rt, BPF_MAP_UPDATE_ELEM, fd, &k, v.data());
  }
  return fd;
}

const char* type_name(std::uint32_t type) {
  switch (type) {
    case BPF_MAP_TYPE_HASH: return "hash";
    case BPF_MAP_TYPE_ARRAY: return "array";
    case BPF_MAP_TYPE_PERCPU_ARRAY: return "percpu_array";
    case BPF_MAP_TYPE_PERCPU_HASH: return "percpu_hash";
    default: return "map";
  }
}

void bench_program(Bench& b, std::uint32_t type) {
  auto make = [type](runtime::Runtime* rt) { return make_filled(rt, type); };
  program_calls(b, {type_name(type), "lookup", make, lookup_program});
  if (type == BPF_MAP_TYPE_HASH || type == BPF_MAP_TYPE_ARRAY) {
    program_calls(b, {type_name(type), "update", make, update_program});
  }
}

// The kernel's ring buffer positions, mapped as a consumer maps them (consumer page, producer page).
struct KernelRingPositions {
  std::uint64_t* consumer = nullptr;
  const std::uint64_t* producer = nullptr;
};
KernelRingPositions map_kernel_ring(int fd) {
  KernelRingPositions r;
  void* c = ::mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  void* p = ::mmap(nullptr, 4096, PROT_READ, MAP_SHARED, fd, 4096);
  if (c != MAP_FAILED) r.consumer = static_cast<std::uint64_t*>(c);
  if (p != MAP_FAILED) r.producer = static_cast<const std::uint64_t*>(p);
  return r;
}

int make_ringbuf(runtime::Runtime* rt, std::uint32_t bytes) {
  union bpf_attr a {};
  a.map_type = BPF_MAP_TYPE_RINGBUF;
  a.max_entries = bytes;
  return static_cast<int>(rt ? rt->bpf(BPF_MAP_CREATE, &a, sizeof a) : kbpf(BPF_MAP_CREATE, &a));
}

maps::RingBuffer* our_ring(runtime::Runtime& rt, int fd) {
  auto map = std::get<std::shared_ptr<runtime::Map>>(*rt.object_for_fd(fd));
  return static_cast<maps::RingBuffer*>(&map->impl());
}

// 100 bpf_ringbuf_output calls of 16 bytes, or 100 bpf_ringbuf_reserve + submit.
std::vector<std::uint8_t> ringbuf_output_program(int fd, bool with_calls) {
  return loop_program(fmt::format("*(u64 *)(r10 -16) = r6\n*(u64 *)(r10 -8) = r6\nr1 = map[fd:{}]\nr2 = r10\n"
                                  "r2 += -16\nr3 = 16\nr4 = 0\ncall 130\n", fd),
                      with_calls);
}
std::vector<std::uint8_t> ringbuf_reserve_program(int fd, bool with_calls) {
  return loop_program(fmt::format("r1 = map[fd:{}]\nr2 = 16\nr3 = 0\ncall 131\nif r0 == 0 goto skip\n"
                                  "*(u64 *)(r0 +0) = r6\n*(u64 *)(r0 +8) = r6\nr1 = r0\nr2 = 0\ncall 132\nskip:\n", fd),
                      with_calls);
}
// 100 bpf_perf_event_output calls of 16 bytes to the current CPU's buffer (the context is the skb).
std::vector<std::uint8_t> perf_output_program(int fd, bool with_calls) {
  return loop_program(fmt::format("*(u64 *)(r10 -16) = r6\n*(u64 *)(r10 -8) = r6\nr1 = r9\nr2 = map[fd:{}]\n"
                                  "r3 = 0xffffffff ll\nr4 = r10\nr4 += -16\nr5 = 16\ncall 25\n", fd),
                      with_calls);
}

// The kernel's perf buffer of one CPU, as libbpf sets it up: a BPF output event, its ring mapped.
struct KernelPerfRing {
  int fd = -1;
  perf_event_mmap_page* page = nullptr;
};
constexpr std::size_t kPerfPages = 1024;  // data pages per CPU (4 MiB)

int make_perf_array(runtime::Runtime* rt, std::vector<KernelPerfRing>* kernel_rings,
                    std::unique_ptr<maps::PerfBuffer>* our_reader) {
  union bpf_attr a {};
  a.map_type = BPF_MAP_TYPE_PERF_EVENT_ARRAY;
  a.key_size = 4;
  a.value_size = 4;
  a.max_entries = maps::possible_cpus();
  const int fd = static_cast<int>(rt ? rt->bpf(BPF_MAP_CREATE, &a, sizeof a) : kbpf(BPF_MAP_CREATE, &a));
  if (fd < 0) return fd;
  if (rt) {
    auto map = std::get<std::shared_ptr<runtime::Map>>(*rt->object_for_fd(fd));
    auto reader = maps::PerfBuffer::open(map->shared_impl(), kPerfPages, [](std::uint32_t, std::span<const std::uint8_t>) {});
    if (reader) *our_reader = std::move(*reader);
    return fd;
  }
  for (std::uint32_t cpu = 0; cpu < maps::possible_cpus(); ++cpu) {
    perf_event_attr attr{};
    attr.size = sizeof attr;
    attr.type = PERF_TYPE_SOFTWARE;
    attr.config = PERF_COUNT_SW_BPF_OUTPUT;
    attr.sample_type = PERF_SAMPLE_RAW;
    attr.sample_period = 1;
    attr.wakeup_events = 1;
    int ev = static_cast<int>(::syscall(__NR_perf_event_open, &attr, -1, static_cast<int>(cpu), -1, 0));
    if (ev < 0) continue;
    void* ring = ::mmap(nullptr, (kPerfPages + 1) * 4096, PROT_READ | PROT_WRITE, MAP_SHARED, ev, 0);
    if (ring == MAP_FAILED) continue;
    ::ioctl(ev, PERF_EVENT_IOC_ENABLE, 0);
    elem(nullptr, BPF_MAP_UPDATE_ELEM, fd, &cpu, &ev);
    kernel_rings->push_back({ev, static_cast<perf_event_mmap_page*>(ring)});
  }
  return fd;
}

void bench_program_buffers(Bench& b) {
  constexpr std::uint32_t kRingBytes = 16u << 20;  // room for every record of a run (100 x 5000 x 24 bytes)
  auto drain_rings = [&b](int ours, int theirs) {
    maps::RingBuffer* rb = our_ring(b.rt, ours);
    *rb->consumer_pos() = *rb->producer_pos();
    if (theirs >= 0) {
      static std::map<int, KernelRingPositions> mapped;
      auto [it, fresh] = mapped.try_emplace(theirs);
      if (fresh) it->second = map_kernel_ring(theirs);
      if (it->second.consumer && it->second.producer) {
        __atomic_store_n(it->second.consumer, __atomic_load_n(it->second.producer, __ATOMIC_ACQUIRE), __ATOMIC_RELEASE);
      }
    }
  };
  auto make_ring = [](runtime::Runtime* rt) { return make_ringbuf(rt, kRingBytes); };
  program_calls(b, {"ringbuf, 16-byte records", "bpf_ringbuf_output", make_ring, ringbuf_output_program, drain_rings});
  program_calls(b, {"ringbuf, 16-byte records", "bpf_ringbuf_reserve + submit", make_ring, ringbuf_reserve_program,
                    drain_rings});
  // Perf buffers: 100 x 1000 samples of 32 bytes (header, size, 16 bytes) fit a 4 MiB ring.
  std::vector<KernelPerfRing> kernel_rings;
  std::unique_ptr<maps::PerfBuffer> reader;
  auto make_perf = [&](runtime::Runtime* rt) { return make_perf_array(rt, &kernel_rings, &reader); };
  auto drain_perf = [&](int, int) {
    if (reader) reader->poll(0);
    for (KernelPerfRing& r : kernel_rings) {
      __atomic_store_n(&r.page->data_tail, __atomic_load_n(&r.page->data_head, __ATOMIC_ACQUIRE), __ATOMIC_RELEASE);
    }
  };
  program_calls(b, {"perf_event_array, 16-byte samples", "bpf_perf_event_output", make_perf, perf_output_program,
                    drain_perf, 1000});
  for (KernelPerfRing& r : kernel_rings) {
    ::munmap(r.page, (kPerfPages + 1) * 4096);
    ::close(r.fd);
  }
}

// LRU hash: every update is a new key into a full map, so each one evicts the least recently used.
void bench_lru(Bench& b) {
  const int ours = create(&b.rt, BPF_MAP_TYPE_LRU_HASH);
  const int theirs = b.kernel ? create(nullptr, BPF_MAP_TYPE_LRU_HASH) : -1;
  std::uint32_t key = 0;
  std::uint64_t value = 0;
  for (; key < kEntries; ++key) {
    elem(&b.rt, BPF_MAP_UPDATE_ELEM, ours, &key, &value);
    if (b.kernel) elem(nullptr, BPF_MAP_UPDATE_ELEM, theirs, &key, &value);
  }
  const std::uint32_t first = key;
  const double o = ns_per_op(kOps, [&] { ++key; elem(&b.rt, BPF_MAP_UPDATE_ELEM, ours, &key, &value); });
  key = first;
  const double k = b.kernel ? ns_per_op(kOps, [&] { ++key; elem(nullptr, BPF_MAP_UPDATE_ELEM, theirs, &key, &value); }) : 0;
  std::printf("lru_hash, %u entries, full: update of a new key (evicts one)\n", kEntries);
  row("  update, bpfvm bpf(BPF_MAP_UPDATE_ELEM)", o, k, "of the kernel's");
  if (b.kernel) row("  update, kernel bpf(BPF_MAP_UPDATE_ELEM)", k, 0, "");
  std::printf("\n");
  // From a program: keys 0..99 in turn into 64 entries, so that every update is a new key and evicts.
  program_calls(b, {"lru_hash, 64 entries, update of a new key (evicts one)", "update",
                    [](runtime::Runtime* rt) { return make_filled(rt, BPF_MAP_TYPE_LRU_HASH, 64); }, update_program});
}

// LPM trie: 1024 IPv4 prefixes of lengths 8..32; lookups of addresses that match one of them.
struct LpmKey {
  std::uint32_t prefixlen;
  std::uint8_t addr[4];
};
int make_lpm(runtime::Runtime* rt) {
  const int fd = create(rt, BPF_MAP_TYPE_LPM_TRIE, sizeof(LpmKey), BPF_F_NO_PREALLOC);
  std::uint32_t x = 12345;
  for (std::uint32_t i = 0; i < kEntries; ++i) {
    x = x * 1103515245u + 12345u;
    LpmKey k{8 + i % 25, {static_cast<std::uint8_t>(10 + i % 4), static_cast<std::uint8_t>(x >> 8),
                          static_cast<std::uint8_t>(x >> 16), static_cast<std::uint8_t>(x >> 24)}};
    std::uint64_t v = i;
    elem(rt, BPF_MAP_UPDATE_ELEM, fd, &k, &v);
  }
  return fd;
}

void bench_lpm(Bench& b) {
  const int ours = make_lpm(&b.rt);
  const int theirs = b.kernel ? make_lpm(nullptr) : -1;
  auto map = std::get<std::shared_ptr<runtime::Map>>(*b.rt.object_for_fd(ours));
  std::uint32_t x = 1;
  LpmKey key{32, {10, 0, 0, 0}};
  std::uint64_t value = 0;
  auto next = [&] {
    x = x * 1103515245u + 12345u;
    key.addr[0] = static_cast<std::uint8_t>(10 + (x >> 30));
    std::memcpy(&key.addr[1], &x, 3);
  };
  const double direct = ns_per_op(kOps, [&] { next(); (void)map->impl().lookup(&key, &value); });
  const double via_bpf = ns_per_op(kOps, [&] { next(); elem(&b.rt, BPF_MAP_LOOKUP_ELEM, ours, &key, &value); });
  const double k = b.kernel ? ns_per_op(kOps, [&] { next(); elem(nullptr, BPF_MAP_LOOKUP_ELEM, theirs, &key, &value); }) : 0;
  std::printf("lpm_trie, %u IPv4 prefixes /8../32, user space\n", kEntries);
  row("  lookup, bpfvm Map::lookup", direct, 0, "");
  row("  lookup, bpfvm bpf(BPF_MAP_LOOKUP_ELEM)", via_bpf, k, "of the kernel's");
  if (b.kernel) row("  lookup, kernel bpf(BPF_MAP_LOOKUP_ELEM)", k, 0, "");
  std::printf("\n");
  // From a program: 100 lookups of 10.r6.r6.r6/32.
  program_calls(b, {"lpm_trie", "lookup", make_lpm, [](int fd, bool with_lookups) {
                      return loop_program(fmt::format("*(u32 *)(r10 -8) = 32\nr1 = r6\nr1 *= 0x10101\nr1 <<= 8\n"
                                                      "r1 |= 10\n*(u32 *)(r10 -4) = r1\nr1 = map[fd:{}]\nr2 = r10\n"
                                                      "r2 += -8\ncall 1\n", fd),
                                          with_lookups);
                    }});
}

// Throughput from a program: this thread runs a program that outputs 100 16-byte records per run
// (test_run, repeat 1000) until kAttempts calls were made, while a consumer thread reads them as an
// application does. Records delivered per second, and how many were lost (no room).
constexpr std::uint64_t kAttempts = 2'000'000;

struct Throughput {
  double m_per_s = 0;
  std::uint64_t lost = 0;
};

template <typename Consume, typename Done>
Throughput run_producer(runtime::Runtime* rt, int prog_fd, Consume consume, Done delivered) {
  std::atomic<bool> producing{true};
  const auto t0 = Clock::now();
  std::thread consumer([&] {
    while (producing.load(std::memory_order_acquire)) consume(10);
    consume(0);
  });
  for (std::uint64_t made = 0; made < kAttempts; made += 100 * 1000) test_run(rt, prog_fd, 1000);
  producing.store(false, std::memory_order_release);
  consumer.join();
  const double secs = std::chrono::duration<double>(Clock::now() - t0).count();
  const std::uint64_t got = delivered();
  return {static_cast<double>(got) / secs / 1e6, kAttempts - std::min(got, kAttempts)};
}

void print_throughput(const char* what, const Throughput& ours, const Throughput* theirs) {
  std::printf("  %-44s %6.1f M records/s  (%llu lost)", fmt::format("{}, bpfvm", what).c_str(), ours.m_per_s,
              static_cast<unsigned long long>(ours.lost));
  if (theirs && theirs->m_per_s > 0) std::printf("   %5.2fx the kernel's", ours.m_per_s / theirs->m_per_s);
  std::printf("\n");
  if (theirs) {
    std::printf("  %-44s %6.1f M records/s  (%llu lost)\n", fmt::format("{}, kernel", what).c_str(), theirs->m_per_s,
                static_cast<unsigned long long>(theirs->lost));
  }
}

void bench_ringbuf(Bench& b) {
  constexpr std::uint32_t kBytes = 1u << 20;
  std::printf("ringbuf from a program: bpf_ringbuf_output of 16-byte records, 1 MiB buffer, 1 producer + 1 consumer thread\n");
  const int ours = make_ringbuf(&b.rt, kBytes);
  const int o_prog = load(&b.rt, ringbuf_output_program(ours, true));
  maps::RingBuffer* rb = our_ring(b.rt, ours);
  std::uint64_t o_got = 0;
  const Throughput o = run_producer(
      &b.rt, o_prog,
      [&](int timeout_ms) {
        rb->wait(timeout_ms);
        o_got += rb->consume([](std::span<const std::uint8_t>) { return 0; });
      },
      [&] { return o_got; });
  Throughput k;
  if (b.kernel) {
    const int theirs = make_ringbuf(nullptr, kBytes);
    const int k_prog = load(nullptr, ringbuf_output_program(theirs, true));
    std::uint64_t k_got = 0;
    ring_buffer* ring = ring_buffer__new(
        theirs, [](void* ctx, void*, size_t) { return ++*static_cast<std::uint64_t*>(ctx), 0; }, &k_got, nullptr);
    if (ring && k_prog >= 0) {
      k = run_producer(nullptr, k_prog, [&](int timeout_ms) { ring_buffer__poll(ring, timeout_ms); }, [&] { return k_got; });
    }
    ring_buffer__free(ring);
  }
  print_throughput("bpf_ringbuf_output", o, b.kernel ? &k : nullptr);
  std::printf("\n");
}

void bench_perf_buffer(Bench& b) {
  std::printf("perf buffer from a program: bpf_perf_event_output of 16-byte samples, 256 KiB per CPU, 1 producer + 1 "
              "consumer thread\n");
  constexpr std::size_t kPages = 64;
  union bpf_attr a {};
  a.map_type = BPF_MAP_TYPE_PERF_EVENT_ARRAY;
  a.key_size = 4;
  a.value_size = 4;
  a.max_entries = maps::possible_cpus();
  const int ours = static_cast<int>(b.rt.bpf(BPF_MAP_CREATE, &a, sizeof a));
  const int o_prog = load(&b.rt, perf_output_program(ours, true));
  std::uint64_t o_got = 0;
  auto map = std::get<std::shared_ptr<runtime::Map>>(*b.rt.object_for_fd(ours));
  auto reader = maps::PerfBuffer::open(map->shared_impl(), kPages,
                                       [&](std::uint32_t, std::span<const std::uint8_t>) { ++o_got; });
  Throughput o;
  if (reader) o = run_producer(&b.rt, o_prog, [&](int timeout_ms) { (*reader)->poll(timeout_ms); }, [&] { return o_got; });
  Throughput k;
  if (b.kernel) {
    const int theirs = static_cast<int>(kbpf(BPF_MAP_CREATE, &a));
    const int k_prog = load(nullptr, perf_output_program(theirs, true));
    std::uint64_t k_got = 0;
    perf_buffer* pb = perf_buffer__new(
        theirs, kPages, [](void* ctx, int, void*, __u32) { ++*static_cast<std::uint64_t*>(ctx); }, nullptr, &k_got, nullptr);
    if (pb && k_prog >= 0) {
      k = run_producer(nullptr, k_prog, [&](int timeout_ms) { perf_buffer__poll(pb, timeout_ms); }, [&] { return k_got; });
    }
    perf_buffer__free(pb);
  }
  print_throughput("bpf_perf_event_output", o, b.kernel ? &k : nullptr);
  std::printf("\n");
}

}  // namespace

// maps_bench [SECTION...]: user, program, lru, lpm, ringbuf, perf (default: all).
int main(int argc, char** argv) {
  const auto root = std::filesystem::temp_directory_path() / ("bpfvm-bench-" + std::to_string(::getpid()));
  runtime::Runtime rt(runtime::RuntimeOptions{root.string()});
  Bench b{rt, ::geteuid() == 0 && create(nullptr, BPF_MAP_TYPE_ARRAY) >= 0};
  std::printf("maps_bench: %s\n\n", b.kernel ? "kernel maps measured alongside" : "no bpf() here: bpfvm only");
  auto want = [&](std::string_view section) {
    if (argc < 2) return true;
    for (int i = 1; i < argc; ++i) {
      if (section == argv[i]) return true;
    }
    return false;
  };
  for (std::uint32_t type : {BPF_MAP_TYPE_HASH, BPF_MAP_TYPE_ARRAY}) {
    if (want("user")) bench_user_space(b, type);
    if (want("program")) bench_program(b, type);
  }
  if (want("program")) {
    bench_program(b, BPF_MAP_TYPE_PERCPU_ARRAY);
    bench_program(b, BPF_MAP_TYPE_PERCPU_HASH);
    bench_program_buffers(b);
  }
  if (want("lru")) bench_lru(b);
  if (want("lpm")) bench_lpm(b);
  if (want("ringbuf")) bench_ringbuf(b);
  if (want("perf")) bench_perf_buffer(b);
  std::filesystem::remove_all(root);
  return 0;
}
