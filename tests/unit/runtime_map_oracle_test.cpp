// The kernel as an oracle for map semantics: the same random operations through bpf() on a kernel map
// and on a bpfvm map of the same definition give the same return values, errnos and bytes.
#include <gtest/gtest.h>
#include <linux/bpf.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <random>

#include "bpfvm/isa/assembler.hpp"
#include "bpfvm/isa/codec.hpp"
#include "bpfvm/maps/cpu.hpp"
#include "bpfvm/runtime/runtime.hpp"
#include "bpf_outcome.hpp"

namespace bpfvm::runtime {
namespace {

using test::describe;
using test::kernel_bpf;
using test::Outcome;

class MapOracle : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root for bpf()";
    union bpf_attr probe {};
    probe.map_type = BPF_MAP_TYPE_ARRAY;
    probe.key_size = 4;
    probe.value_size = 4;
    probe.max_entries = 1;
    const long fd = kernel_bpf(BPF_MAP_CREATE, &probe);
    if (fd < 0) GTEST_SKIP() << "the kernel refuses bpf() here";
    ::close(static_cast<int>(fd));
    root_ = std::filesystem::temp_directory_path() / ("bpfvm-maporacle-" + std::to_string(::getpid()));
    rt_ = std::make_unique<Runtime>(RuntimeOptions{root_.string()});
  }
  void TearDown() override {
    for (int fd : kernel_fds_) ::close(fd);
    std::error_code ec;
    std::filesystem::remove_all(root_, ec);
  }

  // Runs `cmd` on both sides with the same attr; `out` names the buffer in attr that receives data.
  template <typename Setup>
  void both(int cmd, std::size_t out_size, Setup setup, const std::string& what) {
    Outcome o[2];
    for (int side = 0; side < 2; ++side) {
      std::vector<std::uint8_t> out(out_size, 0xcc);
      union bpf_attr a {};
      setup(a, side == 0 ? kfd_ : ofd_, out.data());
      errno = 0;
      const long rc = side == 0 ? kernel_bpf(cmd, &a) : rt_->bpf(cmd, &a, sizeof a);
      o[side] = {rc < 0 ? -1 : 0, rc < 0 ? errno : 0, rc < 0 ? std::vector<std::uint8_t>{} : out};
    }
    EXPECT_EQ(o[0], o[1]) << what << ": kernel " << describe(o[0]) << ", bpfvm " << describe(o[1]);
  }

  // One element command on both sides, compared: key (and value, flags) as the command takes them.
  void both_update(const void* key, const void* value, std::uint64_t flags, const std::string& what) {
    both(BPF_MAP_UPDATE_ELEM, 0, [&](union bpf_attr& a, int fd, std::uint8_t*) {
      a.map_fd = static_cast<std::uint32_t>(fd);
      a.key = reinterpret_cast<std::uint64_t>(key);
      a.value = reinterpret_cast<std::uint64_t>(value);
      a.flags = flags;
    }, what);
  }
  void both_read(int cmd, const void* key, const std::string& what) {  // lookup, lookup-and-delete
    both(cmd, value_size_, [&](union bpf_attr& a, int fd, std::uint8_t* out) {
      a.map_fd = static_cast<std::uint32_t>(fd);
      a.key = reinterpret_cast<std::uint64_t>(key);
      a.value = reinterpret_cast<std::uint64_t>(out);
    }, what);
  }
  void both_delete(const void* key, const std::string& what) {
    both(BPF_MAP_DELETE_ELEM, 0, [&](union bpf_attr& a, int fd, std::uint8_t*) {
      a.map_fd = static_cast<std::uint32_t>(fd);
      a.key = reinterpret_cast<std::uint64_t>(key);
    }, what);
  }

  void create(std::uint32_t type, std::uint32_t key, std::uint32_t value, std::uint32_t max, std::uint32_t flags = 0) {
    union bpf_attr a {};
    a.map_type = type;
    a.key_size = key;
    a.value_size = value;
    a.max_entries = max;
    a.map_flags = flags;
    union bpf_attr b = a;
    kfd_ = static_cast<int>(kernel_bpf(BPF_MAP_CREATE, &a));
    ASSERT_GE(kfd_, 0) << std::strerror(errno);
    kernel_fds_.push_back(kfd_);
    ofd_ = static_cast<int>(rt_->bpf(BPF_MAP_CREATE, &b, sizeof b));
    ASSERT_GE(ofd_, 0) << std::strerror(errno);
    key_size_ = key;
    value_size_ = value;
  }

