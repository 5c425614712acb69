// The bpf() command interface: the kernel's union bpf_attr in, the kernel's errno values out.
#include <gtest/gtest.h>
#include <linux/bpf.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <set>

#include "bpfvm/isa/assembler.hpp"
#include "bpfvm/isa/codec.hpp"
#include <fmt/format.h>

#include "bpfvm/maps/cpu.hpp"
#include "bpfvm/runtime/runtime.hpp"

namespace bpfvm::runtime {
namespace {

std::uint64_t ptr(const void* p) { return reinterpret_cast<std::uint64_t>(p); }

class BpfTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = std::filesystem::temp_directory_path() / ("bpfvm-bpftest-" + std::to_string(::getpid()));
    std::filesystem::remove_all(root_);
    rt_ = std::make_unique<Runtime>(RuntimeOptions{root_.string()});
  }
  void TearDown() override { std::filesystem::remove_all(root_); }

  long call(int cmd, union bpf_attr& a) {
    errno = 0;
    return rt_->bpf(cmd, &a, sizeof a);
  }
  int create_map(std::uint32_t type, std::uint32_t key, std::uint32_t value, std::uint32_t max, std::uint32_t flags = 0) {
    union bpf_attr a {};
    a.map_type = type;
    a.key_size = key;
    a.value_size = value;
    a.max_entries = max;
    a.map_flags = flags;
    std::strcpy(a.map_name, "test_map");
    return static_cast<int>(call(BPF_MAP_CREATE, a));
  }
  long elem(int cmd, int fd, const void* key, void* value, std::uint64_t flags = 0) {
    union bpf_attr a {};
    a.map_fd = static_cast<std::uint32_t>(fd);
    a.key = ptr(key);
    a.value = ptr(value);
    a.flags = flags;
    return call(cmd, a);
  }
  int load(std::string_view source, std::uint32_t type = BPF_PROG_TYPE_SOCKET_FILTER, std::string* log = nullptr,
           const int* fd_array = nullptr) {
    auto insns = isa::assemble(source, isa::AsmSyntax::kKernel);
    EXPECT_TRUE(insns) << (insns ? "" : insns.error().to_string());
    if (!insns) return -1;
    auto wire = isa::to_wire(*insns);
    char log_buf[4096] = {};
    union bpf_attr a {};
    a.prog_type = type;
    a.insns = ptr(wire.data());
    a.insn_cnt = static_cast<std::uint32_t>(insns->size());
    a.license = ptr("GPL");
    a.log_buf = ptr(log_buf);
    a.log_size = sizeof log_buf;
    a.log_level = 1;
    a.fd_array = ptr(fd_array);
    std::strcpy(a.prog_name, "test_prog");
    const long fd = call(BPF_PROG_LOAD, a);
    if (log) *log = log_buf;
    return static_cast<int>(fd);
  }

  std::filesystem::path root_;
  std::unique_ptr<Runtime> rt_;
};

