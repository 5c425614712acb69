// The JIT: W^X code pages, its run-time checks, helpers and callbacks, threads, and a seeded
// differential test against the interpreter over random programs of every instruction class.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstring>
#include <thread>

#include "bpfvm/vm/interpreter.hpp"
#include "vm_test_programs.hpp"
#include "bpfvm/vm/jit.hpp"
#include "bpfvm/vm/native_disasm.hpp"
#include "memory_protections.hpp"
#include "random_program.hpp"

namespace bpfvm::vm {
namespace {

using test::kasm;
using test::sum5;

using test::protections_of;

TEST(Jit, CodeIsExecutableAndNeverWritable) {
  HelperTable h;
  auto jit = JitProgram::compile(kasm("r0 = 42\nexit"), h);
  ASSERT_TRUE(jit) << jit.error().to_string();
  EXPECT_EQ(*jit->run({}), 42u);
  EXPECT_EQ(protections_of(reinterpret_cast<const void*>(jit->code_address())), "r-xp");
  EXPECT_EQ(protections_of(jit->code().data() + jit->code().size() - 1), "r-xp");
  // A second program gets pages of its own, sealed as well; the first stays as it was.
  auto other = JitProgram::compile(kasm("r0 = 7\nexit"), h);
  ASSERT_TRUE(other);
  EXPECT_EQ(protections_of(other->code().data()), "r-xp");
  EXPECT_EQ(*jit->run({}), 42u);
}

// Whether `bytes` appear anywhere in the code.
bool contains(std::span<const std::uint8_t> code, std::initializer_list<std::uint8_t> bytes) {
  const std::vector<std::uint8_t> needle(bytes);
  return std::search(code.begin(), code.end(), needle.begin(), needle.end()) != code.end();
}

TEST(Jit, HardeningKeepsImmediatesOutOfTheCode) {
  // The program's immediates: 0x12345678 in ALU, jump, store and division forms and in a 64-bit load.
  const char* text = "r0 = 0x12345678\nr1 = 0x7\nr1 += 0x12345678\nw1 ^= 0x12345678\n"
                     "if r1 == 0x12345678 goto pc+1\n*(u32 *)(r10 -4) = 0x12345678\nr1 /= 0x12345678\n"
                     "r2 = 0x1234567812345678 ll\nr0 += r1\nr0 += r2\nexit";
  HelperTable h;
  JitOptions hardened;
  hardened.harden = true;
  auto plain = JitProgram::compile(kasm(text), h);
  auto blinded = JitProgram::compile(kasm(text), h, hardened);
  ASSERT_TRUE(plain && blinded);
  EXPECT_TRUE(contains(plain->code(), {0x78, 0x56, 0x34, 0x12}));
  EXPECT_FALSE(contains(blinded->code(), {0x78, 0x56, 0x34, 0x12}));
  EXPECT_EQ(*plain->run({}), *blinded->run({}));
  // Each compilation draws new keys.
  auto again = JitProgram::compile(kasm(text), h, hardened);
  EXPECT_NE(std::vector<std::uint8_t>(again->code().begin(), again->code().end()),
            std::vector<std::uint8_t>(blinded->code().begin(), blinded->code().end()));
}

TEST(Jit, InstructionOffsetsMapEverySlot) {
  HelperTable h;
  auto jit = JitProgram::compile(kasm("r1 = 0x1122334455667788 ll\nr0 = r1\nexit"), h);
  ASSERT_TRUE(jit);
  const auto offsets = jit->insn_offsets();
  ASSERT_EQ(offsets.size(), 4u);
  EXPECT_EQ(offsets[1], offsets[0]);  // the 64-bit load's second slot
  EXPECT_LT(offsets[1], offsets[2]);
  EXPECT_LT(offsets[2], offsets[3]);
  EXPECT_LT(offsets[3], jit->code().size());
  EXPECT_EQ(*jit->run({}), 0x1122334455667788u);
}

TEST(Jit, HelpersGetR1ToR5AndTheUserPointer) {
  HelperTable h;
  h.set(7, sum5);
  auto jit = JitProgram::compile(kasm("r1 = 1\nr2 = 2\nr3 = 3\nr4 = 4\nr5 = 5\ncall 7\nexit"), h);
  ASSERT_TRUE(jit) << jit.error().to_string();
  RunContext ctx;
  ctx.user = reinterpret_cast<void*>(std::uintptr_t{100000});
  EXPECT_EQ(*jit->run(ctx), 154321u);
}

std::uint64_t stop_with(std::uint64_t r1, std::uint64_t, std::uint64_t, std::uint64_t, std::uint64_t, CallContext* ctx) {
  ctx->request_exit();
  return r1;
}
std::uint64_t fail_helper(std::uint64_t, std::uint64_t, std::uint64_t, std::uint64_t, std::uint64_t, CallContext* ctx) {
  ctx->fail(make_error(Errc::kFault, "the helper gave up"));
  return 0;
}

TEST(Jit, HelperCanEndTheProgramFromAnyDepth) {
  HelperTable h;
  h.set(3, stop_with);
  h.set(4, fail_helper);
  // The exit comes from a subprogram two calls deep: the JIT unwinds the native stack.
  auto jit = JitProgram::compile(kasm("r6 = 5\ncall pc+2\nr0 = 1\nexit\n"
                                      "call pc+1\nexit\n"
                                      "r1 = 77\ncall 3\nr0 = 2\nexit"),
                                 h);
  ASSERT_TRUE(jit) << jit.error().to_string();
  EXPECT_EQ(*jit->run({}), 77u);
  auto failing = JitProgram::compile(kasm("call pc+1\nexit\ncall 4\nexit"), h);
  ASSERT_TRUE(failing);
  auto r = failing->run({});
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().to_string(), "the helper gave up");
}

TEST(Jit, SubprogramsKeepTheCallersR6ToR10) {
  HelperTable h;
  auto jit = JitProgram::compile(kasm("r6 = 1\nr7 = 2\nr8 = 3\nr9 = 4\n*(u64 *)(r10 -8) = 100\n"
                                      "call pc+6\n"
                                      "r0 = *(u64 *)(r10 -8)\nr0 += r6\nr0 += r7\nr0 += r8\nr0 += r9\nexit\n"
                                      "r6 = 10\nr7 = 20\nr8 = 30\nr9 = 40\n*(u64 *)(r10 -8) = 999\nr0 = 0\nexit"),
                                 h);
  ASSERT_TRUE(jit) << jit.error().to_string();
  EXPECT_EQ(*jit->run({}), 110u);
}

TEST(Jit, RecursionStopsAtTheFrameLimit) {
  HelperTable h;
  auto jit = JitProgram::compile(kasm("call pc-1\nexit"), h);
  ASSERT_TRUE(jit);
  auto r = jit->run({});
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().to_string(), "instruction 0: call exceeds the limit of 8 call frames");
}

