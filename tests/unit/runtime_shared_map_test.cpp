// Maps in shared memory: a pinned map is one map for every process that opens it.
#include <gtest/gtest.h>
#include <linux/bpf.h>
#include <linux/magic.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>

#include "bpfvm/maps/ringbuf.hpp"
#include "bpfvm/runtime/object.hpp"

namespace bpfvm::runtime {
namespace {

class SharedMapTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = std::filesystem::temp_directory_path() / ("bpfvm-shared-" + std::to_string(::getpid()));
    std::filesystem::remove_all(root_);
  }
  void TearDown() override { std::filesystem::remove_all(root_); }

  // Runs `body` in a child process with its own Runtime on the same pin root; returns its exit status.
  template <typename Fn>
  int in_child(Fn body) {
    const pid_t pid = ::fork();
    if (pid == 0) {
      Runtime rt(RuntimeOptions{root_.string()});
      ::_exit(body(rt));
    }
    int status = 0;
    ::waitpid(pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 100;
  }

  std::filesystem::path root_;
};

TEST_F(SharedMapTest, AnotherProcessSeesAndChangesTheSameHash) {
  Runtime rt(RuntimeOptions{root_.string()});
  auto map = rt.create_map({{BPF_MAP_TYPE_HASH, 4, 8, 64, 0, "shared"}, std::nullopt, nullptr, 0, 0});
  ASSERT_TRUE(map) << map.error().to_string();
  std::uint32_t k = 1;
  std::uint64_t v = 100;
  ASSERT_TRUE((*map)->impl().update(&k, &v, BPF_ANY));
  const std::string pin = (root_ / "shared").string();
  ASSERT_TRUE(rt.pin(pin, *map));
  const int rc = in_child([&](Runtime& other) {
    auto obj = other.open_pinned(pin);
    if (!obj) return 1;
    auto& m = std::get<std::shared_ptr<Map>>(*obj)->impl();
    std::uint32_t key = 1;
    std::uint64_t value = 0;
    if (!m.lookup(&key, &value) || value != 100) return 2;
    value = 200;
    key = 2;
    if (!m.update(&key, &value, BPF_NOEXIST)) return 3;
    key = 1;
    if (!m.erase(&key)) return 4;
    return 0;
  });
  ASSERT_EQ(rc, 0);
  std::uint32_t k2 = 2;
  std::uint64_t got = 0;
  ASSERT_TRUE((*map)->impl().lookup(&k2, &got));
  EXPECT_EQ(got, 200u);
  EXPECT_FALSE((*map)->impl().lookup(&k, &got));
  // The pinned map outlives its users: a new runtime still finds it.
  map->reset();
  Runtime again(RuntimeOptions{root_.string()});
  auto reopened = again.open_pinned(pin);
  ASSERT_TRUE(reopened) << reopened.error().to_string();
  ASSERT_TRUE(std::get<std::shared_ptr<Map>>(*reopened)->impl().lookup(&k2, &got));
}

TEST_F(SharedMapTest, ProgramsInTwoProcessesCountIntoOneGlobal) {
#ifdef BPFVM_PROGS_DIR
  const std::string object = std::string(BPFVM_PROGS_DIR) + "/globals.bpf.o";
  const std::string pin = (root_ / "use_data").string();
  {
    Runtime rt(RuntimeOptions{root_.string()});
    auto obj = Object::open_file(rt, object);
    ASSERT_TRUE(obj) << obj.error().to_string();
    ASSERT_TRUE(rt.pin(pin, obj->find_program("use_data")));
  }
  std::vector<std::uint8_t> frame(14 + 20, 0);
  frame[12] = 0x08;
  frame[14] = 0x45;
  // counter starts at 40 and each run adds 2: two processes of 50 runs each end at 240.
  const auto runs = [&](Runtime& rt) {
    auto p = rt.open_pinned(pin);
    if (!p) return 1;
    auto prog = std::get<std::shared_ptr<Program>>(*p);
    for (int i = 0; i < 50; ++i) {
      if (!prog->test_run({frame, {}, 1})) return 2;
    }
    return 0;
  };
  EXPECT_EQ(in_child(runs), 0);
  EXPECT_EQ(in_child(runs), 0);
  Runtime rt(RuntimeOptions{root_.string()});
  auto p = rt.open_pinned(pin);
  ASSERT_TRUE(p);
  auto r = std::get<std::shared_ptr<Program>>(*p)->test_run({frame, {}, 1});
  ASSERT_TRUE(r);
  EXPECT_EQ(r->retval, 242u);
#else
  GTEST_SKIP() << "no BPF test objects";
#endif
}

TEST_F(SharedMapTest, MapInMapAcrossProcesses) {
#ifdef BPFVM_PROGS_DIR
  Runtime rt(RuntimeOptions{root_.string()});
  auto obj = Object::open_file(rt, std::string(BPFVM_PROGS_DIR) + "/maps.bpf.o");
  ASSERT_TRUE(obj) << obj.error().to_string();
  const std::string pin = (root_ / "outer").string();
  ASSERT_TRUE(rt.pin(pin, obj->find_map("outer")));
  std::vector<std::uint8_t> frame(14 + 20, 0);
  frame[12] = 0x08;
  frame[14] = 0x45;
  auto through = obj->find_program("through_outer");
  EXPECT_EQ(through->test_run({frame, {}, 1})->retval, 11u);  // slot 0 empty
  // Another process fills slot 0 with a map of its own and reads inner_b through slot 1.
  const int rc = in_child([&](Runtime& other) {
    auto opened = other.open_pinned(pin);
    if (!opened) return 1;
    auto& outer = std::get<std::shared_ptr<Map>>(*opened)->impl();
    if (!outer.inner_def()) return 2;
    const std::uint32_t one = 1, zero = 0;
    auto* inner_b = static_cast<maps::Map*>(outer.lookup_in_place(&one));
    std::uint32_t v = 0;
    if (!inner_b || !inner_b->lookup(&one, &v) || v != 99) return 3;
    maps::MapDef def = *outer.inner_def();
    def.name = "from_child";
    auto mine = other.create_map({def, std::nullopt, nullptr, 0, 0});
    if (!mine) return 4;
    if (!outer.update_inner(&zero, (*mine)->shared_impl(), BPF_ANY)) return 5;
    return 0;
  });
  ASSERT_EQ(rc, 0);
  EXPECT_EQ(through->test_run({frame, {}, 1})->retval, 1u);  // slot 0 now holds the child's map
#else
  GTEST_SKIP() << "no BPF test objects";
#endif
}

TEST_F(SharedMapTest, RingBufferAcrossProcesses) {
  Runtime rt(RuntimeOptions{root_.string()});
  auto map = rt.create_map({{BPF_MAP_TYPE_RINGBUF, 0, 0, 4096, 0, "rb"}, std::nullopt, nullptr, 0, 0});
  ASSERT_TRUE(map) << map.error().to_string();
  const std::string pin = (root_ / "rb").string();
  ASSERT_TRUE(rt.pin(pin, *map));
  auto* rb = dynamic_cast<maps::RingBuffer*>(&(*map)->impl());
  ASSERT_TRUE(rb);
  // The child writes 200 records of 100 bytes (more than fit at once) while the parent consumes.
  const pid_t pid = ::fork();
  if (pid == 0) {
    Runtime other(RuntimeOptions{root_.string()});
    auto obj = other.open_pinned(pin);
    if (!obj) ::_exit(1);
    auto* out = dynamic_cast<maps::RingBuffer*>(&std::get<std::shared_ptr<Map>>(*obj)->impl());
    if (!out) ::_exit(2);
    for (std::uint32_t i = 0; i < 200; ++i) {
      std::uint8_t record[100];
      std::memset(record, static_cast<int>(i), sizeof record);
      std::memcpy(record, &i, 4);
      while (out->output(record, sizeof record, 0) != 0) ::usleep(100);  // full: wait for the consumer
    }
    ::_exit(0);
  }
  std::uint32_t expected = 0;
  bool ok = true;
  for (int rounds = 0; expected < 200 && rounds < 100000; ++rounds) {
    rb->wait(10);
    rb->consume([&](std::span<const std::uint8_t> rec) {
      std::uint32_t seq;
      std::memcpy(&seq, rec.data(), 4);
      ok = ok && rec.size() == 100 && seq == expected && rec[99] == static_cast<std::uint8_t>(expected);
      ++expected;
      return 0;
    });
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  EXPECT_EQ(expected, 200u);
  EXPECT_TRUE(ok);
}

TEST_F(SharedMapTest, UnpinnedStorageGoesWithItsLastUser) {
  Runtime rt(RuntimeOptions{root_.string()});
  std::string path;
  {
    auto map = rt.create_map({{BPF_MAP_TYPE_ARRAY, 4, 4, 4, 0, "temp"}, std::nullopt, nullptr, 0, 0});
    ASSERT_TRUE(map);
    path = (*map)->impl().storage_path();
    EXPECT_TRUE(std::filesystem::exists(path));
  }
  EXPECT_FALSE(std::filesystem::exists(path));
}

TEST_F(SharedMapTest, CorruptStorageIsRefused) {
  Runtime rt(RuntimeOptions{root_.string()});
  auto map = rt.create_map({{BPF_MAP_TYPE_HASH, 4, 4, 8, 0, "victim"}, std::nullopt, nullptr, 0, 0});
  ASSERT_TRUE(map);
  const std::string path = (*map)->impl().storage_path();
  // A file that claims to be a map but is not.
  const std::string fake = (root_ / ".maps" / "fake").string();
  {
    FILE* f = std::fopen(fake.c_str(), "wb");
    ASSERT_TRUE(f);
    std::vector<std::uint8_t> junk(4096, 0x5a);
    std::fwrite(junk.data(), 1, junk.size(), f);
    std::fclose(f);
  }
  EXPECT_FALSE(maps::open_shared_map(fake));
  EXPECT_FALSE(maps::open_shared_map((root_ / ".maps" / "missing").string()));
  // A real hash whose free list was scribbled over: operations stay in bounds.
  {
    std::FILE* f = std::fopen(path.c_str(), "r+b");
    ASSERT_TRUE(f);
    std::fseek(f, 128 + 8, SEEK_SET);  // Meta::free_head, after the 128-byte MapHeader
    const std::uint32_t bad = 0xffffffff;
    std::fwrite(&bad, 4, 1, f);
    std::fclose(f);
  }
  EXPECT_FALSE(maps::open_shared_map(path));
  std::uint32_t k = 1, v = 1;
  auto r = (*map)->impl().update(&k, &v, BPF_ANY);  // this process's view: refuses rather than crashes
  EXPECT_FALSE(r);
}

// The filesystem type of `path`'s filesystem (statfs), 0 when it cannot be read.
unsigned long filesystem_of(const std::string& path) {
  struct statfs fs {};
  return ::statfs(path.c_str(), &fs) == 0 ? static_cast<unsigned long>(fs.f_type) : 0;
}
bool in_memory(const std::string& path) {
  const unsigned long type = filesystem_of(path);
  return type == TMPFS_MAGIC || type == RAMFS_MAGIC;
}

// A directory on a filesystem that keeps files on disk, for a pin root there: the build tree's, else
// /var/tmp's, else none.
std::string directory_on_disk() {
  for (const std::string& dir : {std::filesystem::current_path().string(), std::string("/var/tmp")}) {
    if (filesystem_of(dir) != 0 && !in_memory(dir) && ::access(dir.c_str(), W_OK) == 0) return dir;
  }
  return {};
}

class MapStorageTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::string disk = directory_on_disk();
    if (disk.empty()) GTEST_SKIP() << "no writable directory on a disk filesystem here";
    if (!in_memory("/dev/shm")) GTEST_SKIP() << "/dev/shm is not a tmpfs here";
    root_ = std::filesystem::path(disk) / ("bpfvm-storage-" + std::to_string(::getpid()));
    std::filesystem::remove_all(root_);
  }
  void TearDown() override {
    if (!root_.empty()) std::filesystem::remove_all(root_);
    remove_unclaimed_storage();
  }
  std::filesystem::path root_;
};