TEST_F(BpfTest, HashMapElementCommandsAndErrnos) {
  const int fd = create_map(BPF_MAP_TYPE_HASH, 4, 8, 2);
  ASSERT_GE(fd, 0);
  std::uint32_t k1 = 1, k2 = 2, k3 = 3, next = 0;
  std::uint64_t v = 10, out = 0;
  EXPECT_EQ(elem(BPF_MAP_LOOKUP_ELEM, fd, &k1, &out), -1);
  EXPECT_EQ(errno, ENOENT);
  EXPECT_EQ(elem(BPF_MAP_UPDATE_ELEM, fd, &k1, &v, BPF_EXIST), -1);
  EXPECT_EQ(errno, ENOENT);
  EXPECT_EQ(elem(BPF_MAP_UPDATE_ELEM, fd, &k1, &v, BPF_NOEXIST), 0);
  EXPECT_EQ(elem(BPF_MAP_UPDATE_ELEM, fd, &k1, &v, BPF_NOEXIST), -1);
  EXPECT_EQ(errno, EEXIST);
  EXPECT_EQ(elem(BPF_MAP_UPDATE_ELEM, fd, &k2, &v, BPF_ANY), 0);
  EXPECT_EQ(elem(BPF_MAP_UPDATE_ELEM, fd, &k3, &v, BPF_ANY), -1);
  EXPECT_EQ(errno, E2BIG);
  EXPECT_EQ(elem(BPF_MAP_UPDATE_ELEM, fd, &k1, &v, 42), -1);
  EXPECT_EQ(errno, EINVAL);
  EXPECT_EQ(elem(BPF_MAP_LOOKUP_ELEM, fd, &k1, &out), 0);
  EXPECT_EQ(out, 10u);
  // get_next_key: NULL starts, a missing key restarts, the last key ends with ENOENT.
  union bpf_attr a {};
  a.map_fd = static_cast<std::uint32_t>(fd);
  a.next_key = ptr(&next);
  EXPECT_EQ(call(BPF_MAP_GET_NEXT_KEY, a), 0);
  const std::uint32_t first = next;
  EXPECT_TRUE(first == 1 || first == 2);
  a.key = ptr(&k3);
  EXPECT_EQ(call(BPF_MAP_GET_NEXT_KEY, a), 0);
  EXPECT_EQ(next, first);
  std::uint32_t cur = first;
  a.key = ptr(&cur);
  EXPECT_EQ(call(BPF_MAP_GET_NEXT_KEY, a), 0);
  EXPECT_EQ(next, first == 1 ? 2u : 1u);
  cur = next;
  EXPECT_EQ(call(BPF_MAP_GET_NEXT_KEY, a), -1);
  EXPECT_EQ(errno, ENOENT);
  EXPECT_EQ(elem(BPF_MAP_LOOKUP_AND_DELETE_ELEM, fd, &k1, &out), 0);
  EXPECT_EQ(elem(BPF_MAP_DELETE_ELEM, fd, &k1, nullptr), -1);
  EXPECT_EQ(errno, ENOENT);
  EXPECT_EQ(elem(BPF_MAP_DELETE_ELEM, 999, &k1, nullptr), -1);
  EXPECT_EQ(errno, EBADF);
}

TEST_F(BpfTest, LruHashEvictsTheLeastRecentlyUsed) {
  const int fd = create_map(BPF_MAP_TYPE_LRU_HASH, 4, 8, 4);
  ASSERT_GE(fd, 0);
  std::uint64_t v = 1;
  for (std::uint32_t k = 1; k <= 4; ++k) ASSERT_EQ(elem(BPF_MAP_UPDATE_ELEM, fd, &k, &v), 0);
  // A program's lookup of 1 makes it recent; an update of 3 too. 2 is now the least recently used.
  auto map = std::get<std::shared_ptr<Map>>(*rt_->object_for_fd(fd));
  std::uint32_t k1 = 1, k3 = 3;
  ASSERT_TRUE(map->impl().lookup_in_place(&k1));
  ASSERT_EQ(elem(BPF_MAP_UPDATE_ELEM, fd, &k3, &v, BPF_EXIST), 0);
  std::uint32_t k5 = 5, k6 = 6;
  EXPECT_EQ(elem(BPF_MAP_UPDATE_ELEM, fd, &k5, &v, BPF_NOEXIST), 0);  // full: evicts 2 instead of E2BIG
  std::uint64_t out;
  for (std::uint32_t k : {1u, 3u, 4u, 5u}) EXPECT_EQ(elem(BPF_MAP_LOOKUP_ELEM, fd, &k, &out), 0) << k;
  std::uint32_t k2 = 2;
  EXPECT_EQ(elem(BPF_MAP_LOOKUP_ELEM, fd, &k2, &out), -1);
  EXPECT_EQ(errno, ENOENT);
  EXPECT_EQ(elem(BPF_MAP_UPDATE_ELEM, fd, &k6, &v), 0);  // evicts 4
  std::uint32_t k4 = 4;
  EXPECT_EQ(elem(BPF_MAP_LOOKUP_ELEM, fd, &k4, &out), -1);
  // Deleting keeps the recency list whole: fill again and walk.
  EXPECT_EQ(elem(BPF_MAP_DELETE_ELEM, fd, &k1, nullptr), 0);
  for (std::uint32_t k = 10; k < 40; ++k) ASSERT_EQ(elem(BPF_MAP_UPDATE_ELEM, fd, &k, &v), 0) << k;
  int count = 0;
  std::uint32_t cur = 0, next = 0;
  bool first = true;
  while (map->impl().next_key(first ? nullptr : &cur, &next)) {
    first = false;
    cur = next;
    EXPECT_GE(cur, 36u);  // the four most recent
    ++count;
  }
  EXPECT_EQ(count, 4);
}

