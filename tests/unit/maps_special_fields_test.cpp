// A value's special fields (a struct bpf_spin_lock, a struct bpf_timer) are never copied in or out, as
// the kernel's copy_map_value skips them: user space cannot lock a lock or forge a timer by writing the
// value, reads them as zeros, and a write over an element frees its timer (but keeps a hash element's
// timer under BPF_F_LOCK, as htab_map_update_elem does).
#include <linux/bpf.h>

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <string>

#include <unistd.h>

#include <gtest/gtest.h>

#include "bpfvm/maps/map.hpp"

namespace bpfvm::maps {
namespace {

struct Value {
  std::uint32_t lock;
  std::uint32_t n;
  std::uint64_t timer[2];
  std::uint64_t tail;
};

MapDef def_of(std::uint32_t type) {
  MapDef d;
  d.type = type;
  d.key_size = 4;
  d.value_size = sizeof(Value);
  d.max_entries = 4;
  d.name = "special";
  d.spin_lock_off = 0;
  d.timer_off = 8;
  return d;
}

class SpecialFields : public ::testing::TestWithParam<std::uint32_t> {};

TEST_P(SpecialFields, AreNeitherWrittenNorRead) {
  auto map = create_map(def_of(GetParam()));
  ASSERT_TRUE(map) << map.error().to_string();
  Map& m = **map;
  const std::uint32_t key = 1;
  const Value forged{.lock = 1, .n = 7, .timer = {~0ull, ~0ull}, .tail = 9};
  ASSERT_TRUE(m.update(&key, &forged, BPF_ANY));
  auto* in_place = static_cast<Value*>(m.lookup_in_place(&key));
  ASSERT_NE(in_place, nullptr);
  EXPECT_EQ(in_place->lock, 0u) << "a write must not take the lock";
  EXPECT_EQ(in_place->timer[0] | in_place->timer[1], 0u) << "a write must not make a timer";
  EXPECT_EQ(in_place->n, 7u);
  EXPECT_EQ(in_place->tail, 9u);

  // A timer the helpers set (initialised, pending) reads as zeros and goes with a plain write.
  in_place->timer[0] = 1, in_place->timer[1] = 5;
  Value out{};
  ASSERT_TRUE(m.lookup(&key, &out));
  EXPECT_EQ(out.timer[0] | out.timer[1], 0u);
  EXPECT_EQ(out.n, 7u);
  ASSERT_TRUE(m.update_locked(&key, &forged, BPF_F_LOCK));
  const bool array = GetParam() == BPF_MAP_TYPE_ARRAY;
  EXPECT_EQ(in_place->timer[1], array ? 0u : 5u) << "BPF_F_LOCK: an array's timer goes, a hash element's stays";
  EXPECT_EQ(in_place->lock, 0u);
  ASSERT_TRUE(m.update(&key, &forged, BPF_ANY));
  EXPECT_EQ(in_place->timer[0] | in_place->timer[1], 0u) << "a write over the element frees its timer";

  if (!array) {
    in_place->timer[0] = 1, in_place->timer[1] = 5;
    ASSERT_TRUE(m.erase(&key));
    EXPECT_EQ(in_place->timer[0] | in_place->timer[1], 0u) << "a deleted element's timer goes";
  }
}

// A kptr field: a write never sets it (a program would read through a pointer user space forged), a
// read sees 0, and a write over the element or its deletion clears it.
TEST_P(SpecialFields, KptrsAreTheProgramsAlone) {
  MapDef d = def_of(GetParam());
  d.spin_lock_off = -1, d.timer_off = -1;
  d.kptr_offs = {8, 24};
  const auto dir = std::filesystem::temp_directory_path() / ("bpfvm-kptrs-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  auto map = create_map(d, nullptr, dir.string());
  ASSERT_TRUE(map) << map.error().to_string();
  Map& m = **map;
  const std::uint32_t key = 2;
  const Value forged{.lock = 3, .n = 7, .timer = {0x1234, 5}, .tail = 0x5678};
  ASSERT_TRUE(m.update(&key, &forged, BPF_ANY));
  auto* v = static_cast<Value*>(m.lookup_in_place(&key));
  ASSERT_NE(v, nullptr);
  EXPECT_EQ(v->timer[0], 0u);
  EXPECT_EQ(v->tail, 0u);
  EXPECT_EQ(v->timer[1], 5u) << "the bytes around the kptrs are copied";
  v->timer[0] = 0xabc, v->tail = 0xdef;  // as a program's stores put them
  Value out{};
  ASSERT_TRUE(m.lookup(&key, &out));
  EXPECT_EQ(out.timer[0] | out.tail, 0u);
  ASSERT_TRUE(m.update(&key, &forged, BPF_ANY));
  EXPECT_EQ(v->timer[0] | v->tail, 0u) << "a write over the element clears its kptrs";
  if (GetParam() != BPF_MAP_TYPE_ARRAY) {
    v->tail = 0xdef;
    ASSERT_TRUE(m.erase(&key));
    EXPECT_EQ(v->tail, 0u);
  }
  // Another process's view of the map has the same kptrs (they are in the file's header).
  ASSERT_FALSE(m.storage_path().empty());
  auto again = open_shared_map(m.storage_path());
  ASSERT_TRUE(again) << again.error().to_string();
  EXPECT_EQ((*again)->def().kptr_offs, d.kptr_offs);
  again->reset();
  map->reset();
  std::filesystem::remove_all(dir);
}

INSTANTIATE_TEST_SUITE_P(Types, SpecialFields,
                         ::testing::Values(BPF_MAP_TYPE_ARRAY, BPF_MAP_TYPE_HASH, BPF_MAP_TYPE_LRU_HASH));

TEST(SpecialFieldsPlacement, ATimerOnlyInHashesAndArraysInsideTheValue) {
  MapDef d = def_of(BPF_MAP_TYPE_PERCPU_ARRAY);
  d.spin_lock_off = -1;
  auto percpu = create_map(d);
  ASSERT_FALSE(percpu);
  EXPECT_EQ(percpu.error().code(), Errc::kNotSupported);
  d = def_of(BPF_MAP_TYPE_ARRAY);
  d.timer_off = 12;  // not 8-byte aligned
  EXPECT_FALSE(create_map(d));
  d.timer_off = 24;  // past the value's end (32 bytes)
  EXPECT_FALSE(create_map(d));
}

}  // namespace
}  // namespace bpfvm::maps
