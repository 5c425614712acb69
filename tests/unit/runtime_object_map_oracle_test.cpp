// The kernel as an oracle for the maps of kernel objects (devmap, devmap_hash, cpumap, xskmap, sockmap,
// sockhash, reuseport_sockarray), the local storages (task, sk, inode, cgrp) and the cgroup storages:
// the same bpf() commands on a kernel map and a bpfvm map give the same return values, errnos and bytes
// (a devmap's ifindex, a sockmap's socket cookie). Descriptors in keys and values are this process's,
// the same for both sides.
#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/bpf.h>
#include <linux/btf.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <vector>

#include "bpfvm/obj/btf.hpp"
#include "bpfvm/runtime/runtime.hpp"
#include "bpf_outcome.hpp"

namespace bpfvm::runtime {
namespace {

using test::describe;
using test::kernel_bpf;
using test::Outcome;

// Raw BTF: [1] int, [2] struct val { int a; int b; } (8 bytes), as libbpf's probes build theirs.
std::vector<std::uint8_t> storage_btf() {
  const std::uint32_t types[] = {
      1, BTF_KIND_INT << 24, 4, (BTF_INT_SIGNED << 24) | 32,           // [1] int
      5, (BTF_KIND_STRUCT << 24) | 2, 8, 9, 1, 0, 11, 1, 32,           // [2] struct val
  };
  const char strings[] = "\0int\0val\0a\0b";
  btf_header h{};
  h.magic = BTF_MAGIC;
  h.version = 1;
  h.hdr_len = sizeof h;
  h.type_len = sizeof types;
  h.str_off = sizeof types;
  h.str_len = sizeof strings;
  std::vector<std::uint8_t> blob(sizeof h + sizeof types + sizeof strings);
  std::memcpy(blob.data(), &h, sizeof h);
  std::memcpy(blob.data() + sizeof h, types, sizeof types);
  std::memcpy(blob.data() + sizeof h + sizeof types, strings, sizeof strings);
  return blob;
}

class ObjectMapOracle : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root for bpf()";
    union bpf_attr probe {};
    probe.map_type = BPF_MAP_TYPE_DEVMAP;
    probe.key_size = probe.value_size = 4;
    probe.max_entries = 1;
    const long fd = kernel_bpf(BPF_MAP_CREATE, &probe);
    if (fd < 0) GTEST_SKIP() << "the kernel refuses bpf() maps of kernel objects here";
    ::close(static_cast<int>(fd));
    root_ = std::filesystem::temp_directory_path() / ("bpfvm-objoracle-" + std::to_string(::getpid()));
    rt_ = std::make_unique<Runtime>(RuntimeOptions{root_.string()});
    const auto blob = storage_btf();
    for (int side = 0; side < 2; ++side) {
      union bpf_attr a {};
      a.btf = reinterpret_cast<std::uint64_t>(blob.data());
      a.btf_size = static_cast<std::uint32_t>(blob.size());
      btf_[side] = static_cast<int>(side == 0 ? kernel_bpf(BPF_BTF_LOAD, &a) : rt_->bpf(BPF_BTF_LOAD, &a, sizeof a));
      ASSERT_GE(btf_[side], 0) << std::strerror(errno);
    }
    kernel_fds_.push_back(btf_[0]);
  }
  void TearDown() override {
    for (int fd : kernel_fds_) ::close(fd);
    for (int fd : files_) ::close(fd);
    std::error_code ec;
    std::filesystem::remove_all(root_, ec);
  }

  Outcome run(int side, int cmd, union bpf_attr& a, std::size_t out_size, __u64* out_field) {
    std::vector<std::uint8_t> out(out_size, 0xcc);
    if (out_field) *out_field = reinterpret_cast<std::uint64_t>(out.data());
    errno = 0;
    const long rc = side == 0 ? kernel_bpf(cmd, &a) : rt_->bpf(cmd, &a, sizeof a);
    if (side == 0 && cmd == BPF_MAP_CREATE && rc >= 0) kernel_fds_.push_back(static_cast<int>(rc));
    return {rc < 0 ? -1 : 0, rc < 0 ? errno : 0, rc < 0 ? std::vector<std::uint8_t>{} : out};
  }