TEST(Jit, CallxToAMissingHelperIsAnError) {
  HelperTable h;
  h.set(7, sum5);
  auto jit = JitProgram::compile(kasm("r2 = 7\ncallx r2\nr2 = 99\ncallx r2\nexit"), h);
  ASSERT_TRUE(jit) << jit.error().to_string();
  auto r = jit->run({});
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().to_string(), "instruction 3: callx to helper id 99, which is not available here");
}

TEST(Jit, EntryMustStartAnInstruction) {
  HelperTable h;
  auto jit = JitProgram::compile(kasm("r0 = 1 ll\nexit\nr0 = 5\nexit"), h);
  ASSERT_TRUE(jit);
  RunContext ctx;
  ctx.entry = 1;
  EXPECT_FALSE(jit->run(ctx));
  ctx.entry = 3;
  EXPECT_EQ(*jit->run(ctx), 5u);
  ctx.entry = 9;
  EXPECT_FALSE(jit->run(ctx));
}

// bpf_loop in miniature: calls the callback (a function of the program) r1 times with the index.
std::uint64_t loop_helper(std::uint64_t n, std::uint64_t fn, std::uint64_t data, std::uint64_t, std::uint64_t,
                          CallContext* ctx) {
  for (std::uint64_t i = 0; i < n; ++i) {
    auto r = ctx->call_function(fn, {i, data, 0, 0, 0});
    if (!r) {
      ctx->fail(std::move(r).error());
      return 0;
    }
    if (*r) return i + 1;
  }
  return n;
}