TEST_F(MapStorageTest, MapsOfAPinRootOnDiskLiveInMemory) {
  // The kernel's maps are memory: a ring buffer's producer must not go through the disk filesystem's
  // page_mkwrite on each page (ext4: block allocation, the journal).
  Runtime rt(RuntimeOptions{root_.string()});
  auto map = rt.create_map({{BPF_MAP_TYPE_RINGBUF, 0, 0, 1u << 16, 0, "events"}, std::nullopt, nullptr, 0, 0});
  ASSERT_TRUE(map) << map.error().to_string();
  const std::string path = (*map)->impl().storage_path();
  EXPECT_TRUE(path.starts_with(root_.string() + "/.maps/")) << path;  // named under the pin root, as before
  EXPECT_TRUE(in_memory(path)) << path << " is on filesystem " << std::hex << filesystem_of(path);
  EXPECT_TRUE(std::filesystem::is_symlink(root_ / ".maps"));
  const std::string target = std::filesystem::read_symlink(root_ / ".maps").string();
  EXPECT_TRUE(target.starts_with("/dev/shm/bpfvm-" + std::to_string(::geteuid()) + "-")) << target;
  struct stat st {};
  ASSERT_EQ(::lstat(target.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);  // /dev/shm is everyone's: the directory is its user's alone
  // The trace pipe lives there too.
  auto pipe = rt.trace_pipe();
  ASSERT_TRUE(pipe) << pipe.error().to_string();
  EXPECT_TRUE(in_memory((root_ / ".maps" / ".trace_pipe").string()));
  // Another process of the pin root finds the same memory.
  const pid_t pid = ::fork();
  if (pid == 0) {
    Runtime other(RuntimeOptions{root_.string()});
    auto m = other.create_map({{BPF_MAP_TYPE_ARRAY, 4, 4, 1, 0, "other"}, std::nullopt, nullptr, 0, 0});
    ::_exit(m && (*m)->impl().storage_path().starts_with(root_.string() + "/.maps/") ? 0 : 1);
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

TEST_F(MapStorageTest, TheMemoryOfARemovedPinRootGoes) {
  std::string first_target;
  {
    Runtime rt(RuntimeOptions{root_.string()});
    auto map = rt.create_map({{BPF_MAP_TYPE_ARRAY, 4, 8, 4, 0, "kept"}, std::nullopt, nullptr, 0, 0});
    ASSERT_TRUE(map) << map.error().to_string();
    ASSERT_TRUE(rt.pin((root_ / "kept").string(), *map));  // a pinned map's file stays while its pin root does
    first_target = std::filesystem::read_symlink(root_ / ".maps").string();
  }
  EXPECT_TRUE(std::filesystem::exists(first_target));
  // Its pin root is there: a sweep leaves it. (How many it removes is not this test's: other tests'
  // pin roots, removed while ctest -j2 runs them beside this one, may be unclaimed.)
  (void)remove_unclaimed_storage();
  EXPECT_TRUE(std::filesystem::exists(first_target));
  std::filesystem::remove_all(root_);  // (as `rm -rf` of a pin root: its memory is no one's now)
  {
    // The next pin root that gets memory removes it.
    Runtime rt(RuntimeOptions{root_.string()});
    auto map = rt.create_map({{BPF_MAP_TYPE_ARRAY, 4, 8, 4, 0, "next"}, std::nullopt, nullptr, 0, 0});
    ASSERT_TRUE(map) << map.error().to_string();
    // (made again at the same path: a new inode, a new directory, as a new bpffs starts empty)
    EXPECT_NE(std::filesystem::read_symlink(root_ / ".maps").string(), first_target);
  }
  EXPECT_FALSE(std::filesystem::exists(first_target));
}

TEST_F(MapStorageTest, AMemoryDirectoryEmptiedByARebootIsMadeAgain) {
  std::string target;
  {
    Runtime rt(RuntimeOptions{root_.string()});
    ASSERT_TRUE(rt.create_map({{BPF_MAP_TYPE_ARRAY, 4, 4, 1, 0, "a"}, std::nullopt, nullptr, 0, 0}));
    target = std::filesystem::read_symlink(root_ / ".maps").string();
  }
  std::filesystem::remove_all(target);  // what a reboot does to /dev/shm, the pin root on disk staying
  Runtime rt(RuntimeOptions{root_.string()});
  auto map = rt.create_map({{BPF_MAP_TYPE_ARRAY, 4, 4, 1, 0, "b"}, std::nullopt, nullptr, 0, 0});
  ASSERT_TRUE(map) << map.error().to_string();
  EXPECT_TRUE(in_memory((*map)->impl().storage_path()));
  // It names its pin root again, so no sweep takes it for another's.
  EXPECT_TRUE(std::filesystem::exists(target + "/.pin-root"));
  remove_unclaimed_storage();
  EXPECT_TRUE(std::filesystem::exists((*map)->impl().storage_path()));
}

TEST_F(MapStorageTest, ALinkBpfvmDidNotMakeIsRefused) {
  std::filesystem::create_directories(root_);
  std::filesystem::create_directory_symlink("/var/tmp", root_ / ".maps");
  Runtime rt(RuntimeOptions{root_.string()});
  auto map = rt.create_map({{BPF_MAP_TYPE_ARRAY, 4, 4, 1, 0, "a"}, std::nullopt, nullptr, 0, 0});
  ASSERT_FALSE(map);
  EXPECT_NE(map.error().to_string().find("which bpfvm did not make"), std::string::npos) << map.error().to_string();
}

TEST_F(MapStorageTest, AnOldDirectoryOnDiskIsKeptWhileItHoldsMapsAndReplacedOnceEmpty) {
  std::filesystem::create_directories(root_ / ".maps");
  {
    std::ofstream(root_ / ".maps" / "someone-elses") << "x";
    Runtime rt(RuntimeOptions{root_.string()});
    auto map = rt.create_map({{BPF_MAP_TYPE_ARRAY, 4, 4, 1, 0, "a"}, std::nullopt, nullptr, 0, 0});
    ASSERT_TRUE(map) << map.error().to_string();
    EXPECT_FALSE(std::filesystem::is_symlink(root_ / ".maps"));  // (its files are named by pins, say)
  }
  std::filesystem::remove(root_ / ".maps" / "someone-elses");
  Runtime rt(RuntimeOptions{root_.string()});
  auto map = rt.create_map({{BPF_MAP_TYPE_ARRAY, 4, 4, 1, 0, "a"}, std::nullopt, nullptr, 0, 0});
  ASSERT_TRUE(map) << map.error().to_string();
  EXPECT_TRUE(std::filesystem::is_symlink(root_ / ".maps"));
  EXPECT_TRUE(in_memory((*map)->impl().storage_path()));
}

TEST_F(MapStorageTest, APinRootInMemoryKeepsItsOwnDirectory) {
  const std::filesystem::path root = std::filesystem::path("/dev/shm") / ("bpfvm-test-root-" + std::to_string(::getpid()));
  std::filesystem::remove_all(root);
  {
    Runtime rt(RuntimeOptions{root.string()});
    auto map = rt.create_map({{BPF_MAP_TYPE_ARRAY, 4, 4, 1, 0, "a"}, std::nullopt, nullptr, 0, 0});
    ASSERT_TRUE(map) << map.error().to_string();
    EXPECT_TRUE(std::filesystem::is_directory(root / ".maps"));
    EXPECT_FALSE(std::filesystem::is_symlink(root / ".maps"));
  }
  std::filesystem::remove_all(root);
}

}  // namespace
}  // namespace bpfvm::runtime
