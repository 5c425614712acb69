// The kernel as an oracle for objects and test_run: each test object is loaded into the running kernel
// with libbpf and into bpfvm, the same programs run in the same order with the same input through
// BPF_PROG_TEST_RUN, and retval, data_out and ctx_out must match. Skips where the kernel does not
// allow it (no root, no bpf(), no bpffs).
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <gtest/gtest.h>
#include <linux/bpf.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>

#include "bpfvm/runtime/object.hpp"

namespace bpfvm::runtime {
namespace {

#ifdef BPFVM_PROGS_DIR

struct Input {
  std::string program;
  std::vector<std::uint8_t> data;
  std::vector<std::uint8_t> ctx;
  std::uint32_t repeat = 1;
  bool raw = false;
};

std::vector<std::uint8_t> ipv4_frame(std::uint8_t ttl = 64) {
  std::vector<std::uint8_t> f(14 + 20 + 8, 0);
  f[12] = 0x08;
  f[14] = 0x45;
  f[14 + 8] = ttl;
  f[14 + 9] = 17;
  return f;
}

template <typename T>
std::vector<std::uint8_t> bytes_of(const T& v) {
  const auto* p = reinterpret_cast<const std::uint8_t*>(&v);
  return {p, p + sizeof v};
}

class KernelOracle : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root for bpf()";
    pin_dir_ = "/sys/fs/bpf/bpfvm-oracle-" + std::to_string(::getpid());
    std::error_code ec;
    if (!std::filesystem::create_directory(pin_dir_, ec)) GTEST_SKIP() << "no bpffs at /sys/fs/bpf";
    root_ = std::filesystem::temp_directory_path() / ("bpfvm-oracle-" + std::to_string(::getpid()));
    std::filesystem::remove_all(root_);
    rt_ = std::make_unique<Runtime>(RuntimeOptions{root_.string()});
  }
  void TearDown() override {
    std::error_code ec;
    if (!pin_dir_.empty()) std::filesystem::remove_all(pin_dir_, ec);
    std::filesystem::remove_all(root_, ec);
  }

  // Runs `inputs` in order on both sides and compares.
  void compare(const std::string& file, const std::vector<Input>& inputs) {
    const std::string path = std::string(BPFVM_PROGS_DIR) + "/" + file;
    LIBBPF_OPTS(bpf_object_open_opts, opts, .pin_root_path = pin_dir_.c_str());
    struct bpf_object* kobj = bpf_object__open_file(path.c_str(), &opts);
    ASSERT_TRUE(kobj) << "libbpf cannot open " << file;
    const int err = bpf_object__load(kobj);
    if (err == -EPERM) {
      bpf_object__close(kobj);
      GTEST_SKIP() << "the kernel refuses bpf() here";
    }
    ASSERT_EQ(err, 0) << "the kernel rejects " << file << ": " << std::strerror(-err);
    auto ours = Object::open_file(*rt_, path);
    ASSERT_TRUE(ours) << ours.error().to_string();
    for (std::size_t n = 0; n < inputs.size(); ++n) {
      const Input& in = inputs[n];
      SCOPED_TRACE(file + ": " + in.program + " (input " + std::to_string(n) + ")");
      struct bpf_program* kprog = bpf_object__find_program_by_name(kobj, in.program.c_str());
      ASSERT_TRUE(kprog);
      std::vector<std::uint8_t> kdata(in.data.size() + 256), kctx(in.ctx.size());
      LIBBPF_OPTS(bpf_test_run_opts, run);
      run.data_in = in.data.empty() ? nullptr : in.data.data();
      run.data_out = in.data.empty() ? nullptr : kdata.data();
      run.data_size_in = static_cast<std::uint32_t>(in.data.size());
      run.data_size_out = in.data.empty() ? 0u : static_cast<std::uint32_t>(kdata.size());
      run.ctx_in = in.ctx.empty() ? nullptr : in.ctx.data();
      run.ctx_size_in = static_cast<std::uint32_t>(in.ctx.size());
      if (!in.raw) {  // raw_tracepoint test runs take neither ctx_out nor repeat
        run.ctx_out = in.ctx.empty() ? nullptr : kctx.data();
        run.ctx_size_out = static_cast<std::uint32_t>(kctx.size());
        run.repeat = static_cast<int>(in.repeat);
      }
      ASSERT_EQ(bpf_prog_test_run_opts(bpf_program__fd(kprog), &run), 0) << std::strerror(errno);
      kdata.resize(run.data_size_out);
      auto mine = ours->find_program(in.program);
      ASSERT_TRUE(mine);
      auto r = mine->test_run({in.data, in.ctx, in.repeat});
      ASSERT_TRUE(r) << r.error().to_string();
      EXPECT_EQ(r->retval, run.retval);
      EXPECT_EQ(r->data_out, kdata);
      if (!in.ctx.empty() && !in.raw) {
        r->ctx_out.resize(kctx.size());
        EXPECT_EQ(r->ctx_out, kctx);
      }
      // Same tag: the SHA-1 of the same instructions.
      struct bpf_prog_info info {};
      std::uint32_t len = sizeof info;
      ASSERT_EQ(bpf_obj_get_info_by_fd(bpf_program__fd(kprog), &info, &len), 0);
      EXPECT_EQ(std::memcmp(info.tag, mine->tag().data(), 8), 0);
    }
    bpf_object__close(kobj);
  }