  // Random keyed operations over a small key space, so that every errno path comes up.
  void lpm_ops(std::uint32_t max_entries, int ops, std::uint32_t seed, bool wide);
  void random_keyed_ops(int count, std::uint32_t keys, bool ordered) {
    std::mt19937 rng(1234);
    for (int i = 0; i < count; ++i) {
      std::vector<std::uint8_t> key(key_size_, 0), value(value_size_);
      key[0] = static_cast<std::uint8_t>(rng() % keys);
      for (auto& b : value) b = static_cast<std::uint8_t>(rng());
      const std::uint64_t flags_choice[] = {BPF_ANY, BPF_NOEXIST, BPF_EXIST, 7};
      const std::uint64_t flags = flags_choice[rng() % 4];
      const std::string what = fmt::format("op {} key {}", i, key[0]);
      switch (rng() % 5) {
        case 0:
          both_update(key.data(), value.data(), flags, what + fmt::format(" update flags {}", flags));
          break;
        case 1:
          both_read(BPF_MAP_LOOKUP_ELEM, key.data(), what + " lookup");
          break;
        case 2:
          both_delete(key.data(), what + " delete");
          break;
        case 3: {
          // get_next_key from an absent key restarts; compare only success and errno (orders differ).
          Outcome o[2];
          for (int side = 0; side < 2; ++side) {
            std::vector<std::uint8_t> next(key_size_);
            union bpf_attr a {};
            a.map_fd = static_cast<std::uint32_t>(side == 0 ? kfd_ : ofd_);
            a.key = reinterpret_cast<std::uint64_t>(key.data());
            a.next_key = reinterpret_cast<std::uint64_t>(next.data());
            errno = 0;
            const long rc = side == 0 ? kernel_bpf(BPF_MAP_GET_NEXT_KEY, &a) : rt_->bpf(BPF_MAP_GET_NEXT_KEY, &a, sizeof a);
            o[side] = {rc < 0 ? -1 : 0, rc < 0 ? errno : 0, {}};
          }
          // Key order is the map's own (buckets differ), so only an array's walk is comparable.
          if (ordered) {
            EXPECT_EQ(o[0], o[1]) << what << " get_next_key";
          }
          break;
        }
        case 4:
          both_read(BPF_MAP_LOOKUP_AND_DELETE_ELEM, key.data(), what + " lookup_and_delete");
          break;
      }
    }
  }

  void random_keyless_ops(int count, bool bloom) {
    std::mt19937 rng(99);
    for (int i = 0; i < count; ++i) {
      std::vector<std::uint8_t> value(value_size_);
      value[0] = static_cast<std::uint8_t>(rng() % 6);
      const std::uint64_t flags_choice[] = {0, BPF_EXIST, BPF_NOEXIST, 3};
      const std::uint64_t flags = flags_choice[rng() % 4];
      const std::string what = fmt::format("op {}", i);
      switch (rng() % 5) {
        case 0:
          both_update(nullptr, value.data(), flags, what + fmt::format(" push flags {}", flags));
          break;
        case 1:
          // A bloom filter's lookup checks the value given; a queue's peek fills it.
          both(BPF_MAP_LOOKUP_ELEM, value_size_, [&](union bpf_attr& a, int fd, std::uint8_t* out) {
            if (bloom) std::memcpy(out, value.data(), value.size());
            a.map_fd = static_cast<std::uint32_t>(fd);
            a.value = reinterpret_cast<std::uint64_t>(out);
          }, what + " peek");
          break;
        case 2:
          both_read(BPF_MAP_LOOKUP_AND_DELETE_ELEM, nullptr, what + " pop");
          break;
        case 3:
          both_delete(nullptr, what + " delete");
          break;
        case 4:
          both(BPF_MAP_GET_NEXT_KEY, 4, [&](union bpf_attr& a, int fd, std::uint8_t* out) {
            a.map_fd = static_cast<std::uint32_t>(fd);
            a.next_key = reinterpret_cast<std::uint64_t>(out);
          }, what + " get_next_key");
          break;
      }
    }
  }

