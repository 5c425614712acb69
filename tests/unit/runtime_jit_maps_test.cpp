// Map lookups the JIT specialises (the verifier proved which map a call passes): arrays and per-CPU
// arrays as address arithmetic, hashes of 4-, 8- and other-sized keys, per-CPU and LRU hashes through
// the map's own lookup, and the helpers that become loads (bpf_get_smp_processor_id,
// bpf_get_current_pid_tgid). Each program gives the answer the map holds; the suite also runs with
// BPFVM_JIT=0, where the same programs run in the interpreter through the helpers.
#include <gtest/gtest.h>
#include <linux/bpf.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <filesystem>
#include <string>
#include <vector>

#include "bpfvm/isa/assembler.hpp"
#include "bpfvm/isa/codec.hpp"
#include "bpfvm/maps/cpu.hpp"
#include "bpfvm/runtime/runtime.hpp"

namespace bpfvm::runtime {
namespace {

class JitMaps : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() / ("bpfvm-jit-maps-" + std::to_string(::getpid()));
    rt_ = std::make_unique<Runtime>(RuntimeOptions{dir_.string()});
  }
  void TearDown() override {
    rt_.reset();
    std::filesystem::remove_all(dir_);
  }

  int create(std::uint32_t type, std::uint32_t key_size, std::uint32_t entries = 16) {
    union bpf_attr a {};
    a.map_type = type;
    a.key_size = key_size;
    a.value_size = 8;
    a.max_entries = entries;
    const int fd = static_cast<int>(rt_->bpf(BPF_MAP_CREATE, &a, sizeof a));
    EXPECT_GE(fd, 0);
    return fd;
  }
  void update(int fd, const void* key, const void* value) {
    union bpf_attr a {};
    a.map_fd = static_cast<std::uint32_t>(fd);
    a.key = reinterpret_cast<std::uint64_t>(key);
    a.value = reinterpret_cast<std::uint64_t>(value);
    ASSERT_EQ(rt_->bpf(BPF_MAP_UPDATE_ELEM, &a, sizeof a), 0);
  }
  void lookup(int fd, const void* key, void* value) {
    union bpf_attr a {};
    a.map_fd = static_cast<std::uint32_t>(fd);
    a.key = reinterpret_cast<std::uint64_t>(key);
    a.value = reinterpret_cast<std::uint64_t>(value);
    ASSERT_EQ(rt_->bpf(BPF_MAP_LOOKUP_ELEM, &a, sizeof a), 0);
  }
  // Loads the program (kernel syntax) as a socket filter and runs it once: its r0.
  std::uint64_t run(const std::string& source) {
    auto insns = isa::assemble(source, isa::AsmSyntax::kKernel);
    EXPECT_TRUE(insns) << insns.error().to_string();
    const auto wire = isa::to_wire(*insns);
    std::string log(1 << 16, '\0');
    union bpf_attr a {};
    a.prog_type = BPF_PROG_TYPE_SOCKET_FILTER;
    a.insns = reinterpret_cast<std::uint64_t>(wire.data());
    a.insn_cnt = static_cast<std::uint32_t>(wire.size() / 8);
    a.license = reinterpret_cast<std::uint64_t>("GPL");
    a.log_buf = reinterpret_cast<std::uint64_t>(log.data());
    a.log_size = static_cast<std::uint32_t>(log.size());
    a.log_level = 1;
    const long fd = rt_->bpf(BPF_PROG_LOAD, &a, sizeof a);
    EXPECT_GE(fd, 0) << log.c_str();
    std::vector<std::uint8_t> packet(64, 0);
    union bpf_attr t {};
    t.test.prog_fd = static_cast<std::uint32_t>(fd);
    t.test.data_in = reinterpret_cast<std::uint64_t>(packet.data());
    t.test.data_size_in = static_cast<std::uint32_t>(packet.size());
    t.test.repeat = 1;
    EXPECT_EQ(rt_->bpf(BPF_PROG_TEST_RUN, &t, sizeof t), 0);
    return t.test.retval;
  }

  std::filesystem::path dir_;
  std::unique_ptr<Runtime> rt_;
};

