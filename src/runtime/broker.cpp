#include "bpfvm/runtime/broker.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <mutex>
#include <string_view>
#include <vector>

#include <fmt/format.h>

#include "bpfvm/base/file.hpp"
#include "bpfvm/base/process.hpp"
#include "bpfvm/runtime/registry.hpp"

namespace bpfvm::runtime {

namespace {

struct Request {
  std::uint32_t op;
  std::int32_t flags;
  std::uint32_t mode;
  char path[1024];
  char to[1024];
};
struct Reply {
  std::int64_t result;
  struct stat st;
};

// The socket's name: the pin root's FNV-1a hash (a path may not fit sun_path), and the loader's pid.
std::string name_prefix(const std::string& pin_root) {
  std::uint64_t h = 0xcbf29ce484222325ULL;
  for (const unsigned char c : pin_root) h = (h ^ c) * 0x100000001b3ULL;
  return fmt::format("bpfvm-broker:{:016x}:", h);
}

socklen_t abstract_address(const std::string& name, sockaddr_un& addr) {
  std::memset(&addr, 0, sizeof addr);
  addr.sun_family = AF_UNIX;
  const std::size_t n = std::min(name.size(), sizeof addr.sun_path - 1);
  std::memcpy(addr.sun_path + 1, name.data(), n);  // sun_path[0] = 0: the abstract namespace
  return static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + 1 + n);
}

// What a path below the pin root (`rel`: "" for the root itself) may be used for by the agent of
// process `peer`.
struct Use {
  bool read = false, write = false, create = false;
};
Use use_of(std::string_view rel, std::uint32_t peer) {
  Use u;
  if (rel.empty() || rel == ".registry" || rel == ".maps") {
    u.read = true;
    return u;
  }
  const auto in = [&](std::string_view dir, std::string_view& name) {
    if (!rel.starts_with(dir)) return false;
    name = rel.substr(dir.size());
    return !name.empty() && name.find('/') == std::string_view::npos;
  };
  std::string_view name;
  if (in(".registry/", name)) {
    if (name == "ids" || name.starts_with("profile-")) u.read = u.write = true;
    for (const std::string_view kind : {"prog-", "map-", "link-", "btf-", "agent-"}) {
      if (name.starts_with(kind)) u.read = true;
    }
    const std::string own = fmt::format("agent-{}", peer);
    if (name == own || name.starts_with(own + ".tmp.")) u.read = u.write = u.create = true;
  } else if (in(".maps/", name)) {  // (the trace pipe too: .maps/.trace_pipe)
    u.read = u.write = true;
  }
  return u;
}

bool has_dot_dot(std::string_view rel) {
  std::size_t at = 0;
  while (at <= rel.size()) {
    const std::size_t end = std::min(rel.find('/', at), rel.size());
    if (rel.substr(at, end - at) == "..") return true;
    at = end + 1;
  }
  return false;
}

// Whether process `pid` is in scope: it, or an ancestor, has a live agent record of its own.
bool in_scope(Registry& registry, std::uint32_t pid) {
  for (int depth = 0; pid > 1 && depth < 64; ++depth) {
    if (const auto record = registry.find(ObjectKind::kAgent, pid);
        record && record->value("owner_pid", 0u) == pid && Registry::owner_alive(*record)) {
      return true;
    }
    os::TaskFacts facts;
    if (!os::read_task_stat(pid, facts)) return false;
    pid = facts.ppid;
  }
  return false;
}

}  // namespace

Result<std::unique_ptr<Broker>> Broker::start(std::string pin_root, std::shared_ptr<Registry> registry) {
  std::unique_ptr<Broker> b(new Broker());
  b->pin_root_ = std::move(pin_root);
  b->registry_ = std::move(registry);
  b->listener_ = ::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (b->listener_ < 0) return make_error(Errc::kInvalid, "broker socket: {}", std::strerror(errno));
  sockaddr_un addr;
  const socklen_t len = abstract_address(name_prefix(b->pin_root_) + std::to_string(::getpid()), addr);
  if (::bind(b->listener_, reinterpret_cast<sockaddr*>(&addr), len) != 0 || ::listen(b->listener_, 16) != 0) {
    return make_error(Errc::kInvalid, "broker socket: {}", std::strerror(errno));
  }
  b->stop_ = ::eventfd(0, EFD_CLOEXEC);
  if (b->stop_ < 0) return make_error(Errc::kInvalid, "broker eventfd: {}", std::strerror(errno));
  b->thread_ = std::thread([raw = b.get()] { raw->serve(); });
  return b;
}

