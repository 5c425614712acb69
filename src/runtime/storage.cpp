// Where the memory of maps, perf buffers and the trace pipe lives (see map_storage_dir in runtime.hpp).
#include <dirent.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <climits>
#include <cstdlib>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <atomic>
#include <string>

#include <fmt/format.h>

#include "bpfvm/base/file.hpp"
#include "bpfvm/maps/map.hpp"
#include "bpfvm/runtime/runtime.hpp"

namespace bpfvm::runtime {

namespace {

constexpr const char* kMemoryDir = "/dev/shm";
constexpr const char* kOwnerFile = ".pin-root";  // in a directory of kMemoryDir: "IDENTITY PATH" of its pin root
constexpr std::time_t kUnclaimedAge = 60;       // a directory made but not yet claimed by its pin root

bool on_memory_filesystem(const std::string& path) {
  struct statfs fs {};
  if (::statfs(path.c_str(), &fs) != 0) return false;
  return static_cast<unsigned long>(fs.f_type) == TMPFS_MAGIC || static_cast<unsigned long>(fs.f_type) == RAMFS_MAGIC;
}

// Whether the directory holds nothing but (maybe) `besides`.
bool empty_directory(const std::string& path, std::string_view besides) {
  DIR* d = ::opendir(path.c_str());
  if (!d) return false;
  bool empty = true;
  while (const dirent* e = ::readdir(d)) {
    const std::string_view name = e->d_name;
    if (name != "." && name != ".." && name != besides) empty = false;
  }
  ::closedir(d);
  return empty;
}

std::string user_prefix() { return fmt::format("bpfvm-{}-", ::geteuid()); }

// What tells a pin root from one made again at its path: its device, inode and birth time (ext4 gives a
// removed directory's inode to the next one at once; a filesystem without birth times gives 0).
std::string identity_of(const std::string& path) {
  struct statx sx {};
  if (::statx(AT_FDCWD, path.c_str(), 0, STATX_INO | STATX_BTIME, &sx) != 0) return {};
  const std::uint64_t birth = (sx.stx_mask & STATX_BTIME) ? sx.stx_btime.tv_sec * 1000000000ull + sx.stx_btime.tv_nsec : 0;
  return fmt::format("{}:{}:{}:{}", sx.stx_dev_major, sx.stx_dev_minor, sx.stx_ino, birth);
}

// The directory of kMemoryDir that serves the pin root: named by the root's path and identity, so that
// a root made again at the same path starts empty, as a new bpffs would.
std::string memory_dir_for(const std::string& pin_root, const std::string& identity) {
  std::uint64_t h = 0xcbf29ce484222325ULL;  // FNV-1a
  const std::string key = pin_root + "\n" + identity;
  for (const unsigned char c : key) h = (h ^ c) * 0x100000001b3ULL;
  return fmt::format("{}/{}{:016x}", kMemoryDir, user_prefix(), h);
}

// Whether `dir` is a directory of this user that no one else may use (the kernel's /dev/shm is
// world-writable: another user may have made the name first).
bool own_private_directory(const std::string& dir) {
  struct stat st {};
  return ::lstat(dir.c_str(), &st) == 0 && S_ISDIR(st.st_mode) && st.st_uid == ::geteuid() && (st.st_mode & 077) == 0;
}

void remove_tree(const std::string& dir) {
  if (DIR* d = ::opendir(dir.c_str())) {
    while (const dirent* e = ::readdir(d)) {
      const std::string_view name = e->d_name;
      if (name != "." && name != "..") ::unlink((dir + "/" + std::string(name)).c_str());
    }
    ::closedir(d);
  }
  ::rmdir(dir.c_str());
}

// Whether the memory directory `dir` still has its pin root (the one its owner file names, with the
// same identity). A directory without an owner file is kept while it is young (its maker is writing it).
bool claimed(const std::string& dir) {
  if (FILE* f = std::fopen((dir + "/" + kOwnerFile).c_str(), "re")) {
    char identity[256] = {}, path[4096] = {};
    const int got = std::fscanf(f, "%255s %4095[^\n]", identity, path);
    std::fclose(f);
    if (got != 2) return false;
    struct stat st {};
    if (::stat(path, &st) != 0) return errno != ENOENT && errno != ENOTDIR;  // (not seen from here: kept)
    return identity_of(path) == identity;
  }
  struct stat st {};
  return ::lstat(dir.c_str(), &st) == 0 && std::time(nullptr) - st.st_mtime < kUnclaimedAge;
}

// Makes the memory directory `memory` of the pin root `pin_root` (if it is not there) with its owner
// file. Returns whether it is there, a private directory of this user.
bool make_memory_dir(const std::string& memory, const std::string& pin_root) {
  const bool made = ::mkdir(memory.c_str(), 0700) == 0;
  if (!own_private_directory(memory)) return false;
  const std::string owner = memory + "/" + kOwnerFile;
  if (made || ::access(owner.c_str(), F_OK) != 0) {
    char real[PATH_MAX];
    const std::string identity = ::realpath(pin_root.c_str(), real) ? identity_of(real) : std::string();
    // (written whole under another name, then renamed: a sweep never reads half of it)
    const std::string part = owner + ".part";
    if (FILE* f = identity.empty() ? nullptr : std::fopen(part.c_str(), "we")) {
      std::fprintf(f, "%s %s\n", identity.c_str(), real);
      std::fclose(f);
      ::rename(part.c_str(), owner.c_str());
    }
  }
  if (made) remove_unclaimed_storage();  // those of pin roots removed since
  return true;
}

Result<std::string> prepare_storage_dir(const std::string& pin_root);

}  // namespace

std::size_t remove_unclaimed_storage() {
  std::size_t removed = 0;
  DIR* d = ::opendir(kMemoryDir);
  if (!d) return 0;
  const std::string prefix = user_prefix();
  while (const dirent* e = ::readdir(d)) {
    const std::string name = e->d_name;
    if (!name.starts_with(prefix)) continue;
    const std::string dir = std::string(kMemoryDir) + "/" + name;
    if (!own_private_directory(dir) || claimed(dir)) continue;
    remove_tree(dir);
    ++removed;
  }
  ::closedir(d);
  return removed;
}

Result<std::string> map_storage_dir(const std::string& pin_root) {
  auto dir = BPFVM_TRY(prepare_storage_dir(pin_root));
  // What processes that ended without removing their maps left (a traced process keeps its maps open
  // to its end, so the loader's last close does not remove them), once a process, in the first pin root
  // it makes a map in: as the kernel frees maps whose last reference went with a process, memory is not
  // left to fill up. (No lock: a forked child of a process whose other thread held one would wait forever.)
  static std::atomic_flag swept = ATOMIC_FLAG_INIT;
  if (!swept.test_and_set()) maps::remove_orphaned_storage(dir);
  return dir;
}

namespace {

Result<std::string> prepare_storage_dir(const std::string& pin_root) {
  const std::string dir = pin_root + "/.maps";
  struct stat st {};
  if (::lstat(dir.c_str(), &st) == 0) {
    if (S_ISLNK(st.st_mode) && st.st_uid != ::geteuid()) {
      // Another user's pin root (root's, reached through the loader's broker, or a user's named by root):
      // its owner made the link and keeps the directory.
      if (os::is_directory(dir)) return dir;
      return make_error(Errc::kNotFound, "'{}' links to a directory that is not there (user {} makes it again)", dir, st.st_uid);
    }
    if (S_ISLNK(st.st_mode)) {
      // Only a link to a name of this user's kind in /dev/shm is followed. Its directory may have gone
      // (a reboot empties /dev/shm; a pin root on disk stays): made again, empty, as the kernel's bpffs
      // is after a reboot.
      char target[4096];
      const ssize_t n = ::readlink(dir.c_str(), target, sizeof target - 1);
      if (n <= 0) return os::errno_error("read the link", dir, errno);
      const std::string to(target, static_cast<std::size_t>(n));
      const std::string kind = std::string(kMemoryDir) + "/" + user_prefix();
      if (!to.starts_with(kind) || to.find('/', kind.size()) != std::string::npos || to.find("..") != std::string::npos) {
        return make_error(Errc::kAccess, "'{}' links to '{}', which bpfvm did not make: refusing to use it", dir, to);
      }
      if (!make_memory_dir(to, pin_root)) {
        return make_error(Errc::kAccess, "'{}' is not a private directory of yours: refusing to use it", to);
      }
      return dir;
    }
    if (!S_ISDIR(st.st_mode)) return os::errno_error("use as a directory", dir, ENOTDIR);
    // A directory on disk from before: replaced once nothing is in it (but what the processes that
    // made it, gone, left behind: maps::remove_orphaned_storage).
    if (on_memory_filesystem(dir) || !on_memory_filesystem(kMemoryDir)) return dir;
    // Its trace pipe goes with it (a process writing to it then writes to the old file until it starts
    // again: lines of bpf_trace_printk are not kept, as the kernel's trace_pipe keeps none).
    maps::remove_orphaned_storage(dir);
    if (!empty_directory(dir, ".trace_pipe")) return dir;
    ::unlink((dir + "/.trace_pipe").c_str());
    if (::rmdir(dir.c_str()) != 0) return dir;
  }
  if (on_memory_filesystem(pin_root) || !on_memory_filesystem(kMemoryDir)) {
    BPFVM_TRY(os::make_directories(dir));
    return dir;
  }
  // (its absolute path: the owner file is read from anywhere)
  char real[PATH_MAX];
  if (!::realpath(pin_root.c_str(), real)) return os::errno_error("resolve", pin_root, errno);
  const std::string absolute = real;
  const std::string identity = identity_of(absolute);
  if (identity.empty()) return os::errno_error("stat", pin_root, errno);
  const std::string memory = memory_dir_for(absolute, identity);
  if (!make_memory_dir(memory, pin_root)) {
    // (someone else holds the name: the pin root's own directory then, on disk)
    BPFVM_TRY(os::make_directories(dir));
    return dir;
  }
  if (::symlink(memory.c_str(), dir.c_str()) != 0 && errno != EEXIST) return os::errno_error("create the link", dir, errno);
  if (!os::is_directory(dir)) return os::errno_error("use as a directory", dir, ENOTDIR);
  return dir;
}

}  // namespace

}  // namespace bpfvm::runtime
