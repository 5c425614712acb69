// The agent's syscall sites on this test's own libc, in a child process each: every syscall still does
// what it did, a probed number reaches the handler with its arguments, the handler can perform it (its
// result is the caller's) or let it run, errors keep their errno, fork and threads still work.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>
#include <vector>

#include "bpfvm/agent/syscall_sites.hpp"

namespace agent = bpfvm::agent;

namespace {

std::atomic<int> g_enter{0};
std::atomic<long> g_last_arg{0};
std::atomic<bool> g_perform{false};

void handler(agent::PtRegs* regs, void*) {
  g_enter.fetch_add(1);
  g_last_arg.store(static_cast<long>(regs->rdi));
  if (g_perform.load()) {
    const std::uint64_t args[6] = {regs->rdi, regs->rsi, regs->rdx, regs->r10, regs->r8, regs->r9};
    regs->rax = static_cast<std::uint64_t>(agent::raw_syscall(regs->rax, args));
    regs->rcx = 1;
  } else {
    regs->rcx = 0;
  }
}

// Patches every executable mapping of libc (or of the file whose path contains `which`) in this process;
// the number of sites hooked.
std::size_t hook_libc(const std::string& cache = {}, std::vector<std::string>* left = nullptr,
                      const char* which = "/libc.so") {
  FILE* f = std::fopen("/proc/self/maps", "re");
  char line[4096];
  std::size_t hooked = 0;
  while (f && std::fgets(line, sizeof line, f)) {
    unsigned long start, end, off;
    char perms[8], path[4096] = {};
    if (std::sscanf(line, "%lx-%lx %7s %lx %*s %*s %4095s", &start, &end, perms, &off, path) != 5) continue;
    if (perms[2] != 'x' || !std::strstr(path, which)) continue;
    auto r = agent::hook_syscall_sites(path, start, end, off, true, cache);
    if (r) hooked += r->hooked;
    if (r && left) left->insert(left->end(), r->left.begin(), r->left.end());
  }
  if (f) std::fclose(f);
  return hooked;
}

// Syscall sites of this test's own code with vector registers around them (see the test below):
//   keep_xmm8(x): x in xmm8 across a getppid, read back after it (live after the syscall);
//   keep_xmm0(x): a double in xmm0 across a getppid, then ret (live only as the return value);
//   keep_ymm8_high(x): x in the upper half of ymm8 across a getppid, read back after it (AVX only).
extern "C" long keep_xmm8(long x);
extern "C" double keep_xmm0(double x);
extern "C" long keep_ymm8_high(long x);
__asm__(
    ".text\n"
    ".globl keep_ymm8_high\n"
    ".type keep_ymm8_high, @function\n"
    "keep_ymm8_high:\n"
    "  vmovq %rdi, %xmm8\n"
    "  vinsertf128 $1, %xmm8, %ymm8, %ymm8\n"
    "  vpxor %xmm9, %xmm9, %xmm9\n"
    "  vblendps $0x0f, %ymm9, %ymm8, %ymm8\n"  // the lower half 0: only the upper one holds x
    "  mov $110, %eax\n"
    "  syscall\n"
    "  vextractf128 $1, %ymm8, %xmm8\n"
    "  vmovq %xmm8, %rax\n"
    "  vzeroupper\n"
    "  ret\n"
    ".size keep_ymm8_high, .-keep_ymm8_high\n"
    ".globl keep_xmm8\n"
    ".type keep_xmm8, @function\n"
    "keep_xmm8:\n"
    "  movq %rdi, %xmm8\n"
    "  mov $110, %eax\n"  // SYS_getppid
    "  syscall\n"
    "  movq %xmm8, %rax\n"
    "  ret\n"
    ".size keep_xmm8, .-keep_xmm8\n"
    ".globl keep_xmm0\n"
    ".type keep_xmm0, @function\n"
    "keep_xmm0:\n"
    "  mov $110, %eax\n"
    "  syscall\n"
    "  ret\n"
    ".size keep_xmm0, .-keep_xmm0\n");

// A handler that uses vector registers as code it calls may (glibc's string functions do).
void clobbering_handler(agent::PtRegs* regs, void* data) {
  __asm__ volatile("pcmpeqd %%xmm0, %%xmm0\n pcmpeqd %%xmm1, %%xmm1\n pcmpeqd %%xmm8, %%xmm8" ::: "xmm0", "xmm1", "xmm8");
  if (__builtin_cpu_supports("avx")) __asm__ volatile("vpcmpeqd %%xmm8, %%xmm8, %%xmm8\n vinsertf128 $1, %%xmm8, %%ymm8, %%ymm8" ::: "xmm8");
  handler(regs, data);
}

// Runs `body` in a child process; its exit code (0: every check passed).
template <typename F>
int in_child(F body) {
  std::fflush(nullptr);
  const pid_t child = fork();
  if (child == 0) _exit(body());
  int st = 0;
  waitpid(child, &st, 0);
  return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

}  // namespace

TEST(AgentSyscalls, LibcSitesHookedAndSyscallsUnchanged) {
  EXPECT_EQ(in_child([] {
    if (hook_libc() < 100) return 1;  // Debian's libc has some 500 syscall instructions
    agent::set_syscall_handler(handler);
    // Nothing probed: everything as before.
    const int fd = open("/proc/self/comm", O_RDONLY);
    if (fd < 0) return 2;
    char buf[64];
    if (read(fd, buf, sizeof buf) <= 0) return 3;
    close(fd);
    if (g_enter.load() != 0) return 4;
    errno = 0;
    if (close(12345) != -1 || errno != EBADF) return 5;
    return 0;
  }), 0);
}

TEST(AgentSyscalls, ProbedNumberReachesTheHandler) {
  EXPECT_EQ(in_child([] {
    if (hook_libc() == 0) return 1;
    agent::set_syscall_handler(handler);
    agent::syscall_table()[SYS_close] = 1;
    const int fd = open("/dev/null", O_RDONLY);
    if (close(fd) != 0) return 2;
    if (g_enter.load() != 1 || g_last_arg.load() != fd) return 3;
    // The handler performs it: the caller gets its result and errno.
    g_perform = true;
    errno = 0;
    if (close(9999) != -1 || errno != EBADF) return 4;
    const int fd2 = open("/dev/null", O_RDONLY);
    if (close(fd2) != 0 || fcntl(fd2, F_GETFD) != -1) return 5;
    if (g_enter.load() != 3) return 6;
    return 0;
  }), 0);
}

TEST(AgentSyscalls, ForkAndThreadsThroughHookedSites) {
  EXPECT_EQ(in_child([] {
    if (hook_libc() == 0) return 1;
    agent::set_syscall_handler(handler);
    agent::syscall_table()[SYS_getppid] = 1;
    agent::syscall_table()[SYS_clone] = 1;  // the handler lets clone run natively (rcx = 0)
    agent::syscall_table()[SYS_clone3] = 1;
    std::atomic<int> ran{0};
    std::thread t([&] {
      for (int i = 0; i < 1000; ++i) getppid();
      ran = 1;
    });
    t.join();
    if (!ran) return 2;
    const pid_t c = fork();
    if (c == 0) _exit(getppid() > 0 ? 7 : 8);
    int st = 0;
    if (waitpid(c, &st, 0) != c || !WIFEXITED(st) || WEXITSTATUS(st) != 7) return 3;
    if (g_enter.load() < 1000) return 4;
    return 0;
  }), 0);
}

// The slow path saves the vector state a site's code may still read: the whole of it where a vector
// register is read after the syscall (keep_xmm8), only xmm0-7 (the call-boundary form) where the code
// returns before any is read (keep_xmm0); the plan says which. A handler that clobbers vectors changes
// no function's result, an upper half live after the site included (keep_ymm8_high).
TEST(AgentSyscalls, VectorStateLiveAfterASiteSurvivesTheHandler) {
  namespace fs = std::filesystem;
  const fs::path dir = fs::temp_directory_path() / ("bpfvm-vsites-" + std::to_string(getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  const std::string self = fs::read_symlink("/proc/self/exe").filename().string();
  EXPECT_EQ(in_child([&] {
    if (hook_libc(dir, nullptr, ("/" + self).c_str()) < 2) return 1;
    agent::set_syscall_handler(clobbering_handler);
    agent::syscall_table()[SYS_getppid] = 1;
    if (keep_xmm8(0x1234567890abcdefL) != 0x1234567890abcdefL) return 2;
    if (keep_xmm0(2.5) != 2.5) return 3;
    const bool avx = __builtin_cpu_supports("avx");
    // The whole register, upper half included, though the trampoline clears upper halves for the
    // handler (vzeroupper, after saving them).
    if (avx && keep_ymm8_high(0x0fedcba987654321L) != 0x0fedcba987654321L) return 5;
    if (g_enter.load() != (avx ? 3 : 2)) return 4;
    return 0;
  }), 0);
  // The plan: keep_xmm8's site saves everything (0), keep_xmm0's only xmm0-7 (1).
  std::string plan;
  for (const auto& e : fs::directory_iterator(dir)) {
    std::ifstream in(e.path());
    std::stringstream ss;
    ss << in.rdbuf();
    plan += ss.str();
  }
  EXPECT_NE(plan.find(" 0\n"), std::string::npos) << plan;
  EXPECT_NE(plan.find(" 1\n"), std::string::npos) << plan;
  fs::remove_all(dir);
}

std::string fmt_window(unsigned long long a, unsigned long long b, unsigned long long c) {
  char line[80];
  std::snprintf(line, sizeof line, "w %llx %llx %llx 0\n", a, b, c);
  return line;
}

// The sweep's result is kept in the cache directory and used by the next process: a plan read back
// is what patches (an extra line in it shows up in the report), and one that does not fit the file
// (a window whose site is no syscall instruction) is swept again and rewritten.
TEST(AgentSyscalls, SitePlansAreCachedAndCheckedBeforeUse) {
  namespace fs = std::filesystem;
  const fs::path dir = fs::temp_directory_path() / ("bpfvm-sites-" + std::to_string(getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  ASSERT_EQ(in_child([&] { return hook_libc(dir) >= 100 ? 0 : 1; }), 0);
  std::vector<fs::path> plans;
  for (const auto& e : fs::directory_iterator(dir)) plans.push_back(e.path());
  ASSERT_EQ(plans.size(), 1u) << "one plan for libc's code";
  auto slurp = [](const fs::path& p) {
    std::ifstream in(p);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  };
  const std::string swept = slurp(plans[0]);
  ASSERT_TRUE(swept.starts_with("bpfvm syscall sites 3\nw ")) << swept.substr(0, 80);

  // Read back: the marker line comes out as a site left.
  std::ofstream(plans[0], std::ios::app) << "l 1 marked by the test\n";
  EXPECT_EQ(in_child([&] {
    std::vector<std::string> left;
    if (hook_libc(dir, &left) < 100) return 1;
    for (const auto& why : left) {
      if (why.find("marked by the test") != std::string::npos) return 0;
    }
    return 2;
  }), 0);

  // A window at a place that holds no syscall: the plan is not used, the file is swept again.
  unsigned long long a = 0, b = 0, c = 0;
  ASSERT_EQ(std::sscanf(swept.c_str() + swept.find("\nw ") + 1, "w %llx %llx %llx", &a, &b, &c), 3);
  std::ofstream(plans[0], std::ios::trunc) << "bpfvm syscall sites 3\n"
                                           << fmt_window(a, b + 1, c + 1);
  EXPECT_EQ(in_child([&] { return hook_libc(dir) >= 100 ? 0 : 1; }), 0);
  EXPECT_EQ(slurp(plans[0]), swept);
  // Garbage: the same.
  std::ofstream(plans[0], std::ios::trunc) << "bpfvm syscall sites 3\nnot a plan\n";
  EXPECT_EQ(in_child([&] { return hook_libc(dir) >= 100 ? 0 : 1; }), 0);
  EXPECT_EQ(slurp(plans[0]), swept);
  fs::remove_all(dir);
}
