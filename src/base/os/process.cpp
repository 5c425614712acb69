#include "bpfvm/base/process.hpp"

#include "bpfvm/base/file.hpp"

#include <spawn.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <optional>
#include <sstream>
#include <string_view>
#include <linux/magic.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <sys/uio.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

#include <fmt/format.h>

extern char** environ;

namespace bpfvm::os {

Result<int> run_process(const std::vector<std::string>& argv) {
  if (argv.empty()) return make_error(Errc::kInvalid, "no program to run");
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = 0;
  if (const int err = ::posix_spawnp(&pid, args[0], nullptr, nullptr, args.data(), environ); err != 0) {
    return make_error(Errc::kNotFound, "cannot run '{}': {}", argv[0], std::strerror(err));
  }
  int status = 0;
  if (wait_task(pid, &status) < 0) return make_error(Errc::kIo, "waiting for '{}': {}", argv[0], std::strerror(errno));
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

pid_t wait_task(pid_t pid, int* status) {
  while (true) {
    const pid_t r = ::waitpid(pid, status, __WALL);
    if (r >= 0 || errno != EINTR) return r;
  }
}

Result<TempDirectory> TempDirectory::create(std::string_view prefix) {
  const char* tmp = std::getenv("TMPDIR");
  std::string pattern = fmt::format("{}/{}XXXXXX", tmp && *tmp ? tmp : "/tmp", prefix);
  if (!::mkdtemp(pattern.data())) {
    return make_error(Errc::kIo, "cannot create a temporary directory '{}': {}", pattern, std::strerror(errno));
  }
  return TempDirectory(pattern);
}

TempDirectory::~TempDirectory() {
  if (path_.empty()) return;
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

Result<std::string> find_command(const std::string& name) {
  const auto usable = [](const std::string& file) -> std::optional<Result<std::string>> {
    struct stat st {};
    if (::stat(file.c_str(), &st) != 0) return std::nullopt;
    if (!S_ISREG(st.st_mode) || ::access(file.c_str(), X_OK) != 0) {
      return make_error(Errc::kAccess, "cannot run '{}': not an executable file", file);
    }
    return file;
  };
  if (name.find('/') != std::string::npos) {
    if (auto r = usable(name)) return std::move(*r);
    return make_error(Errc::kNotFound, "cannot run '{}': no such file", name);
  }
  const char* path = std::getenv("PATH");
  std::string_view rest = path ? path : "/usr/local/bin:/usr/bin:/bin";
  std::optional<Error> not_executable;
  while (true) {
    const std::size_t colon = rest.find(':');
    const std::string_view dir = rest.substr(0, colon);
    const std::string candidate = fmt::format("{}/{}", dir.empty() ? std::string_view(".") : dir, name);
    if (auto r = usable(candidate)) {
      if (*r) return std::move(*r);
      if (!not_executable) not_executable = r->error();  // execvp goes on searching, and so do we
    }
    if (colon == std::string_view::npos) break;
    rest.remove_prefix(colon + 1);
  }
  if (not_executable) return *not_executable;
  return make_error(Errc::kNotFound, "cannot run '{}': no such command", name);
}


namespace {

std::uint64_t hex_number(const char*& p) {
  std::uint64_t v = 0;
  for (;; ++p) {
    const char c = *p;
    if (c >= '0' && c <= '9') v = v * 16 + static_cast<std::uint64_t>(c - '0');
    else if (c >= 'a' && c <= 'f') v = v * 16 + static_cast<std::uint64_t>(c - 'a' + 10);
    else return v;
  }
}

// One line of /proc/PID/maps (an area's first line in smaps): "START-END PERMS OFFSET MAJ:MIN INODE
// PATH", parsed by hand (no allocation, no formatting functions) into `m`, but for its path: `path`
// points at it in `line` (at the line's end when there is none). False for another line.
bool parse_mapping_line(const char* line, Mapping& m, const char*& path) {
  const char* p = line;
  m.start = hex_number(p);
  if (p == line || *p != '-') return false;
  ++p;
  m.end = hex_number(p);
  if (*p++ != ' ') return false;
  for (int i = 0; i < 4; ++i) {
    if (!*p || *p == ' ') return false;
    m.perms[i] = *p++;
  }
  if (*p++ != ' ') return false;
  m.offset = hex_number(p);
  if (*p++ != ' ') return false;
  const auto major = static_cast<unsigned>(hex_number(p));
  if (*p++ != ':') return false;
  const auto minor = static_cast<unsigned>(hex_number(p));
  m.dev = makedev(major, minor);
  if (*p++ != ' ') return false;
  m.inode = 0;
  while (*p >= '0' && *p <= '9') m.inode = m.inode * 10 + static_cast<std::uint64_t>(*p++ - '0');
  while (*p == ' ') ++p;
  path = p;
  return true;
}

}  // namespace

std::vector<Mapping> read_mappings(pid_t pid) {
  std::vector<Mapping> out;
  const std::string file = pid ? "/proc/" + std::to_string(pid) + "/maps" : "/proc/self/maps";
  FILE* f = std::fopen(file.c_str(), "re");
  if (!f) return out;
  char line[4096 + 128];
  while (std::fgets(line, sizeof line, f)) {
    Mapping m;
    const char* path = nullptr;
    if (!parse_mapping_line(line, m, path)) continue;
    m.path.assign(path, std::strcspn(path, " \t\n"));  // (up to a space: " (deleted)" is not the path's)
    out.push_back(std::move(m));
  }
  std::fclose(f);
  return out;
}

bool copy_own_memory(void* dst, const void* src, std::size_t n) {
  if (n == 0) return true;
  if (!src) return false;
  const iovec local{dst, n}, remote{const_cast<void*>(src), n};
  return ::process_vm_readv(::getpid(), &local, 1, &remote, 1, 0) == static_cast<ssize_t>(n);
}

bool own_memory_accessible(const void* p, std::size_t n, bool write) {
  if (n == 0) return true;
  if (!p) return false;
  char chunk[4096];
  for (std::size_t done = 0; done < n;) {
    const std::size_t k = std::min(sizeof chunk, n - done);
    const auto* at = static_cast<const char*>(p) + done;
    if (!copy_own_memory(chunk, at, k)) return false;
    if (write) {
      const iovec local{chunk, k}, remote{const_cast<char*>(at), k};
      if (::process_vm_writev(::getpid(), &local, 1, &remote, 1, 0) != static_cast<ssize_t>(k)) return false;
    }
    done += k;
  }
  return true;
}

std::optional<std::string> read_own_string(const char* src, std::size_t max) {
  if (!src) return std::nullopt;
  std::string out;
  char chunk[256];
  while (out.size() < max) {
    // A chunk that crosses into an unmapped page is read up to the page's end.
    const auto addr = reinterpret_cast<std::uintptr_t>(src) + out.size();
    const std::size_t to_page = 4096 - (addr & 4095);
    const std::size_t n = std::min({sizeof chunk, to_page, max - out.size()});
    if (!copy_own_memory(chunk, reinterpret_cast<const void*>(addr), n)) return std::nullopt;
    const void* nul = std::memchr(chunk, 0, n);
    if (nul) {
      out.append(chunk, static_cast<const char*>(nul) - chunk);
      return out;
    }
    out.append(chunk, n);
  }
  return std::nullopt;
}

namespace {
// The mount points of cgroup2 (mountinfo's fifth field on its lines whose filesystem is cgroup2).
std::vector<std::string> cgroup2_mounts() {
  std::vector<std::string> points;
  auto mounts = read_text_file("/proc/self/mountinfo");
  if (!mounts) return points;
  std::size_t at = 0;
  while (at < mounts->size()) {
    const std::size_t end = std::min(mounts->find('\n', at), mounts->size());
    const std::string line = mounts->substr(at, end - at);
    at = end + 1;
    if (line.find(" - cgroup2 ") == std::string::npos) continue;
    // fields: id parent major:minor root mount-point ...
    std::size_t p = 0;
    for (int field = 0; field < 4 && p != std::string::npos; ++field) p = line.find(' ', p + 1);
    if (p == std::string::npos) continue;
    const std::size_t q = line.find(' ', p + 1);
    points.push_back(line.substr(p + 1, q - p - 1));
  }
  return points;
}
}  // namespace

std::uint64_t clock_ns(clockid_t clock) {
  struct timespec ts {};
  ::clock_gettime(clock, &ts);
  return static_cast<std::uint64_t>(ts.tv_sec) * 1'000'000'000u + static_cast<std::uint64_t>(ts.tv_nsec);
}

bool is_perf_event_fd(int fd) {
  char link[64] = {};
  const std::string path = "/proc/self/fd/" + std::to_string(fd);
  return ::readlink(path.c_str(), link, sizeof link - 1) > 0 && std::string_view(link) == "anon_inode:[perf_event]";
}

Result<std::pair<std::string, std::uint64_t>> cgroup_of_fd(int fd) {
  struct statfs fs {};
  struct stat st {};
  if (::fstatfs(fd, &fs) != 0 || ::fstat(fd, &st) != 0) return make_error(Errc::kBadFd, "fd {} is not open", fd);
  if (fs.f_type != CGROUP2_SUPER_MAGIC || !S_ISDIR(st.st_mode)) {
    return make_error(Errc::kBadFd, "fd {} is not a cgroup2 directory", fd);
  }
  char target[4096];
  const ssize_t n = ::readlink(fmt::format("/proc/self/fd/{}", fd).c_str(), target, sizeof target - 1);
  if (n <= 0) return make_error(Errc::kBadFd, "fd {}: its path cannot be read", fd);
  std::string path(target, static_cast<std::size_t>(n));
  // Below the cgroup2 mount: the mount point is the path's prefix whose mountinfo entry is cgroup2.
  std::string root;
  for (const std::string& point : cgroup2_mounts()) {
    if ((path == point || path.starts_with(point + "/")) && point.size() > root.size()) root = point;
  }
  if (root.empty()) return make_error(Errc::kBadFd, "fd {}: '{}' is under no cgroup2 mount", fd, path);
  std::string below = path.substr(root.size());
  if (below.empty()) below = "/";
  return std::make_pair(below, static_cast<std::uint64_t>(st.st_ino));
}

namespace {

// Reads a small /proc file into buf (NUL-terminated); its length, or -1.
long read_proc(const char* path, char* buf, std::size_t size) {
  const int fd = ::open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  std::size_t n = 0;
  while (n + 1 < size) {
    const ssize_t got = ::read(fd, buf + n, size - 1 - n);
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) break;
    n += static_cast<std::size_t>(got);
  }
  ::close(fd);
  buf[n] = '\0';
  return static_cast<long>(n);
}

// "/proc/" + decimal tid + tail, without the formatting functions (not async-signal-safe).
void proc_path(char* out, std::size_t size, std::uint32_t tid, const char* tail) {
  char digits[12];
  int d = 0;
  do {
    digits[d++] = static_cast<char>('0' + tid % 10);
    tid /= 10;
  } while (tid && d < 11);
  std::size_t at = 0;
  for (const char* p = "/proc/"; *p && at + 1 < size; ++p) out[at++] = *p;
  while (d > 0 && at + 1 < size) out[at++] = digits[--d];
  for (const char* p = tail; *p && at + 1 < size; ++p) out[at++] = *p;
  out[at] = '\0';
}

// The next whitespace-separated number of `p` (signed), advancing it.
std::int64_t next_number(const char*& p) {
  while (*p == ' ' || *p == '\t') ++p;
  bool negative = false;
  if (*p == '-') {
    negative = true;
    ++p;
  }
  std::uint64_t v = 0;
  while (*p >= '0' && *p <= '9') v = v * 10 + static_cast<std::uint64_t>(*p++ - '0');
  while (*p && *p != ' ' && *p != '\n') ++p;  // anything else of the field
  return negative ? -static_cast<std::int64_t>(v) : static_cast<std::int64_t>(v);
}

// The numbers after "Key:" on a line of /proc/TID/status; how many were read.
int status_numbers(const char* text, const char* key, std::uint32_t* out, int max) {
  const std::size_t klen = std::strlen(key);
  for (const char* line = text; *line;) {
    if (std::strncmp(line, key, klen) == 0) {
      const char* p = line + klen;
      int n = 0;
      while (n < max) {
        while (*p == ' ' || *p == '\t') ++p;
        if (*p < '0' || *p > '9') break;
        out[n++] = static_cast<std::uint32_t>(next_number(p));
      }
      return n;
    }
    const char* nl = std::strchr(line, '\n');
    if (!nl) break;
    line = nl + 1;
  }
  return 0;
}

}  // namespace

bool read_task_stat(std::uint32_t tid, TaskFacts& out) {
  out = TaskFacts{};
  char path[64];
  char buf[2048];
  proc_path(path, sizeof path, tid, "/stat");
  if (read_proc(path, buf, sizeof buf) <= 0) return false;
  // "PID (COMM) S PPID ...": the name may hold spaces and parentheses; it ends at the last ')'.
  const char* open_paren = std::strchr(buf, '(');
  const char* close_paren = std::strrchr(buf, ')');
  if (!open_paren || !close_paren || close_paren < open_paren) return false;
  std::memcpy(out.comm, open_paren + 1, std::min<std::size_t>(static_cast<std::size_t>(close_paren - open_paren - 1), sizeof out.comm - 1));
  out.pid = tid;
  const char* p = close_paren + 1;
  while (*p == ' ') ++p;
  out.state = *p ? *p++ : 0;
  std::int64_t field[53] = {};  // 1-based, as proc(5) numbers them; 4 onwards
  for (int i = 4; i <= 52 && *p && *p != '\n'; ++i) field[i] = next_number(p);
  out.ppid = static_cast<std::uint32_t>(field[4]);
  out.pgrp = static_cast<std::uint32_t>(field[5]);
  out.flags = static_cast<std::uint32_t>(field[9]);
  out.prio = static_cast<int>(field[18]);
  out.nice = static_cast<int>(field[19]);
  constexpr std::uint64_t kUserHz = 100;  // USER_HZ: the unit of starttime on every Linux architecture bpfvm runs on
  out.start_ticks = static_cast<std::uint64_t>(field[22]);
  out.start_boottime_ns = out.start_ticks * (1000000000 / kUserHz);
  out.start_code = static_cast<std::uint64_t>(field[26]);
  out.end_code = static_cast<std::uint64_t>(field[27]);
  out.start_stack = static_cast<std::uint64_t>(field[28]);
  out.cpu = static_cast<std::uint32_t>(field[39]);
  out.start_data = static_cast<std::uint64_t>(field[45]);
  out.end_data = static_cast<std::uint64_t>(field[46]);
  out.start_brk = static_cast<std::uint64_t>(field[47]);
  out.arg_start = static_cast<std::uint64_t>(field[48]);
  out.arg_end = static_cast<std::uint64_t>(field[49]);
  out.env_start = static_cast<std::uint64_t>(field[50]);
  out.env_end = static_cast<std::uint64_t>(field[51]);
  out.exit_code = static_cast<std::int32_t>(field[52]);
  return true;
}

namespace {

// The kernel's VM_* bits (include/linux/mm.h, Linux 6.18) by the names /proc/PID/smaps gives them in
// VmFlags (fs/proc/task_mmu.c, show_smap_vma_flags).
std::uint64_t vm_flag(const char* two) {
  struct Name {
    char name[3];
    std::uint64_t bit;
  };
  static constexpr Name kNames[] = {
      {"rd", 0x1},        {"wr", 0x2},        {"ex", 0x4},         {"sh", 0x8},         {"mr", 0x10},
      {"mw", 0x20},       {"me", 0x40},       {"ms", 0x80},        {"gd", 0x100},       {"um", 0x200},
      {"pf", 0x400},      {"uw", 0x1000},     {"lo", 0x2000},      {"io", 0x4000},      {"sr", 0x8000},
      {"rr", 0x10000},    {"dc", 0x20000},    {"de", 0x40000},     {"lf", 0x80000},     {"ac", 0x100000},
      {"nr", 0x200000},   {"ht", 0x400000},   {"sf", 0x800000},    {"ar", 0x1000000},   {"wf", 0x2000000},
      {"dd", 0x4000000},  {"sd", 0x8000000},  {"mm", 0x10000000},  {"hg", 0x20000000},  {"nh", 0x40000000},
      {"mg", 0x80000000},
  };
  for (const Name& n : kNames) {
    if (n.name[0] == two[0] && n.name[1] == two[1]) return n.bit;
  }
  return 0;
}

// An smaps header (a maps line): false for another line.
bool area_header(const char* line, TaskArea& a) {
  a = TaskArea{};
  Mapping m;
  const char* p = nullptr;
  if (!parse_mapping_line(line, m, p)) return false;
  a.start = m.start, a.end = m.end, a.offset = m.offset, a.dev = m.dev, a.inode = m.inode;
  if (*p != '/') {  // anonymous, or "[heap]", "[stack]", "[vdso]"...
    a.stack = std::strncmp(p, "[stack]", 7) == 0;
    return true;
  }
  a.file = true;
  const char* end = p + std::strlen(p);
  constexpr std::string_view kDeleted = " (deleted)";
  if (static_cast<std::size_t>(end - p) > kDeleted.size() && std::string_view(end - kDeleted.size(), kDeleted.size()) == kDeleted) {
    end -= kDeleted.size();
  }
  const char* base = end;
  while (base > p && base[-1] != '/') --base;
  const std::size_t n = std::min<std::size_t>(static_cast<std::size_t>(end - base), sizeof a.name - 1);
  std::memcpy(a.name, base, n);
  a.name[n] = '\0';
  return true;
}

}  // namespace

bool find_task_area(std::uint32_t tid, std::uint64_t addr, TaskArea& out) {
  char path[64];
  proc_path(path, sizeof path, tid, "/smaps");
  const int fd = ::open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  char buf[4096];
  std::size_t have = 0;
  bool found = false, done = false, eof = false;
  while (!done) {
    // One line from buf (lines longer than it, a path of thousands of bytes, are cut).
    char* nl = static_cast<char*>(std::memchr(buf, '\n', have));
    if (!nl && !eof && have < sizeof buf - 1) {
      const ssize_t got = ::read(fd, buf + have, sizeof buf - 1 - have);
      if (got < 0 && errno == EINTR) continue;
      if (got <= 0) eof = true;
      else have += static_cast<std::size_t>(got);
      continue;
    }
    const std::size_t len = nl ? static_cast<std::size_t>(nl - buf) : have;
    if (len == 0 && !nl) break;  // the end
    buf[len] = '\0';
    if (!found) {
      TaskArea a;
      if (area_header(buf, a) && addr >= a.start && addr < a.end) {
        out = a;
        found = true;
      }
    } else if (std::strncmp(buf, "VmFlags:", 8) == 0) {  // the area's last line
      for (const char* p = buf + 8; *p;) {
        while (*p == ' ') ++p;
        if (p[0] && p[1] && (p[2] == ' ' || p[2] == '\0')) out.vm_flags |= vm_flag(p);
        while (*p && *p != ' ') ++p;
      }
      done = true;
    } else {
      TaskArea next;
      if (area_header(buf, next)) done = true;  // (a kernel without VmFlags)
    }
    const std::size_t used = nl ? len + 1 : len;
    std::memmove(buf, buf + used, have - used);
    have -= used;
  }
  ::close(fd);
  return found;
}

bool read_task_facts(std::uint32_t tid, TaskFacts& out) {
  if (!read_task_stat(tid, out)) return false;
  char path[64];
  char buf[2048];
  proc_path(path, sizeof path, tid, "/status");
  if (read_proc(path, buf, sizeof buf) > 0) {
    std::uint32_t tgid = 0;
    out.tgid = status_numbers(buf, "Tgid:", &tgid, 1) == 1 ? tgid : tid;
    status_numbers(buf, "Uid:", out.uid, 4);
    status_numbers(buf, "Gid:", out.gid, 4);
    out.nspid_levels = static_cast<std::uint32_t>(status_numbers(buf, "NSpid:", out.nspid, 8));
  }
  if (out.tgid == 0) out.tgid = tid;
  if (out.nspid_levels == 0) {
    out.nspid[0] = tid;
    out.nspid_levels = 1;
  }
  char small[32];
  proc_path(path, sizeof path, tid, "/loginuid");
  if (read_proc(path, small, sizeof small) > 0) {
    const char* q = small;
    out.loginuid = static_cast<std::uint32_t>(next_number(q));
  }
  proc_path(path, sizeof path, tid, "/sessionid");
  if (read_proc(path, small, sizeof small) > 0) {
    const char* q = small;
    out.sessionid = static_cast<std::uint32_t>(next_number(q));
  }
  static constexpr const char* kNs[TaskFacts::kNsCount] = {"/ns/uts", "/ns/ipc", "/ns/mnt", "/ns/pid", "/ns/pid_for_children",
                                                           "/ns/net", "/ns/time", "/ns/time_for_children", "/ns/cgroup"};
  for (int i = 0; i < TaskFacts::kNsCount; ++i) {
    proc_path(path, sizeof path, tid, kNs[i]);
    struct stat st {};
    if (::stat(path, &st) == 0) out.ns_inode[i] = st.st_ino;
  }
  return true;
}

bool read_task_cgroup(std::uint32_t tid, char* out, std::size_t size) {
  char path[64];
  char buf[4096];
  proc_path(path, sizeof path, tid, "/cgroup");
  if (size == 0 || read_proc(path, buf, sizeof buf) <= 0) return false;
  for (const char* line = buf; *line;) {
    const char* end = std::strchr(line, '\n');
    if (!end) end = line + std::strlen(line);
    if (std::strncmp(line, "0::", 3) == 0) {
      const std::size_t n = static_cast<std::size_t>(end - line - 3);
      if (n == 0 || n >= size) return false;
      std::memcpy(out, line + 3, n);
      out[n] = '\0';
      return true;
    }
    line = *end ? end + 1 : end;
  }
  return false;
}

bool cgroup_id_of_task(std::uint32_t tid, std::uint64_t& id) { return cgroup_ancestor_id_of_task(tid, -1, id); }
std::uint32_t net_cls_classid_of_task(std::uint32_t tid) {
  // Where the net_cls hierarchy is mounted (its mountinfo line: fstype cgroup, net_cls among the super
  // options), found once; none when /proc/cgroups gives net_cls hierarchy 0.
  static const std::string& mount = *new std::string([] {
    std::string found;
    const auto cgroups = read_text_file("/proc/cgroups");
    if (!cgroups) return found;
    std::istringstream lines(*cgroups);
    std::string name;
    int hierarchy = 0;
    bool mounted = false;
    for (std::string line; std::getline(lines, line);) {
      std::istringstream fields(line);
      if (fields >> name >> hierarchy && name == "net_cls") mounted = hierarchy != 0;
    }
    if (!mounted) return found;
    const auto info = read_text_file("/proc/self/mountinfo");
    if (!info) return found;
    std::istringstream mounts(*info);
    for (std::string line; std::getline(mounts, line);) {
      // ID PARENT MAJ:MIN ROOT POINT OPTIONS [OPTIONAL...] - FSTYPE SOURCE SUPER_OPTIONS
      const std::size_t dash = line.find(" - ");
      if (dash == std::string::npos) continue;
      std::istringstream tail(line.substr(dash + 3));
      std::string fstype, source, super;
      tail >> fstype >> source >> super;
      if (fstype != "cgroup" || ("," + super + ",").find(",net_cls,") == std::string::npos) continue;
      std::istringstream head(line.substr(0, dash));
      std::string id, parent, dev, root, point;
      head >> id >> parent >> dev >> root >> point;
      if (root == "/") {
        found = point;
        break;
      }
    }
    return found;
  }());
  if (mount.empty()) return 0;
  // The task's net_cls cgroup: its /proc/TID/cgroup line whose controllers include net_cls.
  const auto cgroups = read_text_file(fmt::format("/proc/{}/cgroup", tid));
  if (!cgroups) return 0;
  std::istringstream lines(*cgroups);
  for (std::string line; std::getline(lines, line);) {
    const std::size_t a = line.find(':'), b = a == std::string::npos ? a : line.find(':', a + 1);
    if (b == std::string::npos) continue;
    if (("," + line.substr(a + 1, b - a - 1) + ",").find(",net_cls,") == std::string::npos) continue;
    const auto value = read_text_file(mount + line.substr(b + 1) + "/net_cls.classid");
    return value ? static_cast<std::uint32_t>(std::strtoul(value->c_str(), nullptr, 10)) : 0;
  }
  return 0;
}

bool cgroup_ancestor_id_of_task(std::uint32_t tid, int level, std::uint64_t& id) {
  // The cgroup2 mount: where systemd and Debian put it (/sys/fs/cgroup, or /sys/fs/cgroup/unified beside
  // v1 controllers), else the first in mountinfo; found once.
  static char mount[512];
  static std::atomic<int> found{0};  // 0 not yet, 1 found, -1 none
  if (found.load(std::memory_order_acquire) == 0) {
    std::string point;
    for (const char* p : {"/sys/fs/cgroup", "/sys/fs/cgroup/unified"}) {
      struct statfs fs {};
      if (::statfs(p, &fs) == 0 && fs.f_type == CGROUP2_SUPER_MAGIC) {
        point = p;
        break;
      }
    }
    if (point.empty()) {
      const auto mounts = cgroup2_mounts();
      if (!mounts.empty()) point = mounts.front();
    }
    if (!point.empty() && point.size() < sizeof mount) {
      std::memcpy(mount, point.c_str(), point.size() + 1);
      found.store(1, std::memory_order_release);
    } else {
      found.store(-1, std::memory_order_release);
    }
  }
  if (found.load(std::memory_order_acquire) != 1) return false;
  char cgroup[3584];
  if (!read_task_cgroup(tid, cgroup, sizeof cgroup)) return false;
  if (level >= 0) {
    // The ancestor `level` components down from the root ("/a/b/c" at level 2: "/a/b"); none deeper
    // than the task's own.
    std::size_t at = 0;
    for (int l = 0; l < level; ++l) {
      if (cgroup[at] == 0 || cgroup[at + 1] == 0) return false;  // past the task's own cgroup
      const char* next = std::strchr(cgroup + at + 1, '/');
      at = next ? static_cast<std::size_t>(next - cgroup) : std::strlen(cgroup);
    }
    cgroup[at == 0 ? 1 : at] = 0;
  }
  char full[sizeof mount + sizeof cgroup];
  const std::size_t m = std::strlen(mount);
  std::memcpy(full, mount, m);
  std::memcpy(full + m, cgroup, std::strlen(cgroup) + 1);
  if (std::strcmp(cgroup, "/") == 0) full[m] = '\0';
  struct stat st {};
  if (::stat(full, &st) != 0 || !S_ISDIR(st.st_mode)) return false;
  id = static_cast<std::uint64_t>(st.st_ino);
  return true;
}

Result<std::uint64_t> socket_cookie(int fd) {
  std::uint64_t cookie = 0;
  socklen_t len = sizeof cookie;
  if (::getsockopt(fd, SOL_SOCKET, SO_COOKIE, &cookie, &len) != 0) {
    const int err = errno;
    return make_error(err == EBADF ? Errc::kBadFd : Errc::kNotSocket, "fd {} is not a socket", fd);
  }
  return cookie;
}

SocketFacts socket_facts(int fd) {
  SocketFacts f;
  auto option = [fd](int level, int name) {
    int v = 0;
    socklen_t len = sizeof v;
    return ::getsockopt(fd, level, name, &v, &len) == 0 ? v : 0;
  };
  f.domain = option(SOL_SOCKET, SO_DOMAIN);
  f.type = option(SOL_SOCKET, SO_TYPE);
  f.protocol = option(SOL_SOCKET, SO_PROTOCOL);
  f.reuseport = option(SOL_SOCKET, SO_REUSEPORT) != 0;
  if ((f.domain == AF_INET || f.domain == AF_INET6) && f.protocol == IPPROTO_TCP) {
    tcp_info info{};
    socklen_t len = sizeof info;
    if (::getsockopt(fd, IPPROTO_TCP, TCP_INFO, &info, &len) == 0) f.tcp_state = info.tcpi_state;
  }
  sockaddr_storage addr{};
  socklen_t len = sizeof addr;
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
    if (f.domain == AF_INET) f.bound_port = reinterpret_cast<sockaddr_in&>(addr).sin_port != 0;
    if (f.domain == AF_INET6) f.bound_port = reinterpret_cast<sockaddr_in6&>(addr).sin6_port != 0;
  }
  len = sizeof addr;
  f.connected = ::getpeername(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0;
  return f;
}

Result<std::uint32_t> pid_of_pidfd(int fd) {
  if (::fcntl(fd, F_GETFD) < 0) return make_error(Errc::kBadFd, "fd {} is not open", fd);
  // A pidfd's /proc/self/fdinfo has a "Pid:" line (-1 once its process is reaped).
  char path[64], text[1024];
  std::snprintf(path, sizeof path, "/proc/self/fdinfo/%d", fd);
  const int f = ::open(path, O_RDONLY | O_CLOEXEC);
  ssize_t n = f < 0 ? -1 : ::read(f, text, sizeof text - 1);
  if (f >= 0) ::close(f);
  if (n <= 0) return make_error(Errc::kBadFd, "fd {}'s fdinfo cannot be read", fd);
  text[n] = 0;
  const char* line = std::strstr(text, "\nPid:");
  long pid = 0;
  if (!line || std::sscanf(line + 5, "%ld", &pid) != 1) return make_error(Errc::kBadFd, "fd {} is not a pidfd", fd);
  if (pid <= 0) return make_error(Errc::kNotFound, "pidfd {}'s process is gone", fd);
  return static_cast<std::uint32_t>(pid);
}

}  // namespace bpfvm::os