TEST_F(BpfTest, LockFlagNeedsALock) {
  const int fd = create_map(BPF_MAP_TYPE_HASH, 4, 8, 4);
  std::uint32_t k = 1;
  std::uint64_t v = 1;
  EXPECT_EQ(elem(BPF_MAP_UPDATE_ELEM, fd, &k, &v, BPF_F_LOCK), -1);
  EXPECT_EQ(errno, EINVAL);
  ASSERT_EQ(elem(BPF_MAP_UPDATE_ELEM, fd, &k, &v), 0);
  EXPECT_EQ(elem(BPF_MAP_LOOKUP_ELEM, fd, &k, &v, BPF_F_LOCK), -1);
  EXPECT_EQ(errno, EINVAL);
}

TEST_F(BpfTest, ArraySemanticsAndFreeze) {
  const int fd = create_map(BPF_MAP_TYPE_ARRAY, 4, 4, 2);
  ASSERT_GE(fd, 0);
  std::uint32_t k = 5, v = 1;
  EXPECT_EQ(elem(BPF_MAP_UPDATE_ELEM, fd, &k, &v), -1);
  EXPECT_EQ(errno, E2BIG);
  k = 0;
  EXPECT_EQ(elem(BPF_MAP_UPDATE_ELEM, fd, &k, &v, BPF_NOEXIST), -1);
  EXPECT_EQ(errno, EEXIST);
  EXPECT_EQ(elem(BPF_MAP_DELETE_ELEM, fd, &k, nullptr), -1);
  EXPECT_EQ(errno, EINVAL);
  union bpf_attr a {};
  a.map_fd = static_cast<std::uint32_t>(fd);
  EXPECT_EQ(call(BPF_MAP_FREEZE, a), 0);
  EXPECT_EQ(call(BPF_MAP_FREEZE, a), -1);
  EXPECT_EQ(errno, EPERM);  // as the kernel: a frozen map's fds lost their write permission
  EXPECT_EQ(elem(BPF_MAP_UPDATE_ELEM, fd, &k, &v), -1);
  EXPECT_EQ(errno, EPERM);
  EXPECT_EQ(create_map(BPF_MAP_TYPE_ARRAY, 8, 4, 2), -1);
  EXPECT_EQ(errno, EINVAL);
  EXPECT_EQ(create_map(BPF_MAP_TYPE_HASH, 4, 4, 0), -1);
  EXPECT_EQ(errno, EINVAL);
}

