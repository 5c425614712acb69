// The verifier against the kernel's (root, so the privileged verifier): random programs of scalars,
// the stack and forward branches get the same verdict from both. The stack below fp-64 is written
// first, because the privileged kernel lets a program read uninitialised stack and bpfvm (as the issue
// asks) does not; pointers stay out of r0 for the same reason (root may return them).
#include <gtest/gtest.h>
#include <linux/bpf.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <fmt/format.h>

#include <chrono>
#include <cstring>
#include <random>

#include "bpfvm/isa/assembler.hpp"
#include "bpfvm/isa/codec.hpp"
#include "bpfvm/verifier/verifier.hpp"

namespace bpfvm::verifier {
namespace {

// The kernel's verdict: true (loaded), false (rejected), or nullopt when bpf() is not available. Maps
// referred to as map[idx:N] are fds[N].
std::optional<bool> kernel_accepts(std::span<const isa::RawInsn> insns, std::string* log_out,
                                   std::uint32_t prog_type = BPF_PROG_TYPE_SOCKET_FILTER,
                                   std::span<const int> fds = {}) {
  const auto wire = isa::to_wire(insns);
  std::vector<char> log(1 << 16);
  union bpf_attr a {};
  a.prog_type = prog_type;
  a.fd_array = reinterpret_cast<std::uint64_t>(fds.data());
  a.insns = reinterpret_cast<std::uint64_t>(wire.data());
  a.insn_cnt = static_cast<std::uint32_t>(insns.size());
  a.license = reinterpret_cast<std::uint64_t>("GPL");
  a.log_buf = reinterpret_cast<std::uint64_t>(log.data());
  a.log_size = static_cast<std::uint32_t>(log.size());
  a.log_level = 1;
  const long fd = ::syscall(__NR_bpf, BPF_PROG_LOAD, &a, sizeof a);
  if (fd >= 0) {
    ::close(static_cast<int>(fd));
    return true;
  }
  if (errno == EPERM || errno == ENOSYS) return std::nullopt;
  if (log_out) *log_out = log.data();
  return false;
}

// One function of a random program: its first 64 bytes of stack written, random instructions (labels
// <name>_<n>), r0 probably set, exit. It may call the functions numbered above `index` (never itself or
// one below: no recursion), up to `functions`.
std::string random_function(std::mt19937& rng, bool loops, int index, int functions) {
  std::string src = index == 0 ? "" : fmt::format("f{}:\n", index);
  const std::string label = fmt::format("l{}_", index);
  // Initialise fp-64..fp-1. (Zeros: how the kernel narrows a read from the middle of a spilled
  // non-zero constant is not yet modelled; bpfvm then knows less than the kernel and may reject what
  // it accepts.)
  for (int off = -64; off < 0; off += 8) src += fmt::format("*(u64 *)(r10 {}) = 0\n", off);
  // Most registers start known; now and then one stays unset, and reading it must fail on both sides.
  // (The entry function's r1 is the context: it is always replaced by a number.)
  auto set_registers = [&](std::initializer_list<int> regs) {
    for (int r : regs) {
      if (r == 1 && index == 0 ? true : rng() % 10 != 0) src += fmt::format("r{} = {}\n", r, static_cast<int>(rng() % 200) - 100);
    }
  };
  if (index == 0) set_registers({0, 1, 2, 3, 4, 5});
  const char* ops[] = {"+=", "-=", "*=", "|=", "&=", "^=", "<<=", ">>=", "s>>=", "=", "/=", "%="};
  const char* conds[] = {"==", "!=", ">", ">=", "<", "<=", "s>", "s>=", "s<", "s<=", "&"};
  const char* sizes[] = {"u8", "u16", "u32", "u64"};
  const int n = 4 + static_cast<int>(rng() % 20);
  auto reg = [&] { return static_cast<int>(rng() % 6); };
  auto imm = [&]() -> std::int64_t {
    switch (rng() % 4) {
      case 0: return static_cast<std::int64_t>(rng() % 16);
      case 1: return -static_cast<std::int64_t>(rng() % 16);
      case 2: return static_cast<std::int32_t>(rng());
      default: return static_cast<std::int64_t>(rng() % 70);
    }
  };
  for (int i = 0; i < n; ++i) {
    src += fmt::format("{}{}:\n", label, i);
    const bool w = rng() % 4 == 0;
    const char r = w ? 'w' : 'r';
    switch (rng() % 7) {
      case 0:
      case 1: {
        const char* op = ops[rng() % std::size(ops)];
        std::int64_t k = imm();
        const std::string_view o(op);
        if (o == "<<=" || o == ">>=" || o == "s>>=") k = static_cast<std::int64_t>(rng() % (w ? 32 : 64));
        if ((o == "/=" || o == "%=") && k == 0) k = 3;
        src += fmt::format("{}{} {} {}\n", r, reg(), op, k);
        break;
      }
      case 2: src += fmt::format("{}{} {} {}{}\n", r, reg(), ops[rng() % std::size(ops)], r, reg()); break;
      case 3: {
        const int size = 1 << (rng() % 4);
        int off = -72 + static_cast<int>(rng() % 80);  // mostly inside fp-64..fp-1, sometimes not
        if (rng() % 8) off &= ~(size - 1);            // mostly aligned
        src += fmt::format("*({} *)(r10 {}{}) = r{}\n", sizes[std::countr_zero(static_cast<unsigned>(size))],
                           off < 0 ? "" : "+", off, reg());
        break;
      }
      case 4: {
        // Loads stay in the written area (or past r10, out of bounds for both): root may read unwritten
        // stack in the kernel, never in bpfvm.
        const int size = 1 << (rng() % 4);
        int off = -64 + static_cast<int>(rng() % 72);
        if (rng() % 8) off &= ~(size - 1);
        src += fmt::format("r{} = *({} *)(r10 {}{})\n", reg(), sizes[std::countr_zero(static_cast<unsigned>(size))],
                           off < 0 ? "" : "+", off);
        break;
      }
      case 5:
        if (index + 1 < functions) {
          src += fmt::format("call f{}\n", index + 1 + static_cast<int>(rng() % static_cast<unsigned>(functions - index - 1)));
          set_registers({1, 2, 3, 4, 5});  // r1-r5 are clobbered by the call
          break;
        }
        [[fallthrough]];
      default: {
        // Forward, or (with loops) now and then backward: a loop that may or may not end.
        const bool back = loops && i > 0 && rng() % 3 == 0;
        const int target = back ? static_cast<int>(rng() % static_cast<unsigned>(i))
                                : i + 1 + static_cast<int>(rng() % static_cast<unsigned>(n - i));
        const char* c = conds[rng() % std::size(conds)];
        if (rng() % 2) {
          src += fmt::format("if {}{} {} {} goto {}{}\n", r, reg(), c, imm(), label, target);
        } else {
          src += fmt::format("if {}{} {} {}{} goto {}{}\n", r, reg(), c, r, reg(), label, target);
        }
        break;
      }
    }
  }
  src += fmt::format("{}{}:\n", label, n);
  if (rng() % 8) src += fmt::format("r0 = r{}\n", rng() % 6);
  src += "exit\n";
  return src;
}

std::string random_program(std::mt19937& rng, bool loops, int functions) {
  std::string src;
  for (int f = 0; f < functions; ++f) src += random_function(rng, loops, f, functions);
  return src;
}

// Up to `count` programs, or as many as fit in `seconds` (programs that run to the 1M-instruction limit
// take seconds on both sides).
void compare_random_programs(bool loops, int count, int min_accepted, double seconds = 60, int functions = 1) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
  std::mt19937 rng(loops ? 7 : 20261125);
  int compared = 0, accepted = 0;
  std::chrono::steady_clock::duration kernel_time{}, our_time{};
  for (int i = 0; i < count && std::chrono::steady_clock::now() < deadline; ++i) {
    const std::string src = random_program(rng, loops, functions == 1 ? 1 : 1 + static_cast<int>(rng() % functions));
    auto insns = isa::assemble(src, isa::AsmSyntax::kKernel);
    ASSERT_TRUE(insns) << insns.error().to_string() << "\n" << src;
    std::string klog;
    const auto t0 = std::chrono::steady_clock::now();
    const auto kernel = kernel_accepts(*insns, &klog);
    const auto t1 = std::chrono::steady_clock::now();
    if (!kernel) return;
    auto ours = verify(*insns);
    const auto t2 = std::chrono::steady_clock::now();
    kernel_time += t1 - t0;
    our_time += t2 - t1;
    ASSERT_TRUE(ours || ours.error().code() != Errc::kNotSupported) << ours.error().to_string() << "\n" << src;
    EXPECT_EQ(static_cast<bool>(ours), *kernel)
        << "program " << i << ":\n" << src << "\nbpfvm: " << (ours ? "accepted" : ours.error().to_string())
        << "\nkernel: " << (*kernel ? "accepted" : klog);
    if (static_cast<bool>(ours) != *kernel && ::testing::Test::HasFailure()) break;  // one program to look at
    ++compared;
    accepted += *kernel;
  }
  EXPECT_GT(accepted, min_accepted);
  EXPECT_LT(accepted, compared);
  std::printf("%d programs compared, %d accepted by both (verifying took %.0f ms in the kernel, %.0f ms in bpfvm)\n",
              compared, accepted, std::chrono::duration<double, std::milli>(kernel_time).count(),
              std::chrono::duration<double, std::milli>(our_time).count());
}

TEST(VerifierOracle, RandomScalarStackProgramsGetTheKernelsVerdict) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root for bpf()";
  compare_random_programs(false, 3000, 600);
}

