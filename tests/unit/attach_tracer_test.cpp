// The syscall tracer: a launched tree stops only at the selected syscalls (seccomp), at entry and exit,
// with the thread's ids and comm; forks are followed; -p attaches and detaches without harm.
#include <gtest/gtest.h>
#include <linux/filter.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <fstream>
#include <iterator>
#include <map>
#include <thread>

#include "../../src/attach/seccomp_filter.hpp"
#include "bpfvm/attach/syscall_tracer.hpp"
#include "bpfvm/attach/syscalls.hpp"

namespace bpfvm::attach {
namespace {

std::string read_string(pid_t pid, std::uint64_t addr) {
  char buf[256] = {};
  struct iovec local {buf, sizeof buf - 1};
  struct iovec remote {reinterpret_cast<void*>(addr), sizeof buf - 1};
  if (::process_vm_readv(pid, &local, 1, &remote, 1, 0) <= 0) return {};
  return buf;
}

TEST(SyscallTable, HasTheKernelsNumbersAndFields) {
  const SyscallFormat* openat = syscall_by_name("openat");
  ASSERT_NE(openat, nullptr);
  EXPECT_EQ(openat->nr, SYS_openat);
  EXPECT_EQ(openat->arg_count(), 4u);
  EXPECT_EQ(openat->field_list()[1], "const char * filename");
  EXPECT_EQ(syscall_by_nr(SYS_read)->name, "read");
  EXPECT_EQ(syscall_by_nr(SYS_execve)->arg_count(), 3u);
  EXPECT_EQ(syscall_by_nr(SYS_getpid)->arg_count(), 0u);
  EXPECT_EQ(syscall_by_name("no_such_syscall"), nullptr);
  EXPECT_EQ(syscall_by_nr(100000), nullptr);
}

// The format files bpfvm serves where tracefs is not readable (BCC's TRACEPOINT_PROBE as an ordinary
// user) are the kernel's, byte for byte: every syscall's enter and exit event, and raw_syscalls'.
TEST(SyscallFormatOracle, FormatFilesAreTheKernels) {
  std::string root;
  for (const char* r : {"/sys/kernel/tracing", "/sys/kernel/debug/tracing"}) {
    if (::access((std::string(r) + "/events/syscalls/sys_enter_openat/format").c_str(), R_OK) == 0) root = r;
  }
  if (root.empty()) GTEST_SKIP() << "tracefs is not readable here (mount it as root to compare with the kernel)";
  auto compare = [&](const std::string& name) {
    std::ifstream in(root + "/events/" + name + "/format");
    if (!in) return;  // a syscall this kernel's build has no tracepoint for
    const std::string real((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    const auto id_at = real.find("ID: ");
    ASSERT_NE(id_at, std::string::npos) << name;
    const std::uint64_t id = std::strtoull(real.c_str() + id_at + 4, nullptr, 10);
    const auto ours = syscall_tracepoint_format(name, id);
    ASSERT_TRUE(ours) << name;
    EXPECT_EQ(*ours, real) << name;
  };
  int compared = 0;
  for (const SyscallFormat& f : syscall_formats()) {
    compare("syscalls/sys_enter_" + std::string(f.name));
    compare("syscalls/sys_exit_" + std::string(f.name));
    compared += 2;
  }
  compare("raw_syscalls/sys_enter");
  compare("raw_syscalls/sys_exit");
  EXPECT_GT(compared, 600);
  EXPECT_FALSE(syscall_tracepoint_format("sched/sched_switch", 1));
  EXPECT_FALSE(syscall_tracepoint_format("syscalls/sys_enter_no_such_call", 1));
}

TEST(SeccompFilter, TracesOnlyTheSelectedSyscalls) {
  SyscallSelection s;
  s.enter = {SYS_openat, SYS_read};
  s.exit = {SYS_read};
  const auto f = seccomp_filter(s);
  // arch check (3) + load nr + one comparison per syscall + ALLOW + TRACE.
  ASSERT_EQ(f.size(), 3u + 1 + 2 + 2);
  EXPECT_EQ(f[4].k, static_cast<unsigned>(SYS_read));  // sorted
  EXPECT_EQ(f[4].jt, 2);                                // to the TRACE past one comparison and the ALLOW
  EXPECT_EQ(f[5].jt, 1);
  s.all_enter = true;
  EXPECT_EQ(seccomp_filter(s).size(), 1u);  // everything traces
}

TEST(SyscallTracer, LaunchedTreeStopsAtSelectedSyscallsWithTheThreadsIdentity) {
  SyscallSelection s;
  s.enter = {SYS_openat};
  s.exit = {SYS_openat};
  auto tracer = SyscallTracer::launch({"sh", "-c", "cat /dev/null; exit 3"}, s);
  ASSERT_TRUE(tracer) << tracer.error().to_string();
  std::vector<std::string> opened;
  int enters = 0, exits = 0, devnull_fds = 0;
  std::set<std::uint32_t> pids;
  std::atomic<bool> stop{false};
  auto rc = (*tracer)->run(
      [&](const SyscallStop& st) {
        EXPECT_EQ(st.nr, SYS_openat);
        if (st.exit) {
          ++exits;
          // The exit of the open the entry saw (same thread, same arguments).
          if (read_string(static_cast<pid_t>(st.task->pid), st.args[1]) == "/dev/null") {
            EXPECT_GE(st.ret, 0);
            ++devnull_fds;
          }
          return;
        }
        ++enters;
        pids.insert(st.task->tgid);
        const std::string path = read_string(static_cast<pid_t>(st.task->pid), st.args[1]);
        if (path == "/dev/null") {
          EXPECT_STREQ(st.task->comm, "cat");
        }
        opened.push_back(path);
      },
      stop);
  ASSERT_TRUE(rc) << rc.error().to_string();
  EXPECT_EQ(rc->code, 3);  // the command's exit code
  EXPECT_EQ(rc->signal, 0);
  EXPECT_EQ(enters, exits);
  EXPECT_EQ(devnull_fds, 1);
  EXPECT_NE(std::find(opened.begin(), opened.end(), "/dev/null"), opened.end());
  EXPECT_GE(pids.size(), 2u);  // sh and the cat it forked
  EXPECT_EQ((*tracer)->unwanted_stops(), 0u);  // the filter stopped nothing else
}

TEST(SyscallTracer, GrandchildrenAreFollowed) {
  // A subshell in the background forks cat: two levels below the launched shell.
  SyscallSelection s;
  s.enter = {SYS_openat};
  auto tracer = SyscallTracer::launch({"sh", "-c", "(cat /proc/self/stat >/dev/null) & wait"}, s);
  ASSERT_TRUE(tracer);
  std::atomic<bool> stop{false};
  bool seen = false;
  auto rc = (*tracer)->run(
      [&](const SyscallStop& st) {
        if (read_string(static_cast<pid_t>(st.task->pid), st.args[1]) == "/proc/self/stat") {
          seen = true;
          EXPECT_STREQ(st.task->comm, "cat");
          EXPECT_NE(st.task->tgid, static_cast<std::uint32_t>((*tracer)->pid()));
        }
      },
      stop);
  ASSERT_TRUE(rc);
  EXPECT_EQ(rc->code, 0);
  EXPECT_TRUE(seen);
}

TEST(SyscallTracer, MissingCommandIsAnError) {
  auto tracer = SyscallTracer::launch({"/no/such/program"}, {});
  ASSERT_FALSE(tracer);
  EXPECT_NE(tracer.error().message().find("cannot run '/no/such/program'"), std::string::npos);
}

TEST(SyscallTracer, AttachSeesSyscallsAndDetachesOnStop) {
  // A child that keeps calling getppid, traced with -p semantics, then left running.
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    while (true) {
      ::syscall(SYS_getppid);
      ::usleep(1000);
    }
  }
  SyscallSelection s;
  s.enter = {SYS_getppid};
  s.exit = {SYS_getppid};
  auto tracer = SyscallTracer::attach(child, s);
  ASSERT_TRUE(tracer) << tracer.error().to_string();
  std::atomic<bool> stop{false};
  int enters = 0, exits = 0;
  auto rc = (*tracer)->run(
      [&](const SyscallStop& st) {
        if (st.exit) {
          ++exits;
          EXPECT_EQ(st.ret, ::getpid());
        } else {
          ++enters;
        }
        if (exits >= 5) stop = true;
      },
      stop);
  ASSERT_TRUE(rc) << rc.error().to_string();
  EXPECT_GE(enters, 5);
  EXPECT_GE(exits, 5);
  // Detached and alive.
  ::usleep(20000);
  int status = 0;
  EXPECT_EQ(::waitpid(child, &status, WNOHANG), 0);
  ::kill(child, SIGKILL);
  ::waitpid(child, &status, 0);
  EXPECT_TRUE(WIFSIGNALED(status));
}

TEST(SyscallTracer, AttachFollowsEveryThreadOfAProcess) {
  // A child whose two threads call getppid: stops come from both, with one tgid.
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    std::thread other([] {
      while (true) {
        ::syscall(SYS_getppid);
        ::usleep(1000);
      }
    });
    while (true) {
      ::syscall(SYS_getppid);
      ::usleep(1000);
    }
  }
  ::usleep(50000);  // both threads running
  SyscallSelection s;
  s.enter = {SYS_getppid};
  auto tracer = SyscallTracer::attach(child, s);
  ASSERT_TRUE(tracer) << tracer.error().to_string();
  std::atomic<bool> stop{false};
  std::set<std::uint32_t> tids, tgids;
  int stops = 0;
  auto rc = (*tracer)->run(
      [&](const SyscallStop& st) {
        tids.insert(st.task->pid);
        tgids.insert(st.task->tgid);
        if (++stops >= 40) stop = true;
      },
      stop);
  ASSERT_TRUE(rc);
  EXPECT_EQ(tids.size(), 2u);
  EXPECT_EQ(tgids, std::set<std::uint32_t>{static_cast<std::uint32_t>(child)});
  ::kill(child, SIGKILL);
  int status = 0;
  ::waitpid(child, &status, 0);
}

TEST(SyscallTracer, StopKillsALaunchedTree) {
  SyscallSelection s;
  s.enter = {SYS_nanosleep, SYS_clock_nanosleep};
  auto tracer = SyscallTracer::launch({"sleep", "30"}, s);
  ASSERT_TRUE(tracer);
  std::atomic<bool> stop{false};
  auto rc = (*tracer)->run([&](const SyscallStop&) { stop = true; }, stop);
  ASSERT_TRUE(rc);
  EXPECT_EQ(rc->code, 128 + SIGKILL);
  EXPECT_EQ(rc->signal, SIGKILL);
}

TEST(ReadTask, GivesIdsAndComm) {
  auto t = read_task(::getpid());
  ASSERT_TRUE(t);
  EXPECT_EQ(t->tgid, static_cast<std::uint32_t>(::getpid()));
  EXPECT_EQ(t->uid, ::getuid());
  EXPECT_GT(std::strlen(t->comm), 0u);
}

}  // namespace
}  // namespace bpfvm::attach