TEST(Jit, CallbacksRunOnTheirOwnStackAndSeeTheCallers) {
  HelperTable h;
  h.set(9, loop_helper);
  // The callback adds its index into a counter on the caller's stack.
  auto jit = JitProgram::compile(kasm("*(u64 *)(r10 -8) = 0\nr1 = 5\nr2 = 8\nr3 = r10\nr3 += -8\ncall 9\n"
                                      "r0 = *(u64 *)(r10 -8)\nexit\n"
                                      "r3 = *(u64 *)(r2 +0)\nr3 += r1\n*(u64 *)(r2 +0) = r3\n"
                                      "*(u64 *)(r10 -8) = 1234\nr0 = 0\nexit"),
                                 h);
  ASSERT_TRUE(jit) << jit.error().to_string();
  EXPECT_EQ(*jit->run({}), 0u + 1 + 2 + 3 + 4);
}

TEST(Jit, LegacyPacketLoadsStopOutsideThePacket) {
  HelperTable h;
  const std::uint8_t packet[] = {0x12, 0x34, 0x56, 0x78, 0x9a};
  RunContext ctx;
  ctx.packet = packet;
  auto word = JitProgram::compile(kasm("r0 = *(u32 *)skb[1]\nexit"), h);
  ASSERT_TRUE(word) << word.error().to_string();
  EXPECT_EQ(*word->run(ctx), 0x3456789au);
  auto past = JitProgram::compile(kasm("r0 = *(u16 *)skb[4]\nr0 = 7\nexit"), h);
  EXPECT_EQ(*past->run(ctx), 0u);
  auto ind = JitProgram::compile(kasm("r6 = -1\nr0 = *(u8 *)skb[r6 + 2]\nexit"), h);
  EXPECT_EQ(*ind->run(ctx), 0x34u);
}