// For keys 0..11 (the map holds 0..9 with value key * 3 + 1): the sum of the values found, plus 1000
// per key not found. Keys of `key_size` bytes: the loop counter in the first 4 (or 8), the rest 7s.
std::string sum_program(int fd, std::uint32_t key_size) {
  std::string fill;
  for (std::uint32_t off = key_size == 8 ? 8 : 4; off < key_size; off += 4) {
    fill += fmt::format("*(u32 *)(r10 {}) = 7\n", -32 + static_cast<int>(off));
  }
  const char* store = key_size == 8 ? "*(u64 *)(r10 -32) = r6\n" : "*(u32 *)(r10 -32) = r6\n";
  return fmt::format(
      "r7 = 0\nr6 = 0\nloop:\n{}{}r1 = map[fd:{}]\nr2 = r10\nr2 += -32\ncall bpf_map_lookup_elem\n"
      "if r0 == 0 goto missing\nr1 = *(u64 *)(r0 +0)\nr7 += r1\ngoto next\nmissing:\nr7 += 1000\n"
      "next:\nr6 += 1\nif r6 < 12 goto loop\nr0 = r7\nexit\n",
      store, fill, fd);
}

constexpr std::uint64_t kExpectedSum = 3 * 45 + 10 + 2 * 1000;  // sum of k * 3 + 1 for 0..9, two misses

TEST_F(JitMaps, HashLookupsOfEveryKeySize) {
  for (std::uint32_t type : {BPF_MAP_TYPE_HASH, BPF_MAP_TYPE_LRU_HASH}) {
    for (std::uint32_t key_size : {4u, 8u, 12u, 20u}) {
      SCOPED_TRACE(fmt::format("type {} key_size {}", type, key_size));
      const int fd = create(type, key_size);
      for (std::uint32_t k = 0; k < 10; ++k) {
        std::vector<std::uint8_t> key(key_size, 0);
        std::memcpy(key.data(), &k, 4);
        for (std::uint32_t off = key_size == 8 ? 8 : 4; off < key_size; off += 4) key[off] = 7;
        const std::uint64_t v = k * 3 + 1;
        update(fd, key.data(), &v);
      }
      EXPECT_EQ(run(sum_program(fd, key_size)), kExpectedSum);
    }
  }
}

TEST_F(JitMaps, ArrayLookupsStopAtTheEnd) {
  const int fd = create(BPF_MAP_TYPE_ARRAY, 4, 10);
  for (std::uint32_t k = 0; k < 10; ++k) {
    const std::uint64_t v = k * 3 + 1;
    update(fd, &k, &v);
  }
  EXPECT_EQ(run(sum_program(fd, 4)), kExpectedSum);  // keys 10 and 11 are past max_entries
}

// Per-CPU maps: a program sees its slot's value (every slot holds key * 3 + 1 here), and its writes
// land in its slot only, the one bpf_get_smp_processor_id names.
TEST_F(JitMaps, PerCpuLookupsUseTheRunsSlot) {
  const std::uint32_t cpus = maps::possible_cpus();
  for (std::uint32_t type : {BPF_MAP_TYPE_PERCPU_ARRAY, BPF_MAP_TYPE_PERCPU_HASH}) {
    SCOPED_TRACE(fmt::format("type {}", type));
    const int fd = create(type, 4, 10);
    std::vector<std::uint64_t> values(cpus);
    for (std::uint32_t k = 0; k < 10; ++k) {
      std::fill(values.begin(), values.end(), k * 3 + 1);
      update(fd, &k, values.data());
    }
    EXPECT_EQ(run(sum_program(fd, 4)), kExpectedSum);
    // Key 5's value += 100 in this run's slot; r0 = the slot.
    const std::uint64_t slot = run(fmt::format("*(u32 *)(r10 -4) = 5\nr1 = map[fd:{}]\nr2 = r10\nr2 += -4\n"
                                               "call bpf_map_lookup_elem\nif r0 == 0 goto out\nr1 = *(u64 *)(r0 +0)\n"
                                               "r1 += 100\n*(u64 *)(r0 +0) = r1\nout:\ncall bpf_get_smp_processor_id\nexit\n",
                                               fd));
    ASSERT_LT(slot, cpus);
    const std::uint32_t five = 5;
    lookup(fd, &five, values.data());
    for (std::uint32_t c = 0; c < cpus; ++c) EXPECT_EQ(values[c], c == slot ? 116u : 16u) << "slot " << c;
  }
}

TEST_F(JitMaps, TaskIdsAreThisThreads) {
  const std::uint64_t ids = run("call bpf_get_current_pid_tgid\nexit\n");
  // test_run's retval is r0's low 32 bits: the thread id.
  EXPECT_EQ(static_cast<std::uint32_t>(ids), static_cast<std::uint32_t>(::syscall(SYS_gettid)));
  EXPECT_EQ(run("call bpf_get_current_pid_tgid\nr0 >>= 32\nexit\n"), static_cast<std::uint32_t>(::getpid()));
  EXPECT_LT(run("call bpf_get_smp_processor_id\nexit\n"), maps::possible_cpus());
}

}  // namespace
}  // namespace bpfvm::runtime
