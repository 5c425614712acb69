// BPF_MAP_TYPE_CGROUP_ARRAY: slots filled from cgroup2 directory descriptors, and the test
// bpf_current_task_under_cgroup makes of them (the slot's cgroup or below it).
#include <fcntl.h>
#include <sys/stat.h>
#include <linux/bpf.h>
#include <unistd.h>

#include <cerrno>
#include <fstream>
#include <sstream>
#include <string>

#include <gtest/gtest.h>

#include "bpfvm/base/process.hpp"
#include "bpfvm/maps/cgroup_array.hpp"

namespace bpfvm::maps {
namespace {

// Where this machine mounts cgroup2 ("" when it has none: a cgroup v1 machine).
std::string cgroup2_mount() {
  std::ifstream in("/proc/self/mountinfo");
  std::string line;
  while (std::getline(in, line)) {
    if (line.find(" - cgroup2 ") == std::string::npos) continue;
    std::istringstream fields(line);
    std::string id, parent, dev, root, point;
    fields >> id >> parent >> dev >> root >> point;
    return point;
  }
  return "";
}

TEST(CgroupArray, SlotsFromDirectoriesAndTheHierarchyTest) {
  const std::string mount = cgroup2_mount();
  if (mount.empty()) GTEST_SKIP() << "no cgroup2 mount on this machine";
  const int root = ::open(mount.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (root < 0) GTEST_SKIP() << "cannot open " << mount;
  auto cg = os::cgroup_of_fd(root);
  if (!cg) {
    ::close(root);
    FAIL() << mount << ": " << cg.error().to_string();
  }
  EXPECT_EQ(cg->first, "/");
  char path[4096];
  ASSERT_TRUE(os::read_task_cgroup(static_cast<std::uint32_t>(::getpid()), path, sizeof path));
  const std::string_view mine_path(path);
  const std::string_view* mine = &mine_path;
  // The id bpf_get_current_cgroup_id gives: the inode of this task's cgroup directory.
  std::uint64_t id = 0;
  ASSERT_TRUE(os::cgroup_id_of_task(static_cast<std::uint32_t>(::getpid()), id));
  struct stat st {};
  ASSERT_EQ(::stat((mount + (mine_path == "/" ? "" : std::string(mine_path))).c_str(), &st), 0);
  EXPECT_EQ(id, st.st_ino);

  auto map = create_map({BPF_MAP_TYPE_CGROUP_ARRAY, 4, 4, 2, 0, "cg"}, nullptr, "");
  ASSERT_TRUE(map) << map.error().to_string();
  auto& array = static_cast<CgroupArray&>(**map);
  const std::uint32_t k0 = 0, k1 = 1, k5 = 5;
  EXPECT_EQ(array.under(0, *mine), -ENOENT);  // empty (the helper's -EAGAIN)
  ASSERT_TRUE(array.set_cgroup(&k0, cg->first, cg->second, BPF_ANY));
  EXPECT_EQ(array.under(0, *mine), 1);  // everything is below the root
  ASSERT_TRUE(array.set_cgroup(&k1, "/bpfvm-no-such/child", 7, BPF_ANY));
  EXPECT_EQ(array.under(1, *mine), 0);
  EXPECT_EQ(array.under(1, "/bpfvm-no-such/child/grandchild"), 1);
  EXPECT_EQ(array.under(1, "/bpfvm-no-such/childish"), 0);  // a name that only starts the same
  EXPECT_EQ(array.under(2, *mine), -E2BIG);
  EXPECT_FALSE(array.set_cgroup(&k5, "/", 1, BPF_ANY));
  EXPECT_FALSE(array.set_cgroup(&k0, "/", 1, BPF_NOEXIST));
  // User space cannot read it back; a descriptor that is not a cgroup's is refused.
  std::uint32_t value;
  EXPECT_FALSE(array.lookup(&k0, &value));
  const int file = ::open("/proc/self/status", O_RDONLY | O_CLOEXEC);
  EXPECT_FALSE(os::cgroup_of_fd(file));
  ::close(file);
  ::close(root);
}

}  // namespace
}  // namespace bpfvm::maps