// Functions calling functions (up to four, no recursion): frames, arguments, clobbered registers.
TEST(VerifierOracle, RandomProgramsWithCallsGetTheKernelsVerdict) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root for bpf()";
  compare_random_programs(false, 2000, 300, 60, 4);
}

// Backward jumps too: loops that end (explored iteration by iteration), that never end (caught, or
// too long), and conditions either side can decide.
TEST(VerifierOracle, RandomProgramsWithLoopsGetTheKernelsVerdict) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root for bpf()";
  compare_random_programs(true, 2000, 5, 8);
}

// Programs that touch memory: an XDP program with a 64-byte global value (r6), a hash map value that
// may be NULL (r7), the packet (r8 data, r9 data_end). Random loads and stores at random offsets, the
// value pointer moved by masked numbers, NULL checks and packet bounds checks in random places: where
// the kernel and bpfvm differ, one of them is wrong about memory safety.
std::string random_memory_program(std::mt19937& rng) {
  std::string src =
      "r6 = map[idx:0]+0\n"
      "r8 = *(u32 *)(r1 +0)\n"
      "r9 = *(u32 *)(r1 +4)\n"
      "*(u32 *)(r10 -4) = 0\n"
      "r2 = r10\n"
      "r2 += -4\n"
      "r1 = map[idx:1]\n"
      "call bpf_map_lookup_elem\n"
      "r7 = r0\n";
  for (int r = 0; r <= 5; ++r) src += fmt::format("r{} = {}\n", r, static_cast<int>(rng() % 100));
  const char* sizes[] = {"u8", "u16", "u32", "u64"};
  const char* conds[] = {"==", "!=", ">", ">=", "<", "<=", "s>", "s<"};
  const int n = 4 + static_cast<int>(rng() % 16);
  // Numbers live in r0-r3 and r5; r4 is the packet cursor (a pointer bpfvm would not let into a map).
  auto reg = [&] {
    const int r = static_cast<int>(rng() % 5);
    return r == 4 ? 5 : r;
  };
  auto size = [&] { return static_cast<int>(rng() % 4); };
  for (int i = 0; i < n; ++i) {
    src += fmt::format("m{}:\n", i);
    const int target = i + 1 + static_cast<int>(rng() % static_cast<unsigned>(n - i));
    switch (rng() % 10) {
      case 0: {  // a number from memory, then bounded (or not)
        src += fmt::format("r{} = *({} *)(r6 +{})\n", reg(), sizes[size()], rng() % 8 * 8);
        break;
      }
      case 1: {
        const char* masks[] = {"&= 7", "&= 15", "&= 63", "&= 64", "&= 127", ">>= 58", "%= 60", "+= -3", "*= 2"};
        src += fmt::format("r{} {}\n", reg(), masks[rng() % std::size(masks)]);
        break;
      }
      case 2: {  // the value pointer moves (a copy in r6's place, now and then)
        if (rng() % 2) {
          src += fmt::format("r6 += r{}\n", reg());
        } else {
          src += fmt::format("r6 += {}\n", static_cast<int>(rng() % 24) - 8);
        }
        break;
      }
      case 3: {
        const int off = static_cast<int>(rng() % 72) - 4;
        src += fmt::format("r{} = *({} *)(r6 {}{})\n", reg(), sizes[size()], off < 0 ? "" : "+", off);
        break;
      }
      case 4: {
        const int sz = size();
        src += fmt::format("*({} *)(r6 +{}) = r{}\n", sizes[sz], static_cast<int>(rng() % 68), reg());
        break;
      }
      case 5: src += fmt::format("r{} = *(u32 *)(r7 +{})\n", reg(), rng() % 20); break;
      case 6: src += fmt::format("if r7 {} 0 goto m{}\n", rng() % 2 ? "==" : "!=", target); break;
      case 7: {  // a packet check, then (maybe) a read
        const int k = static_cast<int>(rng() % 20);
        src += fmt::format("r4 = r8\nr4 += {}\nif r4 {} r9 goto m{}\n", k, rng() % 2 ? ">" : "<=", target);
        break;
      }
      case 8: src += fmt::format("r{} = *({} *)(r8 +{})\n", reg(), sizes[size()], rng() % 16); break;
      default:
        src += fmt::format("if r{} {} {} goto m{}\n", reg(), conds[rng() % std::size(conds)], rng() % 80, target);
        break;
    }
  }
  src += fmt::format("m{}:\nr0 = r{}\nexit\n", n, reg());
  return src;
}