  std::filesystem::path root_;
  std::unique_ptr<Runtime> rt_;
  std::vector<int> kernel_fds_;
  int kfd_ = -1, ofd_ = -1;
  std::uint32_t key_size_ = 0, value_size_ = 0;
};

TEST_F(MapOracle, Hash) {
  create(BPF_MAP_TYPE_HASH, 4, 12, 4);
  random_keyed_ops(400, 7, false);
}

TEST_F(MapOracle, Array) {
  create(BPF_MAP_TYPE_ARRAY, 4, 12, 4);
  random_keyed_ops(400, 6, true);
}

TEST_F(MapOracle, PercpuArray) {
  create(BPF_MAP_TYPE_PERCPU_ARRAY, 4, 12, 4);
  value_size_ = 16 * maps::possible_cpus();  // what user space passes: round_up(12, 8) per CPU
  random_keyed_ops(300, 6, true);
}

TEST_F(MapOracle, PercpuHash) {
  create(BPF_MAP_TYPE_PERCPU_HASH, 4, 4, 4);
  value_size_ = 8 * maps::possible_cpus();
  random_keyed_ops(300, 7, false);
}

// Random updates, lookups, deletes and get_next_key walks on both sides. Both keep the same trie (the
// kernel's algorithm), so walks agree even when they start from a key that is not in it.
void MapOracle::lpm_ops(std::uint32_t max_entries, int ops, std::uint32_t seed, bool wide) {
  create(BPF_MAP_TYPE_LPM_TRIE, 4 + 4, 8, max_entries, BPF_F_NO_PREALLOC);
  // Keys: prefixlen (0..34, some too long) and an IPv4 address from a few related networks, or (wide)
  // from 10.0.0.0/8 with a few bits varying at every level.
  std::mt19937 rng(seed);
  const std::uint8_t nets[4][4] = {{10, 0, 0, 0}, {10, 1, 0, 0}, {10, 1, 2, 0}, {192, 168, 1, 7}};
  for (int i = 0; i < ops; ++i) {
    std::uint8_t key[8];
    const std::uint32_t prefixlen = rng() % 35;
    std::memcpy(key, &prefixlen, 4);
    if (wide) {
      const std::uint8_t addr[4] = {10, static_cast<std::uint8_t>(rng() % 4 * 64), static_cast<std::uint8_t>(rng() % 8 * 32),
                                    static_cast<std::uint8_t>(rng() % 16 * 16 + rng() % 2)};
      std::memcpy(key + 4, addr, 4);
    } else {
      std::memcpy(key + 4, nets[rng() % 4], 4);
      key[7] = static_cast<std::uint8_t>(key[7] | (rng() % 4));
    }
    std::uint64_t value = rng();
    const std::uint64_t flags_choice[] = {BPF_ANY, BPF_NOEXIST, BPF_EXIST};
    const std::uint64_t flags = flags_choice[rng() % 3];
    const std::string what = fmt::format("op {} /{}", i, prefixlen);
    switch (rng() % 4) {
      case 0:
        both_update(key, &value, flags, what + " update");
        break;
      case 1:
        both_read(BPF_MAP_LOOKUP_ELEM, key, what + " lookup");
        break;
      case 2:
        both_delete(key, what + " delete");
        break;
      case 3: {
        // A walk from NULL or from this key (in the trie or not), each step from the key the last one
        // returned.
        const bool from_key = rng() % 2;
        std::vector<std::uint8_t> walk[2];
        for (int side = 0; side < 2; ++side) {
          std::uint8_t cur[8] = {}, next[8] = {};
          std::memcpy(cur, key, 8);
          bool first = true;
          for (std::uint32_t step = 0; step < max_entries + 2; ++step) {
            union bpf_attr a {};
            a.map_fd = static_cast<std::uint32_t>(side == 0 ? kfd_ : ofd_);
            a.key = first && !from_key ? 0 : reinterpret_cast<std::uint64_t>(cur);
            a.next_key = reinterpret_cast<std::uint64_t>(next);
            const long rc = side == 0 ? kernel_bpf(BPF_MAP_GET_NEXT_KEY, &a) : rt_->bpf(BPF_MAP_GET_NEXT_KEY, &a, sizeof a);
            if (rc != 0) break;
            walk[side].insert(walk[side].end(), next, next + 8);
            std::memcpy(cur, next, 8);
            first = false;
          }
        }
        EXPECT_EQ(walk[0], walk[1]) << what << (from_key ? " walk from the key" : " walk");
        break;
      }
    }
  }
}

