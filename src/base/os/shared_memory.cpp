#include "bpfvm/base/shared_memory.hpp"
#include "bpfvm/base/file.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <random>
#include <utility>

namespace bpfvm::os {

namespace {

Result<std::uint8_t*> map_fd(int fd, std::size_t size, const std::string& path) {
  void* p = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (p == MAP_FAILED) return errno_error("map", path, errno);
  return static_cast<std::uint8_t*>(p);
}

// A new file of `size` bytes, its fd open. posix_fallocate reserves the pages now, so running out of
// space is an error here rather than a SIGBUS later.
Result<int> create_sized(const std::string& path, std::size_t size) {
  if (size == 0) return make_error(Errc::kInvalid, "shared memory of 0 bytes");
  const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) return errno_error("create", path, errno);
  if (int err = ::posix_fallocate(fd, 0, static_cast<off_t>(size)); err != 0) {
    ::close(fd);
    ::unlink(path.c_str());
    return errno_error("allocate", path, err);
  }
  return fd;
}
}  // namespace

Result<SharedMemory> SharedMemory::create(const std::string& path, std::size_t size) {
  const int fd = BPFVM_TRY(create_sized(path, size));
  auto data = map_fd(fd, size, path);
  ::close(fd);
  if (!data) {
    ::unlink(path.c_str());
    return std::move(data).error();
  }
  SharedMemory out;
  out.data_ = *data;
  out.size_ = size;
  out.path_ = path;
  return out;
}

Result<SharedMemory> SharedMemory::open(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
  if (fd < 0) return errno_error("open", path, errno);
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size <= 0) {
    ::close(fd);
    return make_error(Errc::kInvalid, "'{}' is not a shared memory file", path);
  }
  auto data = map_fd(fd, static_cast<std::size_t>(st.st_size), path);
  ::close(fd);
  if (!data) return std::move(data).error();
  SharedMemory out;
  out.data_ = *data;
  out.size_ = static_cast<std::size_t>(st.st_size);
  out.path_ = path;
  return out;
}

Result<SharedMemory> SharedMemory::anonymous(std::size_t size) {
  if (size == 0) return make_error(Errc::kInvalid, "shared memory of 0 bytes");
  void* p = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) return errno_error("map", "(anonymous)", errno);
  SharedMemory out;
  out.data_ = static_cast<std::uint8_t*>(p);
  out.size_ = size;
  return out;
}

Result<SharedMemory> SharedMemory::map_file(int fd, std::size_t size, std::size_t mirror_from, const std::string& path) {
  const std::size_t page = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
  if (mirror_from == 0 || mirror_from >= size || mirror_from % page != 0 || size % page != 0) {
    return make_error(Errc::kInvalid, "mirror of '{}' must start on a page inside it", path);
  }
  const std::size_t mirror = size - mirror_from;
  // Reserve the whole range, then place the file and the mirror in it.
  void* base = ::mmap(nullptr, size + mirror, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (base == MAP_FAILED) return errno_error("reserve", path, errno);
  auto* b = static_cast<std::uint8_t*>(base);
  // Populated: a ring's writers go through every page of it in turn, and a page's first touch costs a
  // fault each (tens of microseconds on a virtual machine) in every process that maps it; the kernel's
  // ring buffer pages are all there from the map's creation (and in its mmap, remap_vmalloc_range).
  constexpr int kFlags = MAP_SHARED | MAP_FIXED | MAP_POPULATE;
  if (::mmap(b, size, PROT_READ | PROT_WRITE, kFlags, fd, 0) == MAP_FAILED ||
      ::mmap(b + size, mirror, PROT_READ | PROT_WRITE, kFlags, fd, static_cast<off_t>(mirror_from)) == MAP_FAILED) {
    const int err = errno;
    ::munmap(base, size + mirror);
    return errno_error("map", path, err);
  }
  SharedMemory out;
  out.data_ = b;
  out.size_ = size;
  out.mapped_ = size + mirror;
  out.path_ = path;
  return out;
}

Result<SharedMemory> SharedMemory::create_mirrored(const std::string& path, std::size_t size, std::size_t mirror_from) {
  const int fd = BPFVM_TRY(create_sized(path, size));
  auto out = map_file(fd, size, mirror_from, path);
  ::close(fd);
  if (!out) ::unlink(path.c_str());
  return out;
}

Result<SharedMemory> SharedMemory::open_mirrored(const std::string& path, std::size_t mirror_from) {
  const int fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
  if (fd < 0) return errno_error("open", path, errno);
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size <= 0) {
    ::close(fd);
    return make_error(Errc::kInvalid, "'{}' is not a shared memory file", path);
  }
  auto out = map_file(fd, static_cast<std::size_t>(st.st_size), mirror_from, path);
  ::close(fd);
  return out;
}

