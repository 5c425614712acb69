// Helpers on the task a program runs for, through objects compiled from tests/progs/helpers*.bpf.c.
#include <gtest/gtest.h>
#include <linux/bpf.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <cstring>
#include <filesystem>

#include "bpfvm/helpers/prototype.hpp"
#include "bpfvm/maps/ringbuf.hpp"
#include "bpfvm/runtime/object.hpp"
#include "timer_scenario.hpp"

namespace bpfvm::runtime {
namespace {

// The layout of struct out in helpers.bpf.c.
struct Out {
  std::uint64_t pid_tgid;
  std::uint64_t uid_gid;
  char comm[16];
  char str[32];
  std::int64_t str_len, bad_read, bad_read_str, cmp_equal, cmp_less;
  std::uint64_t clocks_ok;
  std::uint32_t numa, cpu;
};

#ifdef BPFVM_PROGS_DIR
class HelpersTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = std::filesystem::temp_directory_path() / ("bpfvm-helpers-" + std::to_string(::getpid()));
    rt_ = std::make_unique<Runtime>(RuntimeOptions{root_.string()});
  }
  void TearDown() override { std::filesystem::remove_all(root_); }
  std::filesystem::path root_;
  std::unique_ptr<Runtime> rt_;
};

// Timers fire after the run that started them, in this process (KernelOracle.TimersFire compares the
// same scenario with the kernel's; this one needs no kernel).
TEST_F(HelpersTest, TimersFireAfterTheRun) {
  auto obj = Object::open_file(*rt_, std::string(BPFVM_PROGS_DIR) + "/timer_runs.bpf.o");
  ASSERT_TRUE(obj) << obj.error().to_string();
  std::vector<std::uint8_t> frame(14 + 20, 0);
  frame[12] = 0x08, frame[14] = 0x45;
  const testing::TimerSide side = testing::bpfvm_timer_side(*obj, frame);
  const testing::TimerOutcome out = testing::run_timer_scenario(side);
  const std::int64_t codes[16] = {-EINVAL, -EINVAL, -EINVAL, -EINVAL, -EINVAL, 0, -EBUSY, -EINVAL,
                                  0,       -EINVAL, 0,       1,       0,       -EINVAL, 0, 0};
  for (int i = 0; i < 16; ++i) EXPECT_EQ(out.results[i], codes[i]) << "results[" << i << "]";
  EXPECT_EQ(out.array[0].fired, 100);  // as user space wrote it: the pending timer was freed
  for (std::uint32_t k = 1; k <= 3; ++k) {
    EXPECT_EQ(out.array[k].fired, 1) << k;
    EXPECT_EQ(out.array[k].key_seen, k == 2 ? 0 : k) << k;  // (element 2's callback records no key)
  }
  EXPECT_EQ(out.array[2].cancelled, -EDEADLK);
  EXPECT_EQ(out.hash77.fired, 4);
  EXPECT_EQ(out.hash77.key_seen, 77);
  EXPECT_FALSE(out.hash88);
  for (const auto& e : out.array) EXPECT_EQ(e.timer[0] | e.timer[1], 0u) << "user space reads a timer as zeros";
}

