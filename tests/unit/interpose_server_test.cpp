// The interposition's server called as the agent calls it: descriptors that are the process's own,
// mmap of maps and BPF output events with the kernel's layout, readiness an epoll sees, tracefs ids.
#include <fcntl.h>
#include <poll.h>
#include <linux/bpf.h>
#include <linux/perf_event.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <optional>
#include <thread>

#include <gtest/gtest.h>

#include <bpf/btf.h>

#include "bpfvm/base/file.hpp"
#include "bpfvm/obj/btf.hpp"
#include "bpfvm/base/process.hpp"
#include "bpfvm/interpose/server.hpp"
#include "bpfvm/maps/perf_event_array.hpp"
#include "bpfvm/maps/ringbuf.hpp"

namespace bpfvm::interpose {
namespace {

class ServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto dir = os::TempDirectory::create("bpfvm-interpose");
    ASSERT_TRUE(dir) << dir.error().to_string();
    dir_.emplace(std::move(*dir));
    auto s = Server::create({dir_->path() + "/pins", false, nullptr, nullptr});
    ASSERT_TRUE(s) << s.error().to_string();
    server_ = std::move(*s);
  }

  std::int64_t call(std::uint64_t nr, std::uint64_t a0 = 0, std::uint64_t a1 = 0, std::uint64_t a2 = 0,
                    std::uint64_t a3 = 0, std::uint64_t a4 = 0, std::uint64_t a5 = 0, bool* served = nullptr) {
    const std::uint64_t args[6] = {a0, a1, a2, a3, a4, a5};
    std::int64_t rax = INT64_MIN;
    const bool s = server_->serve(nr, args, &rax);
    if (served) *served = s;
    return rax;
  }
  std::int64_t bpf(int cmd, union bpf_attr& attr) {
    return call(SYS_bpf, static_cast<std::uint64_t>(cmd), reinterpret_cast<std::uint64_t>(&attr), sizeof attr);
  }
  int map_create(std::uint32_t type, std::uint32_t key, std::uint32_t value, std::uint32_t entries, std::uint32_t flags = 0) {
    union bpf_attr a {};
    a.map_type = type;
    a.key_size = key;
    a.value_size = value;
    a.max_entries = entries;
    a.map_flags = flags;
    return static_cast<int>(bpf(BPF_MAP_CREATE, a));
  }

  std::optional<os::TempDirectory> dir_;
  std::unique_ptr<Server> server_;  // (goes first: its maps live in dir_)
};

TEST_F(ServerTest, ObjectsAreTheProcessesOwnDescriptors) {
  const int fd = map_create(BPF_MAP_TYPE_ARRAY, 4, 8, 4);
  ASSERT_GE(fd, 0);
  EXPECT_EQ(::fcntl(fd, F_GETFD), FD_CLOEXEC);  // a real descriptor, close-on-exec as bpf()'s
  // dup: the new descriptor names the same map.
  const auto copy = static_cast<int>(call(SYS_dup, static_cast<std::uint64_t>(fd)));
  ASSERT_GE(copy, 0);
  std::uint32_t key = 1;
  std::uint64_t value = 42, out = 0;
  union bpf_attr a {};
  a.map_fd = static_cast<std::uint32_t>(fd);
  a.key = reinterpret_cast<std::uint64_t>(&key);
  a.value = reinterpret_cast<std::uint64_t>(&value);
  ASSERT_EQ(bpf(BPF_MAP_UPDATE_ELEM, a), 0);
  a.map_fd = static_cast<std::uint32_t>(copy);
  a.value = reinterpret_cast<std::uint64_t>(&out);
  ASSERT_EQ(bpf(BPF_MAP_LOOKUP_ELEM, a), 0);
  EXPECT_EQ(out, 42u);
  // close: the descriptor goes, and bpf() no longer knows it; the copy still works.
  EXPECT_EQ(call(SYS_close, static_cast<std::uint64_t>(fd)), 0);
  EXPECT_EQ(::fcntl(fd, F_GETFD), -1);
  a.map_fd = static_cast<std::uint32_t>(fd);
  EXPECT_EQ(bpf(BPF_MAP_LOOKUP_ELEM, a), -EBADF);
  a.map_fd = static_cast<std::uint32_t>(copy);
  EXPECT_EQ(bpf(BPF_MAP_LOOKUP_ELEM, a), 0);
  // A descriptor that is not bpfvm's goes to the kernel.
  bool served = true;
  call(SYS_close, 12345, 0, 0, 0, 0, 0, &served);
  EXPECT_FALSE(served);
  call(SYS_close, static_cast<std::uint64_t>(copy));
}