TEST_F(MapOracle, LpmTrie) { lpm_ops(6, 600, 5, false); }

// More entries than the kernel's node layout fits in a few levels: intermediate nodes come and go.
TEST_F(MapOracle, LpmTrieWide) { lpm_ops(48, 3000, 11, true); }

TEST_F(MapOracle, Queue) {
  create(BPF_MAP_TYPE_QUEUE, 0, 4, 3);
  random_keyless_ops(300, false);
}

TEST_F(MapOracle, Stack) {
  create(BPF_MAP_TYPE_STACK, 0, 4, 3);
  random_keyless_ops(300, false);
}

TEST_F(MapOracle, BloomFilter) {
  create(BPF_MAP_TYPE_BLOOM_FILTER, 0, 8, 64);
  random_keyless_ops(300, true);
}

TEST_F(MapOracle, RingBufferHasNoElements) {
  create(BPF_MAP_TYPE_RINGBUF, 0, 0, 4096);
  std::uint32_t key = 0;
  for (int cmd : {BPF_MAP_LOOKUP_ELEM, BPF_MAP_UPDATE_ELEM, BPF_MAP_DELETE_ELEM, BPF_MAP_GET_NEXT_KEY,
                  BPF_MAP_LOOKUP_AND_DELETE_ELEM}) {
    both(cmd, 8, [&](union bpf_attr& a, int fd, std::uint8_t* out) {
      a.map_fd = static_cast<std::uint32_t>(fd);
      a.key = reinterpret_cast<std::uint64_t>(&key);
      a.value = reinterpret_cast<std::uint64_t>(out);
      a.next_key = reinterpret_cast<std::uint64_t>(out);
    }, fmt::format("command {}", cmd));
  }
}