Result<SharedMemory> SharedMemory::anonymous_mirrored(std::size_t size, std::size_t mirror_from) {
  const int fd = ::memfd_create("bpfvm", MFD_CLOEXEC);
  if (fd < 0) return errno_error("create", "(memfd)", errno);
  if (::ftruncate(fd, static_cast<off_t>(size)) != 0) {
    const int err = errno;
    ::close(fd);
    return errno_error("size", "(memfd)", err);
  }
  auto out = map_file(fd, size, mirror_from, "(memfd)");
  ::close(fd);
  if (out) out->path_.clear();
  return out;
}

SharedMemory::SharedMemory(SharedMemory&& other) noexcept
    : data_(std::exchange(other.data_, nullptr)),
      size_(std::exchange(other.size_, 0)),
      mapped_(std::exchange(other.mapped_, 0)),
      path_(std::move(other.path_)) {}

SharedMemory& SharedMemory::operator=(SharedMemory&& other) noexcept {
  if (this != &other) {
    if (data_) ::munmap(data_, mapped_ ? mapped_ : size_);
    data_ = std::exchange(other.data_, nullptr);
    size_ = std::exchange(other.size_, 0);
    mapped_ = std::exchange(other.mapped_, 0);
    path_ = std::move(other.path_);
  }
  return *this;
}

SharedMemory::~SharedMemory() {
  if (data_) ::munmap(data_, mapped_ ? mapped_ : size_);
}

void SharedMemory::unlink() const {
  if (!path_.empty()) ::unlink(path_.c_str());
}

std::string unique_name(std::string_view prefix) {
  static std::atomic<std::uint64_t> counter{0};
  // A small per-thread state (splitmix64), seeded once: a Mersenne twister here would put 2.5 KB into
  // the static TLS of every thread of every process the agent is loaded in.
  thread_local std::uint64_t state = std::random_device{}() | (std::uint64_t{std::random_device{}()} << 32);
  std::uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return fmt::format("{}{}-{}-{:016x}", prefix, ::getpid(), counter.fetch_add(1), z ^ (z >> 31));
}

std::vector<std::string> orphaned_names(const std::string& dir, std::string_view prefix, int also) {
  std::vector<std::string> out;
  DIR* d = ::opendir(dir.c_str());
  if (!d) return out;
  while (const dirent* e = ::readdir(d)) {
    const std::string_view name = e->d_name;
    if (!name.starts_with(prefix)) continue;
    const std::string_view rest = name.substr(prefix.size());
    const std::size_t dash = rest.find('-');
    if (dash == 0 || dash == std::string_view::npos) continue;
    long pid = 0;
    bool digits = true;
    for (const char c : rest.substr(0, dash)) {
      if (c < '0' || c > '9' || pid > (1L << 30)) digits = false;
      else pid = pid * 10 + (c - '0');
    }
    // (a pid used again since keeps the file a while longer: harmless)
    if (digits && pid > 0 && (pid == also || (::kill(static_cast<pid_t>(pid), 0) != 0 && errno == ESRCH))) out.emplace_back(name);
  }
  ::closedir(d);
  return out;
}

bool remove_file(const std::string& path) { return ::unlink(path.c_str()) == 0; }

}  // namespace bpfvm::os