  // Creates the map on both sides; true when both did (the maps become the current pair), and an
  // EXPECT failure when only one did or their errnos differ.
  bool create(std::uint32_t type, std::uint32_t key, std::uint32_t value, std::uint32_t max, std::uint32_t flags,
              bool btf, const std::string& what, std::uint32_t vmlinux_value_type = 0) {
    int fd[2];
    Outcome o[2];
    for (int side = 0; side < 2; ++side) {
      union bpf_attr a {};
      a.map_type = type;
      a.key_size = key;
      a.value_size = value;
      a.max_entries = max;
      a.map_flags = flags;
      a.btf_vmlinux_value_type_id = vmlinux_value_type;
      if (btf) {
        a.btf_fd = static_cast<std::uint32_t>(btf_[side]);
        if (!vmlinux_value_type) {  // (a struct_ops map takes the BTF of its object, for no type of it)
          a.btf_key_type_id = 1;
          a.btf_value_type_id = value == 4 ? 1 : 2;
        }
      }
      errno = 0;
      fd[side] = static_cast<int>(side == 0 ? kernel_bpf(BPF_MAP_CREATE, &a) : rt_->bpf(BPF_MAP_CREATE, &a, sizeof a));
      if (side == 0 && fd[side] >= 0) kernel_fds_.push_back(fd[side]);
      o[side] = {fd[side] < 0 ? -1 : 0, fd[side] < 0 ? errno : 0, {}};
    }
    EXPECT_EQ(o[0], o[1]) << what << ": create kernel " << describe(o[0]) << ", bpfvm " << describe(o[1]);
    if (fd[0] < 0 || fd[1] < 0) return false;
    map_[0] = fd[0];
    map_[1] = fd[1];
    value_size_ = value;
    return true;
  }

  void compare(int cmd, const void* key, const void* value, std::uint64_t flags, const std::string& what) {
    Outcome o[2];
    for (int side = 0; side < 2; ++side) {
      union bpf_attr a {};
      a.map_fd = static_cast<std::uint32_t>(map_[side]);
      a.key = reinterpret_cast<std::uint64_t>(key);
      std::size_t out_size = 0;
      __u64* out_field = nullptr;
      if (cmd == BPF_MAP_UPDATE_ELEM) {
        a.value = reinterpret_cast<std::uint64_t>(value);
        a.flags = flags;
      } else if (cmd == BPF_MAP_GET_NEXT_KEY) {
        out_size = 4;
        out_field = &a.next_key;
      } else if (cmd == BPF_MAP_LOOKUP_ELEM || cmd == BPF_MAP_LOOKUP_AND_DELETE_ELEM) {
        out_size = value_size_;
        out_field = &a.value;
        a.flags = flags;
      }
      o[side] = run(side, cmd, a, out_size, out_field);
    }
    EXPECT_EQ(o[0], o[1]) << what << ": kernel " << describe(o[0]) << ", bpfvm " << describe(o[1]);
  }
  void update(std::uint32_t key, std::uint64_t value, std::uint64_t flags, const std::string& what) {
    compare(BPF_MAP_UPDATE_ELEM, &key, &value, flags, fmt::format("update [{}] = {} flags {} ({})", key, value, flags, what));
  }
  void lookup(std::uint32_t key) { compare(BPF_MAP_LOOKUP_ELEM, &key, nullptr, 0, fmt::format("lookup [{}]", key)); }
  void erase(std::uint32_t key) { compare(BPF_MAP_DELETE_ELEM, &key, nullptr, 0, fmt::format("delete [{}]", key)); }
  void next(const std::uint32_t* key) {
    compare(BPF_MAP_GET_NEXT_KEY, key, nullptr, 0, key ? fmt::format("next after {}", *key) : std::string("first key"));
  }
  void walk() {
    next(nullptr);
    for (std::uint32_t k : {0u, 1u, 2u, 3u, 9u}) next(&k);
  }