// Tail calls: a program that counts its runs in an array and tail-calls slot 0 (itself), and a caller
// that tail-calls slot 1 (empty: it falls through) and then slot 0. Same counts and results as the
// kernel, whose chain stops after MAX_TAIL_CALL_CNT (33) tail calls.
TEST_F(MapOracle, TailCalls) {
  for (int side = 0; side < 2; ++side) {
    auto sys = [&](int cmd, union bpf_attr& a) { return side == 0 ? kernel_bpf(cmd, &a) : rt_->bpf(cmd, &a, sizeof a); };
    union bpf_attr m {};
    m.map_type = BPF_MAP_TYPE_ARRAY;
    m.key_size = 4;
    m.value_size = 8;
    m.max_entries = 1;
    const int counter = static_cast<int>(sys(BPF_MAP_CREATE, m));
    m.map_type = BPF_MAP_TYPE_PROG_ARRAY;
    m.value_size = 4;
    m.max_entries = 2;
    const int slots = static_cast<int>(sys(BPF_MAP_CREATE, m));
    ASSERT_GE(counter, 0);
    ASSERT_GE(slots, 0);
    if (side == 0) {
      kernel_fds_.push_back(counter);
      kernel_fds_.push_back(slots);
    }
    auto load = [&](const std::string& src) {
      auto insns = isa::assemble(src, isa::AsmSyntax::kKernel);
      EXPECT_TRUE(insns) << insns.error().to_string();
      const auto wire = isa::to_wire(*insns);
      union bpf_attr a {};
      a.prog_type = BPF_PROG_TYPE_SCHED_CLS;
      a.insns = reinterpret_cast<std::uint64_t>(wire.data());
      a.insn_cnt = static_cast<std::uint32_t>(insns->size());
      a.license = reinterpret_cast<std::uint64_t>("GPL");
      const int fd = static_cast<int>(sys(BPF_PROG_LOAD, a));
      if (side == 0 && fd >= 0) kernel_fds_.push_back(fd);
      return fd;
    };
    const int self = load(fmt::format(R"(
      r6 = r1
      *(u32 *)(r10 -4) = 0
      r1 = map[fd:{}]
      r2 = r10
      r2 += -4
      call 1
      if r0 == 0 goto out
      r1 = 1
      lock *(u64 *)(r0 +0) += r1
      r1 = r6
      r2 = map[fd:{}]
      r3 = 0
      call 12
    out:
      r0 = 77
      exit
    )", counter, slots));
    const int caller = load(fmt::format(R"(
      r6 = r1
      r1 = r6
      r2 = map[fd:{}]
      r3 = 1
      call 12
      r1 = r6
      r2 = map[fd:{}]
      r3 = 0
      call 12
      r0 = 5
      exit
    )", slots, slots));
    ASSERT_GE(self, 0) << std::strerror(errno);
    ASSERT_GE(caller, 0) << std::strerror(errno);
    std::uint32_t key = 0, fd = static_cast<std::uint32_t>(self);
    union bpf_attr u {};
    u.map_fd = static_cast<std::uint32_t>(slots);
    u.key = reinterpret_cast<std::uint64_t>(&key);
    u.value = reinterpret_cast<std::uint64_t>(&fd);
    ASSERT_EQ(sys(BPF_MAP_UPDATE_ELEM, u), 0);
    std::vector<std::uint8_t> pkt(64, 0);
    pkt[12] = 0x08;
    pkt[14] = 0x45;
    union bpf_attr t {};
    t.test.prog_fd = static_cast<std::uint32_t>(caller);
    t.test.data_in = reinterpret_cast<std::uint64_t>(pkt.data());
    t.test.data_size_in = 64;
    ASSERT_EQ(sys(BPF_PROG_TEST_RUN, t), 0);
    std::uint64_t count = 0;
    union bpf_attr l {};
    l.map_fd = static_cast<std::uint32_t>(counter);
    l.key = reinterpret_cast<std::uint64_t>(&key);
    l.value = reinterpret_cast<std::uint64_t>(&count);
    ASSERT_EQ(sys(BPF_MAP_LOOKUP_ELEM, l), 0);
    EXPECT_EQ(t.test.retval, 77u) << (side == 0 ? "kernel" : "bpfvm");
    EXPECT_EQ(count, 33u) << (side == 0 ? "kernel" : "bpfvm");
  }
}

TEST_F(MapOracle, CreateErrors) {
  struct Case {
    std::uint32_t type, key, value, max, flags;
  } cases[] = {
      {BPF_MAP_TYPE_ARRAY, 8, 4, 1, 0},       {BPF_MAP_TYPE_ARRAY, 4, 0, 1, 0},
      {BPF_MAP_TYPE_HASH, 0, 4, 1, 0},        {BPF_MAP_TYPE_HASH, 4, 4, 0, 0},
      {BPF_MAP_TYPE_HASH, 4, 4, 1, 1u << 30}, {BPF_MAP_TYPE_QUEUE, 4, 4, 1, 0},
      {BPF_MAP_TYPE_QUEUE, 0, 0, 1, 0},       {BPF_MAP_TYPE_BLOOM_FILTER, 4, 4, 1, 0},
      {BPF_MAP_TYPE_RINGBUF, 0, 0, 4000, 0},  {BPF_MAP_TYPE_RINGBUF, 4, 0, 4096, 0},
      {BPF_MAP_TYPE_PERCPU_ARRAY, 4, 0, 1, 0},     {BPF_MAP_TYPE_LPM_TRIE, 8, 8, 4, 0},
      {BPF_MAP_TYPE_LPM_TRIE, 4, 8, 4, BPF_F_NO_PREALLOC},
      {9999, 4, 4, 1, 0},
  };
  for (const Case& c : cases) {
    union bpf_attr a {};
    a.map_type = c.type;
    a.key_size = c.key;
    a.value_size = c.value;
    a.max_entries = c.max;
    a.map_flags = c.flags;
    union bpf_attr b = a;
    errno = 0;
    const long k = kernel_bpf(BPF_MAP_CREATE, &a);
    const int kerr = errno;
    if (k >= 0) ::close(static_cast<int>(k));
    errno = 0;
    const long o = rt_->bpf(BPF_MAP_CREATE, &b, sizeof b);
    const int oerr = errno;
    EXPECT_EQ(k < 0, o < 0) << "type " << c.type << " key " << c.key << " value " << c.value;
    if (k < 0 && o < 0) {
      EXPECT_EQ(kerr, oerr) << "type " << c.type << " key " << c.key << " value " << c.value;
    }
  }
}

}  // namespace
}  // namespace bpfvm::runtime