TEST_F(HelpersTest, TaskMemoryClocksAndStrings) {
  auto obj = Object::open_file(*rt_, std::string(BPFVM_PROGS_DIR) + "/helpers.bpf.o");
  ASSERT_TRUE(obj) << obj.error().to_string();
  static const char text[] = "hello, helpers";
  std::uint64_t args[2] = {reinterpret_cast<std::uint64_t>(text), 8};  // 8: nothing is mapped there
  std::vector<std::uint8_t> ctx(reinterpret_cast<std::uint8_t*>(args), reinterpret_cast<std::uint8_t*>(args + 2));
  auto r = obj->find_program("task_helpers")->test_run({{}, ctx, 1});
  ASSERT_TRUE(r) << r.error().to_string();
  EXPECT_EQ(r->retval, 0u);
  Out out{};
  const std::uint32_t zero = 0;
  ASSERT_TRUE(obj->find_map("results")->impl().lookup(&zero, &out));
  EXPECT_EQ(out.pid_tgid, (std::uint64_t{static_cast<std::uint32_t>(::getpid())} << 32) | static_cast<std::uint32_t>(::gettid()));
  EXPECT_EQ(out.uid_gid, (std::uint64_t{::getgid()} << 32) | ::getuid());
  char comm[16] = {};
  ::prctl(PR_GET_NAME, comm, 0, 0, 0);
  EXPECT_STREQ(out.comm, comm);
  EXPECT_STREQ(out.str, text);
  EXPECT_EQ(out.str_len, static_cast<std::int64_t>(sizeof text));
  EXPECT_EQ(out.bad_read, -EFAULT);
  EXPECT_EQ(out.bad_read_str, -EFAULT);
  EXPECT_EQ(out.cmp_equal, 0);
  EXPECT_EQ(out.cmp_less, -1);
  EXPECT_EQ(out.clocks_ok, 1u);
  EXPECT_EQ(out.numa, 0u);
  EXPECT_EQ(out.cpu, 1u);
}

TEST_F(HelpersTest, DynptrsOverMapValuesAndRingBufferRecords) {
  auto obj = Object::open_file(*rt_, std::string(BPFVM_PROGS_DIR) + "/dynptr_run.bpf.o");
  ASSERT_TRUE(obj) << obj.error().to_string();
  auto r = obj->find_program("dynptrs")->test_run({{}, {}, 1});
  ASSERT_TRUE(r) << r.error().to_string();
  EXPECT_EQ(r->retval, 0u);
  struct DynptrOut {
    std::int64_t from_mem, write, read, read_oob, write_oob, bad_flags, data_oob_null, reserve, too_big, big_discarded;
    char copied[8];
    char sliced;
  } out{};  // struct out in dynptr_run.bpf.c
  const std::uint32_t zero = 0;
  ASSERT_TRUE(obj->find_map("results")->impl().lookup(&zero, &out));
  EXPECT_EQ(out.from_mem, 0);
  EXPECT_EQ(out.write, 0);
  EXPECT_EQ(out.read, 0);
  EXPECT_STREQ(out.copied, "dynptr!");
  EXPECT_EQ(out.read_oob, -E2BIG);
  EXPECT_EQ(out.write_oob, -E2BIG);
  EXPECT_EQ(out.bad_flags, -EINVAL);
  EXPECT_EQ(out.sliced, 'p');  // "dynp"[3]
  EXPECT_EQ(out.data_oob_null, 1);
  EXPECT_EQ(out.reserve, 0);
  EXPECT_EQ(out.too_big, -EINVAL);  // larger than the ring buffer: no room (the kernel's -EINVAL)
  EXPECT_EQ(out.big_discarded, -EINVAL);
  char buffer[32] = {};
  ASSERT_TRUE(obj->find_map("buffers")->impl().lookup(&zero, buffer));
  EXPECT_STREQ(buffer + 4, "dynptr!");
  // The submitted record, filled through the slice; the failed reservation left nothing.
  auto* rb = dynamic_cast<maps::RingBuffer*>(&obj->find_map("events")->impl());
  ASSERT_TRUE(rb);
  std::vector<std::uint64_t> seen;
  rb->consume([&](std::span<const std::uint8_t> rec) {
    std::uint64_t v[2];
    std::memcpy(v, rec.data(), sizeof v);
    seen.insert(seen.end(), v, v + 2);
    return 0;
  });
  EXPECT_EQ(seen, (std::vector<std::uint64_t>{0x1122334455667788, 42}));
}