// Random XDP programs from `generate` against the kernel, with three maps: a 64-byte global value
// (map[idx:0]), a hash (map[idx:1], values of 16 bytes) and a ring buffer (map[idx:2]).
void compare_xdp_programs(std::string (*generate)(std::mt19937&), unsigned default_seed, int min_accepted,
                          const char* what) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root for bpf()";
  // The kernel's maps, passed through fd_array, and their shape for bpfvm.
  auto make_map = [](std::uint32_t type, std::uint32_t key, std::uint32_t value) {
    union bpf_attr a {};
    a.map_type = type;
    a.key_size = key;
    a.value_size = value;
    a.max_entries = type == BPF_MAP_TYPE_ARRAY ? 1 : type == BPF_MAP_TYPE_RINGBUF ? 4096 : 16;
    return static_cast<int>(::syscall(__NR_bpf, BPF_MAP_CREATE, &a, sizeof a));
  };
  std::vector<int> fds = {make_map(BPF_MAP_TYPE_ARRAY, 4, 64), make_map(BPF_MAP_TYPE_HASH, 4, 16),
                          make_map(BPF_MAP_TYPE_RINGBUF, 0, 0)};
  if (fds[0] < 0 || fds[1] < 0 || fds[2] < 0) GTEST_SKIP() << "cannot create kernel maps";
  std::vector<MapInfo> infos(3);
  const auto info = [](std::uint32_t type, std::uint32_t key, std::uint32_t value, std::uint32_t entries, bool direct) {
    MapInfo m;
    m.type = type, m.key_size = key, m.value_size = value, m.max_entries = entries, m.direct_value = direct;
    return m;
  };
  infos[2] = info(BPF_MAP_TYPE_RINGBUF, 0, 0, 4096, false);
  infos[0] = info(BPF_MAP_TYPE_ARRAY, 4, 64, 1, true);
  infos[1] = info(BPF_MAP_TYPE_HASH, 4, 16, 16, false);
  struct TestPlatform final : Platform {
    std::vector<MapInfo> maps;
    const HelperSignature* helper(std::int32_t id) const override {
      using A = ArgType;
      static const HelperSignature lookup{"map_lookup_elem", RetType::kMapValueOrNull,
                                          {A::kConstMapPtr, A::kMapKey, A::kNone, A::kNone, A::kNone}};
      static const HelperSignature reserve{"ringbuf_reserve", RetType::kRingbufRecordOrNull,
                                           {A::kConstMapPtr, A::kConstAllocSizeOrZero, A::kAnything, A::kNone, A::kNone},
                                           false, false, RefEffect::kAcquires};
      static const HelperSignature submit{"ringbuf_submit", RetType::kVoid,
                                          {A::kRingbufRecord, A::kAnything, A::kNone, A::kNone, A::kNone}};
      static const HelperSignature discard{"ringbuf_discard", RetType::kVoid,
                                           {A::kRingbufRecord, A::kAnything, A::kNone, A::kNone, A::kNone}};
      switch (id) {
        case BPF_FUNC_map_lookup_elem: return &lookup;
        case BPF_FUNC_ringbuf_reserve: return &reserve;
        case BPF_FUNC_ringbuf_submit: return &submit;
        case BPF_FUNC_ringbuf_discard: return &discard;
        default: return nullptr;
      }
    }
    bool helper_allowed(std::int32_t) const override { return true; }
    const MapInfo* map(std::int64_t h) const override {
      return h >= 0 && static_cast<std::size_t>(h) < maps.size() ? &maps[static_cast<std::size_t>(h)] : nullptr;
    }
    CtxField ctx_access(std::int32_t off, std::uint32_t sz, bool write) const override {
      if (write || sz != 4) return {CtxField::Result::kDenied, "test"};
      if (off == 0) return {CtxField::Result::kPacket, {}};
      if (off == 4) return {CtxField::Result::kPacketEnd, {}};
      return {CtxField::Result::kDenied, "test"};
    }
    std::string_view prog_type_name() const override { return "xdp"; }
    bool legacy_packet_loads() const override { return false; }
    bool packet_writable() const override { return true; }
  } platform;
  platform.maps = infos;
  // BPFVM_ORACLE_SEED explores other programs (the test's own seed is fixed).
  const char* seed = std::getenv("BPFVM_ORACLE_SEED");
  std::mt19937 rng(seed ? static_cast<unsigned>(std::atoi(seed)) : default_seed);
  int compared = 0, accepted = 0;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  for (int i = 0; i < 3000 && std::chrono::steady_clock::now() < deadline; ++i) {
    const std::string src = generate(rng);
    auto insns = isa::assemble(src, isa::AsmSyntax::kKernel);
    ASSERT_TRUE(insns) << insns.error().to_string() << "\n" << src;
    std::string log;
    const auto verdict = kernel_accepts(*insns, &log, BPF_PROG_TYPE_XDP, fds);
    if (!verdict) GTEST_SKIP() << "the kernel refuses bpf() here";
    const bool kernel = *verdict;
    auto ours = verify(*insns, platform);
    EXPECT_EQ(static_cast<bool>(ours), kernel)
        << "program " << i << ":\n" << src << "\nbpfvm: " << (ours ? "accepted" : ours.error().to_string())
        << "\nkernel: " << (kernel ? "accepted" : log);
    if (static_cast<bool>(ours) != kernel) break;
    ++compared;
    accepted += kernel;
  }
  for (int fd : fds) ::close(fd);
  EXPECT_GT(accepted, min_accepted);
  EXPECT_LT(accepted, compared);
  std::printf("%d %s programs compared, %d accepted by both\n", compared, what, accepted);
}

