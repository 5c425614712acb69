// The JIT beside native code, the kernel's JIT and bpfvm's interpreter, in one run:
//
//   jit_bench [--rounds N] [--no-kernel] OBJ_DIR
//
// For each program of bench/programs (the same C compiled natively with clang -O2, linked in, and as an
// XDP program in OBJ_DIR/NAME.o) it measures ns per run:
//  - native: the C function called in a loop;
//  - kernel: BPF_PROG_TEST_RUN with repeat (the kernel's own per-run average), when root allows;
//  - bpfvm JIT and interpreter: a Program::Runner on an XDP context over the same packet, in a loop (the
//    path of test_run's repeat loop, as the kernel's figure is its test_run loop).
// Each engine's fixed cost of a run (the empty program, measured right before in every round) is
// subtracted, as the kernel's test_run overhead is; every figure is the median of N rounds. Then the ratios: JIT / native, JIT /
// kernel, interpreter / native, and JIT compile time per 1000 instructions. Results are cross-checked:
// every engine must return the native function's value.
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <fmt/format.h>
#include <linux/bpf.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "bpfvm/helpers/run_env.hpp"
#include "bpfvm/isa/assembler.hpp"
#include "bpfvm/runtime/context.hpp"
#include "bpfvm/runtime/object.hpp"
#include "bpfvm/vm/jit.hpp"

extern "C" {
std::uint64_t empty_native(void* mem, std::uint64_t len);
std::uint64_t parse_native(void* mem, std::uint64_t len);
std::uint64_t checksum_native(void* mem, std::uint64_t len);
std::uint64_t arith_native(void* mem, std::uint64_t len);
std::uint64_t arith_nodiv_native(void* mem, std::uint64_t len);
std::uint64_t branchy_native(void* mem, std::uint64_t len);
}

namespace {

using namespace bpfvm;
using Clock = std::chrono::steady_clock;

struct Bench {
  const char* name;
  std::uint64_t (*native)(void*, std::uint64_t);
  std::size_t packet_size;
};
const Bench kBenches[] = {
    {"empty", empty_native, 64},         {"parse", parse_native, 64},
    {"checksum", checksum_native, 1500}, {"arith", arith_native, 64},
    {"arith_nodiv", arith_nodiv_native, 64}, {"branchy", branchy_native, 1500},
};

// A TCP/IPv4 frame of `size` bytes; the rest is printable text (for the byte classifier).
std::vector<std::uint8_t> packet(std::size_t size) {
  std::vector<std::uint8_t> p(size);
  for (std::size_t i = 0; i < size; ++i) p[i] = static_cast<std::uint8_t>("Hello, World 42! "[i % 17]);
  const std::uint8_t header[] = {
      0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 0x08, 0x00,                                   // Ethernet, IPv4
      0x45, 0, 0, 50, 0, 1, 0, 0, 64, 6, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2,                 // IPv4, TCP
      0x30, 0x39, 0x00, 0x50};                                                            // ports 12345 -> 80
  std::memcpy(p.data(), header, std::min(sizeof header, size));
  return p;
}

struct KernelProg {
  bpf_object* obj = nullptr;
  int fd = -1;
};

int silent(enum libbpf_print_level, const char*, va_list) { return 0; }

KernelProg kernel_load(const std::string& path) {
  KernelProg k;
  k.obj = bpf_object__open(path.c_str());
  if (!k.obj || libbpf_get_error(k.obj)) return {};
  if (bpf_object__load(k.obj) != 0) {
    bpf_object__close(k.obj);
    return {};
  }
  bpf_program* p = bpf_object__next_program(k.obj, nullptr);
  k.fd = p ? bpf_program__fd(p) : -1;
  return k;
}

// A program of `n` instructions in the proportions of the corpus's real programs (tests/corpus:
// about half ALU, a fifth loads, a sixth stores, a tenth jumps, a few calls and 64-bit loads): what
// compile time is measured on.
std::vector<isa::RawInsn> program_of(std::size_t n) {
  static const char* const kCycle[] = {
      "r6 = r1\n", "r2 = *(u32 *)(r6 +0)\n", "r3 = *(u32 *)(r6 +4)\n", "r4 = r2\n", "r4 += 14\n",
      "if r4 > r3 goto pc+6\n", "r5 = *(u8 *)(r2 +12)\n", "w5 <<= 8\n", "r7 = *(u16 *)(r2 +12)\n",
      "r7 |= r5\n", "*(u32 *)(r10 -4) = r7\n", "*(u64 *)(r10 -16) = r6\n", "r8 = 0x1122334455667788 ll\n",
      "r7 ^= r8\n", "r0 = r7\n", "r0 &= 0xffff\n", "*(u16 *)(r10 -6) = r0\n", "r1 = r10\n", "r1 += -16\n",
      "call 1\n", "if r0 == 0 goto pc+1\n", "r0 = 1\n"};
  std::string text;
  for (std::size_t i = 0; text.size() < 30 * n; ++i) text += kCycle[i % std::size(kCycle)];
  auto p = *isa::assemble(text + "exit\n", isa::AsmSyntax::kKernel);
  // End on plain moves, so that no jump aims past the end.
  p.resize(n - 8);  // the jumps above reach at most 7 ahead
  if (p.back().is_lddw()) p.pop_back();
  while (p.size() < n - 1) p.push_back({0xb7, 0, 0, 0, 1});
  p.push_back({0x95, 0, 0, 0, 0});
  return p;
}

}  // namespace