TEST_F(BpfTest, BatchCommands) {
  const int fd = create_map(BPF_MAP_TYPE_HASH, 4, 4, 16);
  std::uint32_t keys[5] = {1, 2, 3, 4, 5}, values[5] = {10, 20, 30, 40, 50};
  union bpf_attr a {};
  a.batch.map_fd = static_cast<std::uint32_t>(fd);
  a.batch.keys = ptr(keys);
  a.batch.values = ptr(values);
  a.batch.count = 5;
  EXPECT_EQ(call(BPF_MAP_UPDATE_BATCH, a), 0);
  EXPECT_EQ(a.batch.count, 5u);
  // Two lookups of 3: the second ends the walk with ENOENT and returns the remaining 2.
  std::uint32_t out_keys[3], out_values[3], token = 0;
  union bpf_attr l {};
  l.batch.map_fd = static_cast<std::uint32_t>(fd);
  l.batch.keys = ptr(out_keys);
  l.batch.values = ptr(out_values);
  l.batch.out_batch = ptr(&token);
  l.batch.count = 3;
  EXPECT_EQ(call(BPF_MAP_LOOKUP_BATCH, l), 0);
  EXPECT_EQ(l.batch.count, 3u);
  std::set<std::uint32_t> seen;
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(out_values[i], out_keys[i] * 10);
    seen.insert(out_keys[i]);
  }
  l.batch.in_batch = ptr(&token);
  l.batch.count = 3;
  EXPECT_EQ(call(BPF_MAP_LOOKUP_BATCH, l), -1);
  EXPECT_EQ(errno, ENOENT);
  EXPECT_EQ(l.batch.count, 2u);
  for (int i = 0; i < 2; ++i) seen.insert(out_keys[i]);
  EXPECT_EQ(seen, (std::set<std::uint32_t>{1, 2, 3, 4, 5}));
  a.batch.count = 2;
  EXPECT_EQ(call(BPF_MAP_DELETE_BATCH, a), 0);
  std::uint32_t k1 = 1, v = 0;
  EXPECT_EQ(elem(BPF_MAP_LOOKUP_ELEM, fd, &k1, &v), -1);
}

TEST_F(BpfTest, ProgLoadTestRunAndInfo) {
  const int map = create_map(BPF_MAP_TYPE_ARRAY, 4, 8, 1);
  // r0 = skb->len + counter; counter += 1 (through a map fd reference).
  std::string src = fmt::format(R"(
    r6 = r1
    *(u32 *)(r10 -4) = 0
    r1 = map[fd:{}]
    r2 = r10
    r2 += -4
    call 1
    if r0 == 0 goto miss
    r1 = *(u64 *)(r0 +0)
    r1 += 1
    *(u64 *)(r0 +0) = r1
    r0 = *(u32 *)(r6 +0)
    r0 += r1
    exit
  miss:
    r0 = 0
    exit
  )", map);
  const int prog = load(src);
  ASSERT_GE(prog, 0) << errno;
  Program::enable_stats(true);  // run_cnt is counted only while stats are on, as in the kernel
  std::vector<std::uint8_t> pkt(60, 0), out(10);
  union bpf_attr t {};
  t.test.prog_fd = static_cast<std::uint32_t>(prog);
  t.test.data_in = ptr(pkt.data());
  t.test.data_size_in = static_cast<std::uint32_t>(pkt.size());
  t.test.data_out = ptr(out.data());
  t.test.data_size_out = static_cast<std::uint32_t>(out.size());
  t.test.repeat = 3;
  EXPECT_EQ(call(BPF_PROG_TEST_RUN, t), -1);  // data_out too small: the kernel fills it and says ENOSPC
  EXPECT_EQ(errno, ENOSPC);
  EXPECT_EQ(t.test.data_size_out, 60u);
  EXPECT_EQ(t.test.retval, 46u + 3u);
  // Info: name, type, map ids, xlated length, a tag.
  struct bpf_prog_info info {};
  std::uint32_t map_ids[4] = {};
  info.nr_map_ids = 4;
  info.map_ids = ptr(map_ids);
  union bpf_attr i {};
  i.info.bpf_fd = static_cast<std::uint32_t>(prog);
  i.info.info = ptr(&info);
  i.info.info_len = sizeof info;
  ASSERT_EQ(call(BPF_OBJ_GET_INFO_BY_FD, i), 0);
  EXPECT_STREQ(info.name, "test_prog");
  EXPECT_EQ(info.type, static_cast<std::uint32_t>(BPF_PROG_TYPE_SOCKET_FILTER));
  EXPECT_EQ(info.nr_map_ids, 1u);
  EXPECT_EQ(info.xlated_prog_len, 16u * 8);
  // The native image, as the kernel hands out its JIT's (none when the interpreter runs programs).
  if (default_exec_mode() == ExecMode::kJit) {
    ASSERT_GT(info.jited_prog_len, 0u);
    std::vector<std::uint8_t> image(info.jited_prog_len);
    struct bpf_prog_info again {};
    again.jited_prog_len = info.jited_prog_len;
    again.jited_prog_insns = ptr(image.data());
    i.info.info = ptr(&again);
    i.info.info_len = sizeof again;
    ASSERT_EQ(call(BPF_OBJ_GET_INFO_BY_FD, i), 0);
    EXPECT_EQ(image[0], 0x55);  // push %rbp: the entry
    i.info.info = ptr(&info);
    i.info.info_len = sizeof info;
  } else {
    EXPECT_EQ(info.jited_prog_len, 0u);
  }
  EXPECT_TRUE(info.gpl_compatible);
  EXPECT_EQ(info.run_cnt, 3u);
  Program::enable_stats(false);
  struct bpf_map_info minfo {};
  i.info.bpf_fd = static_cast<std::uint32_t>(map);
  i.info.info = ptr(&minfo);
  i.info.info_len = sizeof minfo;
  ASSERT_EQ(call(BPF_OBJ_GET_INFO_BY_FD, i), 0);
  EXPECT_EQ(map_ids[0], minfo.id);
  EXPECT_EQ(minfo.value_size, 8u);
  // Ids: next id and fd by id.
  union bpf_attr n {};
  ASSERT_EQ(call(BPF_PROG_GET_NEXT_ID, n), 0);
  EXPECT_EQ(n.next_id, info.id);
  n.start_id = info.id;
  EXPECT_EQ(call(BPF_PROG_GET_NEXT_ID, n), -1);
  EXPECT_EQ(errno, ENOENT);
  union bpf_attr g {};
  g.prog_id = info.id;
  EXPECT_GE(call(BPF_PROG_GET_FD_BY_ID, g), 0);
  g.prog_id = 999;
  EXPECT_EQ(call(BPF_PROG_GET_FD_BY_ID, g), -1);
  EXPECT_EQ(errno, ENOENT);
}

