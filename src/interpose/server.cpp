// The interposition's syscall server (see include/bpfvm/interpose/server.hpp).
#include "bpfvm/interpose/server.hpp"

#include <fcntl.h>
#include <linux/bpf.h>
#include <linux/perf_event.h>
#include <sys/ioctl.h>
#include <poll.h>

#include <chrono>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <thread>

#include <fmt/format.h>

#include "bpfvm/attach/syscalls.hpp"
#include "bpfvm/attach/kernel_functions.hpp"
#include "bpfvm/attach/syscall_probes.hpp"
#include "bpfvm/attach/uprobe.hpp"
#include "bpfvm/base/file.hpp"
#include "bpfvm/base/process.hpp"
#include "bpfvm/base/wakeup.hpp"
#include "bpfvm/maps/cpu.hpp"
#include "bpfvm/maps/map.hpp"
#include "bpfvm/maps/perf_event.hpp"
#include "bpfvm/maps/perf_event_array.hpp"
#include "bpfvm/maps/ringbuf.hpp"

namespace bpfvm::interpose {

namespace {

constexpr std::size_t kPage = 4096;
// Where the kernel has no uprobe/kprobe PMU files to read (their types on Linux 6.x).
constexpr std::uint32_t kDefaultUprobeType = 8, kDefaultKprobeType = 6;
constexpr std::uint64_t kOwnTracepointIds = 100000;  // bpfvm's ids where tracefs is not readable

std::int64_t neg_errno() { return -static_cast<std::int64_t>(errno); }

std::uint32_t pmu_type(const char* name, std::uint32_t fallback) {
  auto text = os::read_text_file(fmt::format("/sys/bus/event_source/devices/{}/type", name));
  if (!text) return fallback;
  char* end = nullptr;
  const unsigned long v = std::strtoul(text->c_str(), &end, 10);
  return end != text->c_str() ? static_cast<std::uint32_t>(v) : fallback;
}

// Maps `len` bytes of the file `path` from `offset` at `addr` as mmap(2) would (flags as given).
std::int64_t map_file(const std::string& path, std::uint64_t offset, void* addr, std::size_t len, int prot, int flags) {
  const int fd = ::open(path.c_str(), (prot & PROT_WRITE ? O_RDWR : O_RDONLY) | O_CLOEXEC);
  if (fd < 0) return -ENODEV;
  void* p = ::mmap(addr, len, prot, flags, fd, static_cast<off_t>(offset));
  const int err = errno;
  ::close(fd);
  if (p == MAP_FAILED) return -err;
  return static_cast<std::int64_t>(reinterpret_cast<std::uintptr_t>(p));
}

// A descriptor's file as the kernel would create it: close-on-exec unless the caller said otherwise.
void set_cloexec(int fd, bool on) {
  if (!on) ::fcntl(fd, F_SETFD, 0);
}

}  // namespace

struct Server::Output {
  std::uint32_t cpu = 0;
  std::shared_ptr<maps::PerfEvent> event;  // made at the first mmap
  std::set<int> fds;
};

struct Server::Pollable {
  std::set<int> fds;  // descriptors of one eventfd (dup'd)
  std::shared_ptr<maps::PerfEvent> event;
  std::shared_ptr<runtime::Map> ringbuf;
  bool ready() const {
    if (event) return event->has_data();
    auto& rb = static_cast<maps::RingBuffer&>(ringbuf->impl());
    return rb.query(BPF_RB_AVAIL_DATA) != 0;
  }
};

struct Server::WakeSource {
  std::shared_ptr<runtime::Map> map;
  std::thread thread;
};

Server::Server(ServerOptions options)
    : options_(std::move(options)), rt_(runtime::RuntimeOptions{options_.pin_root, true}) {}

Server::~Server() {
  // (An application's server lives as long as the process; a test's stops its threads here.)
  stop_.store(true, std::memory_order_release);
  for (auto& s : sources_) {
    if (s->thread.joinable()) s->thread.join();
  }
  for (auto& t : relays_) {
    if (t.joinable()) t.join();
  }
}

Result<std::unique_ptr<Server>> Server::create(ServerOptions options) {
  std::unique_ptr<Server> s(new Server(std::move(options)));
  if (!s->rt_.registry()) {
    const auto& why = s->rt_.registry_error();
    return make_error(Errc::kNotFound, "no registry at '{}'{}", s->rt_.pin_root(), why ? ": " + why->to_string() : "");
  }
  // What applications that crashed (or were killed) before this one left in the pin root's storage.
  maps::remove_orphaned_storage(s->rt_.pin_root() + "/.maps");
  s->uprobe_type_ = pmu_type("uprobe", kDefaultUprobeType);
  s->kprobe_type_ = pmu_type("kprobe", kDefaultKprobeType);
  if (s->options_.route) {
    // (and the access family from the start: the tools ask whether a tracepoint exists, by access() of
    // its format file, before their first bpf() call)
    // (and chdir: BCC's loader enters the kernel tree to compile, and reads /proc/kallsyms before its
    // first bpf() call)
    for (const int nr : {SYS_bpf, SYS_perf_event_open, SYS_access, SYS_faccessat, SYS_faccessat2, SYS_chdir}) {
      s->options_.route(nr);
    }
    // A Python program may be a BCC tool, which reads the kernel's files (kallsyms to choose between
    // fentry and kprobes, kprobes/blacklist for a pattern) before it compiles anything: its opens are
    // served from the start (half a microsecond an open, in Python processes only).
    char exe[4096];
    const ssize_t n = ::readlink("/proc/self/exe", exe, sizeof exe - 1);
    const std::string_view path(exe, n > 0 ? static_cast<std::size_t>(n) : 0);
    if (path.substr(path.rfind('/') + 1).starts_with("python")) {
      std::lock_guard lock(s->mutex_);
      s->route_descriptors();
    }
  }
  return s;
}

std::string Server::tracepoint_name(std::uint64_t id) const {
  std::lock_guard lock(mutex_);
  const auto it = tracepoint_ids_.find(id);
  return it == tracepoint_ids_.end() ? std::string() : it->second;
}

void Server::route_descriptors() {
  if (routed_descriptors_ || !options_.route) return;
  routed_descriptors_ = true;
  // (open and openat too: the tracefs ids and PMU files an application reads when it attaches what it
  // loaded; a process that never calls bpf() pays nothing for its opens.)
  for (const int nr : {SYS_close, SYS_dup, SYS_dup2, SYS_dup3, SYS_fcntl, SYS_close_range, SYS_ioctl, SYS_mmap, SYS_open,
                       SYS_openat}) {
    options_.route(nr);
  }
}

bool Server::serve(std::uint64_t nr, const std::uint64_t* args, std::int64_t* rax) {
  const int fd0 = static_cast<int>(args[0]);
  switch (nr) {
    case SYS_bpf:
      *rax = do_bpf(args);
      return true;
    case SYS_perf_event_open: {
      std::lock_guard lock(mutex_);
      const std::int64_t r = perf_event_open(args);
      *rax = r;
      return true;
    }
    case SYS_ioctl: {
      if (!rt_.owns_fd(fd0)) {
        // A perf event of the kernel's own (a CPU clock or hardware counter to sample on) given a bpfvm
        // program: the kernel would answer EINVAL for a descriptor it does not know as a program.
        if (args[1] == PERF_EVENT_IOC_SET_BPF && rt_.owns_fd(static_cast<int>(args[2]))) {
          std::fprintf(stderr, "bpfvm: a sampling perf event (CPU clock, hardware counter) cannot run a bpfvm program: "
                       "bpfvm runs programs on syscall, process and signal tracepoints, syscall-entry kprobes and "
                       "uprobes\n");
          *rax = -EOPNOTSUPP;
          return true;
        }
        return false;
      }
      std::lock_guard lock(mutex_);
      auto r = ioctl(fd0, args[1], args[2]);
      if (!r) return false;
      *rax = *r;
      return true;
    }
    case SYS_mmap: {
      const int fd = static_cast<int>(args[4]);
      if ((args[3] & MAP_ANONYMOUS) || fd < 0 || !rt_.owns_fd(fd)) return false;
      std::lock_guard lock(mutex_);
      auto r = mmap(args);
      if (!r) return false;
      *rax = *r;
      return true;
    }
    case SYS_open:
    case SYS_openat: {
      const bool at = nr == SYS_openat;
      const auto* path = reinterpret_cast<const char*>(args[at ? 1 : 0]);
      const int flags = static_cast<int>(args[at ? 2 : 1]);
      auto r = open_file(at ? fd0 : AT_FDCWD, path, flags);
      if (!r) return false;
      *rax = *r;
      return true;
    }
    case SYS_chdir: {
      // A BCC loader moving into the kernel tree ($BCC_KERNEL_SOURCE, or /lib/modules/RELEASE/...) to
      // compile is a loader from now on: its opens are served (kallsyms, tracefs) before any bpf().
      if (!routed_descriptors_) {
        const char* tree = std::getenv("BCC_KERNEL_SOURCE");
        const auto path = os::read_own_string(reinterpret_cast<const char*>(args[0]), 4096);
        if (path && (path->starts_with("/lib/modules/") || (tree && *tree && path->starts_with(tree)))) {
          std::lock_guard lock(mutex_);
          route_descriptors();
        }
      }
      return false;  // the kernel's
    }
    case SYS_access:
    case SYS_faccessat:
    case SYS_faccessat2: {
      const bool at = nr != SYS_access;
      auto r = access_file(reinterpret_cast<const char*>(args[at ? 1 : 0]), static_cast<int>(args[at ? 2 : 1]));
      if (!r) return false;
      *rax = *r;
      return true;
    }
    case SYS_close: {
      if (!rt_.owns_fd(fd0)) return false;
      const int r = ::close(fd0);
      *rax = r < 0 ? neg_errno() : 0;
      // (Linux closes the descriptor even when close reports an error)
      forget(fd0);
      return true;
    }
    case SYS_dup: {
      if (!rt_.owns_fd(fd0)) return false;
      const int r = ::dup(fd0);
      if (r < 0) {
        *rax = neg_errno();
        return true;
      }
      alias(fd0, r);
      *rax = r;
      return true;
    }
    case SYS_dup2:
    case SYS_dup3: {
      const int to = static_cast<int>(args[1]);
      if (!rt_.owns_fd(fd0) && !rt_.owns_fd(to)) return false;
      const int r = nr == SYS_dup2 ? ::dup2(fd0, to) : ::dup3(fd0, to, static_cast<int>(args[2]));
      if (r < 0) {
        *rax = neg_errno();
        return true;
      }
      if (fd0 != to) {
        if (rt_.owns_fd(fd0)) alias(fd0, to);
        else forget(to);
      }
      *rax = r;
      return true;
    }
    case SYS_fcntl: {
      const int cmd = static_cast<int>(args[1]);
      if ((cmd != F_DUPFD && cmd != F_DUPFD_CLOEXEC) || !rt_.owns_fd(fd0)) return false;
      const int r = ::fcntl(fd0, cmd, static_cast<int>(args[2]));
      if (r < 0) {
        *rax = neg_errno();
        return true;
      }
      alias(fd0, r);
      *rax = r;
      return true;
    }
    case SYS_close_range: {
      const auto first = static_cast<unsigned>(args[0]), last = static_cast<unsigned>(args[1]);
      const auto flags = static_cast<unsigned>(args[2]);
      const long r = ::syscall(SYS_close_range, first, last, flags);
      if (r < 0) {
        *rax = neg_errno();
        return true;
      }
      if (!(flags & 4 /* CLOSE_RANGE_CLOEXEC */)) {
        std::vector<int> gone;
        for (int fd = static_cast<int>(first); fd >= 0 && static_cast<unsigned>(fd) <= last && fd < 1 << 20; ++fd) {
          if (rt_.owns_fd(fd)) gone.push_back(fd);
        }
        for (const int fd : gone) forget(fd);
      }
      *rax = 0;
      return true;
    }
    case SYS_epoll_wait:
    case SYS_epoll_pwait:
    case SYS_epoll_pwait2:
    case SYS_poll:
    case SYS_ppoll:
    case SYS_select:
    case SYS_pselect6:
      refresh(true);
      return false;  // the kernel waits, on eventfds bpfvm keeps up to date
    default: return false;
  }
}

// The buffers an attr points at, as the command will read or write them: the kernel copies them with
// copy_from_user/copy_to_user and answers EFAULT for a bad one; bpfvm runs in the application, where a
// bad pointer would fault it, so they are checked first. (A buffer another thread unmaps meanwhile is
// not covered.) Sizes the runtime checks later (a zero count, a size past a limit) are taken as given.
bool Server::user_buffers_accessible(int cmd, const union bpf_attr& a) {
  const auto ok = [](std::uint64_t p, std::uint64_t n, bool write) {
    return n == 0 || (p != 0 && n < (std::uint64_t{1} << 32) &&
                      os::own_memory_accessible(reinterpret_cast<const void*>(p), static_cast<std::size_t>(n), write));
  };
  const auto string_ok = [](std::uint64_t p) { return p == 0 || os::read_own_string(reinterpret_cast<const char*>(p), 4096); };
  switch (cmd) {
    case BPF_MAP_LOOKUP_ELEM:
    case BPF_MAP_UPDATE_ELEM:
    case BPF_MAP_DELETE_ELEM:
    case BPF_MAP_GET_NEXT_KEY:
    case BPF_MAP_LOOKUP_AND_DELETE_ELEM:
    case BPF_MAP_LOOKUP_BATCH:
    case BPF_MAP_LOOKUP_AND_DELETE_BATCH:
    case BPF_MAP_UPDATE_BATCH:
    case BPF_MAP_DELETE_BATCH: {
      const bool batch = cmd == BPF_MAP_LOOKUP_BATCH || cmd == BPF_MAP_LOOKUP_AND_DELETE_BATCH ||
                         cmd == BPF_MAP_UPDATE_BATCH || cmd == BPF_MAP_DELETE_BATCH;
      auto object = rt_.object_for_fd(static_cast<int>(batch ? a.batch.map_fd : a.map_fd));
      if (!object) return true;  // (EBADF is the runtime's to answer)
      auto* map = std::get_if<std::shared_ptr<runtime::Map>>(&*object);
      if (!map) return true;
      const std::uint64_t ks = (*map)->def().key_size, vs = (*map)->impl().user_value_size();
      const bool lookup = cmd == BPF_MAP_LOOKUP_ELEM || cmd == BPF_MAP_LOOKUP_AND_DELETE_ELEM;
      switch (cmd) {
        case BPF_MAP_LOOKUP_ELEM:
        case BPF_MAP_UPDATE_ELEM:
        case BPF_MAP_LOOKUP_AND_DELETE_ELEM:
          return ok(a.key, ks, false) && ok(a.value, vs, lookup);
        case BPF_MAP_DELETE_ELEM: return ok(a.key, ks, false);
        case BPF_MAP_GET_NEXT_KEY: return (a.key == 0 || ok(a.key, ks, false)) && ok(a.next_key, ks, true);
        default: {  // batches: count keys and values; the batch cursors are a key each
          const std::uint64_t count = a.batch.count;
          const bool out = cmd != BPF_MAP_UPDATE_BATCH && cmd != BPF_MAP_DELETE_BATCH;
          return ok(a.batch.keys, count * ks, out) && (cmd == BPF_MAP_DELETE_BATCH || ok(a.batch.values, count * vs, out)) &&
                 (a.batch.in_batch == 0 || ok(a.batch.in_batch, ks, false)) &&
                 (a.batch.out_batch == 0 || ok(a.batch.out_batch, ks, true));
        }
      }
    }
    case BPF_PROG_LOAD: {
      return ok(a.insns, std::uint64_t{a.insn_cnt} * 8, false) && string_ok(a.license) &&
             (a.log_buf == 0 || ok(a.log_buf, a.log_size, true)) &&
             (a.func_info == 0 || ok(a.func_info, std::uint64_t{a.func_info_cnt} * a.func_info_rec_size, false)) &&
             (a.line_info == 0 || ok(a.line_info, std::uint64_t{a.line_info_cnt} * a.line_info_rec_size, false));
    }
    case BPF_BTF_LOAD:
      return ok(a.btf, a.btf_size, false) && (a.btf_log_buf == 0 || ok(a.btf_log_buf, a.btf_log_size, true));
    case BPF_OBJ_PIN:
    case BPF_OBJ_GET: return a.pathname != 0 && string_ok(a.pathname);
    case BPF_OBJ_GET_INFO_BY_FD: {
      if (a.info.info == 0) return true;
      if (!ok(a.info.info, a.info.info_len, true)) return false;
      // The arrays a program's or a BTF object's info points at, which the command fills.
      auto object = rt_.object_for_fd(static_cast<int>(a.info.bpf_fd));
      if (!object) return true;
      if (std::holds_alternative<std::shared_ptr<runtime::Program>>(*object)) {
        struct bpf_prog_info info {};
        std::memcpy(&info, reinterpret_cast<const void*>(a.info.info), std::min<std::size_t>(a.info.info_len, sizeof info));
        return (!info.xlated_prog_insns || ok(info.xlated_prog_insns, info.xlated_prog_len, true)) &&
               (!info.jited_prog_insns || ok(info.jited_prog_insns, info.jited_prog_len, true)) &&
               (!info.map_ids || ok(info.map_ids, std::uint64_t{info.nr_map_ids} * 4, true)) &&
               (!info.func_info || ok(info.func_info, std::uint64_t{info.nr_func_info} * 8, true)) &&
               (!info.line_info || ok(info.line_info, std::uint64_t{info.nr_line_info} * 16, true));
      }
      if (std::holds_alternative<std::shared_ptr<runtime::BtfObject>>(*object)) {
        struct bpf_btf_info info {};
        std::memcpy(&info, reinterpret_cast<const void*>(a.info.info), std::min<std::size_t>(a.info.info_len, sizeof info));
        return !info.btf || ok(info.btf, info.btf_size, true);
      }
      return true;
    }
    case BPF_PROG_TEST_RUN:
      return ok(a.test.data_in, a.test.data_size_in, false) && ok(a.test.ctx_in, a.test.ctx_size_in, false) &&
             (a.test.data_out == 0 || ok(a.test.data_out, a.test.data_size_out, true)) &&
             (a.test.ctx_out == 0 || ok(a.test.ctx_out, a.test.ctx_size_out, true));
    default: return true;
  }
}

std::int64_t Server::do_bpf(const std::uint64_t* args) {
  const int cmd = static_cast<int>(args[0]);
  auto* user = reinterpret_cast<union bpf_attr*>(args[1]);
  const auto size = static_cast<unsigned>(args[2]);
  // The attr is the application's: copied in without faulting (EFAULT as the kernel's copy_from_user),
  // and what the command wrote copied back.
  union bpf_attr attr {};
  const std::size_t n = std::min<std::size_t>(size, sizeof attr);
  if (size > 0 && !os::copy_own_memory(&attr, user, n)) return -EFAULT;
  if (cmd == BPF_RAW_TRACEPOINT_OPEN) {
    // Raw tracepoints pass the kernel's own arguments (pt_regs, task_struct, request pointers...) to
    // the program: only sys_enter and sys_exit have events in user space. Tracing programs (fentry,
    // fexit, tp_btf) come here with no name: their target is the one they were verified against.
    const auto name = attr.raw_tracepoint.name
                          ? os::read_own_string(reinterpret_cast<const char*>(attr.raw_tracepoint.name), 256)
                          : std::optional<std::string>(std::string());
    if (!name) return -EFAULT;
    return syscall_link(static_cast<int>(attr.raw_tracepoint.prog_fd), *name, 0);
  }
  if (cmd == BPF_LINK_CREATE && (attr.link_create.attach_type == BPF_TRACE_FENTRY ||
                                 attr.link_create.attach_type == BPF_TRACE_FEXIT ||
                                 attr.link_create.attach_type == BPF_TRACE_RAW_TP)) {
    // (libbpf's bpf_program__attach_trace: a tracing program's link, by LINK_CREATE on newer kernels;
    // target_btf_id retargets it, which bpfvm does not: EINVAL as for an unknown target)
    if (attr.link_create.target_fd != 0 || attr.link_create.target_btf_id != 0) return -EINVAL;
    return syscall_link(static_cast<int>(attr.link_create.prog_fd), std::string(),
                        attr.link_create.tracing.cookie);
  }
  if (!user_buffers_accessible(cmd, attr)) return -EFAULT;
  union bpf_attr before = attr;
  const long r = rt_.bpf(cmd, &attr, static_cast<unsigned>(n));
  const std::int64_t result = r < 0 ? neg_errno() : r;
  if (cmd == BPF_MAP_UPDATE_ELEM && result == -EOPNOTSUPP) {
    // A struct_ops map's update registers its programs with a kernel subsystem (a TCP congestion
    // control with the TCP stack): the application learns why it fails, as for events bpfvm cannot make.
    auto object = rt_.object_for_fd(static_cast<int>(attr.map_fd));
    auto* m = object ? std::get_if<std::shared_ptr<runtime::Map>>(&*object) : nullptr;
    if (m && (*m)->impl().def().type == BPF_MAP_TYPE_STRUCT_OPS) {
      std::fprintf(stderr, "bpfvm: struct_ops map '%s' cannot be registered: its programs are verified as the kernel "
                           "verifies them, but they act on the kernel's own objects (sockets, the scheduler), which "
                           "user space does not have\n",
                   (*m)->impl().def().name.c_str());
    }
  }
  if (cmd == BPF_LINK_CREATE && result == -EOPNOTSUPP) {
    auto object = rt_.object_for_fd(static_cast<int>(attr.link_create.prog_fd));
    auto* p = object ? std::get_if<std::shared_ptr<runtime::Program>>(&*object) : nullptr;
    if (p && (*p)->type() == BPF_PROG_TYPE_EXT) {
      std::fprintf(stderr, "bpfvm: extension program '%s' cannot replace %s(): it is verified as the kernel verifies "
                           "it, against the program it extends, but bpfvm does not replace functions of loaded "
                           "programs\n",
                   (*p)->name().c_str(), (*p)->attach_target().c_str());
    }
  }
  if (size > sizeof attr) {
    // Bytes past the attr bpfvm knows must be zero (E2BIG), as bpf_check_uarg_tail_zero.
    std::vector<std::uint8_t> tail(size - sizeof attr);
    if (!os::copy_own_memory(tail.data(), reinterpret_cast<const std::uint8_t*>(user) + sizeof attr, tail.size())) {
      return -EFAULT;
    }
    for (const std::uint8_t b : tail) {
      if (b) return -E2BIG;
    }
  }
  if (std::memcmp(&before, &attr, n) != 0) std::memcpy(user, &attr, n);
  if (result >= 0) {
    std::lock_guard lock(mutex_);
    route_descriptors();
    // A BPF output event put in a perf_event_array: programs wake the array's readers.
    if (cmd == BPF_MAP_UPDATE_ELEM) {
      auto object = rt_.object_for_fd(static_cast<int>(attr.map_fd));
      if (object) {
        if (auto* m = std::get_if<std::shared_ptr<runtime::Map>>(&*object);
            m && (*m)->def().type == BPF_MAP_TYPE_PERF_EVENT_ARRAY) {
          watch(*m);
        }
      }
    }
  }
  return result;
}

std::int64_t Server::syscall_link(int prog_fd, const std::string& name, std::uint64_t cookie) {
  std::lock_guard lock(mutex_);
  auto object = rt_.object_for_fd(prog_fd);
  auto* prog = object ? std::get_if<std::shared_ptr<runtime::Program>>(&*object) : nullptr;
  if (!prog) return -EBADF;
  const std::uint32_t type = (*prog)->type();
  const std::uint32_t expected = (*prog)->expected_attach_type();
  // The section an agent applies: raw_tracepoint/NAME, or the tracing program's own target.
  std::string kind;
  if (type == BPF_PROG_TYPE_RAW_TRACEPOINT && !name.empty()) {
    kind = "raw_tracepoint";
  } else if (type == BPF_PROG_TYPE_TRACING && name.empty()) {
    kind = expected == BPF_TRACE_FENTRY ? "fentry" : expected == BPF_TRACE_FEXIT ? "fexit"
           : expected == BPF_TRACE_RAW_TP ? "tp_btf" : "";
  }
  const std::string target = type == BPF_PROG_TYPE_TRACING ? (*prog)->attach_target() : name;
  if (kind.empty()) return -EINVAL;
  const auto point = attach::tracing_point(kind + "/" + target, **prog);
  if (!point) {
    if (kind == "raw_tracepoint") {
      std::fprintf(stderr, "bpfvm: raw tracepoint %s has no events in user space: bpfvm runs programs on syscall, "
                   "process and signal tracepoints, the raw sys_enter/sys_exit, syscall-entry kprobes and uprobes\n",
                   target.c_str());
    } else {
      std::fprintf(stderr, "bpfvm: %s\n", point.error().message().c_str());
    }
    return -EOPNOTSUPP;
  }
  // The agents in scope run the program there (the application's own process too, as the kernel's would).
  runtime::LinkTarget where;
  where.kind = kind;
  where.name = target;
  where.in_process = true;
  where.self = true;
  where.cookie = cookie;
  auto link = rt_.create_link(*prog, attach::link_attach_type(*point), 0, std::move(where));
  if (!link) return -static_cast<std::int64_t>(link.error().errno_value());
  const int fd = rt_.install_fd(*link);
  if (fd < 0) return neg_errno();
  route_descriptors();
  return fd;
}

std::int64_t Server::perf_event_open(const std::uint64_t* args) {
  const auto* user = reinterpret_cast<const perf_event_attr*>(args[0]);
  const auto pid = static_cast<int>(args[1]);
  const auto cpu = static_cast<int>(args[2]);
  const auto flags = args[4];
  std::uint32_t size = 0;
  if (!os::copy_own_memory(&size, reinterpret_cast<const std::uint8_t*>(user) + offsetof(perf_event_attr, size), 4)) {
    return -EFAULT;
  }
  if (size == 0) size = PERF_ATTR_SIZE_VER0;
  perf_event_attr attr{};
  if (!os::copy_own_memory(&attr, user, std::min<std::size_t>(size, sizeof attr))) return -EFAULT;
  const bool cloexec = flags & PERF_FLAG_FD_CLOEXEC;

  if (attr.type == PERF_TYPE_SOFTWARE && attr.config == PERF_COUNT_SW_BPF_OUTPUT) {
    if (cpu < 0 || static_cast<std::uint32_t>(cpu) >= maps::possible_cpus()) return -EINVAL;
    auto output = std::make_shared<Output>();
    output->cpu = static_cast<std::uint32_t>(cpu);
    const int fd = rt_.install_fd(std::shared_ptr<maps::PerfEvent>());
    if (fd < 0) return neg_errno();
    set_cloexec(fd, cloexec);
    output->fds.insert(fd);
    outputs_[fd] = std::move(output);
    route_descriptors();
    return fd;
  }

  runtime::PerfAttachPoint point;
  if (attr.type == PERF_TYPE_TRACEPOINT) {
    const auto it = tracepoint_ids_.find(attr.config);
    const std::string name = it == tracepoint_ids_.end() ? std::string() : it->second;
    auto parsed = name.empty() ? Result<attach::SyscallPoint>(make_error(Errc::kNotFound, "unknown"))
                               : attach::parse_syscall_section("tracepoint/" + name, BPF_PROG_TYPE_TRACEPOINT);
    if (!parsed) {
      std::fprintf(stderr, "bpfvm: tracepoint %s has no events in user space (bpfvm reports syscalls/*, raw_syscalls/*, "
                   "sched/sched_process_{exec,fork,exit} and signal/*)\n",
                   name.empty() ? fmt::format("id {}", attr.config).c_str() : name.c_str());
      return -EOPNOTSUPP;
    }
    point.where.kind = "tracepoint";
    point.where.name = name;
  } else if (attr.type == uprobe_type_) {
    const bool retprobe = attr.config & 1;
    const auto path = os::read_own_string(reinterpret_cast<const char*>(attr.config1), 4096);
    if (!path) return -EFAULT;
    auto resolved = attach::uprobe_at_offset(*path, attr.config2, retprobe);
    if (!resolved) {
      if (options_.verbose) std::fprintf(stderr, "bpfvm: uprobe %s+%#llx: %s\n", path->c_str(),
                                         static_cast<unsigned long long>(attr.config2), resolved.error().to_string().c_str());
      return -static_cast<std::int64_t>(resolved.error().errno_value());
    }
    point.where = attach::uprobe_link_target(*resolved);
    point.where.ref_ctr_offset = attr.config >> 32;
    if (pid > 0) point.where.pid = static_cast<std::uint32_t>(pid);
  } else if (attr.type == kprobe_type_) {
    // A kprobe on a kernel function that is a syscall entry (attach/kernel_functions.hpp), at its first
    // byte (config2: the offset; a kprobe by address has no name in config1).
    const bool retprobe = attr.config & 1;
    const auto fn = attr.config1 ? os::read_own_string(reinterpret_cast<const char*>(attr.config1), 4096)
                                 : std::optional<std::string>(std::string());
    if (!fn) return -EFAULT;
    if (fn->empty() || attr.config2 != 0 || !attach::kernel_function(*fn)) {
      std::fprintf(stderr, "bpfvm: a %s on the kernel function %s%s has no events in user space: bpfvm's kprobes are the "
                   "syscall entries (__x64_sys_NAME, __se_sys_NAME, __do_sys_NAME, sys_NAME, ksys_NAME, do_sys_open, "
                   "do_sys_openat2); it runs programs also on syscall, process and signal tracepoints and uprobes\n",
                   retprobe ? "kretprobe" : "kprobe", fn->empty() ? "(by address)" : fn->c_str(),
                   attr.config2 && !fn->empty() ? fmt::format("+{:#x}", attr.config2).c_str() : "");
      return -EOPNOTSUPP;
    }
    point.where.kind = retprobe ? "kretprobe" : "kprobe";
    point.where.name = *fn;
    if (pid > 0) point.where.pid = static_cast<std::uint32_t>(pid);
  } else {
    // A counting or sampling event of the kernel's own (a CPU clock, a hardware counter): the kernel
    // makes it, and bpfvm notes where it counts, for a perf_event_array a program reads it from
    // (bpf_perf_event_read).
    const long fd = ::syscall(SYS_perf_event_open, args[0], args[1], args[2], args[3], args[4]);
    if (fd < 0) return neg_errno();
    runtime::Runtime::KernelCounter counter;
    counter.cpu = cpu;
    counter.tid = pid == 0 ? static_cast<std::int32_t>(::gettid()) : pid > 0 ? pid : 0;
    counter.read_format = attr.read_format;
    counter.opened_ns = os::clock_ns(CLOCK_MONOTONIC);
    rt_.note_kernel_counter(static_cast<int>(fd), counter);
    return fd;
  }
  // Fires in every process in scope, the application's own too (as the kernel's would).
  point.where.in_process = true;
  point.where.self = true;
  const int fd = rt_.install_fd(std::make_shared<runtime::PerfAttachPoint>(std::move(point)));
  if (fd < 0) return neg_errno();
  set_cloexec(fd, cloexec);
  route_descriptors();
  return fd;
}

std::optional<std::int64_t> Server::ioctl(int fd, std::uint64_t request, std::uint64_t arg) {
  auto object = rt_.object_for_fd(fd);
  if (!object) return std::nullopt;
  auto* point = std::get_if<std::shared_ptr<runtime::PerfAttachPoint>>(&*object);
  const bool output = std::holds_alternative<std::shared_ptr<maps::PerfEvent>>(*object);
  if (!point && !output) return -ENOTTY;  // bpf objects take no ioctl
  switch (request) {
    case PERF_EVENT_IOC_ENABLE:
    case PERF_EVENT_IOC_DISABLE:
    case PERF_EVENT_IOC_RESET:
    case PERF_EVENT_IOC_REFRESH: return 0;
    case PERF_EVENT_IOC_ID: {
      const std::uint64_t id = static_cast<std::uint64_t>(fd);
      auto* out = reinterpret_cast<std::uint64_t*>(arg);
      std::uint64_t probe;
      if (!os::copy_own_memory(&probe, out, sizeof probe)) return -EFAULT;
      *out = id;
      return 0;
    }
    case PERF_EVENT_IOC_SET_BPF: {
      if (!point) return -EINVAL;
      if ((*point)->link) return -EEXIST;
      auto prog_object = rt_.object_for_fd(static_cast<int>(arg));
      auto* prog = prog_object ? std::get_if<std::shared_ptr<runtime::Program>>(&*prog_object) : nullptr;
      if (!prog) return -EBADF;
      auto link = rt_.link_perf_event(*prog, **point, 0);
      if (!link) return -static_cast<std::int64_t>(link.error().errno_value());
      (*point)->link = std::move(*link);
      return 0;
    }
    default: return -ENOTTY;
  }
}

std::optional<std::int64_t> Server::mmap(const std::uint64_t* args) {
  void* addr = reinterpret_cast<void*>(args[0]);
  const std::size_t len = args[1];
  const int prot = static_cast<int>(args[2]);
  int flags = static_cast<int>(args[3]);
  const int fd = static_cast<int>(args[4]);
  const std::uint64_t offset = args[5];
  auto object = rt_.object_for_fd(fd);
  if (!object) return std::nullopt;
  if (!(flags & MAP_SHARED)) return -EINVAL;  // bpf_map_mmap and perf_mmap share their pages

  if (std::holds_alternative<std::shared_ptr<maps::PerfEvent>>(*object)) {
    // perf_mmap: one page of header and 2^n pages of data, from offset 0.
    const auto it = outputs_.find(fd);
    if (it == outputs_.end()) return -EINVAL;
    Output& out = *it->second;
    if (offset != 0 || len < 2 * kPage || len % kPage) return -EINVAL;
    const std::size_t pages = len / kPage - 1;
    if (pages & (pages - 1)) return -EINVAL;
    if (!out.event) {
      auto event = rt_.make_perf_event(out.cpu, pages);
      if (!event) return -static_cast<std::int64_t>(event.error().errno_value());
      out.event = *event;
      for (const int d : out.fds) rt_.set_fd(d, out.event);
      auto p = std::make_shared<Pollable>();
      p->fds = out.fds;
      p->event = out.event;
      pollables_.push_back(std::move(p));
      if (!routed_waits_ && options_.route) {
        routed_waits_ = true;
        for (const int nr : {SYS_epoll_wait, SYS_epoll_pwait, SYS_epoll_pwait2, SYS_poll, SYS_ppoll, SYS_select, SYS_pselect6}) {
          options_.route(nr);
        }
      }
    } else if (out.event->data_size() != pages * kPage) {
      return -EINVAL;  // the kernel's buffer has one size once made
    }
    return map_file(out.event->path(), 0, addr, len, prot, flags);
  }

  auto* m = std::get_if<std::shared_ptr<runtime::Map>>(&*object);
  if (!m) return -ENODEV;
  const maps::Map& map = (*m)->impl();
  const std::string& path = map.storage_path();
  if (path.empty()) return -ENODEV;
  const bool user_ring = map.def().type == BPF_MAP_TYPE_USER_RINGBUF;
  if (map.def().type == BPF_MAP_TYPE_RINGBUF || user_ring) {
    // ringbuf_map_mmap: the consumer page (offset 0) is writable; the producer page and the data,
    // mapped twice in a row, are read-only. A user ring buffer (user_ringbuf_map_mmap) the other way
    // round: user space produces. The file holds them from its second page.
    const std::size_t data = map.def().max_entries;
    if (user_ring) {
      if (offset == 0 && ((prot & PROT_WRITE) || len > kPage)) return -EPERM;
    } else if (offset == 0) {
      if (len > kPage) return -EPERM;
    } else if (prot & PROT_WRITE) {
      return -EPERM;
    }
    if (offset % kPage || offset + len > 2 * kPage + 2 * data) return -EINVAL;
    // All pages at once, as the kernel maps them (remap_vmalloc_range): no fault per page as the
    // application reads the ring (SharedMemory::map_file does the same for the programs' side).
    flags |= MAP_POPULATE;
    std::int64_t mapped = 0;
    const std::uint64_t first_end = 2 * kPage + data;  // consumer, producer, data once
    if (offset + len <= first_end) {
      mapped = map_file(path, offset + kPage, addr, len, prot, flags);
    } else {
      // Reserve the whole range, then the file's producer page and data, then the data again.
      void* at = ::mmap(addr, len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | (flags & (MAP_FIXED | MAP_FIXED_NOREPLACE)), -1, 0);
      if (at == MAP_FAILED) return neg_errno();
      auto* base = static_cast<std::uint8_t*>(at);
      const std::size_t head = offset < first_end ? first_end - offset : 0;
      std::int64_t r = head ? map_file(path, offset + kPage, base, head, prot, flags | MAP_FIXED) : 0;
      if (r >= 0) {
        const std::uint64_t mirror_from = offset < first_end ? 0 : offset - first_end;
        r = map_file(path, 3 * kPage + mirror_from, base + head, len - head, prot, flags | MAP_FIXED);
      }
      if (r < 0) {
        ::munmap(at, len);
        return r;
      }
      mapped = static_cast<std::int64_t>(reinterpret_cast<std::uintptr_t>(at));
    }
    if (mapped >= 0 && offset == 0 && !user_ring) {
      // A consumer: the descriptor's readiness is the ring's.
      bool known = false;
      for (const auto& p : pollables_) known = known || (p->ringbuf == *m);
      if (!known) {
        auto p = std::make_shared<Pollable>();
        p->ringbuf = *m;
        p->fds.insert(fd);
        pollables_.push_back(std::move(p));
      }
      watch(*m);
      if (!routed_waits_ && options_.route) {
        routed_waits_ = true;
        for (const int nr : {SYS_epoll_wait, SYS_epoll_pwait, SYS_epoll_pwait2, SYS_poll, SYS_ppoll, SYS_select, SYS_pselect6}) {
          options_.route(nr);
        }
      }
    }
    return mapped;
  }
  if (map.def().type == BPF_MAP_TYPE_ARRAY && (map.def().map_flags & BPF_F_MMAPABLE)) {
    const std::uint64_t values = (static_cast<std::uint64_t>(map.def().value_size) + 7) / 8 * 8 * map.def().max_entries;
    const std::uint64_t span = (values + kPage - 1) / kPage * kPage;
    if (offset % kPage || offset + len > span) return -EINVAL;
    // A frozen map, or one programs may only read, has no writable mapping (bpf_map_mmap).
    if ((prot & PROT_WRITE) && map.frozen()) return -EPERM;
    return map_file(path, map.payload_file_offset() + offset, addr, len, prot, flags);
  }
  return -ENODEV;
}

std::optional<std::string> Server::tracepoint_for_open(const std::string& path) const {
  for (const std::string_view root : {"/sys/kernel/tracing/events/", "/sys/kernel/debug/tracing/events/"}) {
    if (!path.starts_with(root) || !path.ends_with("/id")) continue;
    const std::string name = path.substr(root.size(), path.size() - root.size() - 3);
    const auto slash = name.find('/');
    if (slash == std::string::npos || slash == 0 || name.find('/', slash + 1) != std::string::npos) return std::nullopt;
    return name;
  }
  return std::nullopt;
}

std::optional<std::string> Server::tracepoint_of_path(const std::string& path) {
  for (const std::string_view root : {"/sys/kernel/tracing/events/", "/sys/kernel/debug/tracing/events/"}) {
    if (!path.starts_with(root)) continue;
    std::string rest = path.substr(root.size());
    while (rest.ends_with('/')) rest.pop_back();
    const auto first = rest.find('/');
    if (first == std::string::npos || first == 0) return std::nullopt;
    const auto second = rest.find('/', first + 1);
    if (second == std::string::npos) return rest;
    const std::string_view file = std::string_view(rest).substr(second + 1);
    if (file != "format" && file != "id" && file != "enable" && file != "filter") return std::nullopt;
    return rest.substr(0, second);
  }
  return std::nullopt;
}

// access()/faccessat() of a tracepoint's directory or files, which the tools ask before they load
// (libbpf-tools' tracepoint_exists: ".../events/CAT/NAME/format"): the events bpfvm produces exist, for
// reading, wherever tracefs is mounted or not (the kernel's answer for the others).
std::optional<std::int64_t> Server::access_file(const char* user_path, int mode) {
  char head[5] = {};
  if (!user_path || !os::copy_own_memory(head, user_path, 5) || std::memcmp(head, "/sys/", 5) != 0) return std::nullopt;
  const auto path = os::read_own_string(user_path, 4096);
  if (!path || (mode & (W_OK | X_OK)) != 0) return std::nullopt;
  const auto name = tracepoint_of_path(*path);
  if (!name || !attach::parse_syscall_section("tracepoint/" + *name, BPF_PROG_TYPE_TRACEPOINT)) return std::nullopt;
  return 0;
}

std::optional<std::int64_t> Server::open_file(int dirfd, const char* user_path, int flags) {
  (void)dirfd;
  // (Every open of the process comes here: the first bytes are read the cheap way.)
  char head[6] = {};
  if (!user_path || !(options_.read_own ? options_.read_own : &os::copy_own_memory)(head, user_path, 6) ||
      (std::memcmp(head, "/sys/", 5) != 0 && std::memcmp(head, "/proc/", 6) != 0)) {
    return std::nullopt;
  }
  const auto path = os::read_own_string(user_path, 4096);
  if (!path) return std::nullopt;
  std::string content;
  if (*path == "/proc/kallsyms") {
    // The kernel's symbols as bpfvm's kernel has them (attach::kallsyms_view).
    // (read and filtered once: BCC's symbol caches and get_kprobe_functions each open it)
    if ((flags & O_ACCMODE) != O_RDONLY) return std::nullopt;
    std::lock_guard lock(mutex_);
    if (!kallsyms_) {
      auto real = os::read_text_file(*path);
      if (!real) return std::nullopt;
      kallsyms_ = attach::kallsyms_view(*real);
    }
    content = *kallsyms_;
  } else if (*path == "/sys/kernel/debug/kprobes/blacklist") {
    // No function is refused for being the kprobes' own (BCC's get_kprobe_functions reads it first).
    if (os::exists(*path)) return std::nullopt;
  } else if (*path == "/sys/kernel/tracing/trace_pipe" || *path == "/sys/kernel/debug/tracing/trace_pipe") {
    if ((flags & O_ACCMODE) != O_RDONLY) return -EACCES;
    return open_trace_pipe(flags);
  } else if (const auto name = tracepoint_for_open(*path)) {
    // The id of a tracepoint: the kernel's where tracefs is readable (so that ids agree with it), else
    // one of bpfvm's. Names bpfvm has no events for are the kernel's to answer.
    const bool ours = static_cast<bool>(attach::parse_syscall_section("tracepoint/" + *name, BPF_PROG_TYPE_TRACEPOINT));
    std::lock_guard lock(mutex_);
    auto real = os::read_text_file(*path);
    std::uint64_t id = 0;
    if (real) {
      id = std::strtoull(real->c_str(), nullptr, 10);
    } else if (ours) {
      auto [it, added] = own_ids_.emplace(*name, kOwnTracepointIds + own_ids_.size());
      id = it->second;
    } else {
      return std::nullopt;
    }
    tracepoint_ids_[id] = *name;
    if (!ours) return std::nullopt;
    content = fmt::format("{}\n", id);
  } else if (const auto event = path->ends_with("/format") ? tracepoint_of_path(*path) : std::nullopt) {
    // The format of a syscall tracepoint bpfvm produces, where tracefs is not readable (an ordinary
    // user): the kernel's text, with the id the `id` file gives (BCC's TRACEPOINT_PROBE builds its
    // args struct from it). Where it is readable, or for other events, the kernel answers.
    if (::access(path->c_str(), R_OK) == 0 ||
        !attach::parse_syscall_section("tracepoint/" + *event, BPF_PROG_TYPE_TRACEPOINT)) {
      return std::nullopt;
    }
    std::lock_guard lock(mutex_);
    const auto [it, added] = own_ids_.emplace(*event, kOwnTracepointIds + own_ids_.size());
    const auto text = attach::syscall_tracepoint_format(*event, it->second);
    if (!text) return std::nullopt;
    tracepoint_ids_[it->second] = *event;
    content = *text;
  } else if (path->ends_with("/kprobe_events") || path->ends_with("/uprobe_events")) {
    // The probes made through perf_event_open are not listed there (as on the kernel); loaders read the
    // file to find ones they made the older way before they remove them (BCC's bpf_detach_probe).
    if (path != "/sys/kernel/tracing" + path->substr(path->rfind('/')) &&
        path != "/sys/kernel/debug/tracing" + path->substr(path->rfind('/'))) {
      return std::nullopt;
    }
    if (os::exists(*path)) return std::nullopt;
  } else if (path->starts_with("/sys/bus/event_source/devices/uprobe/") ||
             path->starts_with("/sys/bus/event_source/devices/kprobe/")) {
    // The PMUs' files, where the machine has none (the kernel's own answer otherwise).
    if (os::exists(*path)) return std::nullopt;
    const bool uprobe = path->find("/uprobe/") != std::string::npos;
    const std::string_view leaf = std::string_view(*path).substr(path->rfind('/') + 1);
    if (leaf == "type") content = fmt::format("{}\n", uprobe ? kDefaultUprobeType : kDefaultKprobeType);
    else if (leaf == "retprobe") content = "config:0\n";
    else if (leaf == "ref_ctr_offset" && uprobe) content = "config:32-63\n";
    else return std::nullopt;
  } else {
    return std::nullopt;
  }
  if ((flags & O_ACCMODE) != O_RDONLY) return -EACCES;
  const int fd = ::memfd_create("bpfvm-sysfs", flags & O_CLOEXEC ? MFD_CLOEXEC : 0);
  if (fd < 0) return neg_errno();
  if (::write(fd, content.data(), content.size()) != static_cast<ssize_t>(content.size()) || ::lseek(fd, 0, SEEK_SET) != 0) {
    const std::int64_t err = neg_errno();
    ::close(fd);
    return err;
  }
  return fd;
}

// bpfvm's trace pipe (bpf_trace_printk's lines from every process in scope) as the kernel's
// trace_pipe reads: a stream that blocks until a line comes, each line read once. The application gets
// one end of a socket pair; a thread moves the lines into the other as programs write them, and ends
// when the application closes its end.
std::int64_t Server::open_trace_pipe(int flags) {
  auto pipe = rt_.trace_pipe();
  if (!pipe) return -ENOMEM;
  int ends[2];
  const int type = SOCK_STREAM | (flags & O_CLOEXEC ? SOCK_CLOEXEC : 0) | (flags & O_NONBLOCK ? SOCK_NONBLOCK : 0);
  if (::socketpair(AF_UNIX, type, 0, ends) != 0) return neg_errno();
  ::fcntl(ends[1], F_SETFD, FD_CLOEXEC);
  std::lock_guard lock(mutex_);
  Server* self = this;
  relays_.emplace_back([self, ring = *pipe, out = ends[1]] {
    if (self->options_.own_thread) self->options_.own_thread();
    bool open = true;
    while (open && !self->stop_.load(std::memory_order_acquire)) {
      const std::uint32_t seen = ring->notify_count();
      ring->consume_shared([&](std::span<const std::uint8_t> line) {
        std::size_t sent = 0;
        while (open && sent < line.size()) {
          const ssize_t n = ::send(out, line.data() + sent, line.size() - sent, MSG_NOSIGNAL);
          if (n > 0) sent += static_cast<std::size_t>(n);
          else if (n < 0 && errno != EINTR) open = false;
        }
        return open ? 0 : 1;
      });
      pollfd p{out, 0, 0};  // the application closed its end: POLLHUP
      if (::poll(&p, 1, 0) > 0 && (p.revents & (POLLHUP | POLLERR))) break;
      if (open) ring->wait_notify(seen, *ring->consumer_pos(), 200);
    }
    ::close(out);
  });
  return ends[0];
}

void Server::forget(int fd) {
  std::lock_guard lock(mutex_);
  rt_.forget_fd(fd);
  if (const auto it = outputs_.find(fd); it != outputs_.end()) {
    it->second->fds.erase(fd);
    outputs_.erase(it);
  }
  for (auto it = pollables_.begin(); it != pollables_.end();) {
    (*it)->fds.erase(fd);
    if ((*it)->fds.empty()) it = pollables_.erase(it);
    else ++it;
  }
}

void Server::alias(int from, int to) {
  std::lock_guard lock(mutex_);
  rt_.alias_fd(from, to);
  if (const auto it = outputs_.find(from); it != outputs_.end()) {
    it->second->fds.insert(to);
    outputs_[to] = it->second;
  }
  for (auto& p : pollables_) {
    if (p->fds.count(from)) p->fds.insert(to);
  }
}

void Server::watch(std::shared_ptr<runtime::Map> map) {
  if (!watched_.insert(&map->impl()).second) return;
  auto source = std::make_unique<WakeSource>();
  source->map = map;
  Server* self = this;
  maps::Map* impl = &map->impl();
  source->thread = std::thread([self, impl] {
    if (self->options_.own_thread) self->options_.own_thread();
    const bool ring = impl->def().type == BPF_MAP_TYPE_RINGBUF;
    auto count = [&] {
      return ring ? static_cast<maps::RingBuffer*>(impl)->notify_count()
                  : static_cast<maps::PerfEventArray*>(impl)->output_count();
    };
    auto produced = [&] { return ring ? *static_cast<maps::RingBuffer*>(impl)->producer_pos() : 0; };
    std::uint32_t seen = count();
    std::uint64_t position = produced();
    std::uint64_t last_wake = 0;
    bool streaming = false;
    const auto now = [] {
      return static_cast<std::uint64_t>(
          std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch()).count());
    };
    // Events in a stream (the last one less than a millisecond after the one before) are gathered for
    // 200 us before the application is woken, and the application's own waits do not wake it again
    // while the stream lasts (refresh): this thread tells it every 200 us instead, so it reads a batch a
    // time. Meanwhile no one waits on the map and its producers make no futex call. The kernel wakes a
    // consumer for each record that finds it caught up, and its epoll answers at once whenever a record
    // is there: a consumer of a steady stream then takes one record per wake-up, on a CPU the producers
    // need (bench/openat_overhead.sh). A first event after a quiet spell is told at once.
    while (!self->stop_.load(std::memory_order_acquire)) {
      self->refresh(false);
      if (streaming) {
        ::usleep(200);
        const bool more = count() != seen || produced() != position;
        seen = count();
        position = produced();
        if (more) last_wake = now();
        if (more || now() - last_wake < 1'000'000) continue;
        // The stream ends: the application's waits tell it again, and the refresh above (next round,
        // after this) covers a wait that came before.
        std::lock_guard lock(self->mutex_);
        --self->streaming_;
        streaming = false;
        continue;
      }
      // Sleeps until a program writes (the map's futex, or a producer position past what refresh saw);
      // the timeout only lets a server that goes (a test's) stop the thread.
      if (ring) static_cast<maps::RingBuffer*>(impl)->wait_notify(seen, position, 500);
      else static_cast<maps::PerfEventArray*>(impl)->wait(seen, 500);
      if (count() != seen || produced() != position) {
        const auto t = now();
        if (t - last_wake < 1'000'000) {
          ::usleep(200);
          std::lock_guard lock(self->mutex_);
          ++self->streaming_;
          streaming = true;
        }
        last_wake = t;
      }
      seen = count();
      position = produced();
    }
  });
  sources_.push_back(std::move(source));
}

void Server::refresh(bool clear) {
  std::lock_guard lock(mutex_);
  for (const auto& p : pollables_) {
    if (p->fds.empty()) continue;
    const int fd = *p->fds.begin();
    if (clear) os::EventFd::eventfd_drain(fd);
    // The eventfd's counter stays below its limit: one signal while it is already readable is enough.
    // An application's own wait leaves the signal to the map's thread while a stream lasts (watch).
    if ((!clear || streaming_ == 0) && p->ready()) os::EventFd::eventfd_signal(fd);
  }
}

}  // namespace bpfvm::interpose
