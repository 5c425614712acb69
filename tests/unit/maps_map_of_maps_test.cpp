// Maps of maps in shared memory: another process that opens the outer map finds the same inner maps,
// live; inner maps put there by a process that has exited stay as long as the outer map holds them.
#include <gtest/gtest.h>
#include <linux/bpf.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>

#include "bpfvm/maps/map.hpp"

namespace bpfvm::maps {
namespace {

class MapOfMapsTest : public ::testing::TestWithParam<std::uint32_t> {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() / ("bpfvm-mom-" + std::to_string(::getpid()));
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::size_t files() const {
    return static_cast<std::size_t>(std::distance(std::filesystem::directory_iterator(dir_), {}));
  }
  std::filesystem::path dir_;
};

const MapDef kInner{BPF_MAP_TYPE_ARRAY, 4, 8, 1, 0, "inner"};

std::uint64_t value_in(Map& outer, std::uint32_t slot) {
  auto* inner = static_cast<Map*>(outer.lookup_in_place(&slot));
  if (!inner) return ~0ull;
  const std::uint32_t zero = 0;
  std::uint64_t v = 0;
  return inner->lookup(&zero, &v) ? v : ~0ull;
}

TEST_P(MapOfMapsTest, AnotherProcessSharesTheInnerMaps) {
  const MapDef outer_def{GetParam(), 4, 4, 4, 0, "outer"};
  {
    auto outer = create_map(outer_def, &kInner, dir_.string());
    ASSERT_TRUE(outer) << outer.error().to_string();
    auto inner = create_map(kInner, nullptr, dir_.string());
    ASSERT_TRUE(inner);
    const std::uint32_t zero = 0, one = 1;
    const std::uint64_t v = 42;
    ASSERT_TRUE((*inner)->update(&zero, &v, BPF_ANY));
    ASSERT_TRUE((*outer)->update_inner(&zero, *inner, BPF_ANY));

    const std::string path = (*outer)->storage_path();
    const pid_t pid = ::fork();
    if (pid == 0) {
      // The child sees slot 0's map, changes it, and puts a map of its own in slot 1; it lets go of its
      // maps before it exits, as a process closing its fds does.
      auto child = [&]() -> int {
        auto mine = open_shared_map(path);
        if (!mine || !(*mine)->inner_def()) return 1;
        if (value_in(**mine, 0) != 42) return 2;
        auto* in0 = static_cast<Map*>((*mine)->lookup_in_place(&zero));
        const std::uint64_t changed = 43;
        if (!in0->update(&zero, &changed, BPF_ANY)) return 3;
        auto second = create_map(kInner, nullptr, dir_.string());
        if (!second) return 4;
        const std::uint64_t w = 7;
        if (!(*second)->update(&zero, &w, BPF_ANY) || !(*mine)->update_inner(&one, *second, BPF_ANY)) return 5;
        return 0;
      };
      ::_exit(child());
    }
    int status = 0;
    ::waitpid(pid, &status, 0);
    ASSERT_TRUE(WIFEXITED(status));
    ASSERT_EQ(WEXITSTATUS(status), 0);
    EXPECT_EQ(value_in(**outer, 0), 43u);  // the child's write, through the same inner map
    EXPECT_EQ(value_in(**outer, 1), 7u);   // the child's map outlives the child: the outer map holds it
    std::uint32_t id = 0;
    EXPECT_TRUE((*outer)->lookup(&one, &id));

    // Emptying slot 1 lets its map go once nobody uses it.
    ASSERT_TRUE((*outer)->erase(&one));
    EXPECT_EQ((*outer)->lookup_in_place(&one), nullptr);
    EXPECT_EQ((*outer)->erase(&one).error().code(), Errc::kNotFound);
  }
  // Everything was unpinned: the last user removed every file (outer, its slots, both inner maps).
  EXPECT_EQ(files(), 0u);
}

TEST_P(MapOfMapsTest, InnerMapsMustMatchTheTemplate) {
  auto outer = create_map({GetParam(), 4, 4, 2, 0, "outer"}, &kInner, dir_.string());
  ASSERT_TRUE(outer);
  auto wrong = create_map({BPF_MAP_TYPE_ARRAY, 4, 16, 1, 0, "wrong"}, nullptr, dir_.string());
  ASSERT_TRUE(wrong);
  const std::uint32_t zero = 0;
  EXPECT_EQ((*outer)->update_inner(&zero, *wrong, BPF_ANY).error().code(), Errc::kInvalid);
  EXPECT_TRUE(open_shared_map((*outer)->storage_path()));
  // An outer map whose slot table is gone (or not a table) is refused when opened, with the reason.
  const std::string path = (*outer)->storage_path();
  {
    std::FILE* f = std::fopen(path.c_str(), "r+");
    ASSERT_TRUE(f);
    std::fseek(f, -228, SEEK_END);  // the table's path, the last field of the outer map's file
    const char gone[228] = "/nonexistent/bpfvm-table";
    std::fwrite(gone, 1, sizeof gone, f);
    std::fclose(f);
  }
  auto broken = open_shared_map(path);
  ASSERT_FALSE(broken);
  EXPECT_NE(broken.error().to_string().find("its slots"), std::string::npos) << broken.error().to_string();
}

INSTANTIATE_TEST_SUITE_P(Both, MapOfMapsTest, ::testing::Values(BPF_MAP_TYPE_ARRAY_OF_MAPS, BPF_MAP_TYPE_HASH_OF_MAPS));

}  // namespace
}  // namespace bpfvm::maps