TEST_F(BpfTest, ProgLoadFailuresFillTheLog) {
  std::string log;
  // A socket filter may not write skb->len.
  EXPECT_EQ(load("r2 = 1\n*(u32 *)(r1 +0) = r2\nr0 = 0\nexit", BPF_PROG_TYPE_SOCKET_FILTER, &log), -1);
  EXPECT_EQ(errno, EACCES);
  EXPECT_NE(log.find("invalid bpf_context access off=0 size=4"), std::string::npos) << log;
  EXPECT_EQ(load("r1 = map[fd:77] \nr0 = 0\nexit", BPF_PROG_TYPE_SOCKET_FILTER, &log), -1);
  EXPECT_EQ(errno, EBADF);
  EXPECT_EQ(load("r0 = 0\nexit", 9999), -1);
  EXPECT_EQ(errno, EINVAL);
  // Calls the kernel refuses with EINVAL (check_helper_call), not EACCES: a helper number it does not
  // know, and a helper the program type may not call (libbpf prints the errno: "-22" on the kernel).
  EXPECT_EQ(load("call 999\nr0 = 0\nexit", BPF_PROG_TYPE_SOCKET_FILTER, &log), -1);
  EXPECT_EQ(errno, EINVAL);
  EXPECT_NE(log.find("unknown func #999"), std::string::npos) << log;
  EXPECT_EQ(load("call 36\nr0 = 0\nexit", BPF_PROG_TYPE_SOCKET_FILTER, &log), -1);  // probe_write_user
  EXPECT_EQ(errno, EINVAL);
}

