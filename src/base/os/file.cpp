#include "bpfvm/base/file.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>

namespace bpfvm::os {

Error errno_error(std::string_view verb, const std::string& path, int err) {
  Errc code = Errc::kIo;
  if (err == ENOENT) code = Errc::kNotFound;
  if (err == EACCES) code = Errc::kAccess;
  if (err == EPERM) code = Errc::kPermission;
  if (err == EISDIR || err == EINVAL || err == ENOTDIR) code = Errc::kInvalid;
  if (err == EEXIST) code = Errc::kExists;
  if (err == ENOMEM || err == ENOSPC) code = Errc::kNoMemory;
  return Error(code, fmt::format("{} '{}': {}", verb, path, std::strerror(err)));
}

namespace {

class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }
  int release() { return std::exchange(fd_, -1); }

 private:
  int fd_;
};
}  // namespace

Result<std::vector<std::uint8_t>> read_file(const std::string& path) {
  Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) return errno_error("open", path, errno);
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return errno_error("stat", path, errno);
  if (S_ISDIR(st.st_mode)) return errno_error("read", path, EISDIR);
  std::vector<std::uint8_t> data;
  if (S_ISREG(st.st_mode)) data.reserve(static_cast<std::size_t>(st.st_size));
  std::uint8_t buf[65536];
  for (;;) {
    ssize_t n = ::read(fd.get(), buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno_error("read", path, errno);
    }
    if (n == 0) break;
    data.insert(data.end(), buf, buf + n);
  }
  return data;
}

Result<std::string> read_text_file(const std::string& path) {
  auto bytes = BPFVM_TRY(read_file(path));
  return std::string(bytes.begin(), bytes.end());
}

namespace {
Result<void> write_whole(const std::string& path, std::span<const std::uint8_t> data, bool durable) {
  const std::string tmp = path + ".tmp." + std::to_string(::getpid());
  Fd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
  if (fd.get() < 0) return errno_error("create", tmp, errno);
  std::size_t done = 0;
  while (done < data.size()) {
    ssize_t n = ::write(fd.get(), data.data() + done, data.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      int err = errno;
      ::unlink(tmp.c_str());
      return errno_error("write", tmp, err);
    }
    done += static_cast<std::size_t>(n);
  }
  if ((durable && ::fsync(fd.get()) != 0) || ::close(fd.release()) != 0) {
    int err = errno;
    ::unlink(tmp.c_str());
    return errno_error("write", tmp, err);
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    int err = errno;
    ::unlink(tmp.c_str());
    return errno_error("rename to", path, err);
  }
  return ok();
}
}  // namespace

Result<void> write_file(const std::string& path, std::span<const std::uint8_t> data) {
  return write_whole(path, data, true);
}

Result<void> replace_file(const std::string& path, std::span<const std::uint8_t> data) {
  return write_whole(path, data, false);
}

Result<void> create_file(const std::string& path, std::span<const std::uint8_t> data) {
  // Written under a temporary name and linked into place: the name appears complete or not at all,
  // and link() fails with EEXIST when the name is taken.
  const std::string tmp = path + ".tmp." + std::to_string(::getpid());
  BPFVM_TRY(write_file(tmp, data));
  if (::link(tmp.c_str(), path.c_str()) != 0) {
    int err = errno;
    ::unlink(tmp.c_str());
    return errno_error("create", path, err);
  }
  ::unlink(tmp.c_str());
  return ok();
}

Result<void> make_directories(const std::string& path) {
  std::string partial;
  std::size_t pos = 0;
  while (pos != std::string::npos) {
    pos = path.find('/', pos + 1);
    partial = path.substr(0, pos);
    if (partial.empty()) continue;
    if (::mkdir(partial.c_str(), 0700) != 0 && errno != EEXIST) return errno_error("create directory", partial, errno);
  }
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return errno_error("stat", path, errno);
  if (!S_ISDIR(st.st_mode)) return errno_error("use as a directory", path, ENOTDIR);
  return ok();
}

Result<void> make_private_directory(const std::string& path, bool tighten) {
  BPFVM_TRY(make_directories(path));
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) return errno_error("stat", path, errno);
  if (!S_ISDIR(st.st_mode)) return make_error(Errc::kAccess, "'{}' is not a directory (a link?): refusing to use it", path);
  if (st.st_uid != ::geteuid()) {
    return make_error(Errc::kAccess, "'{}' belongs to user {}, not to you ({}): refusing to use it", path, st.st_uid,
                      ::geteuid());
  }
  if ((st.st_mode & 077) != 0 && tighten && ::chmod(path.c_str(), 0700) == 0) return ok();
  if ((st.st_mode & 077) != 0) {
    return make_error(Errc::kAccess, "'{}' has mode {:o}: other users may use it, refusing to (chmod 700 it)", path,
                      st.st_mode & 0777);
  }
  return ok();
}

bool is_directory(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

bool exists(const std::string& path) {
  struct stat st {};
  return ::lstat(path.c_str(), &st) == 0;
}

Result<std::string> user_cache_directory(const std::string& leaf) {
  const char* xdg = std::getenv("XDG_CACHE_HOME");
  const char* home = std::getenv("HOME");
  if (!(xdg && *xdg) && !(home && *home)) return make_error(Errc::kNotFound, "neither $XDG_CACHE_HOME nor $HOME is set");
  const std::string dir = (xdg && *xdg ? std::string(xdg) + "/bpfvm" : std::string(home) + "/.cache/bpfvm") + "/" + leaf;
  BPFVM_TRY(make_directories(dir));
  return dir;
}

std::string current_directory() {
  char buf[4096];
  return ::getcwd(buf, sizeof buf) ? std::string(buf) : std::string("/");
}

}  // namespace bpfvm::os