int main(int argc, char** argv) {
  int rounds = 15;
  bool use_kernel = true;
  std::string dir;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--rounds" && i + 1 < argc) {
      rounds = std::max(1, std::atoi(argv[++i]));
    } else if (a == "--no-kernel") {
      use_kernel = false;
    } else {
      dir = a;
    }
  }
  if (dir.empty()) {
    fmt::print(stderr, "Usage: jit_bench [--rounds N] [--no-kernel] OBJ_DIR\n");
    return 2;
  }
  libbpf_set_print(silent);
  if (::geteuid() != 0) use_kernel = false;

  // Compile time first, while the process is fresh (measured after the runs, it comes out up to 1.5x
  // slower): the median of many compiles of a 1000-instruction program.
  const auto program = program_of(1000);
  vm::HelperTable helpers;
  helpers.set(1, [](std::uint64_t, std::uint64_t, std::uint64_t, std::uint64_t, std::uint64_t, CallContext*) {
    return std::uint64_t{0};
  });
  std::vector<double> us;
  for (int i = 0; i < 50; ++i) (void)vm::JitProgram::compile(program, helpers);  // warm the allocators
  for (int i = 0; i < 200; ++i) {
    const auto t0 = Clock::now();
    auto jit = vm::JitProgram::compile(program, helpers);
    us.push_back(std::chrono::duration<double, std::micro>(Clock::now() - t0).count());
    if (!jit) {
      fmt::print(stderr, "compile failed: {}\n", jit.error().to_string());
      return 1;
    }
  }
  std::sort(us.begin(), us.end());
  auto one = vm::JitProgram::compile(program, helpers);
  const std::string compile_line =
      fmt::format("JIT compile of 1000 instructions: median {:.1f} us, best {:.1f} us of 200 ({} bytes of code; "
                  "target < 50 us)\n",
                  us[us.size() / 2], us.front(), one->code().size());

  // One runner per program and engine: runs the program n times. Loaded up front, so that every
  // round measures each program right after its engine's empty program (noise drifts slowly, and a
  // small program's net time is the difference of two close numbers).
  enum Engine { kNative, kKernel, kJit, kInterp, kEngines };
  static const char* const kEngineNames[] = {"native", "kernel", "bpfvm-jit", "interpreter"};
  using Runner = std::function<double(std::uint64_t)>;  // ns per run over n runs
  struct Loaded {
    std::vector<std::uint8_t> data;
    std::uint64_t want = 0;
    Runner run[kEngines];
    bool agree = true;
  };
  std::vector<Loaded> loaded(std::size(kBenches));
  std::vector<std::optional<runtime::Object>> objects;
  std::vector<KernelProg> kernel_progs;
  std::vector<runtime::XdpContext> contexts(std::size(kBenches) * 2);
  std::vector<std::unique_ptr<runtime::Program::Runner>> runners;
  const std::string root = "/tmp/bpfvm-jit-bench-" + std::to_string(::getpid());
  runtime::Runtime rt(runtime::RuntimeOptions{root});
  volatile std::uint64_t sink = 0;
  const auto timed = [](std::uint64_t n, auto&& body) {
    const auto t0 = Clock::now();
    for (std::uint64_t i = 0; i < n; ++i) body();
    return std::chrono::duration<double, std::nano>(Clock::now() - t0).count() / static_cast<double>(n);
  };
  for (std::size_t k = 0; k < std::size(kBenches); ++k) {
    const Bench& b = kBenches[k];
    Loaded& l = loaded[k];
    l.data = packet(b.packet_size);
    l.want = b.native(l.data.data(), l.data.size());
    l.run[kNative] = [&, &b = b, &l = l](std::uint64_t n) {
      return timed(n, [&] {
        sink = b.native(l.data.data(), l.data.size());
        asm volatile("" ::: "memory");
      });
    };
    const std::string path = fmt::format("{}/{}.o", dir, b.name);
    for (Engine e : {kJit, kInterp}) {
      runtime::ObjectOptions options;
      options.mode = e == kJit ? runtime::ExecMode::kJit : runtime::ExecMode::kInterpreter;
      auto object = runtime::Object::open_file(rt, path, options);
      if (!object || object->programs().empty()) {
        fmt::print(stderr, "{}: {}\n", path, object ? "no program" : object.error().to_string());
        return 1;
      }
      const runtime::Program* prog = object->programs().front().program.get();
      objects.emplace_back(std::move(*object));
      runtime::XdpContext& ctx = contexts[2 * k + (e == kJit ? 0 : 1)];
      ctx.data = reinterpret_cast<std::uint64_t>(l.data.data());
      ctx.data_meta = ctx.data;
      ctx.data_end = ctx.data + l.data.size();
      ctx.data_hard_start = ctx.data;
      auto r = prog->run(&ctx, sizeof ctx, {});
      if (!r || static_cast<std::uint32_t>(*r) != static_cast<std::uint32_t>(l.want)) l.agree = false;
      // Through a Runner, as test_run's repeat loop (and the kernel's, measured beside it) runs a program.
      helpers::RunEnv env = helpers::current_thread_env();
      runners.push_back(std::make_unique<runtime::Program::Runner>(*prog, &ctx, sizeof ctx,
                                                                   std::span<const std::uint8_t>{}, env));
      l.run[e] = [&, runner = runners.back().get()](std::uint64_t n) { return timed(n, [&] { sink = *runner->run(); }); };
    }
    if (use_kernel) {
      KernelProg kp = kernel_load(path);
      if (kp.fd >= 0) {
        std::uint32_t retval = 0;
        LIBBPF_OPTS(bpf_test_run_opts, once, .data_in = l.data.data(), .data_size_in = static_cast<std::uint32_t>(l.data.size()));
        if (bpf_prog_test_run_opts(kp.fd, &once) == 0) retval = once.retval;
        if (retval != static_cast<std::uint32_t>(l.want)) l.agree = false;
        const int fd = kp.fd;
        l.run[kKernel] = [&l = l, fd](std::uint64_t n) {
          // The kernel times its own loop of n runs; its average is what test_run reports.
          LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = l.data.data(),
                      .data_size_in = static_cast<std::uint32_t>(l.data.size()),
                      .repeat = static_cast<int>(std::min<std::uint64_t>(n, 1u << 24)));
          if (bpf_prog_test_run_opts(fd, &opts) != 0) return -1.0;
          return static_cast<double>(opts.duration);
        };
      }
      kernel_progs.push_back(kp);
    }
  }
  // Batch sizes: about 20 ms a batch.
  std::uint64_t batch[std::size(kBenches)][kEngines] = {};
  for (std::size_t k = 0; k < std::size(kBenches); ++k) {
    for (int e = 0; e < kEngines; ++e) {
      if (!loaded[k].run[e]) continue;
      std::uint64_t n = 1;
      while (n < (1u << 24) && loaded[k].run[e](n) * static_cast<double>(n) < 2e7) n *= 2;
      batch[k][e] = n;
    }
  }
  // Rounds: every program after its engine's empty one; the net figures' median.
  std::vector<double> net[std::size(kBenches)][kEngines];
  std::vector<double> fixed[kEngines];
  for (int r = 0; r < rounds; ++r) {
    for (std::size_t k = 1; k < std::size(kBenches); ++k) {
      for (int e = 0; e < kEngines; ++e) {
        if (!loaded[k].run[e] || !loaded[0].run[e]) continue;
        const double base = loaded[0].run[e](batch[k][e]);
        const double ns = loaded[k].run[e](batch[k][e]);
        if (base < 0 || ns < 0) continue;
        net[k][e].push_back(ns - base);
        fixed[e].push_back(base);
      }
    }
  }
  const auto median = [](std::vector<double> v) {
    if (v.empty()) return -1.0;
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
  };
  for (KernelProg& kp : kernel_progs) {
    if (kp.obj) bpf_object__close(kp.obj);
  }
  objects.clear();
  std::error_code ec;
  std::filesystem::remove_all(root, ec);

  fmt::print("ns per run, net of each engine's fixed cost of a run (the empty program: native {:.1f}, kernel {}, "
             "bpfvm JIT {:.1f}, interpreter {:.1f}); median of {} rounds\n\n",
             median(fixed[kNative]), fixed[kKernel].empty() ? std::string("-") : fmt::format("{:.1f}", median(fixed[kKernel])),
             median(fixed[kJit]), median(fixed[kInterp]), rounds);
  fmt::print("{:<12} {:>9} {:>9} {:>9} {:>11}   {:>10} {:>10} {:>13}  {}\n", "program", kEngineNames[kNative],
             kEngineNames[kKernel], kEngineNames[kJit], kEngineNames[kInterp], "jit/native", "jit/kernel",
             "interp/native", "results");
  bool all_agree = true;
  for (std::size_t k = 1; k < std::size(kBenches); ++k) {
    const double native = std::max(0.1, median(net[k][kNative]));
    const double jit = std::max(0.1, median(net[k][kJit]));
    const double interp = std::max(0.1, median(net[k][kInterp]));
    const bool have_kernel = !net[k][kKernel].empty();
    const double kernel = have_kernel ? std::max(0.1, median(net[k][kKernel])) : -1;
    all_agree = all_agree && loaded[k].agree;
    fmt::print("{:<12} {:>9.1f} {:>9} {:>9.1f} {:>11.1f}   {:>9.2f}x {:>10} {:>12.1f}x  {}\n", kBenches[k].name, native,
               have_kernel ? fmt::format("{:.1f}", kernel) : "-", jit, interp, jit / native,
               have_kernel ? fmt::format("{:.2f}x", jit / kernel) : "-", interp / native,
               loaded[k].agree ? "agree" : "DIFFER");
  }

  fmt::print("\n{}", compile_line);
  fmt::print("targets: bpfvm JIT <= 1.0x the kernel JIT and <= 1.5x native on each program\n");
  return all_agree ? 0 : 1;
}