TEST_F(BpfTest, XdpContextPointersAreRewritten) {
  // return data_end - data
  const int prog = load("r2 = *(u32 *)(r1 +4)\nr1 = *(u32 *)(r1 +0)\nr0 = r2\nr0 -= r1\nexit", BPF_PROG_TYPE_XDP);
  ASSERT_GE(prog, 0);
  std::vector<std::uint8_t> pkt(64, 0);
  union bpf_attr t {};
  t.test.prog_fd = static_cast<std::uint32_t>(prog);
  t.test.data_in = ptr(pkt.data());
  t.test.data_size_in = 64;
  ASSERT_EQ(call(BPF_PROG_TEST_RUN, t), 0);
  EXPECT_EQ(t.test.retval, 64u);
  // A narrow load of a pointer field is refused, as the kernel does.
  EXPECT_EQ(load("r0 = *(u16 *)(r1 +0)\nexit", BPF_PROG_TYPE_XDP), -1);
  EXPECT_EQ(errno, EACCES);
}

TEST_F(BpfTest, PinAndGetFromAnotherRuntime) {
  const int map = create_map(BPF_MAP_TYPE_HASH, 4, 4, 4);
  std::uint32_t k = 7, v = 70;
  ASSERT_EQ(elem(BPF_MAP_UPDATE_ELEM, map, &k, &v), 0);
  const std::string path = (root_ / "m").string();
  union bpf_attr p {};
  p.bpf_fd = static_cast<std::uint32_t>(map);
  p.pathname = ptr(path.c_str());
  ASSERT_EQ(call(BPF_OBJ_PIN, p), 0);
  EXPECT_TRUE(std::filesystem::exists(path));
  EXPECT_EQ(call(BPF_OBJ_PIN, p), -1);
  EXPECT_EQ(errno, EEXIST);
  const std::string bad = "/tmp/not-under-the-root";
  p.pathname = ptr(bad.c_str());
  EXPECT_EQ(call(BPF_OBJ_PIN, p), -1);
  EXPECT_EQ(errno, EPERM);
  const std::string missing_dir = (root_ / "no/such/dir").string();
  p.pathname = ptr(missing_dir.c_str());
  EXPECT_EQ(call(BPF_OBJ_PIN, p), -1);
  EXPECT_EQ(errno, ENOENT);
  // /sys/fs/bpf/<x> names <pin root>/<x>.
  const int prog = load("r0 = 7\nexit");
  const std::string bpffs = "/sys/fs/bpf/prog7";
  p.bpf_fd = static_cast<std::uint32_t>(prog);
  p.pathname = ptr(bpffs.c_str());
  ASSERT_EQ(call(BPF_OBJ_PIN, p), 0);
  EXPECT_TRUE(std::filesystem::exists(root_ / "prog7"));

  Runtime other(RuntimeOptions{root_.string()});
  union bpf_attr g {};
  g.pathname = ptr(path.c_str());
  const long mfd = other.bpf(BPF_OBJ_GET, &g, sizeof g);
  ASSERT_GE(mfd, 0);
  union bpf_attr a {};
  std::uint32_t got = 0;
  a.map_fd = static_cast<std::uint32_t>(mfd);
  a.key = ptr(&k);
  a.value = ptr(&got);
  ASSERT_EQ(other.bpf(BPF_MAP_LOOKUP_ELEM, &a, sizeof a), 0);
  EXPECT_EQ(got, 70u);
  g.pathname = ptr(bpffs.c_str());
  const long pfd = other.bpf(BPF_OBJ_GET, &g, sizeof g);
  ASSERT_GE(pfd, 0);
  std::vector<std::uint8_t> pkt(20, 0);
  union bpf_attr t {};
  t.test.prog_fd = static_cast<std::uint32_t>(pfd);
  t.test.data_in = ptr(pkt.data());
  t.test.data_size_in = 20;
  ASSERT_EQ(other.bpf(BPF_PROG_TEST_RUN, &t, sizeof t), 0);
  EXPECT_EQ(t.test.retval, 7u);
  const std::string none = (root_ / "none").string();
  g.pathname = ptr(none.c_str());
  EXPECT_EQ(other.bpf(BPF_OBJ_GET, &g, sizeof g), -1);
  EXPECT_EQ(errno, ENOENT);
}