  int file(int fd) {
    files_.push_back(fd);
    return fd;
  }
  int tcp_listener(bool reuseport) {
    const int fd = file(::socket(AF_INET, SOCK_STREAM, 0));
    const int one = 1;
    if (reuseport) ::setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa);
    ::listen(fd, 1);
    return fd;
  }
  int udp(bool bound, bool reuseport) {
    const int fd = file(::socket(AF_INET, SOCK_DGRAM, 0));
    const int one = 1;
    if (reuseport) ::setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
    if (bound) {
      sockaddr_in sa{};
      sa.sin_family = AF_INET;
      sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      ::bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa);
    }
    return fd;
  }

  std::filesystem::path root_;
  std::unique_ptr<Runtime> rt_;
  std::vector<int> kernel_fds_, files_;
  int btf_[2] = {-1, -1};
  int map_[2] = {-1, -1};
  std::uint32_t value_size_ = 0;
};

// Rules every object map shares: sizes, max_entries, flags.
TEST_F(ObjectMapOracle, CreationRulesAreTheKernels) {
  for (std::uint32_t type : {BPF_MAP_TYPE_DEVMAP, BPF_MAP_TYPE_DEVMAP_HASH, BPF_MAP_TYPE_CPUMAP, BPF_MAP_TYPE_XSKMAP,
                             BPF_MAP_TYPE_SOCKMAP, BPF_MAP_TYPE_SOCKHASH, BPF_MAP_TYPE_REUSEPORT_SOCKARRAY}) {
    const std::string t = std::to_string(type);
    create(type, 4, 4, 0, 0, false, t + " max_entries 0");
    create(type, 8, 4, 4, 0, false, t + " key 8");
    create(type, 4, 12, 4, 0, false, t + " value 12");
    create(type, 4, 8, 4, 0, false, t + " value 8");
    create(type, 4, 8, 4, BPF_F_NO_PREALLOC, false, t + " BPF_F_NO_PREALLOC");
    create(type, 4, 4, 4, BPF_F_RDONLY_PROG, false, t + " BPF_F_RDONLY_PROG");
    create(type, 4, 4, 4, BPF_F_RDONLY, false, t + " BPF_F_RDONLY");
    create(type, 4, 4, 100000, 0, false, t + " 100000 entries");
  }
  for (std::uint32_t type : {std::uint32_t{BPF_MAP_TYPE_TASK_STORAGE}, std::uint32_t{BPF_MAP_TYPE_SK_STORAGE}, std::uint32_t{BPF_MAP_TYPE_INODE_STORAGE}, 32u}) {
    const std::string t = std::to_string(type);
    create(type, 4, 8, 0, BPF_F_NO_PREALLOC, false, t + " without BTF");
    create(type, 4, 8, 0, 0, true, t + " without BPF_F_NO_PREALLOC");
    create(type, 4, 8, 1, BPF_F_NO_PREALLOC, true, t + " max_entries 1");
    create(type, 8, 8, 0, BPF_F_NO_PREALLOC, true, t + " key 8");
    create(type, 4, 8, 0, BPF_F_NO_PREALLOC | BPF_F_CLONE, true, t + " BPF_F_CLONE");
    create(type, 4, 0, 0, BPF_F_NO_PREALLOC, true, t + " value 0");
    create(type, 4, 70000, 0, BPF_F_NO_PREALLOC, true, t + " value 70000");
    create(type, 4, 4, 0, BPF_F_NO_PREALLOC, true, t + " value 4 (int)");
    create(type, 4, 8, 0, BPF_F_NO_PREALLOC, true, t + " value 8 (struct val)");
  }
  for (std::uint32_t type : {BPF_MAP_TYPE_CGROUP_STORAGE, BPF_MAP_TYPE_PERCPU_CGROUP_STORAGE}) {
    const std::string t = std::to_string(type);
    for (std::uint32_t key : {16u, 12u, 8u, 4u}) create(type, key, 8, 0, 0, false, t + " key " + std::to_string(key));
    create(type, 8, 8, 1, 0, false, t + " max_entries 1");
    create(type, 8, 0, 0, 0, false, t + " value 0");
    for (std::uint32_t value : {4096u, 32768u, 32769u, 65407u, 65408u}) {
      create(type, 8, value, 0, 0, false, t + " value " + std::to_string(value));
    }
    create(type, 8, 8, 0, BPF_F_NO_PREALLOC, false, t + " BPF_F_NO_PREALLOC");
    create(type, 8, 8, 0, BPF_F_RDONLY_PROG, false, t + " BPF_F_RDONLY_PROG");
    create(type, 8, 8, 0, BPF_F_MMAPABLE, false, t + " BPF_F_MMAPABLE");
  }
}

