// The kernel as an oracle for objects and test_run: each test object is loaded into the running kernel
// with libbpf and into bpfvm, the same programs run in the same order with the same input through
// BPF_PROG_TEST_RUN, and retval, data_out and ctx_out must match. Skips where the kernel does not
// allow it (no root, no bpf(), no bpffs).
#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include <gtest/gtest.h>
#include <linux/bpf.h>
#include <linux/perf_event.h>
#include <linux/ptrace.h>
#include <sched.h>
#include <sys/stat.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <deque>
#include <functional>
#include <map>
#include <filesystem>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "bpfvm/helpers/prototype.hpp"
#include "bpfvm/maps/perf_buffer.hpp"
#include "bpfvm/maps/stack_trace.hpp"
#include "bpfvm/runtime/context.hpp"
#include "bpfvm/runtime/object.hpp"
#include "bpfvm/obj/btf.hpp"
#include "bpfvm/verifier/verifier.hpp"
#include "bpfvm/runtime/verifier_platform.hpp"
#include "timer_scenario.hpp"

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

// An IPv4 frame after 4 bytes of XDP metadata (41), and the xdp_md that says so.
std::pair<std::vector<std::uint8_t>, struct xdp_md> frame_with_metadata() {
  std::vector<std::uint8_t> data = {41, 0, 0, 0};
  const auto frame = ipv4_frame();
  data.insert(data.end(), frame.begin(), frame.end());
  struct xdp_md md {};
  md.data = 4;
  md.data_end = static_cast<std::uint32_t>(data.size());
  return {data, md};
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

  // libbpf's open and load of a test object into the kernel (maps pinned by name go under this test's
  // bpffs directory). Null, with the reason, when the kernel refuses bpf() here; a failed test when
  // it rejects the object.
  struct bpf_object* kernel_load(const std::string& path, std::string& refused) {
    LIBBPF_OPTS(bpf_object_open_opts, opts, .pin_root_path = pin_dir_.c_str());
    struct bpf_object* kobj = bpf_object__open_file(path.c_str(), &opts);
    EXPECT_TRUE(kobj) << "libbpf cannot open " << path;
    if (!kobj) {
      refused = "libbpf cannot open " + path;
      return nullptr;
    }
    const int err = bpf_object__load(kobj);
    if (err != 0) {
      bpf_object__close(kobj);
      EXPECT_EQ(err, -EPERM) << "the kernel rejects " << path << ": " << std::strerror(-err);
      refused = "the kernel refuses bpf() here";
      return nullptr;
    }
    return kobj;
  }

  // Runs `inputs` in order on both sides and compares.
  void compare(const std::string& file, const std::vector<Input>& inputs) {
    const std::string path = std::string(BPFVM_PROGS_DIR) + "/" + file;
    std::string refused;
    struct bpf_object* kobj = kernel_load(path, refused);
    if (!kobj) GTEST_SKIP() << refused;
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

// Program array slots set in the map's definition; a program that tail-calls itself stops after 33 calls.
TEST_F(KernelOracle, ProgramArraySlotsFromTheObject) {
  compare("prog_array_slots.bpf.o", {{"jump_to_answer", ipv4_frame(), {}}, {"jump_to_empty", ipv4_frame(), {}},
                                     {"chain", ipv4_frame(), {}}, {"chain", ipv4_frame(), {}}});
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
// bpf_strtol and bpf_strtoul: white space, signs, bases by flag and by prefix, lengths that cut the
// digits short, overflow, and strings with no digits, parsed as the kernel parses them.
TEST_F(KernelOracle, StringsToNumbers) {
  const std::pair<const char*, std::uint8_t> cases[] = {
      {"123", 0},       {"  -42", 0},      {"0x1F", 0},      {"0X1f", 16},     {"0777", 0},      {"0777", 10},
      {"089", 0},       {"0x", 0},         {"0xg", 0},       {"-0x10", 0},     {"ff", 16},       {"ff", 10},
      {"-", 0},         {"   ", 0},        {"", 0},          {"12abc", 10},    {"+5", 0},        {"\t\n 7", 8},
      {"9223372036854775807", 0},          {"9223372036854775808", 0},         {"-9223372036854775808", 0},
      {"18446744073709551615", 0},         {"18446744073709551616", 0},        {"-1", 0},        {"10", 7},
      {"10", 32},       {"10", 2},         {"0000000000000009", 0},            {"1234567890123456", 16}};
  std::vector<Input> inputs;
  for (const auto& [text, flags] : cases) {
    std::vector<std::uint8_t> frame(72, 0);
    std::memcpy(frame.data(), text, std::min<std::size_t>(std::strlen(text), 16));
    frame[16] = flags;
    inputs.push_back({"parse", frame, {}});
  }
  compare("strtox.bpf.o", inputs);
}

// A test run's packet has a dummy socket with a cookie of its own, the same for the repetitions of one
// run and new for the next run; the class id is the caller's net_cls class (0 outside any).
TEST_F(KernelOracle, SocketCookieAndClassId) {
  compare("socket_cookie.bpf.o", {{"cookie", ipv4_frame(), {}}, {"cookie", ipv4_frame(), {}},
                                  {"cookie", ipv4_frame(), {}, 3}});
}

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
  const auto [with_meta, md] = frame_with_metadata();
  compare("prog_types.bpf.o",
          {{"sock_len", ipv4_frame(), {}}, {"sock_len", ipv6, {}}, {"sock_len", broadcast, bytes_of(skb)},
           {"sock_ldabs", ipv4_frame(), {}}, {"xdp_ttl", ipv4_frame(), {}}, {"xdp_ttl", ipv4_frame(1), {}},
           {"xdp_ttl", ipv6, {}}, {"xdp_meta", ipv4_frame(), {}}, {"xdp_meta", with_meta, bytes_of(md)},
           {"tc_mark", ipv4_frame(), {}}, {"tc_mark", ipv4_frame(), bytes_of(skb)}});
}

// repeat N runs the program N times on the same packet, prepared once: changes accumulate (TTL - 5).
TEST_F(KernelOracle, RepeatedRunsShareThePacket) {
  struct __sk_buff skb {};
  skb.mark = 5;
  const auto [with_meta, md] = frame_with_metadata();
  compare("prog_types.bpf.o", {{"xdp_ttl", ipv4_frame(), {}, 5}, {"xdp_ttl", ipv4_frame(3), {}, 7},
                               {"xdp_meta", with_meta, bytes_of(md), 3}, {"tc_mark", ipv4_frame(), bytes_of(skb), 4}});
}

TEST_F(KernelOracle, PacketHelpers) {
  auto frame = ipv4_frame();
  frame[15] = 0x2c;  // some bytes that make the sums differ from zeros
  frame[20] = 0x40;
  frame[26] = 10;
  frame[33] = 7;
  std::vector<std::uint8_t> long_frame(200, 0x5a);
  std::memcpy(long_frame.data(), frame.data(), frame.size());
  compare("packet_helpers.bpf.o",
          {{"sock_load", frame, {}}, {"sock_load", long_frame, {}}, {"tc_load", frame, {}}, {"tc_load", long_frame, {}},
           {"tc_csum", frame, {}}, {"tc_csum", long_frame, {}}, {"xdp_csum", frame, {}}, {"xdp_csum", long_frame, {}}});
  // bpf_xdp_adjust_head: pushes and pulls within limits, and past them (the headroom, an Ethernet
  // header at least), with and without metadata.
  auto moved = [&](std::uint8_t push, std::uint8_t pull) {
    auto f = long_frame;
    f[0] = push;
    f[1] = pull;
    return f;
  };
  std::vector<std::uint8_t> with_meta = {1, 2, 3, 4, 5, 6, 7, 8};
  const auto m = moved(16, 0);
  with_meta.insert(with_meta.end(), m.begin(), m.end());
  struct xdp_md md {};
  md.data = 8;
  md.data_end = static_cast<std::uint32_t>(with_meta.size());
  compare("packet_helpers.bpf.o",
          {{"xdp_move", moved(14, 0), {}}, {"xdp_move", moved(0, 14), {}}, {"xdp_move", moved(216, 0), {}},
           {"xdp_move", moved(217, 0), {}}, {"xdp_move", moved(255, 0), {}}, {"xdp_move", moved(0, 186), {}},
           {"xdp_move", moved(0, 187), {}}, {"xdp_move", with_meta, bytes_of(md)}});
  // Writes and checksum updates: the frame with a UDP checksum, and one without (0: kept).
  auto udp = ipv4_frame();
  udp[24] = 0x12;  // an IPv4 checksum to update
  udp[25] = 0x34;
  udp[40] = 0xbe;  // a UDP checksum
  udp[41] = 0xef;
  struct __sk_buff redirect_flags {};
  redirect_flags.mark = 3;  // flags bpf_redirect refuses
  compare("packet_helpers.bpf.o", {{"tc_nat", udp, {}}, {"tc_nat", ipv4_frame(), {}}, {"tc_nat", udp, bytes_of(redirect_flags)},
                                   {"xdp_redirect", ipv4_frame(), {}}});
}

// Socket lookups from tc and XDP (no socket listens on the packet's addresses, on either side), and the
// packet's own socket: the dummy one a test run gives it, with the packet's family and addresses.
TEST_F(KernelOracle, SocketLookups) {
  // A TCP SYN from 10.1.2.3 to 10.4.5.6, and an IPv6 frame from 2001:db8::1 to 2001:db8::2.
  std::vector<std::uint8_t> tcp4(14 + 20 + 20, 0);
  tcp4[12] = 0x08;
  tcp4[14] = 0x45;
  tcp4[14 + 8] = 64;
  tcp4[14 + 9] = 6;
  const std::uint8_t addrs[] = {10, 1, 2, 3, 10, 4, 5, 6};
  std::memcpy(&tcp4[14 + 12], addrs, sizeof addrs);
  tcp4[34 + 12] = 0x50;  // doff 5
  tcp4[34 + 13] = 0x02;  // SYN
  std::vector<std::uint8_t> ip6(14 + 40 + 8, 0);
  ip6[12] = 0x86;
  ip6[13] = 0xdd;
  ip6[14] = 0x60;
  ip6[14 + 6] = 17;
  ip6[14 + 7] = 64;
  for (int i : {0, 16}) {
    ip6[14 + 8 + i] = 0x20;
    ip6[14 + 9 + i] = 0x01;
    ip6[14 + 10 + i] = 0x0d;
    ip6[14 + 11 + i] = 0xb8;
    ip6[14 + 23 + i] = static_cast<std::uint8_t>(1 + i / 16);
  }
  compare("socket_helpers.bpf.o",
          {{"tc_lookup", ipv4_frame(), {}}, {"tc_lookup", tcp4, {}}, {"xdp_lookup", ipv4_frame(), {}},
           {"tc_own", ipv4_frame(), {}}, {"tc_own", ip6, {}}, {"tc_own_addresses", tcp4, {}},
           {"tc_own_addresses", ip6, {}}, {"tc_syncookie", tcp4, {}}});
}

// The corpus's katran-like encapsulation: adjust_head, rewritten headers and checksum, byte for byte.
TEST_F(KernelOracle, EncapsulationLikeKatran) {
  auto frame = ipv4_frame();
  frame[16] = 0;
  frame[17] = 28;  // total length
  frame[33] = 9;   // the inner destination picks reals[9] (zeroes: a MAC and an address of 0)
  compare("katran_like.bpf.o", {{"balancer_encap", frame, {}}, {"balancer_encap", ipv4_frame(), {}}});
}

TEST_F(KernelOracle, RawTracepointArgs) {
  std::uint64_t args[2] = {0, 21};
  compare("prog_types.bpf.o", {{"raw_sys_enter", {}, bytes_of(args), 1, true}});
}

// Dead code by constants: a frozen .rodata setting and a CO-RE existence check (whose access is
// poisoned); both sides load the programs and run the live branch.
TEST_F(KernelOracle, ConstantsRuleOutCode) {
  if (!std::filesystem::exists("/sys/kernel/btf/vmlinux")) GTEST_SKIP() << "no /sys/kernel/btf/vmlinux";
  std::uint64_t args[1] = {0};
  compare("dead_code.bpf.o", {{"rodata_rules_out", ipv4_frame(), {}}, {"core_rules_out", {}, bytes_of(args), 1, true}});
}

// Runs the kernel's `prog` once by test_run (in this thread, with `ctx`) and reads entry 0 of its `map`
// into `out`.
void kernel_run_once(struct bpf_object* kobj, const char* prog, void* ctx, std::uint32_t ctx_size, const char* map,
                     void* out, std::size_t size) {
  LIBBPF_OPTS(bpf_test_run_opts, run, .ctx_in = ctx, .ctx_size_in = ctx_size);
  ASSERT_EQ(bpf_prog_test_run_opts(bpf_program__fd(bpf_object__find_program_by_name(kobj, prog)), &run), 0);
  const std::uint32_t zero = 0;
  ASSERT_EQ(bpf_map__lookup_elem(bpf_object__find_map_by_name(kobj, map), &zero, sizeof zero, out, size, 0), 0);
}

// bpf_redirect_map's verdicts from a devmap and a cpumap that user space filled the same way on both
// sides (lo's ifindex; a queue for CPU 0), and a task storage counter made, bumped and deleted by the
// same thread, read back from user space by a pidfd.
TEST_F(KernelOracle, ObjectMapsInPrograms) {
  if (!std::filesystem::exists("/sys/kernel/btf/vmlinux")) GTEST_SKIP() << "no /sys/kernel/btf/vmlinux";
  const std::string path = std::string(BPFVM_PROGS_DIR) + "/object_maps.bpf.o";
  std::string refused;
  struct bpf_object* kobj = kernel_load(path, refused);
  if (!kobj) GTEST_SKIP() << refused;
  auto ours = Object::open_file(*rt_, path);
  ASSERT_TRUE(ours) << ours.error().to_string();
  const std::uint32_t zero = 0, lo = 1, queue = 64;
  ASSERT_EQ(bpf_map__update_elem(bpf_object__find_map_by_name(kobj, "devs"), &zero, 4, &lo, 4, 0), 0);
  ASSERT_EQ(bpf_map__update_elem(bpf_object__find_map_by_name(kobj, "cpus"), &zero, 4, &queue, 4, 0), 0);
  union bpf_attr a {};
  a.map_fd = static_cast<std::uint32_t>(rt_->install_fd(AnyObject{ours->find_map("devs")}));
  a.key = reinterpret_cast<std::uint64_t>(&zero);
  a.value = reinterpret_cast<std::uint64_t>(&lo);
  ASSERT_EQ(rt_->bpf(BPF_MAP_UPDATE_ELEM, &a, sizeof a), 0) << std::strerror(errno);
  a.map_fd = static_cast<std::uint32_t>(rt_->install_fd(AnyObject{ours->find_map("cpus")}));
  a.value = reinterpret_cast<std::uint64_t>(&queue);
  ASSERT_EQ(rt_->bpf(BPF_MAP_UPDATE_ELEM, &a, sizeof a), 0) << std::strerror(errno);
  // Map, key, flags: a filled slot, an empty one, an empty one with XDP_PASS / XDP_TX in the flags,
  // broadcast, and flags a map type does not take.
  const std::uint8_t cases[][3] = {{0, 0, 0}, {0, 1, 0}, {0, 1, XDP_PASS}, {0, 9, XDP_TX}, {0, 2, BPF_F_BROADCAST},
                                   {0, 0, 0x40}, {1, 0, 0}, {1, 1, XDP_DROP}, {1, 0, BPF_F_BROADCAST}};
  for (const auto& c : cases) {
    std::vector<std::uint8_t> frame = ipv4_frame();
    std::copy(c, c + 3, frame.begin());
    std::vector<std::uint8_t> out(frame.size() + 256);
    LIBBPF_OPTS(bpf_test_run_opts, run, .data_in = frame.data(), .data_out = out.data(),
                .data_size_in = static_cast<std::uint32_t>(frame.size()), .data_size_out = static_cast<std::uint32_t>(out.size()));
    ASSERT_EQ(bpf_prog_test_run_opts(bpf_program__fd(bpf_object__find_program_by_name(kobj, "redirect")), &run), 0);
    auto r = ours->find_program("redirect")->test_run({frame, {}, 1});
    ASSERT_TRUE(r) << r.error().to_string();
    EXPECT_EQ(r->retval, run.retval) << "map " << int(c[0]) << " key " << int(c[1]) << " flags " << int(c[2]);
  }
  // The counter: 1, 2, 3, then deleted (0), deleted again (-ENOENT), then 1 again.
  const int pidfd = static_cast<int>(::syscall(SYS_pidfd_open, ::getpid(), 0));
  ASSERT_GE(pidfd, 0);
  for (std::uint64_t op : {0, 0, 0, 1, 1, 0}) {
    std::uint64_t args[1] = {op};
    LIBBPF_OPTS(bpf_test_run_opts, run, .ctx_in = args, .ctx_size_in = sizeof args);
    ASSERT_EQ(bpf_prog_test_run_opts(bpf_program__fd(bpf_object__find_program_by_name(kobj, "count_task")), &run), 0);
    auto r = ours->find_program("count_task")->test_run({{}, bytes_of(args), 1});
    ASSERT_TRUE(r) << r.error().to_string();
    EXPECT_EQ(r->retval, run.retval) << "op " << op;
  }
  std::int64_t kernel_count = 0, my_count = 0;
  ASSERT_EQ(bpf_map__lookup_elem(bpf_object__find_map_by_name(kobj, "counts"), &pidfd, 4, &kernel_count, 8, 0), 0);
  a = {};
  a.map_fd = static_cast<std::uint32_t>(rt_->install_fd(AnyObject{ours->find_map("counts")}));
  a.key = reinterpret_cast<std::uint64_t>(&pidfd);
  a.value = reinterpret_cast<std::uint64_t>(&my_count);
  ASSERT_EQ(rt_->bpf(BPF_MAP_LOOKUP_ELEM, &a, sizeof a), 0) << std::strerror(errno);
  EXPECT_EQ(my_count, kernel_count);
  EXPECT_EQ(my_count, 1);
  ::close(pidfd);
  bpf_object__close(kobj);
  // Cgroup storages: zeroed for each test run, shared by its repeats.
  compare("object_maps.bpf.o", {{"count_packets", ipv4_frame(), bytes_of(__sk_buff{}), 5},
                                {"count_packets", ipv4_frame(), bytes_of(__sk_buff{}), 1},
                                // sk_storage on the run's socket: counted 1, 2, 3 (deleted), 1, 2
                                {"count_socket", ipv4_frame(), bytes_of(__sk_buff{}), 5},
                                {"count_socket", ipv4_frame(), bytes_of(__sk_buff{}), 1},
                                {"task_stack", {}, bytes_of(std::uint64_t{0}), 1, true}});
}

// The task among namespaces and cgroups, as the kernel sees the same thread: cgroup ancestors by level
// (and 0 past its own), its pid and tgid in its pid namespace (and -EINVAL, zeroed, for another), the
// network namespace's cookie.
TEST_F(KernelOracle, NamespacesAndCgroupAncestors) {
  struct stat st {};
  ASSERT_EQ(::stat("/proc/self/ns/pid", &st), 0);
  const std::uint64_t args[2] = {st.st_dev, st.st_ino};
  const std::string path = std::string(BPFVM_PROGS_DIR) + "/namespaces.bpf.o";
  std::string refused;
  struct bpf_object* kobj = kernel_load(path, refused);
  if (!kobj) GTEST_SKIP() << refused;
  struct Out {  // namespaces.bpf.c's struct out
    std::uint64_t ancestors[4];
    std::int64_t ns_ret, bad_ret;
    std::uint32_t pid, tgid, bad_pid, pad;
    bool operator==(const Out&) const = default;
  } kernel{}, mine{};
  kernel_run_once(kobj, "ids", const_cast<std::uint64_t*>(args), sizeof args, "ns_out", &kernel, sizeof kernel);
  bpf_object__close(kobj);
  auto ours = Object::open_file(*rt_, path);
  ASSERT_TRUE(ours) << ours.error().to_string();
  auto r = ours->find_program("ids")->test_run({{}, bytes_of(args), 1});
  ASSERT_TRUE(r) << r.error().to_string();
  const std::uint32_t zero = 0;
  ASSERT_TRUE(ours->find_map("ns_out")->impl().lookup(&zero, &mine));
  EXPECT_EQ(mine.ancestors[0], kernel.ancestors[0]);
  EXPECT_EQ(mine.ancestors[1], kernel.ancestors[1]);
  EXPECT_EQ(mine.ancestors[2], kernel.ancestors[2]);
  EXPECT_EQ(mine.ancestors[3], kernel.ancestors[3]);
  EXPECT_EQ(mine.ns_ret, kernel.ns_ret);
  EXPECT_EQ(mine.pid, kernel.pid);
  EXPECT_EQ(mine.tgid, kernel.tgid);
  EXPECT_EQ(mine.bad_ret, kernel.bad_ret);
  EXPECT_EQ(mine.bad_pid, kernel.bad_pid);
  EXPECT_EQ(mine.ns_ret, 0);
  compare("namespaces.bpf.o", {{"netns", ipv4_frame(), bytes_of(__sk_buff{}), 1}});
}

// bpf_get_current_task's objects: the kernel's task_struct and bpfvm's emulated one, read by the same
// CO-RE program in the same thread (test_run runs a raw tracepoint in the caller's context), hold the
// same ids, names, parents, credentials, namespaces, memory bounds and pid numbers.
TEST_F(KernelOracle, CurrentTaskObjects) {
  if (!std::filesystem::exists("/sys/kernel/btf/vmlinux")) GTEST_SKIP() << "no /sys/kernel/btf/vmlinux";
  const std::string path = std::string(BPFVM_PROGS_DIR) + "/current_task.bpf.o";
  std::string refused;
  struct bpf_object* kobj = kernel_load(path, refused);
  if (!kobj) GTEST_SKIP() << refused;
  struct Out {  // current_task.bpf.c's struct out
    std::uint64_t task;
    std::int32_t pid, tgid, ppid, grandparent_pid;
    std::uint32_t flags;
    std::int32_t exit_code;
    std::uint64_t start_time;
    char comm[16], leader_comm[16];
    std::uint32_t uid, euid, mnt_inum, net_inum, pid_level;
    std::int32_t pid_nr;
    std::uint64_t arg_start, arg_end;
    std::int32_t legacy_pid;
    std::int64_t bad_read, user_read, str_len, root_pid, root_parent_pid;
  } kernel{}, mine{};
  std::uint64_t args[1] = {0};
  const std::uint32_t zero = 0;
  kernel_run_once(kobj, "current_task", args, sizeof args, "task_out", &kernel, sizeof kernel);
  bpf_object__close(kobj);
  auto ours = Object::open_file(*rt_, path);
  ASSERT_TRUE(ours) << ours.error().to_string();
  auto r = ours->find_program("current_task")->test_run({{}, bytes_of(args), 1});
  ASSERT_TRUE(r) << r.error().to_string();
  ASSERT_TRUE(ours->find_map("task_out")->impl().lookup(&zero, &mine));
  EXPECT_NE(kernel.task, 0u);
  EXPECT_NE(mine.task, 0u);
  EXPECT_EQ(mine.pid, kernel.pid);
  EXPECT_EQ(mine.tgid, kernel.tgid);
  EXPECT_EQ(mine.ppid, kernel.ppid);
  EXPECT_EQ(mine.grandparent_pid, kernel.grandparent_pid);
  EXPECT_EQ(mine.flags, kernel.flags);
  EXPECT_EQ(mine.exit_code, kernel.exit_code);
  // start_time: the kernel's in ns, bpfvm's from /proc's 10 ms ticks
  EXPECT_NEAR(static_cast<double>(mine.start_time), static_cast<double>(kernel.start_time), 2e7);
  EXPECT_STREQ(mine.comm, kernel.comm);
  EXPECT_STREQ(mine.leader_comm, kernel.leader_comm);
  EXPECT_EQ(mine.str_len, kernel.str_len);
  EXPECT_EQ(mine.uid, kernel.uid);
  EXPECT_EQ(mine.euid, kernel.euid);
  EXPECT_EQ(mine.mnt_inum, kernel.mnt_inum);
  EXPECT_EQ(mine.net_inum, kernel.net_inum);
  EXPECT_EQ(mine.pid_level, kernel.pid_level);
  EXPECT_EQ(mine.pid_nr, kernel.pid_nr);
  EXPECT_EQ(mine.arg_start, kernel.arg_start);
  EXPECT_EQ(mine.arg_end, kernel.arg_end);
  EXPECT_EQ(mine.legacy_pid, kernel.legacy_pid);
  EXPECT_EQ(mine.bad_read, kernel.bad_read);
  EXPECT_EQ(mine.user_read, kernel.user_read);
  EXPECT_EQ(mine.root_pid, kernel.root_pid);
  EXPECT_EQ(mine.root_parent_pid, kernel.root_parent_pid);
}

// bpf_find_vma on the test's own thread: the kernel's vm_area_struct and bpfvm's, found for the same
// addresses (the test's code, libc's, its stack, an anonymous mapping, a file mapped at an offset,
// nothing, bad flags) by the same program, hold the same bounds, flags, page offset and file name.
TEST_F(KernelOracle, FindVma) {
  if (!std::filesystem::exists("/sys/kernel/btf/vmlinux")) GTEST_SKIP() << "no /sys/kernel/btf/vmlinux";
  const std::string path = std::string(BPFVM_PROGS_DIR) + "/find_vma.bpf.o";
  std::string refused;
  struct bpf_object* kobj = kernel_load(path, refused);
  if (!kobj) GTEST_SKIP() << refused;
  auto ours = Object::open_file(*rt_, path);
  ASSERT_TRUE(ours) << ours.error().to_string();
  struct Out {  // find_vma.bpf.c's struct out
    std::int64_t ret;
    std::uint64_t start, end, flags, pgoff;
    std::uint32_t found, has_file, name_len, pad;
    char name[64];
  };
  void* anon = ::mmap(nullptr, 3 * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  ASSERT_NE(anon, MAP_FAILED);
  static_cast<char*>(anon)[0] = 1;
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  void* file = ::mmap(nullptr, 4096, PROT_READ, MAP_PRIVATE, fd, 4096);  // its second page
  ::close(fd);
  ASSERT_NE(file, MAP_FAILED);
  int on_stack = 0;
  const std::pair<const char*, std::vector<std::uint64_t>> cases[] = {
      {"the test's code", {reinterpret_cast<std::uint64_t>(&kernel_run_once), 0}},
      {"libc's code", {reinterpret_cast<std::uint64_t>(&::getpid), 0}},
      {"the stack", {reinterpret_cast<std::uint64_t>(&on_stack), 0}},
      {"an anonymous mapping", {reinterpret_cast<std::uint64_t>(anon) + 4096, 0}},
      {"a file at an offset", {reinterpret_cast<std::uint64_t>(file) + 8, 0}},
      {"nothing there", {8, 0}},
      {"bad flags", {reinterpret_cast<std::uint64_t>(&on_stack), 1}},
  };
  const std::uint32_t zero = 0;
  for (const auto& [what, args] : cases) {
    SCOPED_TRACE(what);
    Out kernel{}, mine{};
    kernel_run_once(kobj, "find_vma", const_cast<std::uint64_t*>(args.data()), 16, "vma_out", &kernel, sizeof kernel);
    auto r = ours->find_program("find_vma")->test_run({{}, bytes_of(std::array<std::uint64_t, 2>{args[0], args[1]}), 1});
    ASSERT_TRUE(r) << r.error().to_string();
    ASSERT_TRUE(ours->find_map("vma_out")->impl().lookup(&zero, &mine));
    EXPECT_EQ(mine.ret, kernel.ret);
    EXPECT_EQ(mine.found, kernel.found);
    EXPECT_EQ(mine.start, kernel.start);
    EXPECT_EQ(mine.end, kernel.end);
    EXPECT_EQ(mine.flags, kernel.flags) << std::hex << (mine.flags ^ kernel.flags);
    EXPECT_EQ(mine.pgoff, kernel.pgoff);
    EXPECT_EQ(mine.has_file, kernel.has_file);
    EXPECT_EQ(mine.name_len, kernel.name_len);
    EXPECT_STREQ(mine.name, kernel.name);
  }
  bpf_object__close(kobj);
  ::munmap(anon, 3 * 4096);
  ::munmap(file, 4096);
}

// bpf_get_current_task_btf: the same objects through a trusted BTF pointer, read by plain loads (the
// kernel's PROBE_MEM loads; bpfvm's engines read the emulated objects for them) on both sides.
TEST_F(KernelOracle, CurrentTaskBtfLoads) {
  if (!std::filesystem::exists("/sys/kernel/btf/vmlinux")) GTEST_SKIP() << "no /sys/kernel/btf/vmlinux";
  const std::string path = std::string(BPFVM_PROGS_DIR) + "/current_task.bpf.o";
  std::string refused;
  struct bpf_object* kobj = kernel_load(path, refused);
  if (!kobj) GTEST_SKIP() << refused;
  struct Out {  // current_task.bpf.c's struct out_btf
    std::int32_t pid, tgid, ppid, root_pid;
    std::uint32_t uid;
    char comm[16];
    std::uint64_t arg_start;
    std::int32_t umask;
  } kernel{}, mine{};
  std::uint64_t args[1] = {0};
  const std::uint32_t zero = 0;
  kernel_run_once(kobj, "current_task_btf", args, sizeof args, "task_btf_out", &kernel, sizeof kernel);
  bpf_object__close(kobj);
  for (const ExecMode mode : {ExecMode::kJit, ExecMode::kInterpreter}) {
    SCOPED_TRACE(mode == ExecMode::kJit ? "jit" : "interpreter");
    ObjectOptions options;
    options.mode = mode;
    auto ours = Object::open_file(*rt_, path, options);
    ASSERT_TRUE(ours) << ours.error().to_string();
    auto r = ours->find_program("current_task_btf")->test_run({{}, bytes_of(args), 1});
    ASSERT_TRUE(r) << r.error().to_string();
    ASSERT_TRUE(ours->find_map("task_btf_out")->impl().lookup(&zero, &mine));
    EXPECT_EQ(mine.pid, kernel.pid);
    EXPECT_EQ(mine.tgid, kernel.tgid);
    EXPECT_EQ(mine.ppid, kernel.ppid);
    EXPECT_EQ(mine.root_pid, kernel.root_pid);
    EXPECT_EQ(mine.uid, kernel.uid);
    EXPECT_STREQ(mine.comm, kernel.comm);
    EXPECT_EQ(mine.arg_start, kernel.arg_start);
    EXPECT_EQ(mine.umask, 0);  // (bpfvm has no fs_struct: the load through its NULL pointer reads 0)
  }
}

}  // namespace
}  // namespace bpfvm::runtime

// The function the kernel's uprobe probes in StackIds (this test binary's own).
extern "C" __attribute__((noinline)) int bpfvm_stack_probe_target(int x) {
  __asm__ volatile("" ::: "memory");
  return x + 1;
}

namespace bpfvm::runtime {
namespace {

// bpf_get_stackid: the kernel's ids are its jhash2 of the stored frames (seed 0) masked to the buckets,
// which bpfvm's maps::jhash2 computes the same; the same stack gets the same id, a stack with no frames
// left after the skipped ones -EFAULT, an unknown flag -EINVAL, on both sides. The kernel's uprobe
// probes a function of this binary; bpfvm runs the program on registers whose frame chain is made here.
TEST_F(KernelOracle, StackIds) {
  constexpr std::uint32_t kMask = 16384 - 1;  // stack_ids.bpf.c's buckets (many: a chance match is rare)
  const std::string path = std::string(BPFVM_PROGS_DIR) + "/stack_ids.bpf.o";
  std::string refused;
  struct bpf_object* kobj = kernel_load(path, refused);
  if (!kobj) GTEST_SKIP() << refused;
  LIBBPF_OPTS(bpf_uprobe_opts, uprobe, .func_name = "bpfvm_stack_probe_target");
  struct bpf_link* link = bpf_program__attach_uprobe_opts(bpf_object__find_program_by_name(kobj, "stack_ids"), 0,
                                                          "/proc/self/exe", 0, &uprobe);
  if (!link) {
    bpf_object__close(kobj);
    GTEST_SKIP() << "the kernel cannot attach a uprobe here";
  }
  volatile int sink = bpfvm_stack_probe_target(1);
  (void)sink;
  std::int64_t kernel[4] = {};
  for (std::uint32_t k = 0; k < 4; ++k) {
    ASSERT_EQ(bpf_map__lookup_elem(bpf_object__find_map_by_name(kobj, "ids"), &k, 4, &kernel[k], 8, 0), 0);
  }
  EXPECT_GE(kernel[0], 0);
  EXPECT_EQ(kernel[1], kernel[0]);
  EXPECT_EQ(kernel[2], -EFAULT);
  EXPECT_EQ(kernel[3], -EINVAL);
  std::uint64_t frames[16] = {};
  const auto id = static_cast<std::uint32_t>(kernel[0]);
  ASSERT_EQ(bpf_map__lookup_elem(bpf_object__find_map_by_name(kobj, "stacks"), &id, 4, frames, sizeof frames, 0), 0);
  // (the kernel keeps the frames its walk found, zero return addresses too, and a lookup zero-fills
  // after them: the stored count is one of those after which only zeros follow)
  std::size_t last = 16;
  while (last > 0 && frames[last - 1] == 0) --last;
  ASSERT_GT(last, 0u);
  std::uint32_t words[32];
  bool hashed = false;
  for (std::size_t n = std::max<std::size_t>(last, 1); n <= 16 && !hashed; ++n) {
    std::memcpy(words, frames, n * 8);
    hashed = (maps::jhash2({words, n * 2}, 0) & kMask) == id;
  }
  EXPECT_TRUE(hashed) << "the kernel's stack id " << id << " is not its jhash2 of the frames"
                      << fmt::format(" ({:#x})", fmt::join(std::span(frames, 16), ", "));
  bpf_link__destroy(link);
  bpf_object__close(kobj);

  // bpfvm: rip, then the return addresses of the frames chained by rbp.
  alignas(16) std::uint64_t stack[6] = {};
  stack[0] = reinterpret_cast<std::uint64_t>(&stack[2]);
  stack[1] = 0x401111;
  stack[2] = reinterpret_cast<std::uint64_t>(&stack[4]);
  stack[3] = 0x402222;
  struct pt_regs regs {};
  regs.rip = 0x400000;
  regs.rbp = reinterpret_cast<std::uint64_t>(&stack[0]);
  regs.rsp = reinterpret_cast<std::uint64_t>(&stack[0]);
  auto ours = Object::open_file(*rt_, path);
  ASSERT_TRUE(ours) << ours.error().to_string();
  ASSERT_TRUE(ours->find_program("stack_ids")->test_run({{}, bytes_of(regs), 1}));
  std::int64_t mine[4] = {};
  for (std::uint32_t k = 0; k < 4; ++k) ASSERT_TRUE(ours->find_map("ids")->impl().lookup(&k, &mine[k]));
  // (the frame at stack[4] is read too: its zero return address is kept, as the kernel keeps it, and
  // the walk ends at its saved rbp, 0)
  const std::uint64_t want[4] = {0x400000, 0x401111, 0x402222, 0};
  std::memcpy(words, want, sizeof want);
  EXPECT_EQ(mine[0], static_cast<std::int64_t>(maps::jhash2({words, 8}, 0) & kMask));
  EXPECT_EQ(mine[1], mine[0]);
  EXPECT_EQ(mine[2], -EFAULT);
  EXPECT_EQ(mine[3], -EINVAL);
  std::uint64_t got[16];
  const auto my_id = static_cast<std::uint32_t>(mine[0]);
  ASSERT_TRUE(ours->find_map("stacks")->impl().lookup(&my_id, got));
  EXPECT_EQ(got[0], want[0]);
  EXPECT_EQ(got[1], want[1]);
  EXPECT_EQ(got[2], want[2]);
  EXPECT_EQ(got[3], 0u);
}

// Helpers on the calling task: the kernel runs a raw tracepoint's test_run in the caller's context, so
// pid/tgid, uid/gid, comm and the caller's memory are the same on both sides.
TEST_F(KernelOracle, TaskHelpers) {
  const std::string path = std::string(BPFVM_PROGS_DIR) + "/helpers.bpf.o";
  std::string refused;
  struct bpf_object* kobj = kernel_load(path, refused);
  if (!kobj) GTEST_SKIP() << refused;
  static const char text[] = "hello, helpers";
  // The kernel's probe_read_user cannot fault a page in: the string's pages must be resident (a build
  // whose .rodata page nothing touched yet, ASan's, read 0 bytes there).
  for (const char& c : text) static_cast<void>(*static_cast<const volatile char*>(&c));
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
  for (std::size_t i = 0; i + 8 < kernel_out.size(); ++i) {
    if (our_out[i] != kernel_out[i]) {
      ADD_FAILURE() << "struct out differs at byte " << i << ": bpfvm " << int{our_out[i]} << ", kernel " << int{kernel_out[i]};
      break;
    }
  }
}

// Dynptrs over a map value and a ring buffer record (tests/progs/dynptr_run.bpf.c): the same errors
// (bounds, flags, a reservation larger than the ring, a null dynptr), the same bytes written and read.
TEST_F(KernelOracle, Dynptrs) {
  const std::string path = std::string(BPFVM_PROGS_DIR) + "/dynptr_run.bpf.o";
  std::string refused;
  struct bpf_object* kobj = kernel_load(path, refused);
  if (!kobj) GTEST_SKIP() << refused;
  LIBBPF_OPTS(bpf_test_run_opts, run);
  ASSERT_EQ(bpf_prog_test_run_opts(bpf_program__fd(bpf_object__find_program_by_name(kobj, "dynptrs")), &run), 0);
  const std::uint32_t zero = 0;
  auto kernel_value = [&](const char* map, std::size_t size) {
    std::vector<std::uint8_t> v(size);
    EXPECT_EQ(bpf_map_lookup_elem(bpf_map__fd(bpf_object__find_map_by_name(kobj, map)), &zero, v.data()), 0);
    return v;
  };
  const auto kernel_out = kernel_value("results", bpf_map__value_size(bpf_object__find_map_by_name(kobj, "results")));
  const auto kernel_buffer = kernel_value("buffers", 32);
  bpf_object__close(kobj);

  auto ours = Object::open_file(*rt_, path);
  ASSERT_TRUE(ours) << ours.error().to_string();
  auto r = ours->find_program("dynptrs")->test_run({{}, {}, 1});
  ASSERT_TRUE(r) << r.error().to_string();
  EXPECT_EQ(r->retval, run.retval);
  std::vector<std::uint8_t> our_out(kernel_out.size()), our_buffer(32);
  ASSERT_TRUE(ours->find_map("results")->impl().lookup(&zero, our_out.data()));
  ASSERT_TRUE(ours->find_map("buffers")->impl().lookup(&zero, our_buffer.data()));
  for (std::size_t i = 0; i < kernel_out.size(); ++i) {
    if (our_out[i] != kernel_out[i]) {
      ADD_FAILURE() << "struct out differs at byte " << i << ": bpfvm " << int{our_out[i]} << ", kernel " << int{kernel_out[i]};
      break;
    }
  }
  EXPECT_EQ(our_buffer, kernel_buffer);
}

// Syscall programs run by BPF_PROG_RUN (tests/progs/syscall_prog.bpf.c): bpf() from the program makes
// and updates a map in the caller's descriptor table, refuses a command a program may not make, close()
// once and twice, the running kernel's BTF id of task_struct, no kernel symbol; the context comes back in
// ctx_in. ctx_in smaller than what the program reads, or any other test_run field, is EINVAL.
TEST_F(KernelOracle, SyscallPrograms) {
  const std::string path = std::string(BPFVM_PROGS_DIR) + "/syscall_prog.bpf.o";
  std::string refused;
  struct bpf_object* kobj = kernel_load(path, refused);
  if (!kobj) GTEST_SKIP() << refused;
  struct Args {
    std::int32_t value_in;
    std::int32_t map_fd, update, bad_cmd, closed, close_again;
    std::int64_t btf_id, missing_btf, bad_name, ksym;
    std::uint64_t ksym_addr;
  };
  auto run = [](int prog_fd, Args& args, std::uint32_t size, std::uint32_t repeat = 0) {
    LIBBPF_OPTS(bpf_test_run_opts, opts);
    opts.ctx_in = &args;
    opts.ctx_size_in = size;
    opts.repeat = static_cast<int>(repeat);
    const int r = bpf_prog_test_run_opts(prog_fd, &opts);
    return std::pair{r < 0 ? -errno : r, opts.retval};
  };
  Args kernel{};
  kernel.value_in = 42;
  const int kfd = bpf_program__fd(bpf_object__find_program_by_name(kobj, "make_map"));
  const auto kr = run(kfd, kernel, sizeof kernel);
  Args small{};
  const auto k_small = run(bpf_program__fd(bpf_object__find_program_by_name(kobj, "read_past_ctx")), small, 64);
  const auto k_repeat = run(kfd, small, sizeof small, 2);
  bpf_object__close(kobj);

  auto ours = Object::open_file(*rt_, path);
  ASSERT_TRUE(ours) << ours.error().to_string();
  const int fd = rt_->install_fd(AnyObject{ours->find_program("make_map")});
  const int past = rt_->install_fd(AnyObject{ours->find_program("read_past_ctx")});
  ASSERT_GE(fd, 0);
  auto ours_run = [&](int prog_fd, Args& args, std::uint32_t size, std::uint32_t repeat = 0) {
    union bpf_attr a {};
    a.test.prog_fd = static_cast<std::uint32_t>(prog_fd);
    a.test.ctx_in = reinterpret_cast<std::uint64_t>(&args);
    a.test.ctx_size_in = size;
    a.test.repeat = repeat;
    const long r = rt_->bpf(BPF_PROG_TEST_RUN, &a, sizeof a);
    return std::pair{r < 0 ? -errno : static_cast<int>(r), a.test.retval};
  };
  Args mine{};
  mine.value_in = 42;
  EXPECT_EQ(ours_run(fd, mine, sizeof mine), kr);
  EXPECT_EQ(ours_run(past, small, 64), k_small);
  EXPECT_EQ(ours_run(fd, small, sizeof small, 2), k_repeat);
  // Descriptors are each side's own numbers: both made one.
  EXPECT_GE(kernel.map_fd, 0);
  EXPECT_GE(mine.map_fd, 0);
  EXPECT_EQ(mine.update, kernel.update);
  EXPECT_EQ(mine.bad_cmd, kernel.bad_cmd);
  EXPECT_EQ(mine.closed, kernel.closed);
  EXPECT_EQ(mine.close_again, kernel.close_again);
  EXPECT_EQ(mine.btf_id, kernel.btf_id);
  EXPECT_GT(mine.btf_id, 0);
  EXPECT_EQ(mine.missing_btf, kernel.missing_btf);
  EXPECT_EQ(mine.bad_name, kernel.bad_name);
  EXPECT_EQ(mine.ksym, kernel.ksym);
  EXPECT_EQ(mine.ksym_addr, kernel.ksym_addr);
  EXPECT_EQ(mine.update, 0);
  EXPECT_EQ(mine.bad_cmd, -EINVAL);
  EXPECT_EQ(mine.closed, 0);
  EXPECT_EQ(mine.close_again, -EBADF);
  EXPECT_EQ(mine.missing_btf, -ENOENT);
}

// bpf_perf_event_output: the same runs give the same return values (0, ENOSPC once the one-page buffer
// is full, each error) and a reader sees the same records: samples byte for byte, padding and appended
// packet bytes included, and the same lost counts. The thread stays on one CPU so that the kernel's
// samples all go to one buffer.
TEST_F(KernelOracle, PerfEventOutput) {
  cpu_set_t old_set, one;
  ASSERT_EQ(sched_getaffinity(0, sizeof old_set, &old_set), 0);
  CPU_ZERO(&one);
  CPU_SET(0, &one);
  ASSERT_EQ(sched_setaffinity(0, sizeof one, &one), 0);
  struct Restore {
    cpu_set_t set;
    ~Restore() { sched_setaffinity(0, sizeof set, &set); }
  } restore{old_set};

  std::vector<std::string> runs;
  for (int i = 0; i < 140; ++i) runs.push_back("emit");  // 32-byte records: the 128th finds no room
  runs.insert(runs.end(), {"CONSUME", "emit", "emit_odd", "emit_empty", "emit_packet", "emit_skb", "packet_too_short",
                           "bad_flags", "index_past_end", "empty_slot", "other_cpu", "CONSUME"});
  using Log = std::vector<std::string>;
  auto record_sample = [](Log& log, std::span<const std::uint8_t> data) {
    log.push_back("sample " + std::string(reinterpret_cast<const char*>(data.data()), data.size()));
  };

  const std::string path = std::string(BPFVM_PROGS_DIR) + "/perf_events.bpf.o";
  std::string refused;
  struct bpf_object* kobj = kernel_load(path, refused);
  if (!kobj) GTEST_SKIP() << refused;
  Log kernel_log;
  struct Ctx {
    Log* log;
    decltype(record_sample)* rec;
  } kctx{&kernel_log, &record_sample};
  struct perf_buffer* pb = perf_buffer__new(
      bpf_map__fd(bpf_object__find_map_by_name(kobj, "events")), 1,
      [](void* c, int, void* data, __u32 size) {
        auto* k = static_cast<Ctx*>(c);
        (*k->rec)(*k->log, {static_cast<const std::uint8_t*>(data), size});
      },
      [](void* c, int, __u64 count) { static_cast<Ctx*>(c)->log->push_back("lost " + std::to_string(count)); }, &kctx,
      nullptr);
  ASSERT_TRUE(pb) << std::strerror(errno);
  const auto frame = ipv4_frame();
  for (const std::string& name : runs) {
    if (name == "CONSUME") {
      perf_buffer__consume(pb);
      continue;
    }
    LIBBPF_OPTS(bpf_test_run_opts, run);
    run.data_in = frame.data();
    run.data_size_in = static_cast<std::uint32_t>(frame.size());
    ASSERT_EQ(bpf_prog_test_run_opts(bpf_program__fd(bpf_object__find_program_by_name(kobj, name.c_str())), &run), 0);
    kernel_log.push_back(name + " -> " + std::to_string(static_cast<std::int32_t>(run.retval)));
  }
  perf_buffer__free(pb);
  bpf_object__close(kobj);

  auto ours = Object::open_file(*rt_, path);
  ASSERT_TRUE(ours) << ours.error().to_string();
  Log our_log;
  auto reader = maps::PerfBuffer::open(
      ours->find_map("events")->shared_impl(), 1,
      [&](std::uint32_t, std::span<const std::uint8_t> data) { record_sample(our_log, data); },
      [&](std::uint32_t, std::uint64_t count) { our_log.push_back("lost " + std::to_string(count)); });
  ASSERT_TRUE(reader) << reader.error().to_string();
  for (const std::string& name : runs) {
    if (name == "CONSUME") {
      (*reader)->consume();
      continue;
    }
    auto r = ours->find_program(name)->test_run({frame, {}, 1});
    ASSERT_TRUE(r) << r.error().to_string();
    our_log.push_back(name + " -> " + std::to_string(static_cast<std::int32_t>(r->retval)));
  }
  // The kernel leaves a sample's padding as whatever the ring held (bpfvm zeroes it): compare the bytes
  // each program wrote, and the padded size.
  const std::map<std::string, std::size_t> payload = {
      {"emit", 16}, {"emit_odd", 5}, {"emit_empty", 0}, {"emit_packet", 4 + 14}, {"emit_skb", 4 + 20}};
  auto without_padding = [&](Log log) {
    std::deque<std::size_t> lengths;
    for (std::string& e : log) {
      const auto arrow = e.find(" -> ");
      if (arrow != std::string::npos && e.ends_with(" -> 0")) lengths.push_back(payload.at(e.substr(0, arrow)));
      if (e.starts_with("sample ") && !lengths.empty()) {
        const std::size_t size = e.size() - 7;
        e = "sample of " + std::to_string(size) + ": " + e.substr(7, lengths.front());
        lengths.pop_front();
      }
    }
    return log;
  };
  // What the runs are about happened: a full buffer, a lost count, each error.
  for (const char* expected : {"emit -> -28", "lost 13", "emit_skb -> 0", "packet_too_short -> -14", "bad_flags -> -22",
                               "index_past_end -> -7", "empty_slot -> -2", "other_cpu -> -95"}) {
    EXPECT_NE(std::find(kernel_log.begin(), kernel_log.end(), expected), kernel_log.end()) << expected;
  }
  our_log = without_padding(our_log);
  kernel_log = without_padding(kernel_log);
  ASSERT_EQ(our_log.size(), kernel_log.size());
  for (std::size_t i = 0; i < our_log.size(); ++i) EXPECT_EQ(our_log[i], kernel_log[i]) << "entry " << i;
}

// The bpf() commands on a perf_event_array answer with the kernel's errnos.
TEST_F(KernelOracle, PerfEventArrayCommands) {
  struct perf_event_attr attr {};
  attr.size = sizeof attr;
  attr.type = PERF_TYPE_SOFTWARE;
  attr.config = PERF_COUNT_SW_BPF_OUTPUT;
  attr.sample_type = PERF_SAMPLE_RAW;
  attr.sample_period = 1;
  attr.wakeup_events = 1;
  const int kevent = static_cast<int>(::syscall(SYS_perf_event_open, &attr, -1, 0, -1, PERF_FLAG_FD_CLOEXEC));
  if (kevent < 0) GTEST_SKIP() << "perf_event_open: " << std::strerror(errno);
  const int kmap = bpf_map_create(BPF_MAP_TYPE_PERF_EVENT_ARRAY, "events", 4, 4, 4, nullptr);
  if (kmap < 0) {
    ::close(kevent);
    GTEST_SKIP() << "the kernel refuses bpf() here";
  }
  auto our_event = rt_->open_perf_event(0, 1);
  ASSERT_TRUE(our_event);
  union bpf_attr create {};
  create.map_type = BPF_MAP_TYPE_PERF_EVENT_ARRAY;
  create.key_size = create.value_size = 4;
  create.max_entries = 4;
  const int omap = static_cast<int>(rt_->bpf(BPF_MAP_CREATE, &create, sizeof create));
  ASSERT_GE(omap, 0);
  auto op = [](auto&& call) {
    errno = 0;
    const long r = call();
    return r < 0 ? -errno : static_cast<int>(r);
  };
  auto ours = [&](int cmd, std::uint32_t key, std::uint32_t value, std::uint64_t flags) {
    union bpf_attr a {};
    a.map_fd = static_cast<std::uint32_t>(omap);
    a.key = reinterpret_cast<std::uint64_t>(&key);
    if (cmd != BPF_MAP_DELETE_ELEM) {  // as libbpf: delete takes only the key
      a.value = reinterpret_cast<std::uint64_t>(&value);
      a.flags = flags;
    }
    return op([&] { return rt_->bpf(cmd, &a, sizeof a); });
  };
  auto kernels = [&](int cmd, std::uint32_t key, std::uint32_t value, std::uint64_t flags) {
    return op([&]() -> long {
      if (cmd == BPF_MAP_UPDATE_ELEM) return bpf_map_update_elem(kmap, &key, &value, flags);
      if (cmd == BPF_MAP_LOOKUP_ELEM) return bpf_map_lookup_elem(kmap, &key, &value);
      return bpf_map_delete_elem(kmap, &key);
    });
  };
  struct Step {
    int cmd;
    std::uint32_t key;
    bool event;  // the value is the perf event's fd (else the map's own fd)
    std::uint64_t flags;
  };
  const Step steps[] = {{BPF_MAP_UPDATE_ELEM, 0, true, BPF_NOEXIST}, {BPF_MAP_UPDATE_ELEM, 0, true, BPF_EXIST},
                        {BPF_MAP_UPDATE_ELEM, 9, true, BPF_ANY},     {BPF_MAP_UPDATE_ELEM, 0, false, BPF_ANY},
                        {BPF_MAP_UPDATE_ELEM, 0, true, BPF_ANY},     {BPF_MAP_LOOKUP_ELEM, 0, true, 0},
                        {BPF_MAP_LOOKUP_ELEM, 1, true, 0},           {BPF_MAP_DELETE_ELEM, 1, true, 0},
                        {BPF_MAP_DELETE_ELEM, 9, true, 0},           {BPF_MAP_DELETE_ELEM, 0, true, 0},
                        {BPF_MAP_DELETE_ELEM, 0, true, 0}};
  for (const Step& s : steps) {
    SCOPED_TRACE("command " + std::to_string(s.cmd) + " key " + std::to_string(s.key) + " flags " + std::to_string(s.flags));
    EXPECT_EQ(ours(s.cmd, s.key, static_cast<std::uint32_t>(s.event ? *our_event : omap), s.flags),
              kernels(s.cmd, s.key, static_cast<std::uint32_t>(s.event ? kevent : kmap), s.flags));
  }
  ::close(kmap);
  ::close(kevent);
}

// Maps whose values are fds (array and hash of maps, program arrays): the same update flags, indexes and
// deletes give the kernel's errnos.
TEST_F(KernelOracle, FdMapCommands) {
  struct Side {
    std::function<long(int, union bpf_attr&)> bpf;
    int inner = -1, prog = -1, aom = -1, hom = -1, progs = -1;
  };
  auto setup = [](Side& side) {
    union bpf_attr a {};
    a.map_type = BPF_MAP_TYPE_ARRAY;
    a.key_size = a.value_size = 4;
    a.max_entries = 1;
    side.inner = static_cast<int>(side.bpf(BPF_MAP_CREATE, a));
    for (std::uint32_t type : {BPF_MAP_TYPE_ARRAY_OF_MAPS, BPF_MAP_TYPE_HASH_OF_MAPS, BPF_MAP_TYPE_PROG_ARRAY}) {
      a = {};
      a.map_type = type;
      a.key_size = a.value_size = 4;
      a.max_entries = 2;
      if (type != BPF_MAP_TYPE_PROG_ARRAY) a.inner_map_fd = static_cast<std::uint32_t>(side.inner);
      const int fd = static_cast<int>(side.bpf(BPF_MAP_CREATE, a));
      (type == BPF_MAP_TYPE_ARRAY_OF_MAPS ? side.aom : type == BPF_MAP_TYPE_HASH_OF_MAPS ? side.hom : side.progs) = fd;
    }
    const struct bpf_insn insns[] = {{BPF_ALU64 | BPF_MOV | BPF_K, 0, 0, 0, 1}, {BPF_JMP | BPF_EXIT, 0, 0, 0, 0}};
    a = {};
    a.prog_type = BPF_PROG_TYPE_SOCKET_FILTER;
    a.insns = reinterpret_cast<std::uint64_t>(insns);
    a.insn_cnt = 2;
    a.license = reinterpret_cast<std::uint64_t>("GPL");
    side.prog = static_cast<int>(side.bpf(BPF_PROG_LOAD, a));
  };
  Side kernel{[](int cmd, union bpf_attr& a) { return ::syscall(__NR_bpf, cmd, &a, sizeof a); }};
  Side ours{[&](int cmd, union bpf_attr& a) { return rt_->bpf(cmd, &a, sizeof a); }};
  setup(kernel);
  if (kernel.inner < 0 || kernel.prog < 0) GTEST_SKIP() << "the kernel refuses bpf() here";
  setup(ours);
  ASSERT_GE(ours.aom, 0);
  ASSERT_GE(ours.hom, 0);
  ASSERT_GE(ours.progs, 0);
  ASSERT_GE(ours.prog, 0);

  enum Which { kAom, kHom, kProgs };
  struct Step {
    int cmd;
    Which map;
    std::uint32_t key;
    std::uint64_t flags;
  };
  const Step steps[] = {
      {BPF_MAP_UPDATE_ELEM, kAom, 0, BPF_NOEXIST}, {BPF_MAP_UPDATE_ELEM, kAom, 0, BPF_EXIST}, {BPF_MAP_UPDATE_ELEM, kAom, 0, BPF_ANY},
      {BPF_MAP_UPDATE_ELEM, kAom, 5, BPF_ANY},     {BPF_MAP_LOOKUP_ELEM, kAom, 0, 0},        {BPF_MAP_LOOKUP_ELEM, kAom, 1, 0},
      {BPF_MAP_LOOKUP_ELEM, kAom, 5, 0},           {BPF_MAP_DELETE_ELEM, kAom, 1, 0},        {BPF_MAP_DELETE_ELEM, kAom, 5, 0},
      {BPF_MAP_DELETE_ELEM, kAom, 0, 0},           {BPF_MAP_DELETE_ELEM, kAom, 0, 0},
      {BPF_MAP_UPDATE_ELEM, kHom, 0, BPF_EXIST},   {BPF_MAP_UPDATE_ELEM, kHom, 0, BPF_NOEXIST}, {BPF_MAP_UPDATE_ELEM, kHom, 0, BPF_NOEXIST},
      {BPF_MAP_UPDATE_ELEM, kHom, 0, BPF_EXIST},   {BPF_MAP_UPDATE_ELEM, kHom, 1, BPF_ANY},  {BPF_MAP_UPDATE_ELEM, kHom, 2, BPF_ANY},
      {BPF_MAP_DELETE_ELEM, kHom, 2, 0},           {BPF_MAP_DELETE_ELEM, kHom, 1, 0},        {BPF_MAP_LOOKUP_ELEM, kHom, 1, 0},
      {BPF_MAP_UPDATE_ELEM, kProgs, 0, BPF_NOEXIST}, {BPF_MAP_UPDATE_ELEM, kProgs, 0, BPF_EXIST}, {BPF_MAP_UPDATE_ELEM, kProgs, 0, BPF_ANY},
      {BPF_MAP_UPDATE_ELEM, kProgs, 5, BPF_ANY},   {BPF_MAP_DELETE_ELEM, kProgs, 1, 0},      {BPF_MAP_DELETE_ELEM, kProgs, 5, 0},
      {BPF_MAP_DELETE_ELEM, kProgs, 0, 0},         {BPF_MAP_DELETE_ELEM, kProgs, 0, 0},
  };
  // Delete with a value or flags: EINVAL before anything else.
  {
    std::uint32_t key = 0, value = 0;
    for (Side* side : {&kernel, &ours}) {
      union bpf_attr a {};
      a.map_fd = static_cast<std::uint32_t>(side->aom);
      a.key = reinterpret_cast<std::uint64_t>(&key);
      a.value = reinterpret_cast<std::uint64_t>(&value);
      errno = 0;
      EXPECT_EQ(side->bpf(BPF_MAP_DELETE_ELEM, a), -1);
      EXPECT_EQ(errno, EINVAL);
    }
  }
  auto run = [](Side& side, const Step& st) {
    std::uint32_t key = st.key, out = 0;
    std::uint32_t value = static_cast<std::uint32_t>(st.map == kProgs ? side.prog : side.inner);
    union bpf_attr a {};
    a.map_fd = static_cast<std::uint32_t>(st.map == kAom ? side.aom : st.map == kHom ? side.hom : side.progs);
    a.key = reinterpret_cast<std::uint64_t>(&key);
    if (st.cmd != BPF_MAP_DELETE_ELEM) {  // delete takes only a key (nonzero later fields are EINVAL)
      a.value = reinterpret_cast<std::uint64_t>(st.cmd == BPF_MAP_LOOKUP_ELEM ? &out : &value);
      a.flags = st.flags;
    }
    errno = 0;
    return side.bpf(st.cmd, a) < 0 ? -errno : 0;
  };
  for (const Step& st : steps) {
    SCOPED_TRACE(fmt::format("command {} on map {} key {} flags {}", st.cmd, static_cast<int>(st.map), st.key, st.flags));
    EXPECT_EQ(run(ours, st), run(kernel, st));
  }
  for (int fd : {kernel.inner, kernel.prog, kernel.aom, kernel.hom, kernel.progs}) ::close(fd);
}

// BPF_PROG_LOAD of `insns` as a privileged loader, the verifier's log (level 1) in `log`; whether the
// kernel loaded it. errno says why not.
bool kernel_loads(std::uint32_t type, std::uint32_t attach, const std::vector<bpf_insn>& insns, std::vector<char>& log,
                  std::uint32_t attach_btf_id = 0) {
  union bpf_attr a {};
  a.prog_type = type;
  a.expected_attach_type = attach;
  a.attach_btf_id = attach_btf_id;
  a.prog_flags = type == BPF_PROG_TYPE_SYSCALL ? BPF_F_SLEEPABLE : 0;  // syscall programs sleep
  a.insns = reinterpret_cast<std::uint64_t>(insns.data());
  a.insn_cnt = static_cast<std::uint32_t>(insns.size());
  a.license = reinterpret_cast<std::uint64_t>("GPL");
  a.log_buf = reinterpret_cast<std::uint64_t>(log.data());
  a.log_size = static_cast<std::uint32_t>(log.size());
  a.log_level = 1;
  log[0] = 0;
  const long fd = ::syscall(__NR_bpf, BPF_PROG_LOAD, &a, sizeof a);
  const int saved = errno;
  if (fd >= 0) ::close(static_cast<int>(fd));
  errno = saved;
  return fd >= 0;
}

// Helpers upstream Linux offers a program type that a kernel's build may withhold: bpfvm's table follows
// upstream (net/core/filter.c's xdp_func_proto offers bpf_xdp_adjust_meta to every XDP program), and
// this machine's kernel (6.18.44) refuses it to XDP. The table's test leaves these pairs to the test below,
// which shows as skipped where the running kernel withholds one.
constexpr std::pair<std::uint32_t, std::uint32_t> kWithheldByBuilds[] = {{BPF_PROG_TYPE_XDP, BPF_FUNC_xdp_adjust_meta}};

bool withheld_by_build(std::uint32_t type, std::uint32_t helper) {
  return std::any_of(std::begin(kWithheldByBuilds), std::end(kWithheldByBuilds),
                     [&](const auto& w) { return w.first == type && w.second == helper; });
}

// `call <helper>; r0 = 0; exit` loaded as `type`: whether the running kernel offers the helper (errno
// EPERM when it refuses bpf() altogether). The verifier looks the helper up before it checks arguments.
bool kernel_offers(std::uint32_t type, std::uint32_t attach, std::uint32_t helper, std::vector<char>& log) {
  const std::vector<bpf_insn> insns = {{BPF_JMP | BPF_CALL, 0, 0, 0, static_cast<std::int32_t>(helper)},
                                       {BPF_ALU64 | BPF_MOV | BPF_K, 0, 0, 0, 0},
                                       {BPF_JMP | BPF_EXIT, 0, 0, 0, 0}};
  if (kernel_loads(type, attach, insns, log)) return true;
  // Refusals name the helper: "unknown func" (older kernels), "program of this type cannot use helper",
  // or "not supported for program type" (a helper whose prototype depends on the program).
  const std::string said(log.data());
  return said.find("unknown func") == std::string::npos && said.find("cannot use helper") == std::string::npos &&
         said.find("not supported for program type") == std::string::npos;
}

// Which program types may call which helpers: for every helper bpfvm has and every program type it
// runs, the kernel's verifier (for this privileged loader) offers the helper to the program or refuses it
// by name, and bpfvm's table says the same.
TEST_F(KernelOracle, HelpersAllowedPerProgramType) {
  // Every type a loader can load without an attach target, with the expected attach type libbpf gives
  // its main section (as scripts/probe_helpers asks).
  const std::pair<std::uint32_t, std::uint32_t> types[] = {
      {BPF_PROG_TYPE_SOCKET_FILTER, 0},      {BPF_PROG_TYPE_KPROBE, 0},
      {BPF_PROG_TYPE_SCHED_CLS, 0},          {BPF_PROG_TYPE_SCHED_ACT, 0},
      {BPF_PROG_TYPE_TRACEPOINT, 0},         {BPF_PROG_TYPE_XDP, BPF_XDP},
      {BPF_PROG_TYPE_PERF_EVENT, 0},         {BPF_PROG_TYPE_CGROUP_SKB, 0},
      {BPF_PROG_TYPE_CGROUP_SOCK, BPF_CGROUP_INET_SOCK_CREATE}, {BPF_PROG_TYPE_LWT_IN, 0},
      {BPF_PROG_TYPE_LWT_OUT, 0},            {BPF_PROG_TYPE_LWT_XMIT, 0},
      {BPF_PROG_TYPE_SOCK_OPS, BPF_CGROUP_SOCK_OPS}, {BPF_PROG_TYPE_SK_SKB, BPF_SK_SKB_STREAM_PARSER},
      {BPF_PROG_TYPE_CGROUP_DEVICE, BPF_CGROUP_DEVICE}, {BPF_PROG_TYPE_SK_MSG, BPF_SK_MSG_VERDICT},
      {BPF_PROG_TYPE_RAW_TRACEPOINT, 0},     {BPF_PROG_TYPE_CGROUP_SOCK_ADDR, BPF_CGROUP_INET4_CONNECT},
      {BPF_PROG_TYPE_LWT_SEG6LOCAL, 0},      {BPF_PROG_TYPE_SK_REUSEPORT, BPF_SK_REUSEPORT_SELECT},
      {BPF_PROG_TYPE_FLOW_DISSECTOR, BPF_FLOW_DISSECTOR}, {BPF_PROG_TYPE_CGROUP_SYSCTL, BPF_CGROUP_SYSCTL},
      {BPF_PROG_TYPE_RAW_TRACEPOINT_WRITABLE, 0}, {BPF_PROG_TYPE_CGROUP_SOCKOPT, BPF_CGROUP_GETSOCKOPT},
      {BPF_PROG_TYPE_SK_LOOKUP, BPF_SK_LOOKUP}, {BPF_PROG_TYPE_SYSCALL, 0},
      {32 /* BPF_PROG_TYPE_NETFILTER */, 45 /* BPF_NETFILTER */}};
  std::vector<char> log(1 << 16);
  int compared = 0;
  for (const helpers::Prototype& proto : helpers::prototypes()) {
    for (const auto& [type, attach] : types) {
      errno = 0;
      const bool kernel_allows = kernel_offers(type, attach, static_cast<std::uint32_t>(proto.id), log);
      if (errno == EPERM) GTEST_SKIP() << "the kernel refuses bpf() here";
      if (!kernel_allows && withheld_by_build(type, static_cast<std::uint32_t>(proto.id))) continue;  // (below)
      EXPECT_EQ(helpers::allowed(type, proto.id), kernel_allows)
          << "bpf_" << proto.name << " in program type " << type << "; the kernel says: " << log.data();
      ++compared;
    }
  }
  EXPECT_GT(compared, 100);
}

// bpfvm's verdict on `insns` (the kernel's instruction struct) for a platform set up as the kernel's load.
bool bpfvm_accepts(const runtime::VerifierPlatform& platform, const std::vector<bpf_insn>& insns) {
  std::vector<isa::RawInsn> raw;
  for (const bpf_insn& in : insns) raw.push_back({static_cast<std::uint8_t>(in.code), in.dst_reg, in.src_reg, in.off, in.imm});
  return static_cast<bool>(verifier::verify(raw, platform));
}

// A struct_ops program's helpers, by its type and member: for each struct_ops type of the running
// kernel bpfvm knows (tcp_congestion_ops, bpf_dummy_ops) and a member or two, every helper bpfvm has,
// offered or refused as the kernel's verifier does (`call <helper>; r0 = 0; exit` at that member).
TEST_F(KernelOracle, StructOpsHelpers) {
  auto btf = btf__load_vmlinux_btf();
  if (!btf) GTEST_SKIP() << "no kernel BTF here";
  struct Case {
    const char* type;
    const char* member;
  };
  const Case cases[] = {{"tcp_congestion_ops", "ssthresh"}, {"tcp_congestion_ops", "release"}, {"bpf_dummy_ops", "test_1"}};
  std::vector<char> log(1 << 16);
  int compared = 0;
  for (const Case& c : cases) {
    const int id = btf__find_by_name_kind(btf, c.type, BTF_KIND_STRUCT);
    if (id <= 0) continue;
    const btf_type* t = btf__type_by_id(btf, static_cast<std::uint32_t>(id));
    std::uint32_t member = 0;
    while (member < btf_vlen(t) && std::string_view(btf__name_by_offset(btf, btf_members(t)[member].name_off)) != c.member) {
      ++member;
    }
    for (const helpers::Prototype& proto : helpers::prototypes()) {
      const std::vector<bpf_insn> insns = {{BPF_JMP | BPF_CALL, 0, 0, 0, static_cast<std::int32_t>(proto.id)},
                                           {BPF_ALU64 | BPF_MOV | BPF_K, 0, 0, 0, 0},
                                           {BPF_JMP | BPF_EXIT, 0, 0, 0, 0}};
      errno = 0;
      const bool loaded = kernel_loads(BPF_PROG_TYPE_STRUCT_OPS, member, insns, log, static_cast<std::uint32_t>(id));
      if (!loaded && errno == EPERM) GTEST_SKIP() << "the kernel refuses bpf() here";
      const std::string said(log.data());
      const bool kernel_allows = loaded || (said.find("unknown func") == std::string::npos &&
                                             said.find("cannot use helper") == std::string::npos &&
                                             said.find("not supported for program type") == std::string::npos);
      EXPECT_EQ(helpers::allowed_struct_ops(c.type, c.member, proto.id), kernel_allows)
          << "bpf_" << proto.name << " at " << c.type << "." << c.member << "; the kernel says: " << said;
      ++compared;
    }
  }
  btf__free(btf);
  if (compared == 0) GTEST_SKIP() << "the running kernel has none of these struct_ops types";
}

// Which arguments of the kernel's BTF tracepoints may be NULL (their names say "__nullable", or the
// kernel's own list says so) or an error pointer (read as numbers): for every tracepoint of the running
// kernel and every argument that points to a struct, a tp_btf program that reads through it unchecked is
// accepted or refused by bpfvm as by the kernel.
TEST_F(KernelOracle, BtfTracepointArgumentsThatMayBeNull) {
  auto kernel = obj::running_kernel_btf();
  if (!kernel) GTEST_SKIP() << "no kernel BTF here";
  const struct btf* b = (*kernel)->get();
  std::vector<char> log(1 << 16);
  int compared = 0, nullable = 0;
  std::string differ;
  for (std::uint32_t id = 1; id < btf__type_cnt(b); ++id) {
    const btf_type* t = btf__type_by_id(b, id);
    const char* name = btf__name_by_offset(b, t->name_off);
    if (!btf_is_typedef(t) || !name || !std::string_view(name).starts_with("btf_trace_")) continue;
    const btf_type* ptr = btf__type_by_id(b, t->type);
    const btf_type* proto = ptr && btf_is_ptr(ptr) ? btf__type_by_id(b, ptr->type) : nullptr;
    if (!proto || !btf_is_func_proto(proto)) continue;
    for (std::uint16_t i = 1; i < btf_vlen(proto); ++i) {
      const btf_type* at = btf__type_by_id(b, btf_params(proto)[i].type);
      while (at && (btf_is_mod(at) || btf_is_typedef(at))) at = btf__type_by_id(b, at->type);
      if (!at || !btf_is_ptr(at)) continue;
      const btf_type* to = btf__type_by_id(b, at->type);
      while (to && (btf_is_mod(to) || btf_is_typedef(to))) to = btf__type_by_id(b, to->type);
      if (!to || !btf_is_struct(to) || to->size == 0) continue;
      // r1 = ctx[i - 1]; r0 = *(u8 *)(r1 + 0); r0 = 0; exit
      const std::vector<bpf_insn> insns = {{BPF_LDX | BPF_MEM | BPF_DW, 1, 1, static_cast<std::int16_t>(8 * (i - 1)), 0},
                                           {BPF_LDX | BPF_MEM | BPF_B, 0, 1, 0, 0},
                                           {BPF_ALU64 | BPF_MOV | BPF_K, 0, 0, 0, 0},
                                           {BPF_JMP | BPF_EXIT, 0, 0, 0, 0}};
      errno = 0;
      const bool loaded = kernel_loads(BPF_PROG_TYPE_TRACING, BPF_TRACE_RAW_TP, insns, log, id);
      if (!loaded && errno == EPERM) GTEST_SKIP() << "the kernel refuses bpf() here";
      const std::string said(log.data());
      // (judged only where the kernel's verifier ran: not a tracepoint its loader refuses outright)
      if (!loaded && said.find("invalid mem access") == std::string::npos) continue;
      runtime::VerifierPlatform platform(BPF_PROG_TYPE_TRACING, {}, true);
      platform.set_expected_attach_type(BPF_TRACE_RAW_TP);
      ASSERT_TRUE(platform.set_btf_target(*kernel, id));
      if (bpfvm_accepts(platform, insns) != loaded) {
        const auto where = said.find("invalid mem access");
        differ += fmt::format(" {}#{}(kernel: {})", name + 10, i, loaded ? "accepts" : said.substr(where, said.find('\n', where) - where));
      }
      nullable += !loaded;
      ++compared;
    }
  }
  EXPECT_TRUE(differ.empty()) << "bpfvm differs at:" << differ;
  EXPECT_GT(compared, 100);
  RecordProperty("compared", compared);
  RecordProperty("refused", nullable);
}

// A struct_ops program's context and the kernel objects it may write: for every member of the running
// kernel's tcp_congestion_ops and bpf_dummy_ops, a read through each struct pointer argument unchecked;
// for a congestion control, a store of 1, 2, 4 and 8 bytes at every offset of the first 2 KiB of its
// tcp_sock. bpfvm accepts and refuses each program as the kernel does.
TEST_F(KernelOracle, StructOpsContextsAndWrites) {
  auto kernel = obj::running_kernel_btf();
  if (!kernel) GTEST_SKIP() << "no kernel BTF here";
  const struct btf* b = (*kernel)->get();
  std::vector<char> log(1 << 16);
  int compared = 0;
  std::string differ;
  auto judge = [&](std::uint32_t type_id, std::uint32_t member, const std::vector<bpf_insn>& insns, const std::string& what) {
    errno = 0;
    const bool loaded = kernel_loads(BPF_PROG_TYPE_STRUCT_OPS, member, insns, log, type_id);
    if (!loaded && errno == EPERM) return false;
    // (one platform per member: finding the member's stub scans the kernel's BTF)
    static std::map<std::pair<std::uint32_t, std::uint32_t>, std::unique_ptr<runtime::VerifierPlatform>> platforms;
    auto& made = platforms[{type_id, member}];
    if (!made) {
      made = std::make_unique<runtime::VerifierPlatform>(BPF_PROG_TYPE_STRUCT_OPS, std::vector<verifier::MapInfo>{}, true);
      if (!made->set_struct_ops_target(*kernel, type_id, member)) made.reset();
    }
    if (!made) return loaded ? (differ += " " + what, true) : true;
    if (bpfvm_accepts(*made, insns) != loaded) differ += fmt::format(" {}(kernel {})", what, loaded ? "accepts" : log.data());
    ++compared;
    return true;
  };
  for (const char* type : {"tcp_congestion_ops", "bpf_dummy_ops"}) {
    const int id = btf__find_by_name_kind(b, type, BTF_KIND_STRUCT);
    if (id <= 0) continue;
    const btf_type* t = btf__type_by_id(b, static_cast<std::uint32_t>(id));
    for (std::uint32_t m = 0; m < btf_vlen(t); ++m) {
      const char* mname = btf__name_by_offset(b, btf_members(t)[m].name_off);
      const btf_type* ptr = btf__type_by_id(b, btf_members(t)[m].type);
      const btf_type* proto = ptr && btf_is_ptr(ptr) ? btf__type_by_id(b, ptr->type) : nullptr;
      // (not a function: the kernel refuses the member, and so does bpfvm)
      const std::vector<bpf_insn> plain = {{BPF_ALU64 | BPF_MOV | BPF_K, 0, 0, 0, 0}, {BPF_JMP | BPF_EXIT, 0, 0, 0, 0}};
      if (!judge(static_cast<std::uint32_t>(id), m, plain, fmt::format("{}.{}", type, mname))) GTEST_SKIP() << "the kernel refuses bpf() here";
      if (!proto || !btf_is_func_proto(proto)) continue;
      for (std::uint16_t i = 0; i < btf_vlen(proto); ++i) {
        const btf_type* at = btf__type_by_id(b, btf_params(proto)[i].type);
        while (at && (btf_is_mod(at) || btf_is_typedef(at))) at = btf__type_by_id(b, at->type);
        if (!at || !btf_is_ptr(at)) continue;
        const std::vector<bpf_insn> read = {{BPF_LDX | BPF_MEM | BPF_DW, 1, 1, static_cast<std::int16_t>(8 * i), 0},
                                            {BPF_LDX | BPF_MEM | BPF_B, 0, 1, 0, 0},
                                            {BPF_ALU64 | BPF_MOV | BPF_K, 0, 0, 0, 0},
                                            {BPF_JMP | BPF_EXIT, 0, 0, 0, 0}};
        judge(static_cast<std::uint32_t>(id), m, read, fmt::format("{}.{} arg{}", type, mname, i));
      }
    }
    if (std::string_view(type) != "tcp_congestion_ops") continue;
    // Stores into the socket from cong_avoid (member 1): r1 = ctx[0]; *(uN *)(r1 + off) = 0.
    for (std::int16_t off = 0; off < 2048; ++off) {
      for (const std::uint8_t size : {BPF_B, BPF_H, BPF_W, BPF_DW}) {
        const std::vector<bpf_insn> store = {{BPF_LDX | BPF_MEM | BPF_DW, 1, 1, 0, 0},
                                             {static_cast<std::uint8_t>(BPF_ST | BPF_MEM | size), 1, 0, off, 0},
                                             {BPF_ALU64 | BPF_MOV | BPF_K, 0, 0, 0, 0},
                                             {BPF_JMP | BPF_EXIT, 0, 0, 0, 0}};
        judge(static_cast<std::uint32_t>(id), 1, store, fmt::format("store{} at {}", size, off));
      }
    }
  }
  EXPECT_TRUE(differ.empty()) << "bpfvm differs at:" << differ;
  if (compared == 0) GTEST_SKIP() << "the running kernel has none of these struct_ops types";
}

// The helpers a kernel's build may withhold (above): offered as upstream offers them where the running
// kernel does; skipped, saying which, where it does not.
TEST_F(KernelOracle, HelpersSomeBuildsWithhold) {
  std::vector<char> log(1 << 16);
  std::string withheld;
  for (const auto& [type, helper] : kWithheldByBuilds) {
    errno = 0;
    const bool offered = kernel_offers(type, type == BPF_PROG_TYPE_XDP ? BPF_XDP : 0, helper, log);
    if (errno == EPERM) GTEST_SKIP() << "the kernel refuses bpf() here";
    EXPECT_TRUE(helpers::allowed(type, helper)) << "helper #" << helper << " in program type " << type;
    if (offered) continue;
    withheld += fmt::format("{}helper #{} from program type {}", withheld.empty() ? "" : ", ", helper, type);
  }
  if (!withheld.empty()) GTEST_SKIP() << "the running kernel's build withholds " << withheld << " (upstream offers it)";
}

// The context rules and return ranges of the types bpfvm verifies from the kernel's answers
// (scripts/probe_contexts): every load and store of 1-8 bytes in the first 128 context bytes, and a
// spread of return values, accepted by the running kernel exactly when bpfvm's verifier accepts them.
// Timers expire after the runs that started them, and their callbacks change the maps as the kernel's
// do: what the helpers return at each step, the callbacks' keys, a callback that starts its timer again
// and one that cancels its own, an absolute expiry, and user space's writes and deletes freeing pending
// timers (tests/progs/timer_runs.bpf.c, tests/support/timer_scenario.hpp).
TEST_F(KernelOracle, TimersFire) {
  const std::string path = std::string(BPFVM_PROGS_DIR) + "/timer_runs.bpf.o";
  std::string refused;
  struct bpf_object* kobj = kernel_load(path, refused);
  if (!kobj) GTEST_SKIP() << refused;
  auto ours = Object::open_file(*rt_, path);
  ASSERT_TRUE(ours) << ours.error().to_string();
  const auto frame = ipv4_frame();
  const auto kmap = [&](const char* name) { return bpf_object__find_map_fd_by_name(kobj, name); };
  const testing::TimerSide kernel{
      [&](const char* name) {
        std::vector<std::uint8_t> out(frame.size() + 256);
        LIBBPF_OPTS(bpf_test_run_opts, run, .data_in = frame.data(), .data_out = out.data(),
                    .data_size_in = static_cast<std::uint32_t>(frame.size()),
                    .data_size_out = static_cast<std::uint32_t>(out.size()));
        ASSERT_EQ(bpf_prog_test_run_opts(bpf_program__fd(bpf_object__find_program_by_name(kobj, name)), &run), 0) << name;
        EXPECT_EQ(run.retval, 0u) << name;
      },
      [&](const char* map, const void* key, void* value) { return bpf_map_lookup_elem(kmap(map), key, value) == 0; },
      [&](const char* map, const void* key, const void* value) { EXPECT_EQ(bpf_map_update_elem(kmap(map), key, value, 0), 0); },
      [&](const char* map, const void* key) { EXPECT_EQ(bpf_map_delete_elem(kmap(map), key), 0); }};
  const testing::TimerSide mine = testing::bpfvm_timer_side(*ours, frame);
  const testing::TimerOutcome k = testing::run_timer_scenario(kernel);
  const testing::TimerOutcome m = testing::run_timer_scenario(mine);
  bpf_object__close(kobj);
  for (int i = 0; i < 16; ++i) EXPECT_EQ(m.results[i], k.results[i]) << "results[" << i << "]";
  for (int i = 0; i < 5; ++i) {
    SCOPED_TRACE("atimers[" + std::to_string(i) + "]");
    EXPECT_EQ(std::memcmp(&m.array[i], &k.array[i], sizeof k.array[i]), 0)
        << "fired " << m.array[i].fired << " (kernel " << k.array[i].fired << "), key " << m.array[i].key_seen << " ("
        << k.array[i].key_seen << "), cancelled " << m.array[i].cancelled << " (" << k.array[i].cancelled << ")";
  }
  EXPECT_EQ(std::memcmp(&m.hash77, &k.hash77, sizeof k.hash77), 0) << "fired " << m.hash77.fired << " (kernel " << k.hash77.fired << ")";
  EXPECT_EQ(m.hash88, k.hash88);
}

TEST_F(KernelOracle, ContextRulesPerProgramType) {
  const std::pair<std::uint32_t, std::uint32_t> variants[] = {
      {BPF_PROG_TYPE_CGROUP_SKB, BPF_CGROUP_INET_EGRESS},       {BPF_PROG_TYPE_CGROUP_SOCK, BPF_CGROUP_INET4_POST_BIND},
      {BPF_PROG_TYPE_SOCK_OPS, BPF_CGROUP_SOCK_OPS},            {BPF_PROG_TYPE_SK_SKB, BPF_SK_SKB_STREAM_VERDICT},
      {BPF_PROG_TYPE_SK_MSG, BPF_SK_MSG_VERDICT},               {BPF_PROG_TYPE_CGROUP_SOCK_ADDR, BPF_CGROUP_INET6_CONNECT},
      {BPF_PROG_TYPE_CGROUP_SOCK_ADDR, BPF_CGROUP_UDP4_RECVMSG}, {BPF_PROG_TYPE_FLOW_DISSECTOR, BPF_FLOW_DISSECTOR},
      {BPF_PROG_TYPE_CGROUP_SYSCTL, BPF_CGROUP_SYSCTL},         {BPF_PROG_TYPE_SK_LOOKUP, BPF_SK_LOOKUP},
      {BPF_PROG_TYPE_LWT_XMIT, 0},                              {BPF_PROG_TYPE_CGROUP_DEVICE, BPF_CGROUP_DEVICE}};
  std::vector<char> log(1 << 16);

  int compared = 0;
  for (const auto& [type, attach] : variants) {
    const auto range = return_range(type, attach);
    const std::int32_t ret = range ? static_cast<std::int32_t>(range->first) : 0;
    for (std::int32_t off = 0; off < 128; ++off) {
      for (std::uint32_t size : {1u, 2u, 4u, 8u}) {
        if (off % static_cast<std::int32_t>(size)) continue;
        const auto bits = static_cast<std::uint8_t>(size == 1 ? BPF_B : size == 2 ? BPF_H : size == 4 ? BPF_W : BPF_DW);
        for (bool store : {false, true}) {
          std::vector<bpf_insn> insns;
          if (store) {
            insns.push_back({BPF_ALU64 | BPF_MOV | BPF_K, 2, 0, 0, 0});
            insns.push_back({static_cast<std::uint8_t>(BPF_STX | BPF_MEM | bits), 1, 2, static_cast<std::int16_t>(off), 0});
          } else {
            insns.push_back({static_cast<std::uint8_t>(BPF_LDX | BPF_MEM | bits), 0, 1, static_cast<std::int16_t>(off), 0});
          }
          insns.push_back({BPF_ALU64 | BPF_MOV | BPF_K, 0, 0, 0, ret});
          insns.push_back({BPF_JMP | BPF_EXIT, 0, 0, 0, 0});
          const bool kernel = kernel_loads(type, attach, insns, log);
          if (!kernel && errno == EPERM) GTEST_SKIP() << "the kernel refuses bpf() here";
          const auto ours = context_field(type, off, size, store, attach);
          // bpfvm refuses the kernel pointers it does not model (sockets, flow keys): those only one way.
          const bool unmodeled = ours.why.find("does not model") != std::string::npos;
          if (!unmodeled) {
            EXPECT_EQ(ours.result != verifier::CtxField::Result::kDenied, kernel)
                << "type " << type << " attach " << attach << (store ? " store " : " load ") << size << "@" << off
                << ": bpfvm: " << ours.why << "; the kernel: " << log.data();
          }
          ++compared;
        }
      }
    }
    for (std::int32_t v : {-4096, -1, 0, 1, 2, 3, 4}) {
      const bool kernel =
          kernel_loads(type, attach, {{BPF_ALU64 | BPF_MOV | BPF_K, 0, 0, 0, v}, {BPF_JMP | BPF_EXIT, 0, 0, 0, 0}}, log);
      EXPECT_EQ(!range || (v >= range->first && v <= range->second), kernel) << "type " << type << " returns " << v;
    }
  }
  EXPECT_GT(compared, 1000);
}

#endif

}  // namespace
}  // namespace bpfvm::runtime
