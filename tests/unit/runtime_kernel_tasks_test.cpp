// bpf_get_current_task and the emulated kernel objects behind it (runtime/kernel_tasks.hpp), read by a
// CO-RE program (tests/progs/current_task.bpf.c) relocated against the running kernel's BTF, checked
// against what /proc says of the test's own thread, its parent and its namespaces.
#include <gtest/gtest.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "bpfvm/base/process.hpp"
#include "bpfvm/helpers/run_env.hpp"
#include "bpfvm/runtime/kernel_tasks.hpp"
#include "bpfvm/runtime/object.hpp"

namespace bpfvm::runtime {
namespace {

// The layout of struct out in current_task.bpf.c.
struct Out {
  std::uint64_t task;
  std::int32_t pid, tgid, ppid, grandparent_pid;
  std::uint32_t flags;
  std::int32_t exit_code;
  std::uint64_t start_time;
  char comm[16];
  char leader_comm[16];
  std::uint32_t uid, euid, mnt_inum, net_inum, pid_level;
  std::int32_t pid_nr;
  std::uint64_t arg_start, arg_end;
  std::int32_t legacy_pid;
  std::int64_t bad_read, user_read, str_len, root_pid, root_parent_pid;
};

// proc(5)'s numbered fields of /proc/PID/stat (1-based; 2, the name, left empty).
std::vector<std::string> stat_fields(const std::string& pid) {
  std::ifstream in("/proc/" + pid + "/stat");
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::vector<std::string> fields = {"", text.substr(0, text.find(' ')), ""};
  std::istringstream rest(text.substr(text.rfind(')') + 2));
  for (std::string f; rest >> f;) fields.push_back(f);
  return fields;
}

std::uint64_t ns_inode(const char* name) {
  struct stat st {};
  return ::stat((std::string("/proc/self/ns/") + name).c_str(), &st) == 0 ? st.st_ino : 0;
}

#ifdef BPFVM_PROGS_DIR
class KernelTasksTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!std::filesystem::exists("/sys/kernel/btf/vmlinux")) GTEST_SKIP() << "no /sys/kernel/btf/vmlinux: no kernel layouts";
    root_ = std::filesystem::temp_directory_path() / ("bpfvm-kernel-tasks-" + std::to_string(::getpid()));
    rt_ = std::make_unique<Runtime>(RuntimeOptions{root_.string()});
  }
  void TearDown() override {
    if (!root_.empty()) std::filesystem::remove_all(root_);
  }
  Out run(const helpers::RunEnv* env = nullptr) {
    auto obj = Object::open_file(*rt_, std::string(BPFVM_PROGS_DIR) + "/current_task.bpf.o");
    EXPECT_TRUE(obj) << obj.error().to_string();
    Out out{};
    if (!obj) return out;
    std::uint64_t args[1] = {0};
    if (env) {
      auto r = obj->find_program("current_task")->run_for(*env, args, sizeof args);
      EXPECT_TRUE(r) << r.error().to_string();
    } else {
      auto r = obj->find_program("current_task")->test_run({{}, std::vector<std::uint8_t>(8, 0), 1});
      EXPECT_TRUE(r) << r.error().to_string();
    }
    const std::uint32_t zero = 0;
    EXPECT_TRUE(obj->find_map("task_out")->impl().lookup(&zero, &out));
    return out;
  }
  std::filesystem::path root_;
  std::unique_ptr<Runtime> rt_;
};

TEST_F(KernelTasksTest, TheCurrentTaskIsThisThreadAsProcSaysIt) {
  const Out out = run();
  EXPECT_GE(out.task, KernelTasks::kBase);
  EXPECT_EQ(out.task, KernelTasks::instance().task_address(static_cast<std::uint32_t>(::gettid())));
  EXPECT_EQ(out.pid, ::gettid());
  EXPECT_EQ(out.tgid, ::getpid());
  EXPECT_EQ(out.legacy_pid, ::gettid());
  EXPECT_EQ(out.ppid, ::getppid());
  EXPECT_EQ(out.grandparent_pid, std::stoi(stat_fields(std::to_string(::getppid()))[4]));
  char comm[16] = {};
  ::prctl(PR_GET_NAME, comm, 0, 0, 0);
  EXPECT_STREQ(out.comm, comm);
  std::string leader;
  std::getline(std::ifstream("/proc/self/comm"), leader);
  EXPECT_EQ(std::string(out.leader_comm), leader);
  EXPECT_EQ(out.str_len, static_cast<std::int64_t>(leader.size() + 1));
  EXPECT_EQ(out.uid, ::getuid());
  EXPECT_EQ(out.euid, ::geteuid());
  EXPECT_EQ(out.mnt_inum, ns_inode("mnt"));
  EXPECT_EQ(out.net_inum, ns_inode("net"));
  EXPECT_NE(out.mnt_inum, 0u);
  EXPECT_EQ(out.pid_level, 0u);  // the test runs in the first pid namespace
  EXPECT_EQ(out.pid_nr, ::gettid());
  const auto stat = stat_fields("self");
  EXPECT_EQ(out.flags, std::stoul(stat[9]));
  EXPECT_EQ(out.arg_start, std::stoull(stat[48]));
  EXPECT_EQ(out.arg_end, std::stoull(stat[49]));
  // start_time: CLOCK_MONOTONIC ns at fork; /proc keeps it in USER_HZ ticks.
  const std::uint64_t ticks = std::stoull(stat[22]);
  EXPECT_NEAR(static_cast<double>(out.start_time / 10000000), static_cast<double>(ticks), 1.0) << out.start_time;
  EXPECT_EQ(out.exit_code, 0);
  EXPECT_EQ(out.bad_read, -ERANGE);  // non-canonical, as x86-64's copy_from_kernel_nofault says
  EXPECT_EQ(out.user_read, -EFAULT);  // a kernel address is no user memory
  EXPECT_EQ(out.root_pid, 0);         // init_task
  EXPECT_EQ(out.root_parent_pid, 0);  // its own parent
}