// Devices by ifindex (lo is 1 everywhere; 99999 is no device), with an XDP program's fd or none.
TEST_F(ObjectMapOracle, DevmapsHoldDevicesAsTheKernelsDo) {
  for (std::uint32_t type : {BPF_MAP_TYPE_DEVMAP, BPF_MAP_TYPE_DEVMAP_HASH}) {
    for (std::uint32_t vs : {4u, 8u}) {
      SCOPED_TRACE(fmt::format("type {} value_size {}", type, vs));
      if (!create(type, 4, vs, 4, 0, false, "devmap")) continue;
      update(0, 1, BPF_ANY, "lo");
      update(1, 1, BPF_ANY, "lo");
      update(2, 99999, BPF_ANY, "no such device");
      update(9, 1, BPF_ANY, "past max_entries");
      update(1, 1, BPF_NOEXIST, "present");
      update(3, 1, BPF_EXIST, "absent");
      update(1, 1, 5, "bad flags");
      update(3, 0, BPF_ANY, "ifindex 0");
      if (vs == 8) {
        update(0, 1 | (std::uint64_t{0xffffffff} << 32), BPF_ANY, "prog fd -1");
        update(2, 1 | (std::uint64_t{0} << 32), BPF_ANY, "prog fd 0");
        update(2, 1 | (std::uint64_t{999} << 32), BPF_ANY, "prog fd 999 (not open)");
      }
      for (std::uint32_t k : {0u, 1u, 2u, 3u, 9u}) lookup(k);
      walk();
      for (std::uint32_t k : {3u, 2u, 2u, 9u, 0u}) erase(k);
      lookup(2);
      walk();
    }
  }
}

TEST_F(ObjectMapOracle, CpumapsHoldQueueSizesAsTheKernelsDo) {
  for (std::uint32_t vs : {4u, 8u}) {
    SCOPED_TRACE(fmt::format("value_size {}", vs));
    if (!create(BPF_MAP_TYPE_CPUMAP, 4, vs, 4, 0, false, "cpumap")) continue;
    update(0, 64, BPF_ANY, "cpu 0");
    update(0, 64, BPF_NOEXIST, "noexist");
    update(1, 128, BPF_EXIST, "exist");
    update(0, 99999, BPF_ANY, "too large a queue");
    update(3, 64, BPF_ANY, "cpu 3");  // no such CPU on a machine with fewer
    update(9, 64, BPF_ANY, "past max_entries");
    update(1, 0, BPF_ANY, "queue size 0");
    update(1, 1, 7, "bad flags");
    for (std::uint32_t k : {0u, 1u, 3u, 9u}) lookup(k);
    walk();
    for (std::uint32_t k : {1u, 1u, 9u}) erase(k);
  }
}

// Sockets by descriptor: which ones a sockmap or sockhash takes, and their cookies read back.
TEST_F(ObjectMapOracle, SocketMapsHoldSocketsAsTheKernelsDo) {
  const int not_socket = file(::open("/dev/null", O_RDONLY));
  for (std::uint32_t type : {BPF_MAP_TYPE_SOCKMAP, BPF_MAP_TYPE_SOCKHASH}) {
    for (std::uint32_t vs : {4u, 8u}) {
      SCOPED_TRACE(fmt::format("type {} value_size {}", type, vs));
      if (!create(type, 4, vs, 4, 0, false, "sockmap")) continue;
      const int listener = tcp_listener(false), fresh = file(::socket(AF_INET, SOCK_STREAM, 0));
      update(0, static_cast<std::uint64_t>(listener), BPF_ANY, "listening TCP");
      update(1, static_cast<std::uint64_t>(udp(false, false)), BPF_ANY, "unbound UDP");
      update(1, static_cast<std::uint64_t>(udp(true, false)), BPF_ANY, "bound UDP");
      update(2, static_cast<std::uint64_t>(fresh), BPF_ANY, "unconnected TCP");
      update(2, static_cast<std::uint64_t>(not_socket), BPF_ANY, "not a socket");
      update(2, 9999, BPF_ANY, "not open");
      update(type == BPF_MAP_TYPE_SOCKMAP ? 9 : 3, static_cast<std::uint64_t>(listener), BPF_ANY, "past max_entries, or a new key");
      update(0, static_cast<std::uint64_t>(listener), BPF_NOEXIST, "present");
      update(2, static_cast<std::uint64_t>(listener), BPF_EXIST, "absent");
      update(0, static_cast<std::uint64_t>(listener), 5, "bad flags");
      if (vs == 8) update(2, static_cast<std::uint64_t>(listener) | (std::uint64_t{1} << 32), BPF_ANY, "fd above S32_MAX");
      for (std::uint32_t k : {0u, 1u, 2u, 3u, 9u}) lookup(k);
      if (type == BPF_MAP_TYPE_SOCKMAP) walk();  // (a sockhash's order is its random seed's)
      for (std::uint32_t k : {3u, 2u, 1u, 1u, 9u}) erase(k);
      lookup(1);
    }
  }
}