TEST_F(BpfTest, MapInMapByFd) {
  const int inner = create_map(BPF_MAP_TYPE_ARRAY, 4, 4, 1);
  union bpf_attr a {};
  a.map_type = BPF_MAP_TYPE_ARRAY_OF_MAPS;
  a.key_size = 4;
  a.value_size = 4;
  a.max_entries = 2;
  a.inner_map_fd = static_cast<std::uint32_t>(inner);
  const int outer = static_cast<int>(call(BPF_MAP_CREATE, a));
  ASSERT_GE(outer, 0);
  std::uint32_t k = 1, fd = static_cast<std::uint32_t>(inner), id = 0;
  ASSERT_EQ(elem(BPF_MAP_UPDATE_ELEM, outer, &k, &fd), 0);
  ASSERT_EQ(elem(BPF_MAP_LOOKUP_ELEM, outer, &k, &id), 0);
  EXPECT_EQ(id, 1u);  // the inner map's id
  const int wrong = create_map(BPF_MAP_TYPE_HASH, 4, 4, 1);
  fd = static_cast<std::uint32_t>(wrong);
  EXPECT_EQ(elem(BPF_MAP_UPDATE_ELEM, outer, &k, &fd), -1);
  EXPECT_EQ(errno, EINVAL);
}

TEST_F(BpfTest, PerfEventArrayTakesPerfEventFds) {
  const int map = create_map(BPF_MAP_TYPE_PERF_EVENT_ARRAY, 4, 4, maps::possible_cpus());
  ASSERT_GE(map, 0);
  const std::uint32_t cpu = maps::this_cpu();
  auto event_fd = rt_->open_perf_event(cpu, 1);
  ASSERT_TRUE(event_fd) << event_fd.error().to_string();
  std::uint32_t key = cpu, fd = static_cast<std::uint32_t>(*event_fd), out = 0;
  EXPECT_EQ(elem(BPF_MAP_UPDATE_ELEM, map, &key, &fd, BPF_EXIST), -1);
  EXPECT_EQ(errno, EINVAL);
  std::uint32_t not_an_event = static_cast<std::uint32_t>(map);
  EXPECT_EQ(elem(BPF_MAP_UPDATE_ELEM, map, &key, &not_an_event), -1);
  EXPECT_EQ(errno, EBADF);
  ASSERT_EQ(elem(BPF_MAP_UPDATE_ELEM, map, &key, &fd), 0);
  EXPECT_EQ(elem(BPF_MAP_LOOKUP_ELEM, map, &key, &out), -1);
  EXPECT_EQ(errno, 524);  // ENOTSUPP: perf events cannot be read back

  // A program writes 8 bytes to the current CPU's event.
  const int prog = load(fmt::format("*(u64 *)(r10 -8) = 42\n"
                                    "r4 = r10\n"
                                    "r4 += -8\n"
                                    "r2 = map[fd:{}]\n"
                                    "r3 = 0xffffffff\n"
                                    "r5 = 8\n"
                                    "call 25\n"
                                    "exit\n", map));
  ASSERT_GE(prog, 0);
  std::vector<std::uint8_t> frame(64, 0);
  union bpf_attr a {};
  a.test.prog_fd = static_cast<std::uint32_t>(prog);
  a.test.data_in = ptr(frame.data());
  a.test.data_size_in = static_cast<std::uint32_t>(frame.size());
  ASSERT_EQ(call(BPF_PROG_TEST_RUN, a), 0);
  EXPECT_EQ(a.test.retval, 0u);
  auto object = rt_->object_for_fd(*event_fd);
  ASSERT_TRUE(object);
  auto& event = *std::get<std::shared_ptr<maps::PerfEvent>>(*object);
  std::vector<std::uint64_t> samples;
  event.consume([&](std::span<const std::uint8_t> d) {
    std::uint64_t v;
    std::memcpy(&v, d.data(), 8);
    samples.push_back(v);
  }, {});
  EXPECT_EQ(samples, std::vector<std::uint64_t>{42});

  ASSERT_EQ(elem(BPF_MAP_DELETE_ELEM, map, &key, nullptr), 0);
  EXPECT_EQ(elem(BPF_MAP_DELETE_ELEM, map, &key, nullptr), -1);
  EXPECT_EQ(errno, ENOENT);
  ASSERT_EQ(call(BPF_PROG_TEST_RUN, a), 0);
  EXPECT_EQ(static_cast<std::int32_t>(a.test.retval), -ENOENT);
}

