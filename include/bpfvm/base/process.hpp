// Child processes: running a tool (clang) to completion, and a private temporary directory.
#pragma once

#include <sys/types.h>
#include <time.h>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "bpfvm/base/result.hpp"

namespace bpfvm::os {

// Runs argv[0] (searched in $PATH) with the caller's stdin/stdout/stderr and waits for it: its exit code,
// or 128 + N when signal N killed it. An error when it cannot start.
Result<int> run_process(const std::vector<std::string>& argv);

// waitpid(pid, status, __WALL) through interruptions (a signal to the waiter, such as Ctrl-C, must not
// lose a tracee's stop it is waiting for): the pid reported, or -1 with errno (ECHILD: none is left).
pid_t wait_task(pid_t pid, int* status);

// The file execvp would run for `name` (searched in $PATH unless it has a '/'), so that a missing
// command is reported before anything starts: its path, or why there is none (kNotFound: not found;
// kAccess: found, but not an executable file).
Result<std::string> find_command(const std::string& name);

// One line of /proc/PID/maps.
struct Mapping {
  std::uint64_t start = 0, end = 0, offset = 0;
  std::uint64_t dev = 0, inode = 0;  // dev as makedev(major, minor)
  char perms[5] = {};                // "r-xp"
  std::string path;                  // "" for anonymous memory
  bool executable() const { return perms[2] == 'x'; }
};
// The mappings of process `pid` (0: this one); empty when they cannot be read.
std::vector<Mapping> read_mappings(pid_t pid = 0);

// A new directory under $TMPDIR (or /tmp), removed with its files when the object goes.
class TempDirectory {
 public:
  static Result<TempDirectory> create(std::string_view prefix);
  TempDirectory(TempDirectory&& other) noexcept : path_(std::move(other.path_)) { other.path_.clear(); }
  TempDirectory& operator=(TempDirectory&&) = delete;
  ~TempDirectory();
  const std::string& path() const { return path_; }

