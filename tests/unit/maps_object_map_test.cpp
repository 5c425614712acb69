// Maps of kernel objects and local storages in shared memory: what bpf() installs in one process is
// there for another that opens the same file; hashes fill and free slots; a storage's task owner is
// the tid and its start time.
#include <gtest/gtest.h>
#include <linux/bpf.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>

#include "bpfvm/maps/object_map.hpp"

namespace bpfvm::maps {
namespace {

class ObjectMapTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() / ("bpfvm-objmap-" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  std::shared_ptr<Map> make(MapDef def) {
    auto m = create_map(def, nullptr, dir_.string());
    EXPECT_TRUE(m) << m.error().to_string();
    return m ? *m : nullptr;
  }
  static ObjectMap& as_object(Map& m) { return dynamic_cast<ObjectMap&>(m); }
  std::filesystem::path dir_;
};

TEST_F(ObjectMapTest, AnotherOpenerSeesTheEntries) {
  auto m = make({BPF_MAP_TYPE_DEVMAP_HASH, 4, 8, 8, 0, "devs"});
  ASSERT_TRUE(m);
  const std::uint32_t key = 7, value[2] = {1, 42};
  ASSERT_TRUE(as_object(*m).install(&key, value, BPF_ANY));
  auto other = open_shared_map(m->storage_path());
  ASSERT_TRUE(other) << other.error().to_string();
  std::uint32_t out[2] = {};
  ASSERT_TRUE((*other)->lookup(&key, out));
  EXPECT_EQ(out[0], 1u);
  EXPECT_EQ(out[1], 42u);
  // A program's view of the same entry, in place.
  auto* in_place = static_cast<std::uint32_t*>((*other)->lookup_in_place(&key));
  ASSERT_NE(in_place, nullptr);
  EXPECT_EQ(in_place[1], 42u);
}

TEST_F(ObjectMapTest, AHashFillsAndFreesItsSlots) {
  auto m = make({BPF_MAP_TYPE_SOCKHASH, 8, 8, 3, 0, "socks"});
  ASSERT_TRUE(m);
  ObjectMap& om = as_object(*m);
  for (std::uint64_t k = 1; k <= 3; ++k) ASSERT_TRUE(om.install(&k, &k, BPF_NOEXIST));
  std::uint64_t k = 4;
  auto full = om.install(&k, &k, BPF_ANY);
  ASSERT_FALSE(full);
  EXPECT_EQ(full.error().code(), Errc::kTooBig);
  std::uint64_t two = 2;
  ASSERT_TRUE(om.erase(&two));
  ASSERT_TRUE(om.install(&k, &k, BPF_NOEXIST));  // the freed slot is taken again
  // Every key once in a walk.
  std::uint64_t seen = 0, cur = 0, next = 0;
  int n = 0;
  for (auto r = om.next_key(nullptr, &next); r; r = om.next_key(&cur, &next)) {
    seen |= 1ull << next;
    cur = next;
    ASSERT_LT(++n, 10);
  }
  EXPECT_EQ(seen, (1ull << 1) | (1ull << 3) | (1ull << 4));
}

TEST_F(ObjectMapTest, AStorageHoldsOneValuePerOwner) {
  auto m = make({BPF_MAP_TYPE_TASK_STORAGE, 4, 16, 0, BPF_F_NO_PREALLOC, "tasks"});
  ASSERT_TRUE(m);
  ObjectMap& om = as_object(*m);
  auto me = ObjectMap::task_owner(static_cast<std::uint32_t>(::gettid()));
  ASSERT_TRUE(me);
  EXPECT_NE(me->b, 0u) << "a task's start time";
  const char value[16] = "fifteen bytes!!";
  ASSERT_TRUE(om.install(&*me, value, BPF_NOEXIST));
  EXPECT_FALSE(om.install(&*me, value, BPF_NOEXIST));
  char out[16] = {};
  ASSERT_TRUE(om.fetch(&*me, out));
  EXPECT_STREQ(out, value);
  // A tid whose start time differs is another owner (a new task with a reused tid).
  ObjectMap::OwnerKey reused = *me;
  reused.b += 1;
  EXPECT_FALSE(om.fetch(&reused, out));
  EXPECT_FALSE(ObjectMap::task_owner(0x3fffffff)) << "no such task";
  // User space names owners by descriptor only: bpf() translates; the plain entry points say so.
  EXPECT_FALSE(om.lookup(&*me, out));
  EXPECT_EQ(om.next_key(nullptr, out).error().code(), Errc::kKernelNotSupported);
}

TEST_F(ObjectMapTest, ACorruptFileIsRefused) {
  auto m = make({BPF_MAP_TYPE_DEVMAP, 4, 4, 4, 0, "devs"});
  ASSERT_TRUE(m);
  std::filesystem::resize_file(m->storage_path(), std::filesystem::file_size(m->storage_path()) + 8);
  EXPECT_FALSE(open_shared_map(m->storage_path()));
}

}  // namespace
}  // namespace bpfvm::maps