TEST(VerifierOracle, RandomMemoryProgramsGetTheKernelsVerdict) {
  compare_xdp_programs(random_memory_program, 4242u, 100, "memory");
}

// Ring buffer records: reserved, NULL-checked (or not), written in and out of bounds, submitted or
// discarded on some paths, used after release, leaked: references as the kernel tracks them.
std::string random_record_program(std::mt19937& rng) {
  std::string src =
      "r1 = map[idx:2]\n"
      "r2 = 16\n"
      "r3 = 0\n"
      "call bpf_ringbuf_reserve\n"
      "r7 = r0\n";
  auto set_numbers = [&] {
    for (int r = 0; r <= 5; ++r) src += fmt::format("r{} = {}\n", r, static_cast<int>(rng() % 100));
  };
  set_numbers();
  const char* sizes[] = {"u8", "u16", "u32", "u64"};
  const char* conds[] = {"==", "!=", ">", "<", "s>"};
  const int n = 3 + static_cast<int>(rng() % 10);
  for (int i = 0; i < n; ++i) {
    src += fmt::format("m{}:\n", i);
    const int target = i + 1 + static_cast<int>(rng() % static_cast<unsigned>(n - i));
    switch (rng() % 7) {
      case 0: src += fmt::format("if r7 {} 0 goto m{}\n", rng() % 4 ? "==" : "!=", target); break;
      case 1: {
        const int off = static_cast<int>(rng() % 22) - 2;
        src += fmt::format("*({} *)(r7 {}{}) = r{}\n", sizes[rng() % 4], off < 0 ? "" : "+", off, rng() % 6);
        break;
      }
      case 2:
        src += fmt::format("r1 = r7\nr2 = 0\ncall bpf_ringbuf_{}\n", rng() % 2 ? "submit" : "discard");
        set_numbers();
        break;
      case 3: src += fmt::format("r{} = *(u32 *)(r7 +{})\n", rng() % 6, rng() % 16); break;
      default:
        src += fmt::format("if r{} {} {} goto m{}\n", rng() % 6, conds[rng() % std::size(conds)], rng() % 60, target);
        break;
    }
  }
  src += fmt::format("m{}:\n", n);
  if (rng() % 3) src += "if r7 == 0 goto done\nr1 = r7\nr2 = 0\ncall bpf_ringbuf_discard\n";
  src += "done:\nr0 = 2\nexit\n";
  return src;
}

TEST(VerifierOracle, RandomRingBufferRecordProgramsGetTheKernelsVerdict) {
  compare_xdp_programs(random_record_program, 99u, 50, "ring buffer record");
}

}  // namespace
}  // namespace bpfvm::verifier