 private:
  explicit TempDirectory(std::string path) : path_(std::move(path)) {}
  std::string path_;
};

// Copies `n` bytes at `src` in this process's own memory without faulting (process_vm_readv on itself):
// false when any of them is not readable. For pointers an application passes to a served syscall.
bool copy_own_memory(void* dst, const void* src, std::size_t n);
// Whether [p, p + n) of this process can be read (and written back, with `write`), without faulting:
// the bytes are read by process_vm_readv and, for `write`, written back unchanged by process_vm_writev.
bool own_memory_accessible(const void* p, std::size_t n, bool write);
// The NUL-terminated string at `src` (at most `max` bytes), or nothing when it is not readable or longer.
std::optional<std::string> read_own_string(const char* src, std::size_t max);

// A clock's time in nanoseconds (clock_gettime: CLOCK_MONOTONIC, _COARSE, CLOCK_BOOTTIME...).
std::uint64_t clock_ns(clockid_t clock);
// Whether `fd` is open on a perf event (perf_event_open(2)'s anon inode).
bool is_perf_event_fd(int fd);

// Cgroups (v2): the path below the cgroup2 mount ("/a/b", "/" for the root) of the directory `fd` is
// open on, and its id (the directory's inode); an error when it is not a cgroup2 directory.
Result<std::pair<std::string, std::uint64_t>> cgroup_of_fd(int fd);
// The cgroup2 path of task `tid` (its /proc/TID/cgroup "0::" line) into `out`, NUL-terminated; false
// when it has none or it does not fit. And its id, as bpf_get_current_cgroup_id gives it: the inode of
// its cgroup2 directory. Nothing allocated (after the first call, which finds the cgroup2 mount): helpers
// call them on the probed thread, which may be inside malloc.
bool read_task_cgroup(std::uint32_t tid, char* out, std::size_t size);
bool cgroup_id_of_task(std::uint32_t tid, std::uint64_t& id);
// The net_cls class id of task `tid` (cgroup v1's net_cls.classid of its net_cls cgroup), as the kernel's
// task_get_classid reads it in process context: 0 where no net_cls hierarchy is mounted (every task is
// then in its root, whose class is 0) or the task's cgroup cannot be read.
std::uint32_t net_cls_classid_of_task(std::uint32_t tid);
// The id of the task's cgroup ancestor at `level` (0: the root, 1: its child on the way to the task's
// cgroup...), as bpf_get_current_ancestor_cgroup_id gives it; false past the task's own level.
bool cgroup_ancestor_id_of_task(std::uint32_t tid, int level, std::uint64_t& id);

// What /proc tells of a task (a thread id: /proc/TID answers for threads too), for the kernel objects
// bpfvm shows programs (runtime/kernel_tasks). Fields stay 0 where /proc does not say (the memory
// bounds need ptrace access to the task; a gone task has nothing).
struct TaskFacts {
  std::uint32_t pid = 0, tgid = 0, ppid = 0, pgrp = 0;
  char comm[16] = {};
  char state = 0;                  // /proc/TID/stat's letter: R, S, D, T, t, Z, X, I
  std::uint32_t flags = 0;         // PF_*
  int prio = 0, nice = 0;          // the kernel's task_prio (prio - 100) and nice
  std::uint32_t cpu = 0;           // where it last ran
  std::uint64_t start_ticks = 0;       // at fork, CLOCK_BOOTTIME in USER_HZ ticks, as /proc keeps it
  std::uint64_t start_boottime_ns = 0;  // the same in ns (to the tick)
  std::uint64_t start_code = 0, end_code = 0, start_stack = 0, start_data = 0, end_data = 0, start_brk = 0;
  std::uint64_t arg_start = 0, arg_end = 0, env_start = 0, env_end = 0;
  std::int32_t exit_code = 0;      // a zombie's wait status
  std::uint32_t uid[4] = {}, gid[4] = {};  // real, effective, saved, filesystem
  std::uint32_t nspid[8] = {};     // the ids in each pid namespace, the outermost first
  std::uint32_t nspid_levels = 0;
  std::uint32_t loginuid = 0xffffffff, sessionid = 0xffffffff;  // unset, as the kernel's -1
  enum Ns { kUts, kIpc, kMnt, kPid, kPidForChildren, kNet, kTime, kTimeForChildren, kCgroup, kNsCount };
  std::uint64_t ns_inode[kNsCount] = {};  // /proc/TID/ns/*'s inode numbers (the kernel's ns.inum)
};
// Fills `out` for task `tid`; false when the task does not exist (or /proc is not readable). Reads with
// open/read/fstatat into fixed buffers: nothing allocated, so a program run in a signal handler may use it.
bool read_task_facts(std::uint32_t tid, TaskFacts& out);
// The part of it /proc/TID/stat gives (ids but tgid, name, state, flags, priorities, start, memory
// bounds, exit code): one file read, for callers that need no more.
bool read_task_stat(std::uint32_t tid, TaskFacts& out);

// A task's memory area as /proc/TID/smaps tells it (the kernel's vm_area_struct: bpf_find_vma).
struct TaskArea {
  std::uint64_t start = 0, end = 0;
  std::uint64_t offset = 0;  // in the file, bytes (0 for anonymous memory)
  std::uint64_t dev = 0, inode = 0;
  std::uint64_t vm_flags = 0;  // the kernel's VM_* bits, from its VmFlags line
  bool file = false;           // a file's pages (a path, not "[heap]", "[stack]"... or none)
  bool stack = false;          // the main thread's stack ("[stack]")
  char name[256] = {};         // the file's name (its last path component; " (deleted)" taken off)
};
// The area of task `tid` that holds `addr`; false when none does or /proc cannot tell. Reads smaps
// only up to that area, into fixed buffers: nothing allocated.
bool find_task_area(std::uint32_t tid, std::uint64_t addr, TaskArea& out);

// The kernel's cookie of the socket `fd` is open on (SO_COOKIE): EBADF, or ENOTSOCK for another file.
Result<std::uint64_t> socket_cookie(int fd);
// What a socket is, as the kernel's socket-map checks look at it: family, type and protocol
// (SO_DOMAIN, SO_TYPE, SO_PROTOCOL), TCP's state (TCP_INFO; 0 for others), whether it is bound to a
// port, has a peer, and SO_REUSEPORT.
struct SocketFacts {
  int domain = 0, type = 0, protocol = 0;
  int tcp_state = 0;
  bool bound_port = false, connected = false, reuseport = false;
};
SocketFacts socket_facts(int fd);
// The process a pidfd refers to: EBADF for another file (as the kernel's pidfd_get_pid).
Result<std::uint32_t> pid_of_pidfd(int fd);

}  // namespace bpfvm::os