TEST_F(ObjectMapOracle, ReuseportArraysHoldReuseportSocketsAsTheKernelsDo) {
  for (std::uint32_t vs : {4u, 8u}) {
    SCOPED_TRACE(fmt::format("value_size {}", vs));
    if (!create(BPF_MAP_TYPE_REUSEPORT_SOCKARRAY, 4, vs, 4, 0, false, "reuseport")) continue;
    update(0, static_cast<std::uint64_t>(tcp_listener(true)), BPF_ANY, "listening TCP with SO_REUSEPORT");
    update(1, static_cast<std::uint64_t>(tcp_listener(false)), BPF_ANY, "listening TCP without SO_REUSEPORT");
    update(1, static_cast<std::uint64_t>(udp(true, true)), BPF_ANY, "bound UDP with SO_REUSEPORT");
    update(2, static_cast<std::uint64_t>(udp(false, true)), BPF_ANY, "unbound UDP");
    update(2, static_cast<std::uint64_t>(file(::open("/dev/null", O_RDONLY))), BPF_ANY, "not a socket");
    update(9, static_cast<std::uint64_t>(tcp_listener(true)), BPF_ANY, "past max_entries");
    update(0, static_cast<std::uint64_t>(tcp_listener(true)), BPF_NOEXIST, "present");
    update(3, static_cast<std::uint64_t>(tcp_listener(true)), BPF_EXIST, "absent");
    update(3, static_cast<std::uint64_t>(tcp_listener(true)), 9, "bad flags");
    for (std::uint32_t k : {0u, 1u, 2u, 9u}) lookup(k);
    walk();
    for (std::uint32_t k : {2u, 1u, 9u}) erase(k);
  }
}

TEST_F(ObjectMapOracle, XskmapsTakeOnlyXdpSockets) {
  if (!create(BPF_MAP_TYPE_XSKMAP, 4, 4, 4, 0, false, "xskmap")) return;
  update(0, static_cast<std::uint64_t>(tcp_listener(false)), BPF_ANY, "a TCP socket");
  update(0, static_cast<std::uint64_t>(file(::open("/dev/null", O_RDONLY))), BPF_ANY, "not a socket");
  update(1, 9999, BPF_EXIST, "not open");
  update(9, 0, BPF_ANY, "past max_entries");
  update(0, 0, 3, "bad flags");
  lookup(0);
  walk();
  for (std::uint32_t k : {0u, 0u, 9u}) erase(k);
}

