// The interposition: bpfvm as the kernel of an unmodified application (a libbpf tool, bpftool) started
// with `bpfvm run`. The agent patches the process's syscall instructions (libc's wrappers, its
// syscall(), and raw ones alike) and hands the numbers the server asks for to `Server::serve`:
//
//   bpf()             every command, by runtime::Runtime::bpf over the application's own union bpf_attr
//                     (the kernel's semantics and errno values); its objects are bpfvm objects in the
//                     system-wide registry (`bpfvm prog show` elsewhere lists them)
//   perf_event_open   a tracepoint (by the id the served tracefs file gave), a uprobe or uretprobe (the
//                     uprobe PMU's type, path in config1, offset in config2, retprobe in config bit 0,
//                     ref_ctr_offset in config bits 32-63), a BPF output event (its buffer made at mmap);
//                     kprobes on other kernel functions and events bpfvm cannot produce fail with a message saying so, as
//                     BPF_RAW_TRACEPOINT_OPEN does (raw and BTF tracepoints, fentry/fexit)
//   ioctl             PERF_EVENT_IOC_SET_BPF / ENABLE / DISABLE / ID on those events
//   mmap              a BPF output event's buffer, a ring buffer's consumer and producer pages, an
//                     array's values (BPF_F_MMAPABLE): the map's shared file mapped with the kernel's layout
//   close, dup*, fcntl(F_DUPFD*), close_range   the fd table follows the application's descriptors
//   epoll_wait, poll, select (all variants)     readiness brought up to date before the kernel waits
//   open, openat      tracefs ids (`.../events/CAT/NAME/id`), the uprobe and kprobe PMUs' sysfs files
//                     and tracefs' k/uprobe_events when the machine has none, trace_pipe (bpfvm's,
//                     bpf_trace_printk's lines) (routed, as the descriptor syscalls, after the first bpf())
//   perf_event_open's kprobes: those on kernel functions that are syscall entries
//                     (attach/kernel_functions.hpp), fired by the agents in scope
//
// Objects are real descriptors (an eventfd each: close-on-exec, counted against RLIMIT_NOFILE). An event
// buffer or ring buffer descriptor becomes readable when programs (in any process in scope) write to
// it: a thread per wake source sleeps on the map's futex and signals the eventfd; a wait call first
// clears the eventfds of buffers with nothing left to read, so epoll sees the kernel's readiness.
// Everything else goes to the kernel.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "bpfvm/base/result.hpp"
#include "bpfvm/runtime/runtime.hpp"

namespace bpfvm::interpose {

struct ServerOptions {
  std::string pin_root;  // empty: runtime::default_pin_root()
  bool verbose = false;  // what it refuses, also on stderr when the application does not say
  // Called with each syscall number the server needs to see from now on (the agent's serve_syscall).
  std::function<void(int)> route;
  // Called on each helper thread the server starts (the agent's mark_own_thread).
  std::function<void()> own_thread;
  // Reads the process's own memory without faulting (the agent's read_own_memory; process_vm_readv
  // when unset), for the path of each open the server sees.
  bool (*read_own)(void* dst, const void* src, std::size_t n) = nullptr;
};

class Server {
 public:
  static Result<std::unique_ptr<Server>> create(ServerOptions options);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // The agent's SyscallServer: true when it answered (`rax`: result or -errno), false for the kernel.
  bool serve(std::uint64_t nr, const std::uint64_t* args, std::int64_t* rax);

  runtime::Runtime& runtime() { return rt_; }
  // The tracepoint a served id names ("" when none).
  std::string tracepoint_name(std::uint64_t id) const;

 private:
  explicit Server(ServerOptions options);
  struct Output;     // a BPF output event: its CPU and, once mapped, its buffer
  struct Pollable;   // a descriptor whose readiness the server keeps
  struct WakeSource;  // a map whose futex a helper thread sleeps on

  std::int64_t do_bpf(const std::uint64_t* args);
  bool user_buffers_accessible(int cmd, const union bpf_attr& attr);
  std::int64_t perf_event_open(const std::uint64_t* args);
  // A link of a raw tracepoint program at `name` (sys_enter, sys_exit), or of a tracing program (name
  // empty) at its own target: fentry/fexit on a syscall entry, tp_btf on sys_enter/sys_exit. -EOPNOTSUPP
  // (saying why on stderr) where there are no events in user space.
  std::int64_t syscall_link(int prog_fd, const std::string& name, std::uint64_t cookie);
  std::optional<std::int64_t> ioctl(int fd, std::uint64_t request, std::uint64_t arg);
  std::optional<std::int64_t> mmap(const std::uint64_t* args);
  std::optional<std::int64_t> open_file(int dirfd, const char* path, int flags);
  std::optional<std::int64_t> access_file(const char* path, int mode);
  std::int64_t open_trace_pipe(int flags);
  void forget(int fd);
  void alias(int from, int to);
  void route_descriptors();
  void watch(std::shared_ptr<runtime::Map> map);
  void watch_output(std::shared_ptr<Output> output);
  // Signals the eventfds of descriptors with records; `clear` (an application's wait) first clears them,
  // and leaves the signal to the maps' threads while a stream of events lasts (watch).
  void refresh(bool clear);
  std::optional<std::string> tracepoint_for_open(const std::string& path) const;
  // "CAT/NAME" of a tracepoint's directory or one of its files under tracefs (either mount point).
  static std::optional<std::string> tracepoint_of_path(const std::string& path);

  ServerOptions options_;
  runtime::Runtime rt_;
  mutable std::mutex mutex_;
  std::map<int, std::shared_ptr<Output>> outputs_;  // by descriptor (dup'd ones share)
  std::vector<std::shared_ptr<Pollable>> pollables_;
  std::vector<std::unique_ptr<WakeSource>> sources_;
  std::vector<std::thread> relays_;  // trace_pipe readers' (open_trace_pipe)
  std::optional<std::string> kallsyms_;  // /proc/kallsyms as served (attach::kallsyms_view), once read
  std::map<std::uint64_t, std::string> tracepoint_ids_;  // ids served (or read from tracefs) -> CAT/NAME
  std::map<std::string, std::uint64_t> own_ids_;         // ids bpfvm gave where tracefs is not readable
  std::set<const void*> watched_;
  bool routed_descriptors_ = false, routed_waits_ = false;
  std::atomic<bool> stop_{false};
  int streaming_ = 0;  // maps whose thread (watch) tells the application of a stream of events
  std::uint32_t uprobe_type_ = 0, kprobe_type_ = 0;
};

// Starts the process's server and makes it the agent's syscall server (bpfvm run). Once per process.
Result<void> start(const ServerOptions& options);

}  // namespace bpfvm::interpose
