#include "bpfvm/vm/interpreter.hpp"

#include <bit>
#include <cstring>
#include <deque>

#include "ops.hpp"

namespace bpfvm::vm {

static_assert(std::endian::native == std::endian::little,
              "the interpreter's byte-order and memory operations assume a little-endian host");

struct Interpreter::Code {
  std::vector<detail::Op> ops;
  HelperTable helpers;  // kept for callx, which names its helper at run time
};

namespace {

// Checked runs keep the regions helpers opened (map values, records) in a list per run. The lists are
// reused from run to run on a thread, one per level of nesting (callbacks, tail calls), so that a run
// that opens many does not allocate them again each time.
class RegionList {
 public:
  RegionList() : list_(lists()[depth()++]) { list_.clear(); }
  ~RegionList() { --depth(); }
  RegionList(const RegionList&) = delete;
  RegionList& operator=(const RegionList&) = delete;
  std::vector<MemoryRegion>& get() { return list_; }

 private:
  static std::size_t& depth() {
    thread_local std::size_t d = 0;
    return d;
  }
  struct Lists {
    std::deque<std::vector<MemoryRegion>> by_depth;  // a deque: growing it keeps the others in place
    std::vector<MemoryRegion>& operator[](std::size_t i) {
      if (i >= by_depth.size()) by_depth.resize(i + 1);
      return by_depth[i];
    }
  };
  static Lists& lists() {
    thread_local Lists l;
    return l;
  }
  std::vector<MemoryRegion>& list_;
};

using detail::IOp;
using detail::Op;

struct Frame {
  std::uint64_t saved[4];  // the caller's r6-r9
  std::uint64_t saved_fp;  // the caller's r10
  const Op* ret;
};

std::uint64_t sdiv64(std::uint64_t a, std::uint64_t b) {
  const auto x = static_cast<std::int64_t>(a), y = static_cast<std::int64_t>(b);
  if (y == 0) return 0;
  if (y == -1) return 0 - a;  // INT64_MIN / -1 wraps to INT64_MIN
  return static_cast<std::uint64_t>(x / y);
}
std::uint64_t smod64(std::uint64_t a, std::uint64_t b) {
  const auto x = static_cast<std::int64_t>(a), y = static_cast<std::int64_t>(b);
  if (y == 0) return a;
  if (y == -1) return 0;
  return static_cast<std::uint64_t>(x % y);
}
std::uint64_t sdiv32(std::uint64_t a, std::uint64_t b) {
  const auto x = static_cast<std::int32_t>(static_cast<std::uint32_t>(a));
  const auto y = static_cast<std::int32_t>(static_cast<std::uint32_t>(b));
  if (y == 0) return 0;
  if (y == -1) return static_cast<std::uint32_t>(0u - static_cast<std::uint32_t>(a));
  return static_cast<std::uint32_t>(x / y);
}
std::uint64_t smod32(std::uint64_t a, std::uint64_t b) {
  const auto x = static_cast<std::int32_t>(static_cast<std::uint32_t>(a));
  const auto y = static_cast<std::int32_t>(static_cast<std::uint32_t>(b));
  if (y == 0) return static_cast<std::uint32_t>(a);
  if (y == -1) return 0;
  return static_cast<std::uint32_t>(x % y);
}

// Explains why an access is outside everything the program may touch, naming the nearest region.
Error memory_fault(std::size_t index, std::uint64_t addr, std::uint64_t size, bool write,
                   std::span<const MemoryRegion> regions) {
  const char* what = write ? "write" : "read";
  const MemoryRegion* nearest = nullptr;
  std::uint64_t best = UINT64_MAX;
  for (const MemoryRegion& r : regions) {
    if (write && !r.writable && r.contains(addr, size)) {
      return make_error(Errc::kFault, "{} of {} bytes at offset {} of read-only '{}'", what, size, addr - r.start,
                        r.name)
          .at_insn(index);
    }
    const std::uint64_t dist = addr < r.start ? r.start - addr : addr - r.start;
    if (dist < best) {
      best = dist;
      nearest = &r;
    }
  }
  if (nearest && best <= (1u << 20)) {
    const auto off = static_cast<std::int64_t>(addr - nearest->start);
    return make_error(Errc::kFault, "out-of-bounds {} of {} bytes at offset {} of '{}' ({} bytes)", what, size, off,
                      nearest->name, nearest->size)
        .at_insn(index);
  }
  return make_error(Errc::kFault, "{} of {} bytes at 0x{:x}, which is not in any region the program may access",
                    what, size, addr)
      .at_insn(index);
}

template <bool kChecked, bool kThreaded>
Result<std::uint64_t> execute(const Interpreter::Code& code, const InterpreterOptions& options,
                              const RunContext& ctx, RunStats* stats) {
  alignas(16) std::uint8_t stack[isa::kMaxCallFrames * isa::kStackSize];
  if constexpr (kChecked) std::memset(stack, 0, sizeof stack);
  const auto stack_lo = reinterpret_cast<std::uint64_t>(stack);

  std::uint64_t R[isa::kNumRegisters] = {};
  R[1] = ctx.r1;
  R[2] = ctx.r2;
  R[3] = ctx.r3;
  R[4] = ctx.r4;
  R[5] = ctx.r5;
  R[10] = stack_lo + sizeof stack;
  Frame frames[isa::kMaxCallFrames];
  int depth = 0;
  const Op* const base = code.ops.data();
  if (ctx.entry >= code.ops.size() || base[ctx.entry].code == IOp::FILLER) {
    return make_error(Errc::kInvalid, "no instruction starts at {}", ctx.entry);
  }
  const Op* op = base + ctx.entry;
  const HelperTable& helpers = code.helpers;
  CallContext call(ctx.user);  // reused by every helper call of this run (see interp_body.inc)
  const std::span<const std::uint8_t> packet = ctx.packet;

  // Checked mode state: the regions besides the stack that helpers opened, and the instruction count.
  RegionList extra_list;
  std::vector<MemoryRegion>& extra = extra_list.get();
  std::uint64_t count = 0;
  const std::uint64_t budget = options.max_instructions;
  struct StatsWriter {
    RunStats* stats;
    const std::uint64_t& count;
    ~StatsWriter() {
      if (stats) stats->instructions = count;
    }
  } stats_writer{stats, count};

  // A program that looks the same value up again and again opens one region, not one per call; checks
  // look at the newest regions first.
  auto allow_extra = [&](const CallContext& done) {
    for (const MemoryRegion& r : done.extra_regions()) {
      const std::size_t n = extra.size();
      auto same = [&](const MemoryRegion& e) { return e.start == r.start && e.size == r.size && e.writable == r.writable; };
      if ((n > 0 && same(extra[n - 1])) || (n > 1 && same(extra[n - 2]))) continue;
      extra.push_back(r);
    }
  };
  auto access_ok = [&](std::uint64_t addr, std::uint64_t size, bool write) {
    if (addr >= stack_lo && size <= sizeof stack && addr - stack_lo <= sizeof stack - size) return true;
    for (const MemoryRegion& r : ctx.regions) {
      if (r.contains(addr, size) && (r.writable || !write)) return true;
    }
    for (auto r = extra.rbegin(); r != extra.rend(); ++r) {
      if (r->contains(addr, size) && (r->writable || !write)) return true;
    }
    return false;
  };
  auto mem_fault = [&](std::uint64_t addr, std::uint64_t size, bool write) {
    std::vector<MemoryRegion> all(ctx.regions.begin(), ctx.regions.end());
    all.insert(all.end(), extra.begin(), extra.end());
    all.push_back(MemoryRegion{stack_lo, sizeof stack, true, "stack"});
    return memory_fault(static_cast<std::size_t>(op - base), addr, size, write, all);
  };
  auto depth_fault = [&](std::size_t index) {
    return make_error(Errc::kLimit, "call exceeds the limit of {} call frames", isa::kMaxCallFrames).at_insn(index);
  };
  auto call_fault = [&](std::size_t index, std::uint64_t id) {
    return make_error(Errc::kNotSupported, "callx to helper id {}, which is not available here", id).at_insn(index);
  };
  auto filler_fault = [&](std::size_t index) {
    return make_error(Errc::kInvalid, "executed the second half of a 64-bit immediate load").at_insn(index);
  };
  auto budget_fault = [&]() {
    return make_error(Errc::kLimit, "instruction budget of {} exhausted (the program may loop forever)", budget)
        .at_insn(static_cast<std::size_t>(op - base));
  };
  if constexpr (kChecked) {
    call.set_access_check(
        [](const void* self, std::uint64_t addr, std::uint64_t size, bool write) {
          return (*static_cast<const decltype(access_ok)*>(self))(addr, size, write);
        },
        &access_ok);
  }
  // Callbacks run as a nested run that starts at their first instruction, with this run's memory
  // (regions, those helpers opened, and this stack) and its helpers' data.
  auto invoke = [&](std::uint64_t pc, const std::uint64_t (&args)[5]) -> Result<std::uint64_t> {
    RunContext sub = BPFVM_TRY(ctx.callback(pc, args, code.ops.size()));
    std::vector<MemoryRegion> regions(ctx.regions.begin(), ctx.regions.end());
    regions.insert(regions.end(), extra.begin(), extra.end());
    regions.insert(regions.end(), call.extra_regions().begin(), call.extra_regions().end());
    regions.push_back(MemoryRegion{stack_lo, sizeof stack, true, "caller's stack"});
    sub.regions = regions;
    return execute<kChecked, kThreaded>(code, options, sub, nullptr);
  };
  call.set_invoker(
      [](const void* self, std::uint64_t pc, const std::uint64_t (&args)[5]) {
        return (*static_cast<const decltype(invoke)*>(self))(pc, args);
      },
      &invoke);
  (void)allow_extra;
  (void)access_ok;
  (void)mem_fault;

#define CHECK_MEM(addr, size, write)                                       \
  do {                                                                     \
    if constexpr (kChecked) {                                              \
      if (!access_ok(addr, size, write)) [[unlikely]]                      \
        return mem_fault(addr, size, write);                               \
    }                                                                      \
  } while (0)
#define CHECK_ATOMIC(addr, size)                                                                   \
  do {                                                                                             \
    CHECK_MEM(addr, size, true);                                                                   \
    if constexpr (kChecked) {                                                                      \
      if ((addr) % (size) != 0) [[unlikely]]                                                       \
        return make_error(Errc::kFault, "misaligned atomic access of {} bytes at 0x{:x}", size, addr) \
            .at_insn(static_cast<std::size_t>(op - base));                                         \
    }                                                                                              \
  } while (0)
#define TICK()                                                       \
  do {                                                               \
    if constexpr (kChecked) {                                        \
      if (++count > budget && budget != 0) [[unlikely]]              \
        return budget_fault();                                       \
    }                                                                \
  } while (0)

  if constexpr (kThreaded) {
    static const void* const kLabels[] = {
#define BPFVM_LABEL_ADDR(name) &&L_##name,
        BPFVM_FOR_EACH_OP(BPFVM_LABEL_ADDR)
#undef BPFVM_LABEL_ADDR
    };
    static_assert(std::size(kLabels) == static_cast<std::size_t>(IOp::kCount));
#define DISPATCH()                                        \
  do {                                                    \
    TICK();                                               \
    goto* kLabels[static_cast<std::size_t>(op->code)];    \
  } while (0)
#define OP(name) L_##name:
#define NEXT \
  do {       \
    ++op;    \
    DISPATCH(); \
  } while (0)
#define SKIP2   \
  do {          \
    op += 2;    \
    DISPATCH(); \
  } while (0)
#define JUMP_TO(target)     \
  do {                      \
    op = base + (target);   \
    DISPATCH();             \
  } while (0)
    DISPATCH();
#include "interp_body.inc"
#undef DISPATCH
#undef OP
#undef NEXT
#undef SKIP2
#undef JUMP_TO
  } else {
#define OP(name) case IOp::name:
#define NEXT \
  {          \
    ++op;    \
    continue; \
  }
#define SKIP2 \
  {           \
    op += 2;  \
    continue; \
  }
#define JUMP_TO(target)   \
  {                       \
    op = base + (target); \
    continue;             \
  }
    for (;;) {
      TICK();
      switch (op->code) {
#include "interp_body.inc"
        case IOp::kCount:
          break;
      }
      __builtin_unreachable();
    }
#undef OP
#undef NEXT
#undef SKIP2
#undef JUMP_TO
  }
#undef CHECK_MEM
#undef CHECK_ATOMIC
#undef TICK
}

}  // namespace

Result<RunContext> RunContext::callback(std::uint64_t pc, const std::uint64_t (&args)[5], std::size_t slots) const {
  if (nesting + 1 >= isa::kMaxCallFrames) {
    return make_error(Errc::kLimit, "callbacks nest deeper than {} levels", isa::kMaxCallFrames);
  }
  if (pc >= slots) return make_error(Errc::kInvalid, "callback at {} is outside the program", pc);
  RunContext sub;
  sub.r1 = args[0];
  sub.r2 = args[1];
  sub.r3 = args[2];
  sub.r4 = args[3];
  sub.r5 = args[4];
  sub.packet = packet;
  sub.user = user;
  sub.entry = static_cast<std::size_t>(pc);
  sub.nesting = nesting + 1;
  return sub;
}

void HelperTable::set(std::int32_t id, HelperFn fn) {
  if (id < 0) return;
  if (static_cast<std::size_t>(id) >= fns_.size()) fns_.resize(static_cast<std::size_t>(id) + 1, nullptr);
  fns_[static_cast<std::size_t>(id)] = fn;
}

Interpreter::Interpreter(std::unique_ptr<Code> code, InterpreterOptions options)
    : code_(std::move(code)), options_(options) {}
Interpreter::Interpreter(Interpreter&&) noexcept = default;
Interpreter& Interpreter::operator=(Interpreter&&) noexcept = default;
Interpreter::~Interpreter() = default;

std::size_t Interpreter::size() const { return code_->ops.size(); }

Result<Interpreter> Interpreter::load(std::span<const isa::RawInsn> program, const HelperTable& helpers,
                                      InterpreterOptions options) {
  auto code = std::make_unique<Code>();
  code->ops = BPFVM_TRY(detail::predecode(program, helpers, options.probe_loads));
  code->helpers = helpers;
  return Interpreter(std::move(code), options);
}

Result<std::uint64_t> Interpreter::run(const RunContext& ctx, RunStats* stats) const {
  const bool threaded = options_.dispatch == InterpreterOptions::Dispatch::kThreaded;
  if (options_.checked) {
    return threaded ? execute<true, true>(*code_, options_, ctx, stats)
                    : execute<true, false>(*code_, options_, ctx, stats);
  }
  return threaded ? execute<false, true>(*code_, options_, ctx, stats)
                  : execute<false, false>(*code_, options_, ctx, stats);
}

}  // namespace bpfvm::vm