// Owners named by descriptors: a pidfd, a socket, any file, a cgroup2 directory.
TEST_F(ObjectMapOracle, LocalStoragesHangValuesOnTheirOwners) {
  std::string cgroup2;
  {
    std::ifstream mounts("/proc/self/mountinfo");
    for (std::string line; std::getline(mounts, line);) {
      if (line.find(" - cgroup2 ") == std::string::npos) continue;
      std::istringstream fields(line);
      std::string f;
      for (int i = 0; i < 5 && fields >> f; ++i) {}
      cgroup2 = f;
      break;
    }
  }
  const int pidfd = file(static_cast<int>(::syscall(SYS_pidfd_open, ::getpid(), 0)));
  const int sock = file(::socket(AF_INET, SOCK_STREAM, 0));
  const int regular = file(::open("/proc/self/exe", O_RDONLY));
  const int cgroup = cgroup2.empty() ? -1 : file(::open(cgroup2.c_str(), O_RDONLY | O_DIRECTORY));
  struct Case {
    std::uint32_t type;
    int owner, other;
  };
  for (const Case& c : {Case{BPF_MAP_TYPE_TASK_STORAGE, pidfd, sock}, Case{BPF_MAP_TYPE_SK_STORAGE, sock, pidfd},
                        Case{BPF_MAP_TYPE_INODE_STORAGE, regular, pidfd}, Case{32, cgroup, regular}}) {
    if (c.owner < 0) {
      ADD_FAILURE() << "no owner for map type " << c.type;
      continue;
    }
    SCOPED_TRACE(fmt::format("type {}", c.type));
    if (!create(c.type, 4, 8, 0, BPF_F_NO_PREALLOC, true, "storage")) continue;
    const std::uint64_t v = 0x1122334455667788ULL;
    const std::uint32_t owner = static_cast<std::uint32_t>(c.owner), other = static_cast<std::uint32_t>(c.other);
    const std::uint32_t stdin_fd = 0, closed = 999;
    lookup(owner);
    update(owner, v, BPF_EXIST, "absent");
    update(owner, v, BPF_ANY, "any");
    update(owner, v + 1, BPF_NOEXIST, "present");
    update(owner, v, 9, "bad flags");
    update(owner, v, BPF_F_LOCK, "BPF_F_LOCK without a lock");
    lookup(owner);
    compare(BPF_MAP_LOOKUP_ELEM, &owner, nullptr, 4, "lookup with flags 4");
    lookup(closed);
    lookup(other);
    if (c.type != BPF_MAP_TYPE_INODE_STORAGE) update(other, v, BPF_ANY, "another kind of file");
    (void)stdin_fd;
    next(&owner);
    compare(BPF_MAP_LOOKUP_AND_DELETE_ELEM, &owner, nullptr, 0, "lookup and delete");
    erase(owner);
    erase(owner);
  }
}

TEST_F(ObjectMapOracle, CgroupStoragesHaveNoEntriesWithoutAttachedPrograms) {
  for (std::uint32_t type : {BPF_MAP_TYPE_CGROUP_STORAGE, BPF_MAP_TYPE_PERCPU_CGROUP_STORAGE}) {
    if (!create(type, 8, 8, 0, 0, false, "cgroup storage")) continue;
    value_size_ = type == BPF_MAP_TYPE_CGROUP_STORAGE ? 8 : 8 * 1024;  // room for every CPU's value
    const std::uint64_t key = 1;
    std::vector<std::uint8_t> value(value_size_, 0);
    compare(BPF_MAP_LOOKUP_ELEM, &key, nullptr, 0, "lookup");
    compare(BPF_MAP_UPDATE_ELEM, &key, value.data(), BPF_ANY, "update");
    compare(BPF_MAP_UPDATE_ELEM, &key, value.data(), BPF_NOEXIST, "update BPF_NOEXIST");
    compare(BPF_MAP_GET_NEXT_KEY, nullptr, nullptr, 0, "first key");
    compare(BPF_MAP_DELETE_ELEM, &key, nullptr, 0, "delete");
  }
}