TEST_F(BpfTest, BtfLoadAndLinks) {
  // A minimal BTF blob: header + one int type + strings "\0int\0".
  struct {
    std::uint16_t magic = 0xeB9F;
    std::uint8_t version = 1, flags = 0;
    std::uint32_t hdr_len = 24, type_off = 0, type_len = 16, str_off = 16, str_len = 5;
    std::uint32_t name_off = 1, info = 1u << 24, size = 4, int_data = 32;
    char strings[5] = {0, 'i', 'n', 't', 0};
  } blob;
  union bpf_attr b {};
  b.btf = ptr(&blob);
  b.btf_size = sizeof blob - 3;  // without padding
  const long btf = call(BPF_BTF_LOAD, b);
  ASSERT_GE(btf, 0) << errno;
  std::uint8_t junk[40] = {1, 2, 3};
  b.btf = ptr(junk);
  b.btf_size = sizeof junk;
  EXPECT_EQ(call(BPF_BTF_LOAD, b), -1);
  EXPECT_EQ(errno, EINVAL);

  const int prog = load("r0 = 0\nexit");
  union bpf_attr l {};
  l.link_create.prog_fd = static_cast<std::uint32_t>(prog);
  const long link = call(BPF_LINK_CREATE, l);
  ASSERT_GE(link, 0);
  union bpf_attr d {};
  d.link_detach.link_fd = static_cast<std::uint32_t>(link);
  EXPECT_EQ(call(BPF_LINK_DETACH, d), 0);
  union bpf_attr n {};
  EXPECT_EQ(call(BPF_LINK_GET_NEXT_ID, n), 0);
  EXPECT_EQ(call(BPF_BTF_GET_NEXT_ID, n), 0);
}

TEST_F(BpfTest, RunawayCallbacksAreRefusedAtLoad) {
  // The callback calls bpf_loop with itself: each call is a frame more, and the ninth is refused.
  std::string log;
  EXPECT_EQ(load(R"(
    r1 = 1
    r2 = subprog[+5]
    r3 = 0
    r4 = 0
    call 181
    exit
    r1 = 1
    r2 = subprog[-2]
    r3 = 0
    r4 = 0
    call 181
    r0 = 0
    exit
  )",
                 BPF_PROG_TYPE_SOCKET_FILTER, &log),
            -1);
  EXPECT_EQ(errno, EACCES);
  EXPECT_NE(log.find("the call stack of 9 frames is too deep"), std::string::npos) << log;
  // A "callback" that is a made-up address.
  EXPECT_EQ(load(R"(
    r1 = 3
    r2 = 123456
    r3 = 0
    r4 = 0
    call 181
    exit
  )",
                 BPF_PROG_TYPE_SOCKET_FILTER, &log),
            -1);
  EXPECT_EQ(errno, EACCES);
  EXPECT_NE(log.find("R2 type=scalar expected=func"), std::string::npos) << log;
}

TEST_F(BpfTest, AttrTailMustBeZero) {
  std::vector<std::uint8_t> big(sizeof(union bpf_attr) + 8, 0);
  big.back() = 1;
  EXPECT_EQ(rt_->bpf(BPF_MAP_CREATE, reinterpret_cast<union bpf_attr*>(big.data()), static_cast<unsigned>(big.size())), -1);
  EXPECT_EQ(errno, E2BIG);
  union bpf_attr a {};
  EXPECT_EQ(call(12345, a), -1);
  EXPECT_EQ(errno, EINVAL);
}

}  // namespace
}  // namespace bpfvm::runtime