TEST(Jit, RunsConcurrently) {
  HelperTable h;
  auto jit = JitProgram::compile(kasm("r0 = 0\nr2 = r1\nr0 += r2\nr2 += -1\nif r2 != 0 goto pc-3\nexit"), h);
  ASSERT_TRUE(jit);
  std::vector<std::thread> threads;
  std::atomic<int> wrong{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (std::uint64_t i = 1; i < 2000; ++i) {
        RunContext ctx;
        ctx.r1 = i + static_cast<std::uint64_t>(t);
        if (*jit->run(ctx) != ctx.r1 * (ctx.r1 + 1) / 2) ++wrong;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(wrong.load(), 0);
}

// Lookups in a map the verifier proved a call passes (call_maps): an array's become address arithmetic
// (r0 = the value's address, or 0 past the end) and another map's call its own lookup, without the
// helper; a call whose map is not known (or known to vary) still calls bpf_map_lookup_elem.
int g_lookup_calls = 0;
std::uint64_t fake_lookup(std::uint64_t, std::uint64_t, std::uint64_t, std::uint64_t, std::uint64_t, CallContext*) {
  ++g_lookup_calls;
  return 77;
}
int g_direct_calls = 0;
void* fake_direct_lookup(void* map, const void* key) {
  ++g_direct_calls;
  return static_cast<std::uint8_t*>(map) + *static_cast<const std::uint32_t*>(key);
}

TEST(Jit, InlinesLookupsInKnownMaps) {
  HelperTable h;
  h.set(1, fake_lookup);
  alignas(8) std::uint8_t values[3 * 24] = {};
  alignas(8) std::uint8_t pow2_values[4 * 16] = {};
  std::uint64_t map_a = 0, map_b = 0, map_hash = 0, map_other = 0;  // what r1 holds: the maps' identities
  // r1 = the map, r2 = a pointer to the key: r0 = bpf_map_lookup_elem(r1, r2).
  auto compile_for = [&](std::int64_t handle) {
    JitOptions options;
    options.map_lookup = fake_lookup;
    options.maps = {{reinterpret_cast<std::uint64_t>(values), 24, 3, nullptr},
                    {reinterpret_cast<std::uint64_t>(pow2_values), 16, 4, nullptr},
                    {0, 0, 0, fake_direct_lookup},
                    {}};
    options.call_maps = {handle, -1};
    auto jit = JitProgram::compile(kasm("call bpf_map_lookup_elem#1\nexit"), h, options);
    EXPECT_TRUE(jit) << jit.error().to_string();
    return std::move(*jit);
  };
  auto lookup = [&](const JitProgram& jit, std::uint64_t* map, std::uint32_t key) {
    RunContext ctx;
    ctx.r1 = reinterpret_cast<std::uint64_t>(map);
    ctx.r2 = reinterpret_cast<std::uint64_t>(&key);
    return *jit.run(ctx);
  };
  g_lookup_calls = g_direct_calls = 0;
  const JitProgram a = compile_for(0), b = compile_for(1), hash = compile_for(2), empty = compile_for(3);
  EXPECT_EQ(lookup(a, &map_a, 0), reinterpret_cast<std::uint64_t>(values));
  EXPECT_EQ(lookup(a, &map_a, 2), reinterpret_cast<std::uint64_t>(values + 48));
  EXPECT_EQ(lookup(a, &map_a, 3), 0u);           // past the end
  EXPECT_EQ(lookup(a, &map_a, 0xffffffff), 0u);  // the key is unsigned
  EXPECT_EQ(lookup(b, &map_b, 3), reinterpret_cast<std::uint64_t>(pow2_values + 48));
  EXPECT_EQ(lookup(b, &map_b, 4), 0u);
  EXPECT_EQ(g_lookup_calls, 0);
  EXPECT_EQ(lookup(hash, &map_hash, 5), reinterpret_cast<std::uint64_t>(&map_hash) + 5);  // its own lookup
  EXPECT_EQ(g_direct_calls, 1);
  EXPECT_EQ(g_lookup_calls, 0);
  // A map with neither, a call the verifier saw pass different maps, a handle past the list: the helper.
  EXPECT_EQ(lookup(empty, &map_other, 1), 77u);
  EXPECT_EQ(lookup(compile_for(-2), &map_other, 1), 77u);
  EXPECT_EQ(lookup(compile_for(9), &map_other, 1), 77u);
  EXPECT_EQ(g_lookup_calls, 3);
  // Without the verifier's record the call is a call.
  auto plain = JitProgram::compile(kasm("call bpf_map_lookup_elem#1\nexit"), h);
  ASSERT_TRUE(plain);
  EXPECT_EQ(lookup(*plain, &map_a, 0), 77u);
  EXPECT_EQ(g_direct_calls, 1);
}

// A per-CPU array's lookups add the thread's slot (read from thread-local storage, assigned by a call
// the first time) times the per-CPU stride.
__attribute__((tls_model("initial-exec"))) thread_local std::uint32_t t_slot_plus_one = 0;
int g_slot_calls = 0;
std::uint32_t assign_slot() {
  ++g_slot_calls;
  t_slot_plus_one = 3;
  return 2;
}

TEST(Jit, InlinesPerCpuArrayLookups) {
  HelperTable h;
  h.set(1, fake_lookup);
  // 3 entries, 4 slots, 16 bytes each: entry i of slot c at (i * 4 + c) * 16.
  alignas(8) std::uint8_t values[3 * 4 * 16] = {};
  JitOptions options;
  options.map_lookup = fake_lookup;
  options.maps = {{reinterpret_cast<std::uint64_t>(values), 64, 3, nullptr, 16}};
  options.call_maps = {0, -1};
  options.cpu_slot_tls = reinterpret_cast<const char*>(&t_slot_plus_one) - static_cast<const char*>(__builtin_thread_pointer());
  options.cpu_slot = assign_slot;
  auto jit = JitProgram::compile(kasm("call bpf_map_lookup_elem#1\nexit"), h, options);
  ASSERT_TRUE(jit) << jit.error().to_string();
  auto lookup = [&](std::uint32_t key) {
    RunContext ctx;
    ctx.r2 = reinterpret_cast<std::uint64_t>(&key);
    return *jit->run(ctx);
  };
  t_slot_plus_one = 0;
  g_slot_calls = 0;
  EXPECT_EQ(lookup(1), reinterpret_cast<std::uint64_t>(values + (1 * 4 + 2) * 16));  // assigned: slot 2
  EXPECT_EQ(g_slot_calls, 1);
  t_slot_plus_one = 2;  // slot 1, already assigned: no call
  EXPECT_EQ(lookup(2), reinterpret_cast<std::uint64_t>(values + (2 * 4 + 1) * 16));
  EXPECT_EQ(lookup(3), 0u);
  EXPECT_EQ(g_slot_calls, 1);
  // Another thread has its own slot.
  std::uint64_t other = 0;
  std::thread([&] {
    t_slot_plus_one = 4;
    other = lookup(0);
  }).join();
  EXPECT_EQ(other, reinterpret_cast<std::uint64_t>(values + 3 * 16));
}

// Helpers whose answer is a field of the run's user data become loads; without user data they are
// called.
std::uint64_t fake_cpu(std::uint64_t, std::uint64_t, std::uint64_t, std::uint64_t, std::uint64_t, CallContext*) {
  return 99;
}

TEST(Jit, InlinesUserDataFields) {
  HelperTable h;
  h.set(8, fake_cpu);
  h.set(14, fake_cpu);
  struct Env {
    std::uint64_t pad = 0;
    std::uint32_t cpu = 0;
    std::uint64_t ids = 0;
  } env;
  env.cpu = 3;
  env.ids = 0x1234'0000'5678ull;
  JitOptions options;
  options.user_fields = {{fake_cpu, static_cast<std::int32_t>(offsetof(Env, cpu)), 4}};
  auto cpu = JitProgram::compile(kasm("r0 = -1\ncall 8\nexit"), h, options);
  ASSERT_TRUE(cpu) << cpu.error().to_string();
  RunContext ctx;
  ctx.user = &env;
  EXPECT_EQ(*cpu->run(ctx), 3u);  // zero-extended: the upper half of r0 is cleared
  ctx.user = nullptr;
  EXPECT_EQ(*cpu->run(ctx), 99u);
  options.user_fields = {{fake_cpu, static_cast<std::int32_t>(offsetof(Env, ids)), 8}};
  auto ids = JitProgram::compile(kasm("call 14\nexit"), h, options);
  ASSERT_TRUE(ids);
  ctx.user = &env;
  EXPECT_EQ(*ids->run(ctx), 0x1234'0000'5678ull);
}

// Loads the verifier marks as through pointers to kernel objects (ProbeLoads, the kernel's
// BPF_PROBE_MEM) call the reader instead of touching memory: its address and size, its answer
// zero- or sign-extended, r0-r5 kept across it, in both engines. Unmarked loads stay plain loads.
std::uint64_t probe_reader(std::uint64_t addr, std::uint64_t size, std::uint64_t, std::uint64_t, std::uint64_t,
                           CallContext*) {
  return size == 1 ? 0xff : addr * 2 + size;
}

TEST(Jit, ProbeLoadsCallTheReaderAndKeepTheRegisters) {
  const auto program = kasm(
      "r1 = 256\nr0 = 10\nr2 = 20\nr3 = 30\nr4 = 40\nr5 = 50\n"
      "r6 = *(u32 *)(r1 +8)\n"    // 6: the reader: 0x108 * 2 + 4
      "r7 = *(s8 *)(r1 +1)\n"     // 7: 0xff, sign-extended: -1
      "r1 = *(u64 *)(r1 +0)\n"    // 8: into its own base register: 0x100 * 2 + 8
      "r9 = *(u8 *)(r1 +0)\n"     // 9: at 0x208: the reader answers 0xff
      "r0 += r2\nr0 += r3\nr0 += r4\nr0 += r5\nr0 += r6\nr0 += r7\nr0 += r1\nexit");
  ProbeLoads probes;
  probes.read = probe_reader;
  probes.at.assign(program.size(), false);
  probes.at[6] = probes.at[7] = probes.at[8] = probes.at[9] = true;
  const std::uint64_t want = 10 + 20 + 30 + 40 + 50 + 0x214 - 1 + 0x208;
  ASSERT_EQ(program.size(), 18u);
  HelperTable h;
  JitOptions jo;
  jo.probe_loads = probes;
  auto jit = JitProgram::compile(program, h, jo);
  ASSERT_TRUE(jit) << jit.error().to_string();
  EXPECT_EQ(*jit->run({}), want);
  InterpreterOptions io;
  io.probe_loads = probes;
  auto interp = Interpreter::load(program, h, io);
  ASSERT_TRUE(interp) << interp.error().to_string();
  EXPECT_EQ(*interp->run({}), want);
  // Unmarked, the same loads read memory: r1 = 0x100 is not mapped, so the program is refused by
  // the checked interpreter rather than run.
  InterpreterOptions checked;
  checked.checked = true;
  auto plain = Interpreter::load(program, h, checked);
  ASSERT_TRUE(plain);
  EXPECT_FALSE(plain->run({}));
}

TEST(Jit, RefusesWhatTheInterpreterRefuses) {
  HelperTable h;
  auto r = JitProgram::compile(kasm("call 1\nexit"), h);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().to_string().find("not available here"), std::string::npos);
  EXPECT_FALSE(JitProgram::compile(std::vector<isa::RawInsn>{}, h));
}

// --- Differential: the interpreter (checked, so a generator bug shows as a fault) against the JIT in
// each of its configurations, on the same random programs and memory.

std::uint64_t mix(std::uint64_t a, std::uint64_t b, std::uint64_t c, std::uint64_t d, std::uint64_t e, CallContext*) {
  return (a * 0x9e3779b97f4a7c15ull) ^ (b << 7) ^ (c >> 3) ^ (d * 31) ^ ~e;
}
std::uint64_t maybe_exit(std::uint64_t r1, std::uint64_t, std::uint64_t, std::uint64_t, std::uint64_t, CallContext* ctx) {
  if (r1 % 8 == 0) ctx->request_exit();
  return r1;
}

struct Outcome {
  Result<std::uint64_t> r0;
  std::vector<std::uint8_t> mem;
};

template <typename Engine>
Outcome run_on(const Engine& engine, const std::vector<std::uint8_t>& initial) {
  Outcome out{0, initial};
  MemoryRegion region = MemoryRegion::of(out.mem.data(), out.mem.size(), "mem");
  RunContext ctx;
  ctx.r1 = reinterpret_cast<std::uint64_t>(out.mem.data());
  ctx.regions = {&region, 1};
  ctx.packet = out.mem;
  out.r0 = engine.run(ctx);
  return out;
}

TEST(JitDifferential, MatchesTheInterpreterOnRandomPrograms) {
  HelperTable h;
  h.set(test::RandomProgram::kMix, mix);
  h.set(test::RandomProgram::kMaybeExit, maybe_exit);
  JitOptions plain, hardened, no_bmi2;
  hardened.harden = true;
  no_bmi2.bmi2 = false;
  // Bounded in time as well as in count, so a slow machine still finishes quickly.
  const std::uint64_t seeds = test::random_seed_count(3000);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(seeds > 3000 ? 86400 : 20);
  int programs = 0;
  for (std::uint64_t seed = 1; seed <= seeds && std::chrono::steady_clock::now() < deadline; ++seed) {
    const auto p = test::random_program(seed, test::RandomProgram::Form::kVm, 20 + seed % 80);
    InterpreterOptions checked;
    checked.checked = true;
    auto interp = Interpreter::load(p.insns, h, checked);
    ASSERT_TRUE(interp) << "seed " << seed << ": " << interp.error().to_string();
    const Outcome want = run_on(*interp, p.mem);
    ASSERT_TRUE(want.r0) << "seed " << seed << ": the generator made a faulting program: " << want.r0.error().to_string();
    for (const JitOptions& o : {plain, hardened, no_bmi2}) {
      auto jit = JitProgram::compile(p.insns, h, o);
      ASSERT_TRUE(jit) << "seed " << seed << ": " << jit.error().to_string();
      const Outcome got = run_on(*jit, p.mem);
      ASSERT_TRUE(got.r0) << "seed " << seed << ": " << got.r0.error().to_string();
      ASSERT_EQ(*got.r0, *want.r0) << "seed " << seed << " harden=" << o.harden << " bmi2=" << o.bmi2;
      ASSERT_EQ(got.mem, want.mem) << "seed " << seed << " harden=" << o.harden << " bmi2=" << o.bmi2;
    }
    ++programs;
  }
  EXPECT_GE(programs, 100);
  RecordProperty("programs", programs);
}

}  // namespace
}  // namespace bpfvm::vm

