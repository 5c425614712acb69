// The interpreter's embedding surface: helpers, regions, stats, threads, load-time refusals.
#include <gtest/gtest.h>

#include <thread>

#include "bpfvm/vm/interpreter.hpp"
#include "vm_test_programs.hpp"

namespace bpfvm::vm {
namespace {

using test::kasm;
using test::sum5;

class Dispatches : public ::testing::TestWithParam<InterpreterOptions::Dispatch> {
 protected:
  InterpreterOptions opts(bool checked) {
    InterpreterOptions o;
    o.dispatch = GetParam();
    o.checked = checked;
    return o;
  }
};

TEST_P(Dispatches, HelperGetsR1ToR5AndTheUserPointer) {
  HelperTable h;
  h.set(7, sum5);
  auto vm = Interpreter::load(kasm("r1 = 1\nr2 = 2\nr3 = 3\nr4 = 4\nr5 = 5\ncall 7\nexit"), h, opts(false));
  ASSERT_TRUE(vm) << vm.error().to_string();
  RunContext ctx;
  ctx.user = reinterpret_cast<void*>(std::uintptr_t{100000});
  EXPECT_EQ(*vm->run(ctx), 154321u);
}

alignas(8) std::uint64_t g_value = 41;
std::uint64_t lookup(std::uint64_t, std::uint64_t, std::uint64_t, std::uint64_t, std::uint64_t, CallContext* ctx) {
  ctx->allow_region(MemoryRegion::of(&g_value, sizeof g_value, "map value"));
  return reinterpret_cast<std::uint64_t>(&g_value);
}

TEST_P(Dispatches, CheckedModeHonoursRegionsThatHelpersOpen) {
  g_value = 41;
  HelperTable h;
  h.set(1, lookup);
  auto vm = Interpreter::load(kasm("call 1\nr1 = *(u64 *)(r0 +0)\nr1 += 1\n*(u64 *)(r0 +0) = r1\nr0 = r1\nexit"), h,
                              opts(true));
  ASSERT_TRUE(vm);
  EXPECT_EQ(*vm->run({}), 42u);
  auto bad = Interpreter::load(kasm("call 1\nr0 = *(u64 *)(r0 +8)\nexit"), h, opts(true));
  auto r = bad->run({});
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().to_string(), "instruction 1: out-of-bounds read of 8 bytes at offset 8 of 'map value' (8 bytes)");
}

TEST_P(Dispatches, ReadOnlyRegionRejectsWrites) {
  std::uint32_t ctx_data[2] = {7, 9};
  MemoryRegion region{reinterpret_cast<std::uint64_t>(ctx_data), sizeof ctx_data, false, "ctx"};
  RunContext ctx;
  ctx.r1 = region.start;
  ctx.regions = std::span<const MemoryRegion>(&region, 1);
  auto rd = Interpreter::load(kasm("r0 = *(u32 *)(r1 +4)\nexit"), {}, opts(true));
  EXPECT_EQ(*rd->run(ctx), 9u);
  auto wr = Interpreter::load(kasm("*(u32 *)(r1 +4) = 1\nr0 = 0\nexit"), {}, opts(true));
  auto r = wr->run(ctx);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().to_string(), "instruction 0: write of 4 bytes at offset 4 of read-only 'ctx'");
  EXPECT_EQ(ctx_data[1], 9u);
}

TEST_P(Dispatches, CountsInstructionsInCheckedMode) {
  auto vm = Interpreter::load(kasm("r0 = 0\nr0 += 1\nif r0 < 10 goto pc-2\nexit"), {}, opts(true));
  RunStats stats;
  EXPECT_EQ(*vm->run({}, &stats), 10u);
  EXPECT_EQ(stats.instructions, 1u + 10 * 2 + 1);
}

TEST_P(Dispatches, WildPointerFaultsInsteadOfCrashing) {
  auto vm = Interpreter::load(kasm("r1 = 0x10\nr0 = *(u8 *)(r1 +0)\nexit"), {}, opts(true));
  auto r = vm->run({});
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), Errc::kFault);
  EXPECT_NE(r.error().to_string().find("instruction 2: read of 1 bytes at 0x10"), std::string::npos)
      << r.error().to_string();
}

TEST_P(Dispatches, RunsConcurrently) {
  auto vm = Interpreter::load(
      kasm("r0 = 0\nr2 = r1\nr0 += r2\nr2 += -1\nif r2 != 0x0 goto pc-3\n*(u64 *)(r10 -8) = r0\n"
           "r0 = *(u64 *)(r10 -8)\nexit"),
      {}, opts(false));
  ASSERT_TRUE(vm);
  std::vector<std::thread> threads;
  std::vector<std::uint64_t> results(4);
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      RunContext ctx;
      ctx.r1 = 1000 + static_cast<std::uint64_t>(t);
      for (int i = 0; i < 200; ++i) results[static_cast<std::size_t>(t)] = *vm->run(ctx);
    });
  }
  for (auto& th : threads) th.join();
  for (int t = 0; t < 4; ++t) {
    const std::uint64_t n = 1000 + static_cast<std::uint64_t>(t);
    EXPECT_EQ(results[static_cast<std::size_t>(t)], n * (n + 1) / 2);
  }
}

INSTANTIATE_TEST_SUITE_P(Interpreter, Dispatches,
                         ::testing::Values(InterpreterOptions::Dispatch::kThreaded,
                                           InterpreterOptions::Dispatch::kSwitch));

TEST(InterpreterLoad, RefusesWhatItCannotRun) {
  auto why = [](const char* text) {
    auto vm = Interpreter::load(kasm(text), {});
    return vm ? std::string("ok") : vm.error().to_string();
  };
  EXPECT_EQ(why("call 6\nexit"), "instruction 0: call to helper bpf_trace_printk#6, which is not available here");
  EXPECT_EQ(why("call kernel-function#55\nexit"), "instruction 0: kfunc calls (BTF id 55) are not supported");
  EXPECT_EQ(why("r1 = map[fd:3]\nexit"),
            "instruction 0: 64-bit immediate load with pseudo source 1 (a map or BTF reference) must be resolved by "
            "the loader before the program runs");
  EXPECT_EQ(why("r0 = 1"), "instruction 0: last instruction is not an exit or an unconditional jump: control would "
                           "run off the end of the program");
}

TEST(Interpreter, AtomicsAreAtomicAcrossThreads) {
  alignas(8) std::uint64_t counter = 0;
  auto vm = Interpreter::load(kasm("r2 = 1\nlock *(u64 *)(r1 +0) += r2\nr0 = 0\nexit"), {});
  ASSERT_TRUE(vm);
  std::vector<std::thread> threads;
  for (int t = 0; t < 2; ++t) {
    threads.emplace_back([&] {
      RunContext ctx;
      ctx.r1 = reinterpret_cast<std::uint64_t>(&counter);
      for (int i = 0; i < 100000; ++i) (void)vm->run(ctx);
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(counter, 200000u);
}

}  // namespace
}  // namespace bpfvm::vm
