// The agent's probes on this test's own code: entry and return probes, relocation of displaced
// instructions, what the handler sees, threads running through the probed code while it is patched,
// longjmp past a return probe, fork.
#include <gtest/gtest.h>
#include <setjmp.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cmath>
#include <cstring>
#include <thread>
#include <vector>

#include "bpfvm/agent/hook.hpp"

using bpfvm::agent::Hook;
using bpfvm::agent::PatchSite;
using bpfvm::agent::PtRegs;

// Functions in assembler, so that their first bytes are what each test needs.
extern "C" {
long probe_plain(long x);          // endbr64; push rbp; ...: the usual prologue
long probe_riprel(long x);         // a rip-relative load in the displaced bytes
long probe_jcc(long x);            // a conditional branch in the displaced bytes
long probe_call(long x);           // a call in the displaced bytes
long probe_loop(long x);           // a branch back into the first bytes: cannot be patched
double probe_fp(double a, double b);  // arguments in xmm0/xmm1
long probe_mid(long x);            // probed at +8
void probe_jump_out(jmp_buf* env);  // longjmps out of itself
long probe_called(long x);
long probe_call_ra(void);          // returns the return address its callee saw: a call in the displaced bytes
}
__asm__(R"(
  .text
  .p2align 4
probe_filler:
  ret
  .p2align 4
  .globl probe_plain
probe_plain:
  endbr64
  push %rbp
  mov %rsp, %rbp
  lea 1(%rdi), %rax
  pop %rbp
  ret
  .p2align 4
  .globl probe_riprel
probe_riprel:
  mov probe_value(%rip), %rax
  add %rdi, %rax
  ret
  .p2align 4
  .globl probe_jcc
probe_jcc:
  test %rdi, %rdi
  je 1f
  lea 1(%rdi), %rax
  ret
1:
  mov $-1, %rax
  ret
  .p2align 4
  .globl probe_called
probe_called:
  lea 100(%rdi), %rax
  ret
  .p2align 4
probe_return_address:
  mov (%rsp), %rax
  ret
  .p2align 4
  .globl probe_call_ra
probe_call_ra:
  call probe_return_address
  ret
  .p2align 4
  .globl probe_call
probe_call:
  call probe_called
  add $1, %rax
  ret
  .p2align 4
  .globl probe_loop
probe_loop:
  push %rbx
  mov %rdi, %rax
2:
  dec %rax
  jnz 2b
  pop %rbx
  ret
  .p2align 4
  .globl probe_fp
probe_fp:
  endbr64
  push %rbp
  mulsd %xmm1, %xmm0
  pop %rbp
  ret
  .p2align 4
  .globl probe_mid
probe_mid:
  endbr64
  mov %rdi, %rax
  nop
  nop
  add $2, %rax
  add $3, %rax
  ret
  .p2align 4
  .globl probe_jump_out
probe_jump_out:
  push %rbp
  mov %rsp, %rbp
  mov $1, %esi
  call longjmp@PLT
  .p2align 4
  .data
probe_value:
  .quad 41
  .text
)");

