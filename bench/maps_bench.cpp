// Map benchmarks, measured in one run and printed as ratios:
//  - hash and array lookup/update from user space: bpfvm's map, its bpf() command, std::unordered_map,
//    and (as root) the kernel's map through bpf();
//  - hash and array lookup from a program (100 lookups per run through test_run): bpfvm and the kernel,
//    each minus the same program without the lookups;
//  - lru_hash updates that evict, lpm_trie lookups (user space and from a program), against the kernel;
//  - ring buffer and perf buffer throughput: one producer thread, one consumer thread.
// Arguments pick sections: user, program, lru, lpm, ringbuf, perf (default: all).
#include <linux/bpf.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>
#include <thread>
#include <unordered_map>
#include <functional>
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

// A program that runs `body` (the loop counter in r6) 100 times, or an empty loop, and returns 0.
std::vector<std::uint8_t> loop_program(const std::string& body, bool with_body) {
  const std::string src = "r6 = 0\nloop:\n" + (with_body ? body : std::string()) + "r6 += 1\nif r6 < 100 goto loop\nr0 = 0\nexit\n";
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
// noise then hits both sides alike.
void program_calls(Bench& b, const char* title, const char* what, const std::function<int(runtime::Runtime*)>& make_map,
                   const std::function<std::vector<std::uint8_t>(int, bool)>& program) {
  const int ours = make_map(&b.rt);
  const int o_with_fd = load(&b.rt, program(ours, true)), o_without_fd = load(&b.rt, program(ours, false));
  int k_with_fd = -1, k_without_fd = -1;
  if (b.kernel) {
    const int theirs = make_map(nullptr);
    k_with_fd = load(nullptr, program(theirs, true));
    k_without_fd = load(nullptr, program(theirs, false));
  }
  double best[4] = {1e18, 1e18, 1e18, 1e18};
  for (int round = 0; round < 7; ++round) {
    best[0] = std::min(best[0], test_run(&b.rt, o_with_fd, kRepeat));
    best[1] = std::min(best[1], test_run(&b.rt, o_without_fd, kRepeat));
    if (b.kernel) {
      best[2] = std::min(best[2], test_run(nullptr, k_with_fd, kRepeat));
      best[3] = std::min(best[3], test_run(nullptr, k_without_fd, kRepeat));
    }
  }
  const double o_prog = (best[0] - best[1]) / 100;
  const double k_prog = b.kernel ? (best[2] - best[3]) / 100 : 0;
  // Programs loaded through bpf(BPF_PROG_LOAD) run in the JIT (the default engine), as the kernel's do.
  std::printf("%s, from a program (both JITs)\n", title);
  row(fmt::format("  {}, bpfvm", what).c_str(), o_prog, k_prog, "of the kernel's (JIT)");
  if (b.kernel) row(fmt::format("  {}, kernel", what).c_str(), k_prog, 0, "");
  std::printf("\n");
}

void program_lookups(Bench& b, const char* title, const std::function<int(runtime::Runtime*)>& make_map,
                     const std::function<std::vector<std::uint8_t>(int, bool)>& program) {
  program_calls(b, title, "lookup", make_map, program);
}

void bench_program(Bench& b, std::uint32_t type) {
  auto make = [type](runtime::Runtime* rt) {
    const int fd = create(rt, type);
    for (std::uint32_t k = 0; k < 100; ++k) {
      std::uint64_t v = k;
      elem(rt, BPF_MAP_UPDATE_ELEM, fd, &k, &v);
    }
    return fd;
  };
  const char* name = type == BPF_MAP_TYPE_HASH ? "hash" : "array";
  program_calls(b, name, "lookup", make, lookup_program);
  program_calls(b, name, "update", make, update_program);
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
  program_lookups(b, "lpm_trie", make_lpm, [](int fd, bool with_lookups) {
    return loop_program(fmt::format("*(u32 *)(r10 -8) = 32\nr1 = r6\nr1 *= 0x10101\nr1 <<= 8\nr1 |= 10\n"
                                    "*(u32 *)(r10 -4) = r1\nr1 = map[fd:{}]\nr2 = r10\nr2 += -8\ncall 1\n", fd),
                        with_lookups);
  });
}

void bench_ringbuf(Bench& b) {
  // Ring buffer: a producer thread outputs 16-byte records, a consumer thread takes them.
  auto map = b.rt.create_map({{BPF_MAP_TYPE_RINGBUF, 0, 0, 1u << 20, 0, "bench_rb"}, std::nullopt, nullptr, 0, 0});
  auto* rb = static_cast<maps::RingBuffer*>(&(*map)->impl());
  constexpr std::uint64_t kRecords = 2'000'000;
  std::uint64_t consumed = 0;
  const auto t0 = Clock::now();
  std::thread consumer([&] {
    while (consumed < kRecords) {
      rb->wait(10);
      consumed += rb->consume([](std::span<const std::uint8_t>) { return 0; });
    }
  });
  std::uint64_t record[2] = {0, 0};
  for (std::uint64_t i = 0; i < kRecords; ++i) {
    record[0] = i;
    while (!rb->output(record, sizeof record, 0)) std::this_thread::yield();
  }
  consumer.join();
  const double secs = std::chrono::duration<double>(Clock::now() - t0).count();
  std::printf("ringbuf, 16-byte records, 1 producer + 1 consumer thread: %.1f M records/s\n",
              static_cast<double>(kRecords) / secs / 1e6);
}

void bench_perf_buffer(Bench& b) {
  // perf_event_array: a producer thread outputs 16-byte samples to CPU 0's buffer, a reader polls.
  auto map = b.rt.create_map({{BPF_MAP_TYPE_PERF_EVENT_ARRAY, 4, 4, maps::possible_cpus(), 0, "bench_perf"},
                              std::nullopt, nullptr, 0, 0});
  std::uint64_t consumed = 0;
  auto reader = maps::PerfBuffer::open((*map)->shared_impl(), 256,
                                       [&](std::uint32_t, std::span<const std::uint8_t>) { ++consumed; });
  auto& array = static_cast<maps::PerfEventArray&>((*map)->impl());
  constexpr std::uint64_t kRecords = 2'000'000;
  const auto t0 = Clock::now();
  std::thread consumer([&] {
    while (consumed < kRecords) (*reader)->poll(10);
  });
  std::uint64_t record[2] = {0, 0};
  for (std::uint64_t i = 0; i < kRecords; ++i) {
    record[0] = i;
    const std::span<const std::uint8_t> parts[1] = {{reinterpret_cast<const std::uint8_t*>(record), sizeof record}};
    while (array.output(0, 0, parts) != 0) std::this_thread::yield();
  }
  consumer.join();
  const double secs = std::chrono::duration<double>(Clock::now() - t0).count();
  std::printf("perf buffer, 16-byte samples, 1 producer + 1 consumer thread: %.1f M samples/s\n",
              static_cast<double>(kRecords) / secs / 1e6);
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
  if (want("lru")) bench_lru(b);
  if (want("lpm")) bench_lpm(b);
  if (want("ringbuf")) bench_ringbuf(b);
  if (want("perf")) bench_perf_buffer(b);
  std::filesystem::remove_all(root);
  return 0;
}