TEST_F(ServerTest, BadAttrPointerIsEfaultNotACrash) {
  EXPECT_EQ(call(SYS_bpf, BPF_MAP_CREATE, 0x10, 72), -EFAULT);
}

// The buffers an attr points at are the application's too: a bad one is EFAULT, as the kernel's
// copy_from_user/copy_to_user give, and the application goes on (bpfvm runs inside it).
TEST_F(ServerTest, BadNestedPointersAreEfaultNotACrash) {
  const int fd = map_create(BPF_MAP_TYPE_HASH, 4, 8, 4);
  ASSERT_GE(fd, 0);
  // A page that cannot be read, and one that can be read but not written.
  void* none = ::mmap(nullptr, 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  void* ro = ::mmap(nullptr, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  ASSERT_NE(none, MAP_FAILED);
  ASSERT_NE(ro, MAP_FAILED);
  std::uint32_t key = 1;
  std::uint64_t value = 7;
  union bpf_attr a {};
  a.map_fd = static_cast<std::uint32_t>(fd);
  a.key = reinterpret_cast<std::uint64_t>(none);
  a.value = reinterpret_cast<std::uint64_t>(&value);
  EXPECT_EQ(bpf(BPF_MAP_UPDATE_ELEM, a), -EFAULT);
  a.key = reinterpret_cast<std::uint64_t>(&key);
  a.value = 0;
  EXPECT_EQ(bpf(BPF_MAP_UPDATE_ELEM, a), -EFAULT);
  a.value = reinterpret_cast<std::uint64_t>(&value);
  ASSERT_EQ(bpf(BPF_MAP_UPDATE_ELEM, a), 0);
  a.value = reinterpret_cast<std::uint64_t>(ro);  // a lookup writes the value
  EXPECT_EQ(bpf(BPF_MAP_LOOKUP_ELEM, a), -EFAULT);
  a.value = reinterpret_cast<std::uint64_t>(ro) + 4092;  // 4 of its 8 bytes past the page
  EXPECT_EQ(bpf(BPF_MAP_UPDATE_ELEM, a), -EFAULT);
  union bpf_attr next {};
  next.map_fd = static_cast<std::uint32_t>(fd);
  next.next_key = reinterpret_cast<std::uint64_t>(ro);
  EXPECT_EQ(bpf(BPF_MAP_GET_NEXT_KEY, next), -EFAULT);
  union bpf_attr batch {};
  batch.batch.map_fd = static_cast<std::uint32_t>(fd);
  batch.batch.keys = reinterpret_cast<std::uint64_t>(none);
  batch.batch.values = reinterpret_cast<std::uint64_t>(none);
  batch.batch.count = 4;
  EXPECT_EQ(bpf(BPF_MAP_LOOKUP_BATCH, batch), -EFAULT);
  // A program whose instructions, license or log cannot be reached.
  const std::uint64_t insns[2] = {0x00000000000000b7ull, 0x0000000000000095ull};  // r0 = 0; exit
  char log[256];
  union bpf_attr load {};
  load.prog_type = BPF_PROG_TYPE_SOCKET_FILTER;
  load.insn_cnt = 2;
  load.insns = reinterpret_cast<std::uint64_t>(none);
  load.license = reinterpret_cast<std::uint64_t>("GPL");
  EXPECT_EQ(bpf(BPF_PROG_LOAD, load), -EFAULT);
  load.insns = reinterpret_cast<std::uint64_t>(insns);
  load.license = reinterpret_cast<std::uint64_t>(none);
  EXPECT_EQ(bpf(BPF_PROG_LOAD, load), -EFAULT);
  load.license = reinterpret_cast<std::uint64_t>("GPL");
  load.log_level = 1;
  load.log_size = sizeof log;
  load.log_buf = reinterpret_cast<std::uint64_t>(ro);
  EXPECT_EQ(bpf(BPF_PROG_LOAD, load), -EFAULT);
  load.log_buf = reinterpret_cast<std::uint64_t>(log);
  const auto prog = bpf(BPF_PROG_LOAD, load);
  EXPECT_GE(prog, 0);
  union bpf_attr info {};
  info.info.bpf_fd = static_cast<std::uint32_t>(fd);
  info.info.info_len = 64;
  info.info.info = reinterpret_cast<std::uint64_t>(ro);
  EXPECT_EQ(bpf(BPF_OBJ_GET_INFO_BY_FD, info), -EFAULT);
  struct bpf_prog_info pinfo {};  // an info whose instruction array cannot be written
  pinfo.xlated_prog_len = 16;
  pinfo.xlated_prog_insns = reinterpret_cast<std::uint64_t>(ro);
  info.info.bpf_fd = static_cast<std::uint32_t>(prog);
  info.info.info_len = sizeof pinfo;
  info.info.info = reinterpret_cast<std::uint64_t>(&pinfo);
  EXPECT_EQ(bpf(BPF_OBJ_GET_INFO_BY_FD, info), -EFAULT);
  std::uint64_t xlated[2] = {};
  pinfo.xlated_prog_insns = reinterpret_cast<std::uint64_t>(xlated);
  EXPECT_EQ(bpf(BPF_OBJ_GET_INFO_BY_FD, info), 0);
  EXPECT_EQ(xlated[1], insns[1]);
  union bpf_attr pin {};
  pin.pathname = reinterpret_cast<std::uint64_t>(none);
  pin.bpf_fd = static_cast<std::uint32_t>(fd);
  EXPECT_EQ(bpf(BPF_OBJ_PIN, pin), -EFAULT);
  ::munmap(none, 4096);
  ::munmap(ro, 4096);
}

TEST_F(ServerTest, MmapableArrayMapsItsValues) {
  const int fd = map_create(BPF_MAP_TYPE_ARRAY, 4, 8, 16, BPF_F_MMAPABLE);
  ASSERT_GE(fd, 0);
  const auto addr = call(SYS_mmap, 0, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, static_cast<std::uint64_t>(fd), 0);
  ASSERT_GT(addr, 0) << -addr;
  auto* values = reinterpret_cast<std::uint64_t*>(addr);
  values[3] = 77;  // written through the mapping, read by bpf()
  std::uint32_t key = 3;
  std::uint64_t out = 0;
  union bpf_attr a {};
  a.map_fd = static_cast<std::uint32_t>(fd);
  a.key = reinterpret_cast<std::uint64_t>(&key);
  a.value = reinterpret_cast<std::uint64_t>(&out);
  ASSERT_EQ(bpf(BPF_MAP_LOOKUP_ELEM, a), 0);
  EXPECT_EQ(out, 77u);
  ::munmap(values, 4096);
  // Past the values, or a map without BPF_F_MMAPABLE: the kernel's errors.
  EXPECT_EQ(call(SYS_mmap, 0, 8192, PROT_READ, MAP_SHARED, static_cast<std::uint64_t>(fd), 0), -EINVAL);
  const int plain = map_create(BPF_MAP_TYPE_HASH, 4, 8, 16);
  EXPECT_EQ(call(SYS_mmap, 0, 4096, PROT_READ, MAP_SHARED, static_cast<std::uint64_t>(plain), 0), -ENODEV);
}

TEST_F(ServerTest, BpfOutputEventIsMappedAndPolled) {
  const int array = map_create(BPF_MAP_TYPE_PERF_EVENT_ARRAY, 4, 4, 1);
  ASSERT_GE(array, 0);
  perf_event_attr attr{};
  attr.type = PERF_TYPE_SOFTWARE;
  attr.size = sizeof attr;
  attr.config = PERF_COUNT_SW_BPF_OUTPUT;
  attr.sample_type = PERF_SAMPLE_RAW;
  const auto ev = static_cast<int>(call(SYS_perf_event_open, reinterpret_cast<std::uint64_t>(&attr),
                                        static_cast<std::uint64_t>(-1), 0, static_cast<std::uint64_t>(-1), PERF_FLAG_FD_CLOEXEC));
  ASSERT_GE(ev, 0);
  const std::size_t len = 4096 * 3;
  const auto addr = call(SYS_mmap, 0, len, PROT_READ | PROT_WRITE, MAP_SHARED, static_cast<std::uint64_t>(ev), 0);
  ASSERT_GT(addr, 0) << -addr;
  EXPECT_EQ(call(SYS_ioctl, static_cast<std::uint64_t>(ev), PERF_EVENT_IOC_ENABLE, 0), 0);
  std::uint32_t key = 0, value = static_cast<std::uint32_t>(ev);
  union bpf_attr a {};
  a.map_fd = static_cast<std::uint32_t>(array);
  a.key = reinterpret_cast<std::uint64_t>(&key);
  a.value = reinterpret_cast<std::uint64_t>(&value);
  ASSERT_EQ(bpf(BPF_MAP_UPDATE_ELEM, a), 0);

  const int ep = ::epoll_create1(EPOLL_CLOEXEC);
  epoll_event want{EPOLLIN, {}};
  ASSERT_EQ(::epoll_ctl(ep, EPOLL_CTL_ADD, ev, &want), 0);
  epoll_event got{};
  call(SYS_epoll_wait);  // (what the agent does before the kernel waits)
  EXPECT_EQ(::epoll_wait(ep, &got, 1, 0), 0);
  // A program's output (as bpf_perf_event_output writes it, from any process) wakes the epoll.
  auto object = server_->runtime().object_for_fd(array);
  ASSERT_TRUE(object);
  auto& map = static_cast<maps::PerfEventArray&>(std::get<std::shared_ptr<runtime::Map>>(*object)->impl());
  const std::uint8_t sample[4] = {1, 2, 3, 4};
  const std::span<const std::uint8_t> parts[1] = {sample};
  ASSERT_EQ(map.output(0, 0, parts), 0);
  EXPECT_EQ(::epoll_wait(ep, &got, 1, 5000), 1);
  // The kernel's layout in the mapping: the sample after perf_event_mmap_page.
  const auto* page = reinterpret_cast<const perf_event_mmap_page*>(addr);
  EXPECT_EQ(page->data_offset, 4096u);
  ASSERT_GT(page->data_head, 0u);
  const auto* header = reinterpret_cast<const perf_event_header*>(addr + 4096);
  EXPECT_EQ(header->type, PERF_RECORD_SAMPLE);
  // Consumed: the next wait finds nothing to read.
  const_cast<perf_event_mmap_page*>(page)->data_tail = page->data_head;
  call(SYS_epoll_wait);
  EXPECT_EQ(::epoll_wait(ep, &got, 1, 0), 0);
  ::close(ep);
}

// A steady stream of records: the application is told of them a batch at a time (the map's thread, every
// 200 us while the stream lasts), not once per record as its own waits would otherwise find one more;
// and none is left untold when the stream ends.
TEST_F(ServerTest, RingBufferStreamWakesTheConsumerInBatches) {
  constexpr std::uint32_t kData = 1 << 22;
  const int fd = map_create(BPF_MAP_TYPE_RINGBUF, 0, 0, kData);
  ASSERT_GE(fd, 0);
  const auto consumer = call(SYS_mmap, 0, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, static_cast<std::uint64_t>(fd), 0);
  ASSERT_GT(consumer, 0) << -consumer;
  const auto producer = call(SYS_mmap, 0, 4096 + 2 * kData, PROT_READ, MAP_SHARED, static_cast<std::uint64_t>(fd), 4096);
  ASSERT_GT(producer, 0) << -producer;
  auto* cons_pos = reinterpret_cast<std::uint64_t*>(consumer);
  const auto* prod_pos = reinterpret_cast<const volatile std::uint64_t*>(producer);
  const int ep = ::epoll_create1(EPOLL_CLOEXEC);
  epoll_event want{EPOLLIN, {}};
  ASSERT_EQ(::epoll_ctl(ep, EPOLL_CTL_ADD, fd, &want), 0);

  auto object = server_->runtime().object_for_fd(fd);
  ASSERT_TRUE(object);
  auto& ring = static_cast<maps::RingBuffer&>(std::get<std::shared_ptr<runtime::Map>>(*object)->impl());
  constexpr std::uint64_t kRecords = 200000, kRecordSize = 16;  // 8 bytes and the header
  std::atomic<bool> done{false};
  std::thread program([&] {
    for (std::uint64_t i = 0; i < kRecords; ++i) {
      while (ring.output(&i, sizeof i, 0) != 0) std::this_thread::yield();  // (full: the consumer is behind)
      if (i % 16 == 15) std::this_thread::yield();
    }
    done = true;
  });
  std::uint64_t wakes = 0, read = 0;
  const auto start = std::chrono::steady_clock::now();
  const auto deadline = start + std::chrono::seconds(30);
  while (read < kRecords && std::chrono::steady_clock::now() < deadline) {
    call(SYS_epoll_wait);  // (what the agent does before the kernel waits)
    epoll_event got{};
    if (::epoll_wait(ep, &got, 1, 1000) != 1) continue;
    ++wakes;
    const std::uint64_t head = *prod_pos;
    read += (head - *cons_pos) / kRecordSize;
    __atomic_store_n(cons_pos, head, __ATOMIC_RELEASE);
  }
  const auto took = std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - start);
  program.join();
  EXPECT_TRUE(done.load());
  EXPECT_EQ(read, kRecords);  // the last ones told too, after the stream
  // At most one wake-up per 200 us while records stream in (a few more where the producer paused for
  // over a millisecond, as a loaded machine makes it; without batching there were 10-25 per ms here).
  EXPECT_LE(wakes, static_cast<std::uint64_t>(took.count()) / 200 + 10) << wakes << " wake-ups for " << read
                                                                        << " records in " << took.count() << " us";
  ::close(ep);
}

TEST_F(ServerTest, TracepointIdsAndEventsBpfvmCannotMake) {
  bool served = false;
  const char* path = "/sys/kernel/tracing/events/syscalls/sys_enter_openat/id";
  const auto fd = call(SYS_openat, static_cast<std::uint64_t>(AT_FDCWD), reinterpret_cast<std::uint64_t>(path), O_RDONLY | O_CLOEXEC,
                       0, 0, 0, &served);
  ASSERT_TRUE(served);
  ASSERT_GE(fd, 0);
  char text[32] = {};
  ASSERT_GT(::read(static_cast<int>(fd), text, sizeof text - 1), 0);
  ::close(static_cast<int>(fd));
  const std::uint64_t id = std::strtoull(text, nullptr, 10);
  EXPECT_EQ(server_->tracepoint_name(id), "syscalls/sys_enter_openat");
  perf_event_attr attr{};
  attr.type = PERF_TYPE_TRACEPOINT;
  attr.size = sizeof attr;
  attr.config = id;
  const auto ev = call(SYS_perf_event_open, reinterpret_cast<std::uint64_t>(&attr), static_cast<std::uint64_t>(-1), 0,
                       static_cast<std::uint64_t>(-1), PERF_FLAG_FD_CLOEXEC);
  EXPECT_GE(ev, 0);
  // A tracepoint id nobody served, and a kprobe: no events in user space.
  attr.config = 987654321;
  EXPECT_EQ(call(SYS_perf_event_open, reinterpret_cast<std::uint64_t>(&attr), static_cast<std::uint64_t>(-1), 0,
                 static_cast<std::uint64_t>(-1), 0),
            -EOPNOTSUPP);
  // Files bpfvm does not answer are the kernel's.
  call(SYS_openat, static_cast<std::uint64_t>(AT_FDCWD), reinterpret_cast<std::uint64_t>("/etc/hostname"), O_RDONLY, 0, 0, 0,
       &served);
  EXPECT_FALSE(served);
  // BPF_LINK_CREATE's feature probe: a perf link to no event is EBADF.
  call(SYS_close, static_cast<std::uint64_t>(ev));
}

// Tracing programs link at the target they were verified against: fentry on a syscall entry by
// BPF_LINK_CREATE (libbpf's attach) and by BPF_RAW_TRACEPOINT_OPEN with no name (BCC's attach_kfunc),
// a link the agents apply; fentry on another kernel function has no events (EOPNOTSUPP), and a
// retargeting LINK_CREATE is EINVAL.
TEST_F(ServerTest, TracingProgramsLinkAtTheirTarget) {
  auto btf = obj::running_kernel_btf();
  if (!btf) GTEST_SKIP() << "no kernel BTF: " << btf.error().to_string();
  const std::uint64_t insns[2] = {0x00000000000000b7ull, 0x0000000000000095ull};  // r0 = 0; exit
  const auto load_at = [&](const char* function, std::uint32_t attach_type) {
    const int id = btf__find_by_name_kind((*btf)->get(), function, BTF_KIND_FUNC);
    union bpf_attr load {};
    load.prog_type = BPF_PROG_TYPE_TRACING;
    load.expected_attach_type = attach_type;
    load.attach_btf_id = static_cast<std::uint32_t>(id);
    load.insn_cnt = 2;
    load.insns = reinterpret_cast<std::uint64_t>(insns);
    load.license = reinterpret_cast<std::uint64_t>("GPL");
    return id > 0 ? bpf(BPF_PROG_LOAD, load) : -ENOENT;
  };
  const auto entry = load_at("do_sys_openat2", BPF_TRACE_FENTRY);
  const auto exit = load_at("__x64_sys_openat", BPF_TRACE_FEXIT);
  const auto other = load_at("vfs_read", BPF_TRACE_FENTRY);
  ASSERT_GE(entry, 0);
  ASSERT_GE(exit, 0);
  ASSERT_GE(other, 0);  // (it loads, as on the kernel)
  union bpf_attr link {};
  link.link_create.prog_fd = static_cast<std::uint32_t>(entry);
  link.link_create.attach_type = BPF_TRACE_FENTRY;
  EXPECT_GE(bpf(BPF_LINK_CREATE, link), 0);
  union bpf_attr open {};
  open.raw_tracepoint.prog_fd = static_cast<std::uint32_t>(exit);
  EXPECT_GE(bpf(BPF_RAW_TRACEPOINT_OPEN, open), 0);
  int found = 0;
  for (const auto& r : server_->runtime().registry()->list(runtime::ObjectKind::kLink)) {
    found += (r.value("kind", "") == "fentry" && r.value("name", "") == "do_sys_openat2" && r.value("agent", false)) ||
             (r.value("kind", "") == "fexit" && r.value("name", "") == "__x64_sys_openat" && r.value("agent", false));
  }
  EXPECT_EQ(found, 2) << "fentry and fexit links the agents apply";
  open.raw_tracepoint.prog_fd = static_cast<std::uint32_t>(other);
  EXPECT_EQ(bpf(BPF_RAW_TRACEPOINT_OPEN, open), -EOPNOTSUPP);
  link.link_create.prog_fd = static_cast<std::uint32_t>(other);
  EXPECT_EQ(bpf(BPF_LINK_CREATE, link), -EOPNOTSUPP);
  link.link_create.prog_fd = static_cast<std::uint32_t>(entry);
  link.link_create.target_btf_id = 1;
  EXPECT_EQ(bpf(BPF_LINK_CREATE, link), -EINVAL);
}

// What BCC reads of its kernel: kprobes on syscall-entry functions (the kprobe PMU, the function's name
// in config1), the raw syscall tracepoints, bpfvm's kallsyms and trace pipe.
TEST_F(ServerTest, KprobesRawSyscallTracepointsAndBccsFiles) {
  const std::uint64_t insns[2] = {0x00000000000000b7ull, 0x0000000000000095ull};  // r0 = 0; exit
  union bpf_attr load {};
  load.prog_type = BPF_PROG_TYPE_KPROBE;
  load.insn_cnt = 2;
  load.insns = reinterpret_cast<std::uint64_t>(insns);
  load.license = reinterpret_cast<std::uint64_t>("GPL");
  const auto kprobe = bpf(BPF_PROG_LOAD, load);
  ASSERT_GE(kprobe, 0);
  load.prog_type = BPF_PROG_TYPE_RAW_TRACEPOINT;
  const auto raw = bpf(BPF_PROG_LOAD, load);
  ASSERT_GE(raw, 0);

  // The kprobe PMU's type, as its sysfs file says (the machine's, or bpfvm's where it has none).
  bool served = false;
  const auto type_fd = call(SYS_openat, static_cast<std::uint64_t>(AT_FDCWD),
                            reinterpret_cast<std::uint64_t>("/sys/bus/event_source/devices/kprobe/type"), O_RDONLY, 0, 0, 0,
                            &served);
  std::uint32_t type = 6;
  if (served && type_fd >= 0) {
    char text[16] = {};
    ASSERT_GT(::read(static_cast<int>(type_fd), text, sizeof text - 1), 0);
    type = static_cast<std::uint32_t>(std::strtoul(text, nullptr, 10));
    ::close(static_cast<int>(type_fd));
  } else if (const auto real = os::read_text_file("/sys/bus/event_source/devices/kprobe/type")) {
    type = static_cast<std::uint32_t>(std::strtoul(real->c_str(), nullptr, 10));
  }
  perf_event_attr attr{};
  attr.type = type;
  attr.size = sizeof attr;
  attr.config = 1;  // retprobe
  attr.config1 = reinterpret_cast<std::uint64_t>("do_sys_openat2");
  const auto ev = call(SYS_perf_event_open, reinterpret_cast<std::uint64_t>(&attr), static_cast<std::uint64_t>(-1), 0,
                       static_cast<std::uint64_t>(-1), PERF_FLAG_FD_CLOEXEC);
  ASSERT_GE(ev, 0);
  EXPECT_EQ(call(SYS_ioctl, static_cast<std::uint64_t>(ev), PERF_EVENT_IOC_SET_BPF, static_cast<std::uint64_t>(kprobe)), 0);
  bool found = false;
  for (const auto& r : server_->runtime().registry()->list(runtime::ObjectKind::kLink)) {
    found |= r.value("kind", "") == "kretprobe" && r.value("name", "") == "do_sys_openat2" && r.value("agent", false);
  }
  EXPECT_TRUE(found) << "a kretprobe link the agents apply";
  attr.config1 = reinterpret_cast<std::uint64_t>("vfs_read");  // a kernel function that is no syscall entry
  EXPECT_EQ(call(SYS_perf_event_open, reinterpret_cast<std::uint64_t>(&attr), static_cast<std::uint64_t>(-1), 0,
                 static_cast<std::uint64_t>(-1), 0),
            -EOPNOTSUPP);

  // BPF_RAW_TRACEPOINT_OPEN: sys_enter is a link; the scheduler's have no events here.
  union bpf_attr open {};
  open.raw_tracepoint.name = reinterpret_cast<std::uint64_t>("sys_enter");
  open.raw_tracepoint.prog_fd = static_cast<std::uint32_t>(raw);
  const auto link = bpf(BPF_RAW_TRACEPOINT_OPEN, open);
  EXPECT_GE(link, 0);
  open.raw_tracepoint.prog_fd = static_cast<std::uint32_t>(kprobe);
  EXPECT_EQ(bpf(BPF_RAW_TRACEPOINT_OPEN, open), -EINVAL);  // not a raw tracepoint program
  open.raw_tracepoint.name = reinterpret_cast<std::uint64_t>("sched_switch");
  open.raw_tracepoint.prog_fd = static_cast<std::uint32_t>(raw);
  EXPECT_EQ(bpf(BPF_RAW_TRACEPOINT_OPEN, open), -EOPNOTSUPP);

  // /proc/kallsyms lists no function bpfvm cannot probe, but the kernel's mark of fentry where it has
  // it (BCC's support_kfunc looks for bpf_trampoline_link_prog; bpfvm runs fentry on what it lists).
  const auto syms = call(SYS_openat, static_cast<std::uint64_t>(AT_FDCWD), reinterpret_cast<std::uint64_t>("/proc/kallsyms"),
                         O_RDONLY | O_CLOEXEC, 0, 0, 0, &served);
  if (served) {
    ASSERT_GE(syms, 0);
    std::string text;
    char buf[65536];
    for (ssize_t n; (n = ::read(static_cast<int>(syms), buf, sizeof buf)) > 0;) text.append(buf, static_cast<std::size_t>(n));
    ::close(static_cast<int>(syms));
    const auto kernel = os::read_text_file("/proc/kallsyms");
    const bool marked = kernel && kernel->find(" bpf_trampoline_link_prog\n") != std::string::npos;
    EXPECT_EQ(text.find(" bpf_trampoline_link_prog\n") != std::string::npos, marked);
    EXPECT_EQ(text.find(" vfs_read\n"), std::string::npos);
  }

  // trace_pipe: a stream of bpfvm's trace lines, each read once.
  const auto pipe = call(SYS_openat, static_cast<std::uint64_t>(AT_FDCWD),
                         reinterpret_cast<std::uint64_t>("/sys/kernel/tracing/trace_pipe"), O_RDONLY | O_CLOEXEC, 0, 0, 0,
                         &served);
  ASSERT_TRUE(served);
  ASSERT_GE(pipe, 0);
  auto ring = server_->runtime().trace_pipe();
  ASSERT_TRUE(ring);
  const char line[] = "  wl-1 [000] d..31 1.000000: bpf_trace_printk: hello\n";
  ASSERT_EQ(0, (*ring)->output(line, sizeof line - 1, 0));
  std::string got;
  pollfd p{static_cast<int>(pipe), POLLIN, 0};
  while (got.size() < sizeof line - 1 && ::poll(&p, 1, 5000) > 0) {
    char buf[256];
    const ssize_t n = ::read(static_cast<int>(pipe), buf, sizeof buf);
    if (n <= 0) break;
    got.append(buf, static_cast<std::size_t>(n));
  }
  EXPECT_EQ(got, line);
  ::close(static_cast<int>(pipe));
  call(SYS_close, static_cast<std::uint64_t>(ev));
}

}  // namespace
}  // namespace bpfvm::interpose