namespace {

struct Seen {
  std::atomic<long> hits{0};
  std::atomic<long> last_rdi{0};
  std::atomic<long> last_rax{0};
  std::atomic<std::uint64_t> last_rip{0};
};

void count_entry(PtRegs* regs, void* data) {
  auto* s = static_cast<Seen*>(data);
  s->hits.fetch_add(1);
  s->last_rdi = static_cast<long>(regs->rdi);
  s->last_rip = regs->rip;
}

void count_return(PtRegs* regs, void* data) {
  auto* s = static_cast<Seen*>(data);
  s->hits.fetch_add(1);
  s->last_rax = static_cast<long>(regs->rax);
  s->last_rip = regs->rip;
}

Seen g_returns;
void entry_with_return(PtRegs* regs, void*) { bpfvm::agent::hook_return(regs, count_return, &g_returns); }

// Uses vector registers heavily, as a program's helpers (memcpy) would.
void clobber_vectors(PtRegs*, void* data) {
  char buf[512];
  std::memset(buf, 0x5a, sizeof buf);
  volatile double d = std::sqrt(static_cast<double>(buf[3])) * 3.7;
  (void)d;
  static_cast<Seen*>(data)->hits.fetch_add(1);
}

// The functions above are aligned to 16 bytes and shorter: each has the rest of its 16 bytes as padding
// after it and padding before it (what the symbols of a real binary say).
std::uint64_t padding_before(const void* fn) {
  const std::pair<const void*, std::uint64_t> table[] = {
      {reinterpret_cast<void*>(probe_plain), 15}, {reinterpret_cast<void*>(probe_riprel), 4},
      {reinterpret_cast<void*>(probe_jcc), 5},    {reinterpret_cast<void*>(probe_called), 12},
      {reinterpret_cast<void*>(probe_call), 10},  {reinterpret_cast<void*>(probe_loop), 6},
      {reinterpret_cast<void*>(probe_call_ra), 11},
      {reinterpret_cast<void*>(probe_fp), 4},     {reinterpret_cast<void*>(probe_mid), 5},
      {reinterpret_cast<void*>(probe_jump_out), 14}};
  for (const auto& [f, pad] : table) {
    if (f == fn) return pad;
  }
  return 0;
}

PatchSite at_entry(const void* fn, std::uint64_t size) {
  PatchSite s;
  s.func_pad_before = padding_before(fn);
  s.address = reinterpret_cast<std::uintptr_t>(fn);
  s.func_start = s.address;
  s.func_size = size;
  s.func_slack = (16 - size % 16) % 16;
  return s;
}

// Calls through a volatile pointer, so the compiler cannot fold the call.
template <typename F>
F* opaque(F* f) {
  F* volatile p = f;
  return p;
}

__attribute__((noinline)) void jump_out_once() {
  jmp_buf env;
  if (setjmp(env) == 0) opaque(probe_jump_out)(&env);
}

}  // namespace

TEST(AgentHook, EntryProbeSeesArgumentsAndAddress) {
  Seen seen;
  auto hook = Hook::install(at_entry(reinterpret_cast<void*>(probe_plain), 12), count_entry, &seen);
  ASSERT_TRUE(hook) << hook.error().to_string();
  EXPECT_EQ(opaque(probe_plain)(41), 42);
  EXPECT_EQ(opaque(probe_plain)(7), 8);
  EXPECT_EQ(seen.hits.load(), 2);
  EXPECT_EQ(seen.last_rdi.load(), 7);
  EXPECT_EQ(seen.last_rip.load(), reinterpret_cast<std::uintptr_t>(probe_plain));
  ASSERT_TRUE((*hook)->remove());
  EXPECT_EQ(opaque(probe_plain)(1), 2);
  EXPECT_EQ(seen.hits.load(), 2);  // removed: no more hits
}

TEST(AgentHook, RelocatesRipRelativeBranchesAndCalls) {
  Seen seen;
  auto riprel = Hook::install(at_entry(reinterpret_cast<void*>(probe_riprel), 11), count_entry, &seen);
  ASSERT_TRUE(riprel) << riprel.error().to_string();
  EXPECT_EQ(opaque(probe_riprel)(1), 42);
  auto jcc = Hook::install(at_entry(reinterpret_cast<void*>(probe_jcc), 20), count_entry, &seen);
  ASSERT_TRUE(jcc) << jcc.error().to_string();
  EXPECT_EQ(opaque(probe_jcc)(0), -1);
  EXPECT_EQ(opaque(probe_jcc)(5), 6);
  auto call = Hook::install(at_entry(reinterpret_cast<void*>(probe_call), 10), count_entry, &seen);
  ASSERT_TRUE(call) << call.error().to_string();
  EXPECT_EQ(opaque(probe_call)(1), 102);
  EXPECT_EQ(seen.hits.load(), 4);
}

// A call moved into a trampoline returns to the original code after it (not into the trampoline,
// where an unwinder would find no frame and an exception thrown below would terminate the program).
TEST(AgentHook, AMovedCallReturnsToTheOriginalCode) {
  const auto after_call = reinterpret_cast<long>(probe_call_ra) + 5;
  EXPECT_EQ(opaque(probe_call_ra)(), after_call);
  Seen seen;
  for (const bool trap : {false, true}) {
    PatchSite s = at_entry(reinterpret_cast<void*>(probe_call_ra), 6);
    s.trap = trap;
    auto hook = Hook::install(s, count_entry, &seen);
    ASSERT_TRUE(hook) << hook.error().to_string();
    EXPECT_EQ((*hook)->trap(), trap);
    EXPECT_EQ(opaque(probe_call_ra)(), after_call);
  }
  EXPECT_EQ(seen.hits.load(), 2);
}