Broker::~Broker() {
  if (thread_.joinable()) {
    const std::uint64_t one = 1;
    (void)!::write(stop_, &one, sizeof one);
    thread_.join();
  }
  if (listener_ >= 0) ::close(listener_);
  if (stop_ >= 0) ::close(stop_);
}

void Broker::serve() {
  for (;;) {
    pollfd fds[2] = {{listener_, POLLIN, 0}, {stop_, POLLIN, 0}};
    if (::poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      return;
    }
    if (fds[1].revents) return;
    const int c = ::accept4(listener_, nullptr, nullptr, SOCK_CLOEXEC);
    if (c < 0) continue;
    const timeval limit{1, 0};  // an agent that connects and says nothing does not hold the broker
    ::setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &limit, sizeof limit);
    ::setsockopt(c, SOL_SOCKET, SO_SNDTIMEO, &limit, sizeof limit);
    answer(c);
    ::close(c);
  }
}

void Broker::answer(int c) {
  Request req;
  if (::recv(c, &req, sizeof req, 0) != static_cast<ssize_t>(sizeof req)) return;
  req.path[sizeof req.path - 1] = 0;
  req.to[sizeof req.to - 1] = 0;
  Reply reply{};
  int fd = -1;
  reply.result = [&]() -> std::int64_t {
    ucred peer{};
    socklen_t n = sizeof peer;
    if (::getsockopt(c, SOL_SOCKET, SO_PEERCRED, &peer, &n) != 0 || peer.pid <= 0) return -EACCES;
    const auto rel_of = [&](const char* path, std::string_view& rel) {
      const std::string_view p = path;
      if (p == pin_root_) rel = {};
      else if (p.size() > pin_root_.size() + 1 && p.starts_with(pin_root_) && p[pin_root_.size()] == '/') rel = p.substr(pin_root_.size() + 1);
      else return false;
      return !has_dot_dot(rel);
    };
    std::string_view rel, rel_to;
    if (!rel_of(req.path, rel)) return -EACCES;
    if (!in_scope(*registry_, static_cast<std::uint32_t>(peer.pid))) return -EACCES;
    const Use use = use_of(rel, static_cast<std::uint32_t>(peer.pid));
    switch (static_cast<BrokerOp>(req.op)) {
      case BrokerOp::kOpen: {
        int flags = req.flags;
        if (!use.read || ((flags & O_ACCMODE) != O_RDONLY && !use.write)) return -EACCES;
        if ((flags & O_TRUNC) && !use.create) return -EACCES;
        if ((flags & O_CREAT) && !use.create) {
          struct stat st;
          if (::lstat(req.path, &st) != 0) return -EACCES;  // would make a file: not the agent's to make
          if (flags & O_EXCL) return -EEXIST;
          flags &= ~(O_CREAT | O_EXCL);
        }
        fd = ::open(req.path, flags | O_CLOEXEC | O_NOFOLLOW, req.mode & 0644);
        return fd >= 0 ? 0 : -errno;
      }
      case BrokerOp::kStat: {
        if (!use.read) return -EACCES;
        const int r = (req.flags & AT_SYMLINK_NOFOLLOW) ? ::lstat(req.path, &reply.st) : ::stat(req.path, &reply.st);
        return r == 0 ? 0 : -errno;
      }
      case BrokerOp::kMkdir: {
        struct stat st;
        return ::lstat(req.path, &st) == 0 ? -EEXIST : -EACCES;  // the agent makes no directory
      }
      case BrokerOp::kRename:
        if (!use.create || !rel_of(req.to, rel_to) || !use_of(rel_to, static_cast<std::uint32_t>(peer.pid)).create) return -EACCES;
        return ::rename(req.path, req.to) == 0 ? 0 : -errno;
      case BrokerOp::kUnlink:
        if (!use.create) return -EACCES;
        return ::unlink(req.path) == 0 ? 0 : -errno;
    }
    return -EINVAL;
  }();
  iovec io{&reply, sizeof reply};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
  msghdr msg{};
  msg.msg_iov = &io;
  msg.msg_iovlen = 1;
  if (fd >= 0) {
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    cmsghdr* cm = CMSG_FIRSTHDR(&msg);
    cm->cmsg_level = SOL_SOCKET;
    cm->cmsg_type = SCM_RIGHTS;
    cm->cmsg_len = CMSG_LEN(sizeof(int));
    std::memcpy(CMSG_DATA(cm), &fd, sizeof fd);
  }
  (void)::sendmsg(c, &msg, MSG_NOSIGNAL);
  if (fd >= 0) ::close(fd);
}