TEST_F(KernelTasksTest, TheEventsTaskWinsOverProc) {
  // An event source's task (an exit event: its exit code, its name as the event saw it).
  helpers::RunEnv env = helpers::current_thread_env();
  std::strcpy(env.task.comm, "event-name");
  env.task.exit_code = 3 << 8;
  const Out out = run(&env);
  EXPECT_STREQ(out.comm, "event-name");
  EXPECT_EQ(out.exit_code, 3 << 8);
  EXPECT_EQ(out.pid, ::gettid());
}

TEST_F(KernelTasksTest, ReadsStayInsideASlot) {
  KernelTasks& k = KernelTasks::instance();
  ASSERT_TRUE(k.prepare());
  const std::uint64_t self = k.task_address(static_cast<std::uint32_t>(::gettid()));
  const std::int64_t pid_at = k.task_member_offset("pid");
  ASSERT_GE(pid_at, 0);
  std::int32_t pid = 0;
  ASSERT_TRUE(k.read(self + static_cast<std::uint64_t>(pid_at), &pid, sizeof pid));
  EXPECT_EQ(pid, ::gettid());
  // Across the end of a slot, below the base, past the last pid: refused.
  const std::uint64_t next = k.task_address(static_cast<std::uint32_t>(::gettid()) + 1);
  char bytes[16];
  EXPECT_FALSE(k.read(next - 8, bytes, sizeof bytes));
  EXPECT_FALSE(k.contains(KernelTasks::kBase - 1));
  EXPECT_FALSE(k.contains(k.task_address(KernelTasks::kMaxPid + 1)));
  EXPECT_EQ(k.task_member_offset("no_such_member"), -1);
}

// Code a frozen .rodata constant or a CO-RE existence check rules out is never explored (the kernel's
// bpf_map_direct_read and dead-code removal): its unsafe load and its poisoned call refuse nothing.
TEST_F(KernelTasksTest, ConstantsRuleOutCode) {
  auto obj = Object::open_file(*rt_, std::string(BPFVM_PROGS_DIR) + "/dead_code.bpf.o");
  ASSERT_TRUE(obj) << obj.error().to_string();
  std::vector<std::uint8_t> frame(64, 0);
  auto a = obj->find_program("rodata_rules_out")->test_run({frame, {}, 1});
  ASSERT_TRUE(a) << a.error().to_string();
  EXPECT_EQ(a->retval, 7u);
  auto b = obj->find_program("core_rules_out")->test_run({{}, std::vector<std::uint8_t>(8, 0), 1});
  ASSERT_TRUE(b) << b.error().to_string();
  EXPECT_EQ(b->retval, 9u);
}

TEST(TaskFacts, ProcOfThisThread) {
  os::TaskFacts f;
  ASSERT_TRUE(os::read_task_facts(static_cast<std::uint32_t>(::gettid()), f));
  EXPECT_EQ(f.pid, static_cast<std::uint32_t>(::gettid()));
  EXPECT_EQ(f.tgid, static_cast<std::uint32_t>(::getpid()));
  EXPECT_EQ(f.ppid, static_cast<std::uint32_t>(::getppid()));
  EXPECT_EQ(f.uid[0], ::getuid());
  EXPECT_EQ(f.gid[1], ::getegid());
  EXPECT_EQ(f.ns_inode[os::TaskFacts::kMnt], ns_inode("mnt"));
  EXPECT_EQ(f.state, 'R');
  EXPECT_FALSE(os::read_task_facts(KernelTasks::kMaxPid + 7, f));
}
#endif

}  // namespace
}  // namespace bpfvm::runtime