TEST_F(HelpersTest, TracePrintkWritesTheTracePipe) {
  auto obj = Object::open_file(*rt_, std::string(BPFVM_PROGS_DIR) + "/printk.bpf.o");
  ASSERT_TRUE(obj) << obj.error().to_string();
  std::vector<std::uint8_t> frame(14 + 20, 0);
  frame[12] = 0x08;
  auto r = obj->find_program("hello")->test_run({frame, {}, 1});
  ASSERT_TRUE(r) << r.error().to_string();
  EXPECT_EQ(r->retval, std::string("Hello, World! len=20 from bpf").size());
  auto pipe = rt_->trace_pipe();
  ASSERT_TRUE(pipe);
  std::vector<std::string> lines;
  (*pipe)->consume([&](std::span<const std::uint8_t> rec) {
    lines.emplace_back(rec.begin(), rec.end());
    return 0;
  });
  ASSERT_EQ(lines.size(), 1u);
  char comm[16] = {};
  ::prctl(PR_GET_NAME, comm, 0, 0, 0);
  const std::string prefix = fmt::format("{:>16}-{:<7} [", comm, ::gettid());
  EXPECT_EQ(lines[0].substr(0, prefix.size()), prefix) << lines[0];
  EXPECT_NE(lines[0].find("] d..31 "), std::string::npos) << lines[0];
  EXPECT_TRUE(lines[0].ends_with(": bpf_trace_printk: Hello, World! len=20 from bpf\n")) << lines[0];
  r = obj->find_program("conversions")->test_run({frame, {}, 1});
  ASSERT_TRUE(r);
  lines.clear();
  (*pipe)->consume([&](std::span<const std::uint8_t> rec) {
    const std::string line(rec.begin(), rec.end());
    lines.push_back(line.substr(line.find("bpf_trace_printk: ") + 18));
    return 0;
  });
  EXPECT_EQ(lines, (std::vector<std::string>{"4000000000 ff BEE\n", "-5 1234abcd z\n", "   42|7   |000ab|%\n"}));
  EXPECT_EQ(r->retval, 17u + 13u + 18u - 22u);
  r = obj->find_program("bad_formats")->test_run({frame, {}, 1});
  ASSERT_TRUE(r);
  EXPECT_EQ(r->retval, 11u);
}

TEST_F(HelpersTest, Snprintf) {
  auto obj = Object::open_file(*rt_, std::string(BPFVM_PROGS_DIR) + "/snprintf.bpf.o");
  ASSERT_TRUE(obj) << obj.error().to_string();
  std::vector<std::uint8_t> frame(14 + 20, 0);
  frame[12] = 0x08;
  auto r = obj->find_program("format")->test_run({frame, {}, 1});
  ASSERT_TRUE(r) << r.error().to_string();
  const std::string expected = "len=34 proto=8 ok";
  EXPECT_EQ(r->retval, expected.size() + 1);
  const std::uint32_t zero = 0;
  std::vector<char> bss(obj->find_map("snprintf.bss")->def().value_size);
  ASSERT_TRUE(obj->find_map("snprintf.bss")->impl().lookup(&zero, bss.data()));
  EXPECT_STREQ(bss.data(), expected.c_str());  // out[32] is first in .bss
  EXPECT_STREQ(bss.data() + 32, "12345");      // tiny[6]: truncated, NUL-terminated
  std::int64_t tiny_len;
  std::memcpy(&tiny_len, bss.data() + 40, 8);
  EXPECT_EQ(tiny_len, 10);  // "12345-678" and its NUL
}

std::atomic<int> g_usr2{0};