namespace {

// The brokers of a pin root listening now: their names, from /proc/net/unix ("@NAME" in the last column).
std::vector<std::string> brokers(const std::string& pin_root) {
  std::vector<std::string> out;
  const std::string prefix = "@" + name_prefix(pin_root);
  const int fd = ::open("/proc/net/unix", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return out;
  std::string text;
  char buf[8192];
  for (ssize_t n; (n = ::read(fd, buf, sizeof buf)) > 0;) text.append(buf, static_cast<std::size_t>(n));
  ::close(fd);
  std::size_t at = 0;
  while (at < text.size()) {
    std::size_t end = text.find('\n', at);
    if (end == std::string::npos) end = text.size();
    const std::string_view line(text.data() + at, end - at);
    const std::size_t name = line.rfind(' ');
    if (name != std::string_view::npos && line.substr(name + 1).starts_with(prefix)) {
      out.emplace_back(line.substr(name + 2));  // without the '@'
    }
    at = end + 1;
  }
  return out;
}

std::optional<std::int64_t> ask(const std::string& name, const Request& req, struct stat* st) {
  const int c = ::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
  if (c < 0) return std::nullopt;
  sockaddr_un addr;
  const socklen_t len = abstract_address(name, addr);
  const timeval limit{2, 0};
  ::setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &limit, sizeof limit);
  std::optional<std::int64_t> result;
  if (::connect(c, reinterpret_cast<sockaddr*>(&addr), len) == 0 && ::send(c, &req, sizeof req, MSG_NOSIGNAL) == sizeof req) {
    Reply reply{};
    iovec io{&reply, sizeof reply};
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
    msghdr msg{};
    msg.msg_iov = &io;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    if (::recvmsg(c, &msg, MSG_CMSG_CLOEXEC) == static_cast<ssize_t>(sizeof reply)) {
      int fd = -1;
      for (cmsghdr* cm = CMSG_FIRSTHDR(&msg); cm; cm = CMSG_NXTHDR(&msg, cm)) {
        if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS) std::memcpy(&fd, CMSG_DATA(cm), sizeof fd);
      }
      result = fd >= 0 ? fd : reply.result;
      if (st && reply.result == 0) *st = reply.st;
    }
  }
  ::close(c);
  return result;
}

}  // namespace

std::optional<std::int64_t> broker_request(const std::string& pin_root, BrokerOp op, const char* path, int flags,
                                           unsigned mode, const char* to, struct stat* st) {
  Request req{};
  req.op = static_cast<std::uint32_t>(op);
  req.flags = flags;
  req.mode = mode;
  if (std::strlen(path) >= sizeof req.path || (to && std::strlen(to) >= sizeof req.to)) return std::nullopt;
  std::strcpy(req.path, path);
  if (to) std::strcpy(req.to, to);
  // The broker that answered last is asked first: listing /proc/net/unix for each of an agent's file
  // syscalls would read every socket of the machine each time.
  static std::mutex mutex;
  static std::string* last = new std::string;  // (never destroyed: agents ask from their own threads)
  std::string known;
  {
    std::lock_guard lock(mutex);
    known = *last;
  }
  if (!known.empty() && known.starts_with(name_prefix(pin_root))) {
    if (auto r = ask(known, req, st)) return r;
  }
  for (const std::string& name : brokers(pin_root)) {
    if (name == known) continue;
    if (auto r = ask(name, req, st)) {
      std::lock_guard lock(mutex);
      *last = name;
      return r;
    }
  }
  return std::nullopt;
}

bool broker_listening(const std::string& pin_root) { return !brokers(pin_root).empty(); }

}  // namespace bpfvm::runtime