  std::string pin_dir_;
  std::filesystem::path root_;
  std::unique_ptr<Runtime> rt_;
};

TEST_F(KernelOracle, GlobalData) {
  compare("globals.bpf.o", {{"use_data", ipv4_frame(), {}}, {"use_data", ipv4_frame(), {}}, {"use_rodata", ipv4_frame(), {}},
                            {"use_bss", ipv4_frame(), {}}, {"use_bss", ipv4_frame(), {}, 3}, {"use_string", ipv4_frame(), {}},
                            {"use_str_table", ipv4_frame(), {}}});
}

TEST_F(KernelOracle, MapsAndMapInMap) {
  compare("maps.bpf.o", {{"count_runs", ipv4_frame(), {}}, {"count_runs", ipv4_frame(), {}, 5}, {"through_outer", ipv4_frame(), {}},
                         {"delete_pair", ipv4_frame(), {}}, {"delete_pair", ipv4_frame(), {}}, {"add_total", ipv4_frame(), {}}});
}

TEST_F(KernelOracle, Subprograms) {
  compare("subprogs.bpf.o", {{"first", ipv4_frame(), {}}, {"second", ipv4_frame(), {}}});
}

TEST_F(KernelOracle, Callbacks) {
  compare("callbacks.bpf.o", {{"with_loop", ipv4_frame(), {}}, {"loop_stops", ipv4_frame(), {}},
                              {"sum_numbers", ipv4_frame(), {}}, {"sum_numbers", ipv4_frame(), {}}});
}

TEST_F(KernelOracle, QueuesStacksAndBloomFilters) {
  compare("queues.bpf.o", {{"queue_and_stack", ipv4_frame(), {}}, {"bloom", ipv4_frame(), {}}});
}

// A ring buffer filled by the same runs on both sides holds the same records, and fills at the same run.
TEST_F(KernelOracle, RingBuffer) {
  std::vector<Input> runs;
  for (int i = 0; i < 60; ++i) runs.push_back({"emit", ipv4_frame(), {}});
  compare("ringbuf.bpf.o", runs);
}

// bpf_trace_printk returns the length of what it formatted: the same on both sides.
TEST_F(KernelOracle, TracePrintk) {
  compare("printk.bpf.o", {{"hello", ipv4_frame(), {}}, {"conversions", ipv4_frame(), {}}, {"bad_formats", ipv4_frame(), {}}});
}

TEST_F(KernelOracle, Snprintf) { compare("snprintf.bpf.o", {{"format", ipv4_frame(), {}}}); }

TEST_F(KernelOracle, PerCpuWalk) {
  std::uint64_t args[1] = {0};
  // One run: the kernel may run a second one on another CPU, whose values are still zero.
  compare("helpers.bpf.o", {{"walk_per_cpu", {}, bytes_of(args), 1, true}});
}

TEST_F(KernelOracle, SpinLock) {
  compare("spinlock.bpf.o", {{"deposit", ipv4_frame(), {}}, {"deposit", ipv4_frame(), {}, 10}});
}

