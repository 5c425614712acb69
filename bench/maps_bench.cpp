// Map benchmarks, measured in one run and printed as ratios:
//  - hash and array lookup/update from user space: bpfvm's map, its bpf() command, std::unordered_map,
//    and (as root) the kernel's map through bpf();
//  - hash and array lookup from a program (100 lookups per run through test_run): bpfvm and the kernel,
//    each minus the same program without the lookups;
//  - ring buffer throughput: one producer thread, one consumer thread.
#include <linux/bpf.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>
#include <thread>
#include <unordered_map>

#include "bpfvm/isa/assembler.hpp"
#include "bpfvm/isa/codec.hpp"
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

int create(runtime::Runtime* rt, std::uint32_t type) {
  union bpf_attr a {};
  a.map_type = type;
  a.key_size = 4;
  a.value_size = 8;
  a.max_entries = kEntries;
  return static_cast<int>(rt ? rt->bpf(BPF_MAP_CREATE, &a, sizeof a) : kbpf(BPF_MAP_CREATE, &a));
}

long elem(runtime::Runtime* rt, int cmd, int fd, const void* key, void* value) {
  union bpf_attr a {};
  a.map_fd = static_cast<std::uint32_t>(fd);
  a.key = reinterpret_cast<std::uint64_t>(key);
  a.value = reinterpret_cast<std::uint64_t>(value);
  return rt ? rt->bpf(cmd, &a, sizeof a) : kbpf(cmd, &a);
}

// 100 lookups of keys 0..99 per run (or none), returning 0.
std::vector<std::uint8_t> lookup_program(int map_fd, bool with_lookups) {
  std::string src = "r6 = 0\nloop:\n";
  if (with_lookups) {
    src += fmt::format("*(u32 *)(r10 -4) = r6\nr1 = map[fd:{}]\nr2 = r10\nr2 += -4\ncall 1\n", map_fd);
  }
  src += "r6 += 1\nif r6 < 100 goto loop\nr0 = 0\nexit\n";
  auto insns = isa::assemble(src, isa::AsmSyntax::kKernel);
  return isa::to_wire(*insns);
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

}  // namespace

int main() {
  const auto root = std::filesystem::temp_directory_path() / ("bpfvm-bench-" + std::to_string(::getpid()));
  runtime::Runtime rt(runtime::RuntimeOptions{root.string()});
  const bool kernel = ::geteuid() == 0 && create(nullptr, BPF_MAP_TYPE_ARRAY) >= 0;
  constexpr std::uint64_t kOps = 1'000'000;
  std::printf("maps_bench: %s\n\n", kernel ? "kernel maps measured alongside" : "no bpf() here: bpfvm only");

  for (std::uint32_t type : {BPF_MAP_TYPE_HASH, BPF_MAP_TYPE_ARRAY}) {
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

    // From programs: (run with 100 lookups - run without) / 100.
    constexpr std::uint32_t kRepeat = 20000;
    const double o_with = test_run(&rt, load(&rt, lookup_program(ours, true)), kRepeat);
    const double o_without = test_run(&rt, load(&rt, lookup_program(ours, false)), kRepeat);
    const double o_prog = (o_with - o_without) / 100;
    double k_prog = 0;
    if (kernel) {
      const double k_with = test_run(nullptr, load(nullptr, lookup_program(theirs, true)), kRepeat);
      const double k_without = test_run(nullptr, load(nullptr, lookup_program(theirs, false)), kRepeat);
      k_prog = (k_with - k_without) / 100;
    }
    std::printf("%s, from a program (bpf_map_lookup_elem, interpreter in checked mode)\n", name);
    row("  lookup, bpfvm", o_prog, k_prog, "of the kernel's (JIT)");
    if (kernel) row("  lookup, kernel", k_prog, 0, "");
    std::printf("\n");
  }

  // Ring buffer: a producer thread outputs 16-byte records, a consumer thread takes them.
  {
    auto map = rt.create_map({{BPF_MAP_TYPE_RINGBUF, 0, 0, 1u << 20, 0, "bench_rb"}, std::nullopt, nullptr, 0, 0});
    auto* rb = static_cast<maps::RingBuffer*>(&(*map)->impl());
    constexpr std::uint64_t kRecords = 2'000'000;
    std::atomic<bool> done{false};
    std::uint64_t consumed = 0;
    const auto t0 = Clock::now();
    std::thread consumer([&] {
      while (consumed < kRecords) {
        rb->wait(10);
        consumed += rb->consume([](std::span<const std::uint8_t>) { return 0; });
      }
      done = true;
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
  std::filesystem::remove_all(root);
  return 0;
}