TEST(AgentHook, AnInt3WhereABranchLandsInTheDisplacedBytes) {
  Seen seen;
  auto hook = Hook::install(at_entry(reinterpret_cast<void*>(probe_loop), 12), count_entry, &seen);
  ASSERT_TRUE(hook) << hook.error().to_string();
  EXPECT_TRUE((*hook)->trap());
  EXPECT_EQ(opaque(probe_loop)(3), 0);
  EXPECT_EQ(opaque(probe_loop)(5), 0);
  EXPECT_EQ(seen.hits.load(), 2);
  EXPECT_EQ(seen.last_rdi.load(), 5);
  EXPECT_EQ(seen.last_rip.load(), reinterpret_cast<std::uintptr_t>(probe_loop));
  ASSERT_TRUE((*hook)->remove());
  EXPECT_EQ(opaque(probe_loop)(2), 0);
  EXPECT_EQ(seen.hits.load(), 2);
}

TEST(AgentHook, Int3ProbesRelocateTheInstructionTheyReplace) {
  Seen seen;
  auto trap_at = [&](const void* fn, std::uint64_t size, std::uint64_t offset = 0) {
    PatchSite s = at_entry(fn, size);
    s.address += offset;
    s.trap = true;
    return Hook::install(s, count_entry, &seen);
  };
  auto riprel = trap_at(reinterpret_cast<void*>(probe_riprel), 11);
  ASSERT_TRUE(riprel) << riprel.error().to_string();
  EXPECT_TRUE((*riprel)->trap());
  EXPECT_EQ(opaque(probe_riprel)(1), 42);
  auto call = trap_at(reinterpret_cast<void*>(probe_call), 10);
  ASSERT_TRUE(call) << call.error().to_string();
  EXPECT_EQ(opaque(probe_call)(1), 102);
  auto mid = trap_at(reinterpret_cast<void*>(probe_mid), 18, 7);  // the first 1-byte nop
  ASSERT_TRUE(mid) << mid.error().to_string();
  EXPECT_EQ(opaque(probe_mid)(1), 6);
  EXPECT_EQ(seen.hits.load(), 3);
  EXPECT_EQ(seen.last_rip.load(), reinterpret_cast<std::uintptr_t>(probe_mid) + 7);
  PatchSite inside = at_entry(reinterpret_cast<void*>(probe_mid), 18);
  inside.address += 1;
  inside.trap = true;
  auto refused = Hook::install(inside, count_entry, &seen);
  ASSERT_FALSE(refused);
  EXPECT_NE(refused.error().to_string().find("instruction boundary"), std::string::npos) << refused.error().to_string();
}

TEST(AgentHook, ThreadsRunThroughAnInt3WhileItComesAndGoes) {
  Seen seen;
  std::atomic<bool> stop{false};
  std::atomic<long> wrong{0}, calls{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 2; ++t) {
    threads.emplace_back([&] {
      auto* f = opaque(probe_plain);
      while (!stop.load(std::memory_order_relaxed)) {
        for (long i = 0; i < 100; ++i) {
          if (f(i) != i + 1) wrong.fetch_add(1);
        }
        calls.fetch_add(100);
      }
    });
  }
  PatchSite s = at_entry(reinterpret_cast<void*>(probe_plain), 12);
  s.trap = true;
  for (int round = 0; round < 200; ++round) {
    auto hook = Hook::install(s, count_entry, &seen);
    ASSERT_TRUE(hook) << hook.error().to_string();
    std::this_thread::yield();
    ASSERT_TRUE((*hook)->remove());
  }
  stop = true;
  for (auto& t : threads) t.join();
  EXPECT_EQ(wrong.load(), 0);
  EXPECT_GT(calls.load(), 0);
}

TEST(AgentHook, RefusesAPointInsideAnInstruction) {
  Seen seen;
  PatchSite s = at_entry(reinterpret_cast<void*>(probe_mid), 18);
  s.address += 1;  // inside endbr64
  auto hook = Hook::install(s, count_entry, &seen);
  ASSERT_FALSE(hook);
  EXPECT_NE(hook.error().to_string().find("instruction boundary"), std::string::npos) << hook.error().to_string();
}

TEST(AgentHook, VectorArgumentsSurviveAHandlerThatUsesVectors) {
  Seen seen;
  auto hook = Hook::install(at_entry(reinterpret_cast<void*>(probe_fp), 11), clobber_vectors, &seen);
  ASSERT_TRUE(hook) << hook.error().to_string();
  EXPECT_DOUBLE_EQ(opaque(probe_fp)(1.5, 4.0), 6.0);
  EXPECT_EQ(seen.hits.load(), 1);
}