TEST_F(KernelOracle, NetworkProgramTypes) {
  struct __sk_buff skb {};
  skb.mark = 5;
  skb.cb[2] = 9;
  skb.priority = 3;
  std::vector<std::uint8_t> ipv6(14 + 40 + 8, 0);
  ipv6[12] = 0x86;
  ipv6[13] = 0xdd;
  ipv6[14] = 0x60;
  auto broadcast = ipv4_frame();
  std::memset(broadcast.data(), 0xff, 6);
  std::vector<std::uint8_t> with_meta = {41, 0, 0, 0};
  auto frame = ipv4_frame();
  with_meta.insert(with_meta.end(), frame.begin(), frame.end());
  struct xdp_md md {};
  md.data = 4;
  md.data_end = static_cast<std::uint32_t>(with_meta.size());
  compare("prog_types.bpf.o",
          {{"sock_len", ipv4_frame(), {}}, {"sock_len", ipv6, {}}, {"sock_len", broadcast, bytes_of(skb)},
           {"sock_ldabs", ipv4_frame(), {}}, {"xdp_ttl", ipv4_frame(), {}}, {"xdp_ttl", ipv4_frame(1), {}},
           {"xdp_ttl", ipv6, {}}, {"xdp_meta", ipv4_frame(), {}}, {"xdp_meta", with_meta, bytes_of(md)},
           {"tc_mark", ipv4_frame(), {}}, {"tc_mark", ipv4_frame(), bytes_of(skb)}});
}

TEST_F(KernelOracle, RawTracepointArgs) {
  std::uint64_t args[2] = {0, 21};
  compare("prog_types.bpf.o", {{"raw_sys_enter", {}, bytes_of(args), 1, true}});
}

// Helpers on the calling task: the kernel runs a raw tracepoint's test_run in the caller's context, so
// pid/tgid, uid/gid, comm and the caller's memory are the same on both sides.
TEST_F(KernelOracle, TaskHelpers) {
  const std::string path = std::string(BPFVM_PROGS_DIR) + "/helpers.bpf.o";
  struct bpf_object* kobj = bpf_object__open_file(path.c_str(), nullptr);
  ASSERT_TRUE(kobj);
  const int err = bpf_object__load(kobj);
  if (err == -EPERM) {
    bpf_object__close(kobj);
    GTEST_SKIP() << "the kernel refuses bpf() here";
  }
  ASSERT_EQ(err, 0) << std::strerror(-err);
  static const char text[] = "hello, helpers";
  std::uint64_t args[2] = {reinterpret_cast<std::uint64_t>(text), 8};
  LIBBPF_OPTS(bpf_test_run_opts, run);
  run.ctx_in = args;
  run.ctx_size_in = sizeof args;
  ASSERT_EQ(bpf_prog_test_run_opts(bpf_program__fd(bpf_object__find_program_by_name(kobj, "task_helpers")), &run), 0);
  std::vector<std::uint8_t> kernel_out(bpf_map__value_size(bpf_object__find_map_by_name(kobj, "results")));
  const std::uint32_t zero = 0;
  ASSERT_EQ(bpf_map_lookup_elem(bpf_map__fd(bpf_object__find_map_by_name(kobj, "results")), &zero, kernel_out.data()), 0);
  bpf_object__close(kobj);

  auto ours = Object::open_file(*rt_, path);
  ASSERT_TRUE(ours) << ours.error().to_string();
  std::vector<std::uint8_t> ctx(reinterpret_cast<std::uint8_t*>(args), reinterpret_cast<std::uint8_t*>(args + 2));
  auto r = ours->find_program("task_helpers")->test_run({{}, ctx, 1});
  ASSERT_TRUE(r) << r.error().to_string();
  EXPECT_EQ(r->retval, run.retval);
  std::vector<std::uint8_t> our_out(kernel_out.size());
  ASSERT_TRUE(ours->find_map("results")->impl().lookup(&zero, our_out.data()));
  // Everything but the CPU number (where the kernel ran it) must be the same bytes.
  EXPECT_EQ(std::vector<std::uint8_t>(our_out.begin(), our_out.end() - 8),
            std::vector<std::uint8_t>(kernel_out.begin(), kernel_out.end() - 8));
}

#endif

}  // namespace
}  // namespace bpfvm::runtime