TEST_F(HelpersTest, SendSignalAndPerCpuWalks) {
  auto obj = Object::open_file(*rt_, std::string(BPFVM_PROGS_DIR) + "/helpers.bpf.o");
  ASSERT_TRUE(obj) << obj.error().to_string();
  struct sigaction sa {}, old {};
  sa.sa_handler = [](int) { g_usr2.fetch_add(1); };
  ::sigaction(SIGUSR2, &sa, &old);
  std::uint64_t args[1] = {0};
  std::vector<std::uint8_t> ctx(reinterpret_cast<std::uint8_t*>(args), reinterpret_cast<std::uint8_t*>(args + 1));
  auto r = obj->find_program("signal_me")->test_run({{}, ctx, 1});
  ASSERT_TRUE(r) << r.error().to_string();
  EXPECT_EQ(r->retval, 0u);
  for (int i = 0; i < 100 && g_usr2.load() == 0; ++i) ::usleep(1000);
  EXPECT_EQ(g_usr2.load(), 1);
  ::sigaction(SIGUSR2, &old, nullptr);
  r = obj->find_program("walk_per_cpu")->test_run({{}, ctx, 1});
  ASSERT_TRUE(r);
  EXPECT_EQ(r->retval, 3u * 100 + 3);
  r = obj->find_program("walk_per_cpu")->test_run({{}, ctx, 1});
  EXPECT_EQ(r->retval, 3u * 100 + 6);
}

TEST_F(HelpersTest, TypesAndLicensesLimitHelpers) {
  auto denied = Object::open_file(*rt_, std::string(BPFVM_PROGS_DIR) + "/helpers_denied.bpf.o");
  ASSERT_FALSE(denied);
  EXPECT_EQ(denied.error().errno_value(), EINVAL);
  EXPECT_NE(denied.error().to_string().find("unknown func bpf_probe_read#4: socket_filter programs may not call it"),
            std::string::npos) << denied.error().to_string();
  auto nongpl = Object::open_file(*rt_, std::string(BPFVM_PROGS_DIR) + "/helpers_nongpl.bpf.o");
  ASSERT_FALSE(nongpl);
  EXPECT_NE(nongpl.error().to_string().find("GPL-restricted function bpf_probe_read_user#112"), std::string::npos)
      << nongpl.error().to_string();
}
#endif

TEST(HelperPrototypes, DescribeEveryImplementedHelper) {
  const auto* lookup = helpers::find_prototype(BPF_FUNC_map_lookup_elem);
  ASSERT_TRUE(lookup);
  EXPECT_EQ(lookup->ret, helpers::Ret::kMapValueOrNull);
  EXPECT_EQ(lookup->args[0], helpers::Arg::kConstMapPtr);
  EXPECT_EQ(lookup->args[1], helpers::Arg::kMapKey);
  EXPECT_EQ(lookup->args[2], helpers::Arg::kNone);
  EXPECT_TRUE(helpers::find_prototype(BPF_FUNC_probe_read_user)->gpl_only);
  EXPECT_EQ(helpers::find_prototype(BPF_FUNC_ringbuf_reserve)->ret, helpers::Ret::kRingbufRecordOrNull);
  EXPECT_FALSE(helpers::find_prototype(9999));
  EXPECT_TRUE(helpers::allowed(BPF_PROG_TYPE_KPROBE, BPF_FUNC_probe_read));
  EXPECT_FALSE(helpers::allowed(BPF_PROG_TYPE_XDP, BPF_FUNC_probe_read));
  EXPECT_TRUE(helpers::allowed(BPF_PROG_TYPE_XDP, BPF_FUNC_map_lookup_elem));
  EXPECT_FALSE(helpers::allowed(BPF_PROG_TYPE_RAW_TRACEPOINT, BPF_FUNC_ktime_get_coarse_ns));
  EXPECT_TRUE(helpers::allowed(BPF_PROG_TYPE_XDP, BPF_FUNC_ktime_get_coarse_ns));
  // Sizes follow the pointers they size.
  for (const auto& p : helpers::prototypes()) {
    for (std::size_t i = 0; i < 5; ++i) {
      const auto a = p.args[i];
      if (a == helpers::Arg::kConstSize || a == helpers::Arg::kConstSizeOrZero) {
        ASSERT_GT(i, 0u) << p.name;
        const auto before = p.args[i - 1];
        EXPECT_TRUE(before == helpers::Arg::kMem || before == helpers::Arg::kMemOrNull ||
                    before == helpers::Arg::kUninitMem)
            << p.name;
      }
    }
  }
}

}  // namespace
}  // namespace bpfvm::runtime