TEST(AgentHook, ProbeInsideAFunctionSavesEverything) {
  Seen seen;
  PatchSite s = at_entry(reinterpret_cast<void*>(probe_mid), 18);
  s.address += 9;  // the two adds, after endbr64, mov and the nops
  auto hook = Hook::install(s, count_entry, &seen);
  ASSERT_TRUE(hook) << hook.error().to_string();
  EXPECT_EQ(opaque(probe_mid)(10), 15);
  EXPECT_EQ(seen.hits.load(), 1);
  EXPECT_EQ(seen.last_rip.load(), s.address);
}

TEST(AgentHook, ReturnProbeSeesTheReturnValueAndWhereItReturns) {
  g_returns.hits = 0;
  auto hook = Hook::install(at_entry(reinterpret_cast<void*>(probe_called), 5), entry_with_return, nullptr);
  ASSERT_TRUE(hook) << hook.error().to_string();
  EXPECT_EQ(opaque(probe_called)(1), 101);
  EXPECT_EQ(g_returns.hits.load(), 1);
  EXPECT_EQ(g_returns.last_rax.load(), 101);
  // Through probe_call, which calls it: the return lands back in probe_call's relocated copy or itself.
  EXPECT_EQ(opaque(probe_call)(2), 103);
  EXPECT_EQ(g_returns.hits.load(), 2);
}

TEST(AgentHook, ReturnProbeSurvivesLongjmp) {
  g_returns.hits = 0;
  auto hook = Hook::install(at_entry(reinterpret_cast<void*>(probe_jump_out), 14), entry_with_return, nullptr);
  ASSERT_TRUE(hook) << hook.error().to_string();
  auto ret_hook = Hook::install(at_entry(reinterpret_cast<void*>(probe_plain), 12), entry_with_return, nullptr);
  ASSERT_TRUE(ret_hook) << ret_hook.error().to_string();
  for (int i = 0; i < 100; ++i) jump_out_once();  // more than the pending-return stack holds, if skipped frames stayed
  EXPECT_EQ(g_returns.hits.load(), 0);  // probe_jump_out never returned
  EXPECT_EQ(opaque(probe_plain)(1), 2);
  EXPECT_EQ(g_returns.hits.load(), 1);
  EXPECT_EQ(g_returns.last_rax.load(), 2);
}

TEST(AgentHook, ThreadsRunThroughThePatchWhileItComesAndGoes) {
  Seen seen;
  std::atomic<bool> stop{false};
  std::atomic<long> wrong{0}, calls{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 3; ++t) {
    threads.emplace_back([&] {
      auto* f = opaque(probe_plain);
      while (!stop.load(std::memory_order_relaxed)) {
        for (long i = 0; i < 1000; ++i) {
          if (f(i) != i + 1) wrong.fetch_add(1);
        }
        calls.fetch_add(1000);
      }
    });
  }
  for (int round = 0; round < 200; ++round) {
    auto hook = Hook::install(at_entry(reinterpret_cast<void*>(probe_plain), 12), count_entry, &seen);
    ASSERT_TRUE(hook) << hook.error().to_string();
    std::this_thread::yield();
    ASSERT_TRUE((*hook)->remove());
  }
  stop = true;
  for (auto& t : threads) t.join();
  EXPECT_EQ(wrong.load(), 0);
  EXPECT_GT(calls.load(), 0);
}

TEST(AgentHook, ProbesStayInAForkedChild) {
  Seen seen;
  auto hook = Hook::install(at_entry(reinterpret_cast<void*>(probe_plain), 12), count_entry, &seen);
  ASSERT_TRUE(hook) << hook.error().to_string();
  const pid_t child = fork();
  if (child == 0) {
    const long r = opaque(probe_plain)(9);
    _exit(r == 10 && seen.hits.load() == 1 ? 0 : 1);
  }
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  EXPECT_EQ(seen.hits.load(), 0);  // the child's count was its own
}

TEST(AgentHook, AtomicPatchRefusesBytesAcrossSixteen) {
  const std::uint8_t bytes[5] = {0x90, 0x90, 0x90, 0x90, 0x90};
  alignas(16) static std::uint8_t code[32];
  auto r = bpfvm::agent::patch_code(reinterpret_cast<std::uintptr_t>(code) + 13, bytes, 5);
  EXPECT_FALSE(r);
}