namespace bpfvm::vm {
namespace {

TEST(NativeDisasm, PrintsAttSyntaxAsObjdumpDoes) {
  // push %rbp; mov %rsp,%rbp; sub $0x8,%rsp; lock add %eax,(%rdi); jmp back to 0; ret; a byte that is no instruction
  const std::uint8_t code[] = {0x55, 0x48, 0x89, 0xe5, 0x48, 0x83, 0xec, 0x08, 0xf0, 0x01, 0x07, 0xeb, 0xf3, 0xc3, 0x06};
  const auto insns = disassemble_native(code);
  ASSERT_EQ(insns.size(), 7u);
  EXPECT_EQ(insns[0].text, "push   %rbp");
  EXPECT_EQ(insns[1].text, "mov    %rsp,%rbp");
  EXPECT_EQ(insns[1].offset, 1u);
  EXPECT_EQ(insns[1].size, 3u);
  EXPECT_EQ(insns[2].text, "sub    $0x8,%rsp");
  EXPECT_EQ(insns[3].text, "lock add %eax,(%rdi)");
  EXPECT_EQ(insns[4].text, "jmp    0x0000000000000000");
  EXPECT_EQ(insns[5].text, "ret");
  EXPECT_EQ(insns[6].text, "(bad)");
}

}  // namespace
}  // namespace bpfvm::vm