// A program may use one cgroup storage of each type (the one bpf_get_local_storage gives): a second
// is refused at load, EBUSY, and one of each type loads.
TEST_F(ObjectMapOracle, AProgramHasOneCgroupStorageOfEachType) {
  int maps[3][2];
  const std::uint32_t types[3] = {BPF_MAP_TYPE_CGROUP_STORAGE, BPF_MAP_TYPE_CGROUP_STORAGE,
                                  BPF_MAP_TYPE_PERCPU_CGROUP_STORAGE};
  for (int m = 0; m < 3; ++m) {
    if (!create(types[m], 8, 8, 0, 0, false, "cgroup storage")) return;
    maps[m][0] = map_[0];
    maps[m][1] = map_[1];
  }
  // r1 = map a; r1 = map b; r0 = 1; exit (cgroup_skb)
  auto load = [&](int side, int a, int b) {
    struct bpf_insn insns[6] = {};
    insns[0].code = BPF_LD | BPF_DW | BPF_IMM;
    insns[0].dst_reg = 1;
    insns[0].src_reg = BPF_PSEUDO_MAP_FD;
    insns[0].imm = maps[a][side];
    insns[2] = insns[0];
    insns[2].imm = maps[b][side];
    insns[4].code = BPF_ALU64 | BPF_MOV | BPF_K;
    insns[4].imm = 1;
    insns[5].code = BPF_JMP | BPF_EXIT;
    union bpf_attr attr {};
    attr.prog_type = BPF_PROG_TYPE_CGROUP_SKB;
    attr.insns = reinterpret_cast<std::uint64_t>(insns);
    attr.insn_cnt = 6;
    const char license[] = "GPL";
    attr.license = reinterpret_cast<std::uint64_t>(license);
    errno = 0;
    const long fd = side == 0 ? kernel_bpf(BPF_PROG_LOAD, &attr) : rt_->bpf(BPF_PROG_LOAD, &attr, sizeof attr);
    if (side == 0 && fd >= 0) kernel_fds_.push_back(static_cast<int>(fd));
    return Outcome{fd < 0 ? -1 : 0, fd < 0 ? errno : 0, {}};
  };
  for (const auto& [a, b] : {std::pair{0, 1}, std::pair{0, 2}, std::pair{0, 0}}) {
    const Outcome kernel = load(0, a, b), mine = load(1, a, b);
    EXPECT_EQ(kernel, mine) << "maps " << a << " and " << b << ": kernel " << describe(kernel) << ", bpfvm " << describe(mine);
  }
}

// A struct_ops map holds one value of a kernel struct_ops type (found by its id in the kernel's BTF); it
// is created and read as the kernel's, and its update, which registers the callbacks with the kernel,
// fails: there is no kernel subsystem to register them with.
TEST_F(ObjectMapOracle, StructOpsMapsTakeTheKernelsValueTypes) {
  auto kernel = obj::running_kernel_btf();
  if (!kernel) GTEST_SKIP() << "no kernel BTF: " << kernel.error().to_string();
  const std::uint32_t tcp = (*kernel)->find_struct("bpf_struct_ops_tcp_congestion_ops");
  if (tcp == 0) GTEST_SKIP() << "this kernel has no bpf_struct_ops_tcp_congestion_ops";
  const std::uint32_t size = (*kernel)->type_size(tcp);
  create(BPF_MAP_TYPE_STRUCT_OPS, 4, 4, 1, 0, false, "a type that is not struct_ops", 1);
  create(BPF_MAP_TYPE_STRUCT_OPS, 4, size, 1, 0, false, "no value type", 0);
  create(BPF_MAP_TYPE_STRUCT_OPS, 4, size - 8, 1, 0, false, "the wrong value size", tcp);
  create(BPF_MAP_TYPE_STRUCT_OPS, 8, size, 1, 0, false, "key 8", tcp);
  create(BPF_MAP_TYPE_STRUCT_OPS, 4, size, 2, 0, false, "2 entries", tcp);
  create(BPF_MAP_TYPE_STRUCT_OPS, 4, size, 1, BPF_F_RDONLY, true, "BPF_F_RDONLY", tcp);
  create(BPF_MAP_TYPE_STRUCT_OPS, 4, size, 1, 0, false, "without an object's BTF", tcp);
  if (!create(BPF_MAP_TYPE_STRUCT_OPS, 4, size, 1, 0, true, "tcp_congestion_ops", tcp)) return;
  lookup(0);
  lookup(1);
  walk();
  erase(0);
  std::vector<std::uint8_t> value(size, 0);
  const std::uint32_t zero = 0;
  union bpf_attr a {};
  a.map_fd = static_cast<std::uint32_t>(map_[1]);
  a.key = reinterpret_cast<std::uint64_t>(&zero);
  a.value = reinterpret_cast<std::uint64_t>(value.data());
  EXPECT_EQ(rt_->bpf(BPF_MAP_UPDATE_ELEM, &a, sizeof a), -1);
  EXPECT_EQ(errno, EOPNOTSUPP) << "registering callbacks with the kernel";
}

}  // namespace
}  // namespace bpfvm::runtime
