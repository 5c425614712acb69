// The current task and memory: get_current_pid_tgid (14), get_current_uid_gid (15), get_current_comm
// (16), get_current_task (35), probe_read* (4, 45, 112-115), send_signal (109), get_func_ip (173), get_attach_cookie (174),
// the stacks (27, 67, 141), the local storages of tasks and sockets (107, 108, 156, 157).
#include <linux/bpf.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <csignal>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <optional>
#include <vector>

#include "bpfvm/base/process.hpp"
#include "bpfvm/helpers/run_env.hpp"
#include "bpfvm/maps/cgroup_array.hpp"
#include "bpfvm/maps/object_map.hpp"
#include "bpfvm/maps/stack_trace.hpp"
#include "helper_args.hpp"

namespace bpfvm::helpers {

namespace {

std::uint64_t get_current_pid_tgid(std::uint64_t, std::uint64_t, std::uint64_t, std::uint64_t, std::uint64_t,
                                   CallContext* ctx) {
  const Task& t = env_of(ctx).task;
  return std::uint64_t{t.tgid} << 32 | t.pid;
}

std::uint64_t get_current_uid_gid(std::uint64_t, std::uint64_t, std::uint64_t, std::uint64_t, std::uint64_t,
                                   CallContext* ctx) {
  const Task& t = env_of(ctx).task;
  return std::uint64_t{t.gid} << 32 | t.uid;
}

std::uint64_t get_current_comm(std::uint64_t buf, std::uint64_t size, std::uint64_t, std::uint64_t, std::uint64_t,
                               CallContext* ctx) {
  if (size == 0 || !ctx->may_access(buf, size, true)) return errno_result(EFAULT);
  auto* dst = reinterpret_cast<char*>(buf);
  // strscpy_pad: as much of the name as fits with its NUL, the rest zero.
  const char* comm = env_of(ctx).task.comm;
  const std::size_t n = std::min<std::size_t>(strnlen(comm, sizeof Task::comm), size - 1);
  std::memcpy(dst, comm, n);
  std::memset(dst + n, 0, size - n);
  return 0;
}

// Copies from `pid`'s memory (0: this process) without ever faulting: process_vm_readv reports an
// unmapped source as an error instead (or the run's own reader, see RunEnv::read_user).
bool safe_read(const RunEnv& env, pid_t pid, void* dst, std::uint64_t src, std::size_t size) {
  if (size == 0) return true;
  if (env.read_user && (pid == 0 || pid == env.memory_pid)) return env.read_user(env.memory_pid, dst, src, size);
  struct iovec local {dst, size};
  struct iovec remote {reinterpret_cast<void*>(src), size};
  const ssize_t n = ::process_vm_readv(pid ? pid : ::getpid(), &local, 1, &remote, 1, 0);
  return n == static_cast<ssize_t>(size);
}

std::uint64_t read_mem(pid_t pid, std::uint64_t dst, std::uint64_t size, std::uint64_t src, CallContext* ctx) {
  if (size == 0) return 0;
  if (!ctx->may_access(dst, size, true)) return errno_result(EFAULT);
  if (!safe_read(env_of(ctx), pid, reinterpret_cast<void*>(dst), src, size)) {
    std::memset(reinterpret_cast<void*>(dst), 0, size);  // the kernel zeroes the destination on a fault
    return errno_result(EFAULT);
  }
  return 0;
}

// The _str variants: up to size - 1 bytes and a NUL; returns the length including the NUL. Like the
// kernel's strncpy_from_user, nothing past the NUL is written. `chunk(at, buf, most)` copies up to `most`
// bytes at `at` into buf and says how many (0: a fault); the string comes a chunk at a time.
template <typename Chunk>
std::uint64_t copy_string(std::uint64_t dst, std::uint64_t size, std::uint64_t src, CallContext* ctx, Chunk&& chunk) {
  if (size == 0) return 0;
  if (!ctx->may_access(dst, size, true)) return errno_result(EFAULT);
  auto* out = reinterpret_cast<char*>(dst);
  constexpr std::size_t kPage = 4096;
  char bounce[kPage];
  std::size_t done = 0;
  while (done < size - 1) {
    const std::size_t n = chunk(src + done, bounce, std::min<std::size_t>(size - 1 - done, kPage));
    if (n == 0) {
      std::memset(out, 0, size);
      return errno_result(EFAULT);
    }
    if (const void* nul = std::memchr(bounce, 0, n)) {
      const std::size_t len = static_cast<std::size_t>(static_cast<const char*>(nul) - bounce) + 1;
      std::memcpy(out + done, bounce, len);
      return done + len;
    }
    std::memcpy(out + done, bounce, n);
    done += n;
  }
  out[size - 1] = 0;
  return size;
}

std::uint64_t read_str(pid_t pid, std::uint64_t dst, std::uint64_t size, std::uint64_t src, CallContext* ctx) {
  const RunEnv& env = env_of(ctx);
  return copy_string(dst, size, src, ctx, [&](std::uint64_t at, char* buf, std::size_t most) -> std::size_t {
    // One page at a time, so that a string ending just before an unmapped page still reads.
    const std::size_t n = std::min<std::size_t>(most, 4096 - at % 4096);
    return safe_read(env, pid, buf, at, n) ? n : 0;
  });
}

std::uint64_t probe_read_user(std::uint64_t dst, std::uint64_t size, std::uint64_t src, std::uint64_t, std::uint64_t,
                              CallContext* ctx) {
  return read_mem(env_of(ctx).memory_pid, dst, size, src, ctx);
}
// bpf_copy_from_user (148), sleepable programs: probe_read_user's copy (0, or -EFAULT with dst zeroed).
std::uint64_t copy_from_user(std::uint64_t dst, std::uint64_t size, std::uint64_t src, std::uint64_t, std::uint64_t,
                             CallContext* ctx) {
  return read_mem(env_of(ctx).memory_pid, dst, size, src, ctx);
}
// bpf_copy_from_user_task (191): the same from `task`'s memory (bpf_get_current_task_btf's, or a task
// reached from it); flags must be 0.
std::uint64_t copy_from_user_task(std::uint64_t dst, std::uint64_t size, std::uint64_t src, std::uint64_t task,
                                  std::uint64_t flags, CallContext* ctx) {
  const RunEnv& env = env_of(ctx);
  if (flags) return errno_result(EINVAL);
  const std::uint32_t tid = env.kernel ? env.kernel->task_at(task) : 0;
  const std::uint32_t current = env.task.pid ? env.task.pid : static_cast<std::uint32_t>(::gettid());
  if (tid == current) return read_mem(env.memory_pid, dst, size, src, ctx);
  if (tid == 0) {  // (no task bpfvm knows: nothing to read)
    if (size && ctx->may_access(dst, size, true)) std::memset(reinterpret_cast<void*>(dst), 0, size);
    return errno_result(EFAULT);
  }
  return read_mem(static_cast<pid_t>(tid), dst, size, src, ctx);  // (process_vm_readv takes a thread id)
}
std::uint64_t probe_read_user_str(std::uint64_t dst, std::uint64_t size, std::uint64_t src, std::uint64_t,
                                  std::uint64_t, CallContext* ctx) {
  return read_str(env_of(ctx).memory_pid, dst, size, src, ctx);
}
// Reads of the emulated kernel objects (RunEnv::kernel), with the kernel's results: 0, or -EFAULT and
// the destination zeroed.
std::uint64_t read_kernel_object(KernelMemory& kernel, std::uint64_t dst, std::uint64_t size, std::uint64_t src,
                                 CallContext* ctx) {
  if (size == 0) return 0;
  if (!ctx->may_access(dst, size, true)) return errno_result(EFAULT);
  if (!kernel.read(src, reinterpret_cast<void*>(dst), size)) {
    std::memset(reinterpret_cast<void*>(dst), 0, size);
    return errno_result(EFAULT);
  }
  return 0;
}
std::uint64_t read_kernel_string(KernelMemory& kernel, std::uint64_t dst, std::uint64_t size, std::uint64_t src,
                                 CallContext* ctx) {
  // 64 bytes at a time (a comm is one), a byte where that would cross the end of a task's objects.
  return copy_string(dst, size, src, ctx, [&](std::uint64_t at, char* buf, std::size_t most) -> std::size_t {
    const std::size_t n = std::min<std::size_t>(most, 64);
    if (kernel.read(at, buf, n)) return n;
    return kernel.read(at, buf, 1) ? 1 : 0;
  });
}

// x86-64's copy_from_kernel_nofault refuses a non-canonical address with -ERANGE (bits 63..47 differ).
bool non_canonical(std::uint64_t addr) {
  const std::uint64_t top = addr >> 47;
  return top != 0 && top != 0x1ffff;
}
std::uint64_t range_error(std::uint64_t dst, std::uint64_t size, CallContext* ctx) {
  if (size && ctx->may_access(dst, size, true)) std::memset(reinterpret_cast<void*>(dst), 0, size);
  return errno_result(ERANGE);
}

// "Kernel" memory: the emulated kernel objects (bpf_get_current_task's), else bpfvm's own (pointers a
// context hands out point into this process).
std::uint64_t probe_read_kernel(std::uint64_t dst, std::uint64_t size, std::uint64_t src, std::uint64_t,
                                std::uint64_t, CallContext* ctx) {
  if (KernelMemory* k = env_of(ctx).kernel; k && k->contains(src)) return read_kernel_object(*k, dst, size, src, ctx);
  if (non_canonical(src)) return range_error(dst, size, ctx);
  return read_mem(0, dst, size, src, ctx);
}
std::uint64_t probe_read_kernel_str(std::uint64_t dst, std::uint64_t size, std::uint64_t src, std::uint64_t,
                                    std::uint64_t, CallContext* ctx) {
  if (KernelMemory* k = env_of(ctx).kernel; k && k->contains(src)) return read_kernel_string(*k, dst, size, src, ctx);
  if (non_canonical(src)) return range_error(dst, size, ctx);
  return read_str(0, dst, size, src, ctx);
}
// The legacy bpf_probe_read(_str) read either, as the kernel's x86 does by the address: an emulated
// kernel object, else user memory of the traced task when there is one.
std::uint64_t probe_read(std::uint64_t dst, std::uint64_t size, std::uint64_t src, std::uint64_t, std::uint64_t,
                         CallContext* ctx) {
  if (KernelMemory* k = env_of(ctx).kernel; k && k->contains(src)) return read_kernel_object(*k, dst, size, src, ctx);
  return read_mem(env_of(ctx).memory_pid, dst, size, src, ctx);
}
std::uint64_t probe_read_str(std::uint64_t dst, std::uint64_t size, std::uint64_t src, std::uint64_t, std::uint64_t,
                             CallContext* ctx) {
  if (KernelMemory* k = env_of(ctx).kernel; k && k->contains(src)) return read_kernel_string(*k, dst, size, src, ctx);
  return read_str(env_of(ctx).memory_pid, dst, size, src, ctx);
}

}  // namespace

std::uint64_t probe_load(std::uint64_t addr, std::uint64_t size, std::uint64_t, std::uint64_t, std::uint64_t,
                         CallContext* ctx) {
  std::uint64_t v = 0;
  if (size == 0 || size > sizeof v) return 0;
  const RunEnv& env = env_of(ctx);
  bool ok = false;
  if (env.kernel && env.kernel->contains(addr)) {
    ok = env.kernel->read(addr, &v, size);
  } else if (!non_canonical(addr) && addr >= 4096) {  // (page zero: a NULL object's field, never mapped)
    // The objects a context hands out (a wrapper's pt_regs, an open_how) are the runtime's own, as
    // kernel memory is: this process's (the traced one's where the agent runs the program).
    ok = safe_read(env, 0, &v, addr, size);
  }
  return ok ? v : 0;
}

namespace {

// bpf_get_current_task (35): the address of the current task's task_struct among the emulated kernel
// objects (see KernelMemory); 0 where there are none.
std::uint64_t get_current_task(std::uint64_t, std::uint64_t, std::uint64_t, std::uint64_t, std::uint64_t,
                               CallContext* ctx) {
  const RunEnv& env = env_of(ctx);
  if (!env.kernel) return 0;
  Task current = env.task;
  if (current.pid == 0) current = current_thread_env().task;
  return env.kernel->current_task(current);
}

// bpf_get_func_arg (183), bpf_get_func_ret (184), bpf_get_func_arg_cnt (185): a fentry/fexit program's
// context is its target's arguments as u64 args[], fexit's return value after them (the kernel inlines
// these from the trampoline's frame). -EINVAL for an argument past the last, -EOPNOTSUPP for the return
// value of a function that has not returned.
std::uint64_t get_func_arg(std::uint64_t ctx_arg, std::uint64_t n, std::uint64_t value, std::uint64_t, std::uint64_t,
                           CallContext* ctx) {
  const RunEnv& env = env_of(ctx);
  if (n >= env.func_args) return errno_result(EINVAL);
  std::uint64_t v = 0;
  std::memcpy(&v, reinterpret_cast<const std::uint64_t*>(ctx_arg) + n, 8);
  std::memcpy(reinterpret_cast<void*>(value), &v, 8);
  return 0;
}
std::uint64_t get_func_ret(std::uint64_t ctx_arg, std::uint64_t value, std::uint64_t, std::uint64_t, std::uint64_t,
                           CallContext* ctx) {
  const RunEnv& env = env_of(ctx);
  if (!env.func_returned) return errno_result(EOPNOTSUPP);
  std::memcpy(reinterpret_cast<void*>(value), reinterpret_cast<const std::uint64_t*>(ctx_arg) + env.func_args, 8);
  return 0;
}
std::uint64_t get_func_arg_cnt(std::uint64_t, std::uint64_t, std::uint64_t, std::uint64_t, std::uint64_t,
                               CallContext* ctx) {
  return env_of(ctx).func_args;
}

std::uint64_t get_func_ip(std::uint64_t, std::uint64_t, std::uint64_t, std::uint64_t, std::uint64_t,
                          CallContext* ctx) {
  return env_of(ctx).func_ip;
}
std::uint64_t get_attach_cookie(std::uint64_t, std::uint64_t, std::uint64_t, std::uint64_t, std::uint64_t,
                                CallContext* ctx) {
  return env_of(ctx).attach_cookie;
}

// bpf_send_signal (109): a signal to the process the program runs for (the traced process, or this one
// under test_run, as the kernel signals `current`).
std::uint64_t send_signal(std::uint64_t sig, std::uint64_t, std::uint64_t, std::uint64_t, std::uint64_t,
                          CallContext* ctx) {
  if (sig > 64) return errno_result(EINVAL);  // valid_signal()
  const pid_t target = static_cast<pid_t>(env_of(ctx).task.tgid);
  if (target <= 0) return errno_result(EPERM);
  if (::kill(target, static_cast<int>(sig)) != 0) return errno_result(errno);
  return 0;
}

}  // namespace

const RunEnv& current_thread_env() {
  thread_local const RunEnv env = [] {
    RunEnv e;
    e.task.pid = static_cast<std::uint32_t>(::gettid());
    e.task.tgid = static_cast<std::uint32_t>(::getpid());
    e.task.uid = ::getuid();
    e.task.gid = ::getgid();
    ::prctl(PR_GET_NAME, e.task.comm, 0, 0, 0);
    return e;
  }();
  return env;
}

// The user stack as the kernel's perf_callchain_user takes it (arch/x86/events/core.c): the user ip
// first, then, from rbp, each frame's return address (zero ones too) and on to its saved rbp, until a
// frame cannot be read or the depth is reached, with no other check of the chain; the first `skip`
// entries left out, at most `room` kept. False when the event has no user registers.
bool user_stack(const RunEnv& env, std::uint64_t skip, std::uint64_t* out, std::size_t room, std::size_t& n) {
  n = 0;
  if (!env.user_regs) return false;
  std::uint64_t regs[21];
  std::memcpy(regs, env.user_regs, sizeof regs);
  constexpr int kRbp = 4, kRip = 16;  // struct pt_regs
  constexpr std::uint64_t kTaskSize = 0x7ffffffff000;  // x86-64's TASK_SIZE_MAX (4-level paging)
  const std::size_t depth = std::min<std::uint64_t>(room + skip, maps::StackTraceMap::kMaxFrames);
  std::size_t taken = 0;  // entries of the callchain, skipped ones included
  auto push = [&](std::uint64_t ip) {
    if (taken++ >= skip && n < room) out[n++] = ip;
  };
  push(regs[kRip]);
  std::uint64_t fp = regs[kRbp];
  while (taken < depth) {
    if (fp > kTaskSize - 16) break;  // valid_user_frame
    std::uint64_t frame[2];  // saved rbp, return address
    if (!safe_read(env, env.memory_pid, frame, fp, sizeof frame)) break;
    push(frame[1]);
    fp = frame[0];
  }
  return true;
}

// bpf_get_stack (67): the user stack (BPF_F_USER_STACK, see user_stack), BPF_F_SKIP_FIELD_MASK entries
// skipped. The kernel stack of an event in user space has no frames: 0 bytes. Returns the bytes written
// (the rest of buf zeroed), or -EINVAL (bad flags, a size not a multiple of 8, build ids), -EFAULT (no
// user registers for this event).
std::uint64_t get_stack(std::uint64_t, std::uint64_t buf, std::uint64_t size, std::uint64_t flags, std::uint64_t,
                        CallContext* ctx) {
  constexpr std::uint64_t kSkipMask = BPF_F_SKIP_FIELD_MASK;
  if (flags & ~(kSkipMask | BPF_F_USER_STACK | BPF_F_USER_BUILD_ID)) return errno_result(EINVAL);
  if ((flags & BPF_F_USER_BUILD_ID) || size % 8 != 0) return errno_result(EINVAL);
  if (size == 0) return 0;
  if (!ctx->may_access(buf, size, true)) return errno_result(EFAULT);
  auto* out = reinterpret_cast<std::uint64_t*>(buf);
  std::size_t n = 0;
  if ((flags & BPF_F_USER_STACK) && !user_stack(env_of(ctx), flags & kSkipMask, out, size / 8, n)) {
    std::memset(out, 0, size);
    return errno_result(EFAULT);
  }
  std::memset(out + n, 0, size - n * 8);
  return n * 8;
}

// bpf_get_task_stack (141): bpf_get_stack of `task` (bpf_get_current_task_btf's). The current task's
// stack is the event's; another task's user stack is refused as the kernel refuses a cross-task user
// walk (-EOPNOTSUPP, buf zeroed), and its kernel stack has no frames here.
std::uint64_t get_task_stack(std::uint64_t task, std::uint64_t buf, std::uint64_t size, std::uint64_t flags,
                             std::uint64_t, CallContext* ctx) {
  const RunEnv& env = env_of(ctx);
  const std::uint32_t tid = env.kernel ? env.kernel->task_at(task) : 0;
  const std::uint32_t current = env.task.pid ? env.task.pid : static_cast<std::uint32_t>(::gettid());
  if (tid == current || !(flags & BPF_F_USER_STACK)) return get_stack(0, buf, size, flags, 0, ctx);
  constexpr std::uint64_t kSkipMask = BPF_F_SKIP_FIELD_MASK;
  if (flags & ~(kSkipMask | BPF_F_USER_STACK | BPF_F_USER_BUILD_ID)) return errno_result(EINVAL);
  if ((flags & BPF_F_USER_BUILD_ID) || size % 8 != 0) return errno_result(EINVAL);
  if (size && ctx->may_access(buf, size, true)) std::memset(reinterpret_cast<void*>(buf), 0, size);
  return errno_result(EOPNOTSUPP);
}

// bpf_get_stackid (27): the stack (the user's with BPF_F_USER_STACK, see user_stack; the kernel's has no
// frames here) stored in a stack_trace map, its id returned (maps::StackTraceMap::store: -EEXIST, or the
// same id for the same stack). -EINVAL for unknown flags, -EFAULT for a stack with no frames left after
// the skipped ones (as __bpf_get_stackid's trace_nr <= 0).
std::uint64_t get_stackid(std::uint64_t, std::uint64_t map_arg, std::uint64_t flags, std::uint64_t, std::uint64_t,
                          CallContext* ctx) {
  constexpr std::uint64_t kFlags = BPF_F_SKIP_FIELD_MASK | BPF_F_USER_STACK | BPF_F_FAST_STACK_CMP | BPF_F_REUSE_STACKID;
  maps::Map* map = as_map(map_arg, ctx);
  if (!map || map->def().type != BPF_MAP_TYPE_STACK_TRACE) {
    ctx->fail(make_error(Errc::kFault, "bpf_get_stackid of 0x{:x}, which is not a stack_trace map", map_arg));
    return 0;
  }
  if (flags & ~kFlags) return errno_result(EINVAL);
  auto* stacks = static_cast<maps::StackTraceMap*>(map);
  std::uint64_t frames[maps::StackTraceMap::kMaxFrames];
  std::size_t n = 0;
  if (flags & BPF_F_USER_STACK) user_stack(env_of(ctx), flags & BPF_F_SKIP_FIELD_MASK, frames, map->def().value_size / 8, n);
  if (n == 0) return errno_result(EFAULT);
  return static_cast<std::uint64_t>(stacks->store({frames, n}, flags));
}

// bpf_current_task_under_cgroup (37): 1 when the current task's cgroup (v2) is slot `index`'s of the
// cgroup_array or below it, 0 when not, -E2BIG past the end, -EAGAIN for an empty slot
// (bpf_current_task_under_cgroup returns -EAGAIN where the array has no cgroup). The task's cgroup is read
// from /proc/PID/cgroup at each call: a filter for the tools' -c options, not for every event.
std::uint64_t current_task_under_cgroup(std::uint64_t map_arg, std::uint64_t index, std::uint64_t, std::uint64_t,
                                        std::uint64_t, CallContext* ctx) {
  maps::Map* map = as_map(map_arg, ctx);
  if (!map || map->def().type != BPF_MAP_TYPE_CGROUP_ARRAY) {
    ctx->fail(make_error(Errc::kFault, "bpf_current_task_under_cgroup of 0x{:x}, which is not a cgroup_array", map_arg));
    return 0;
  }
  const RunEnv& env = env_of(ctx);
  char cgroup[4096];
  if (!os::read_task_cgroup(env.task.pid ? env.task.pid : static_cast<std::uint32_t>(::gettid()), cgroup, sizeof cgroup)) {
    return 0;
  }
  const long r = static_cast<maps::CgroupArray*>(map)->under(static_cast<std::uint32_t>(index), cgroup);
  return static_cast<std::uint64_t>(r == -ENOENT ? -EAGAIN : r);
}

// bpf_get_current_cgroup_id (80): the id (the cgroup2 directory's inode) of the current task's cgroup; 0
// where it has none. Read from /proc/TID/cgroup and a stat at each call, nothing allocated.
std::uint64_t get_current_cgroup_id(std::uint64_t, std::uint64_t, std::uint64_t, std::uint64_t, std::uint64_t,
                                    CallContext* ctx) {
  const RunEnv& env = env_of(ctx);
  std::uint64_t id = 0;
  return os::cgroup_id_of_task(env.task.pid ? env.task.pid : static_cast<std::uint32_t>(::gettid()), id) ? id : 0;
}

namespace {

// The task storage owner a task pointer names (bpf_get_current_task_btf's address), or none.
std::optional<maps::ObjectMap::OwnerKey> task_storage_owner(maps::Map* map, std::uint64_t task, CallContext* ctx) {
  const RunEnv& env = env_of(ctx);
  if (!map || map->def().type != BPF_MAP_TYPE_TASK_STORAGE || !env.kernel || task == 0) return std::nullopt;
  const std::uint32_t tid = env.kernel->task_at(task);
  if (tid == 0) return std::nullopt;
  auto owner = maps::ObjectMap::task_owner(tid);
  if (!owner) return std::nullopt;
  return *owner;
}

// A local storage's value for `owner`: found, or made (from `value`, or zeroed) when `create`.
void* storage_value(maps::Map& map, const maps::ObjectMap::OwnerKey& owner, std::uint64_t value_arg, bool create,
                    CallContext* ctx) {
  auto& storage = static_cast<maps::ObjectMap&>(map);
  void* found = storage.find(&owner);
  if (!found && create) {
    const std::uint32_t size = map.def().value_size;
    if (value_arg && !readable(ctx, value_arg, size)) return nullptr;
    std::vector<std::uint8_t> zeros;
    const void* init = reinterpret_cast<const void*>(value_arg);
    if (!init) {
      zeros.assign(size, 0);
      init = zeros.data();
    }
    (void)storage.install(&owner, init, BPF_NOEXIST);  // (another thread may have made it meanwhile)
    found = storage.find(&owner);
  }
  if (found && ctx->checked()) {
    ctx->allow_region({reinterpret_cast<std::uint64_t>(found), map.def().value_size, true, "local storage value"});
  }
  return found;
}

// bpf_sk_storage_get (107) and bpf_sk_storage_delete (108): the one socket bpfvm's programs hold is a
// test run's packet socket (see socket_helpers.cpp); its values last for the run.
std::uint64_t sk_storage_get(std::uint64_t map_arg, std::uint64_t sk, std::uint64_t value_arg, std::uint64_t flags,
                             std::uint64_t, CallContext* ctx) {
  maps::Map* map = as_map(map_arg, ctx);
  const RunEnv& env = env_of(ctx);
  if (!map || map->def().type != BPF_MAP_TYPE_SK_STORAGE || sk == 0 || sk != env.test_socket ||
      flags & ~static_cast<std::uint64_t>(BPF_LOCAL_STORAGE_GET_F_CREATE)) {
    return 0;
  }
  const maps::ObjectMap::OwnerKey owner{env.test_socket_owner, 0};
  return reinterpret_cast<std::uint64_t>(storage_value(*map, owner, value_arg, flags & BPF_LOCAL_STORAGE_GET_F_CREATE, ctx));
}

std::uint64_t sk_storage_delete(std::uint64_t map_arg, std::uint64_t sk, std::uint64_t, std::uint64_t, std::uint64_t,
                                CallContext* ctx) {
  maps::Map* map = as_map(map_arg, ctx);
  const RunEnv& env = env_of(ctx);
  if (!map || map->def().type != BPF_MAP_TYPE_SK_STORAGE || sk == 0 || sk != env.test_socket) return errno_result(ENOENT);
  const maps::ObjectMap::OwnerKey owner{env.test_socket_owner, 0};
  auto r = static_cast<maps::ObjectMap&>(*map).remove(&owner);
  return r ? 0 : errno_result(r.error().errno_value());
}

// bpf_task_storage_get (156): the task's value in the map, created (from `value`, or zeroed) with
// BPF_LOCAL_STORAGE_GET_F_CREATE when it has none; NULL otherwise, for a gone task or bad flags.
std::uint64_t task_storage_get(std::uint64_t map_arg, std::uint64_t task, std::uint64_t value_arg, std::uint64_t flags,
                               std::uint64_t, CallContext* ctx) {
  maps::Map* map = as_map(map_arg, ctx);
  if (flags & ~static_cast<std::uint64_t>(BPF_LOCAL_STORAGE_GET_F_CREATE)) return 0;
  const auto owner = task_storage_owner(map, task, ctx);
  if (!owner) return 0;
  return reinterpret_cast<std::uint64_t>(storage_value(*map, *owner, value_arg, flags & BPF_LOCAL_STORAGE_GET_F_CREATE, ctx));
}

// bpf_task_storage_delete (157): 0, or -ENOENT when the task has no value (-EINVAL for no task).
std::uint64_t task_storage_delete(std::uint64_t map_arg, std::uint64_t task, std::uint64_t, std::uint64_t,
                                  std::uint64_t, CallContext* ctx) {
  maps::Map* map = as_map(map_arg, ctx);
  const auto owner = task_storage_owner(map, task, ctx);
  if (!owner) return errno_result(EINVAL);
  auto r = static_cast<maps::ObjectMap&>(*map).remove(&*owner);
  return r ? 0 : errno_result(r.error().errno_value());
}

}  // namespace

// bpf_get_current_ancestor_cgroup_id (123): the id of the current task's cgroup (v2) ancestor at
// `level` (0 the root); 0 past the task's own level.
std::uint64_t get_current_ancestor_cgroup_id(std::uint64_t level, std::uint64_t, std::uint64_t, std::uint64_t,
                                             std::uint64_t, CallContext* ctx) {
  const RunEnv& env = env_of(ctx);
  std::uint64_t id = 0;
  if (level > 4096) return 0;
  return os::cgroup_ancestor_id_of_task(env.task.pid ? env.task.pid : static_cast<std::uint32_t>(::gettid()),
                                        static_cast<int>(level), id) ? id : 0;
}

// bpf_get_ns_current_pid_tgid (120): the current task's pid and tgid as its pid namespace numbers them,
// when (dev, ino) name that namespace (stat of /proc/self/ns/pid); -EINVAL otherwise (a wrong size, a
// dev that does not fit a dev_t, another namespace), -ENOENT without the task; nsdata zeroed on error.
std::uint64_t get_ns_current_pid_tgid(std::uint64_t dev, std::uint64_t ino, std::uint64_t nsdata, std::uint64_t size,
                                      std::uint64_t, CallContext* ctx) {
  const RunEnv& env = env_of(ctx);
  if (!ctx->may_access(nsdata, size, true)) return errno_result(EFAULT);
  auto fail = [&](int e) {
    std::memset(reinterpret_cast<void*>(nsdata), 0, size);
    return errno_result(e);
  };
  if (size != sizeof(struct bpf_pidns_info) || static_cast<std::uint64_t>(static_cast<dev_t>(dev)) != dev) return fail(EINVAL);
  const std::uint32_t tid = env.task.pid ? env.task.pid : static_cast<std::uint32_t>(::gettid());
  const std::uint32_t tgid = env.task.tgid ? env.task.tgid : static_cast<std::uint32_t>(::getpid());
  char path[64];
  std::snprintf(path, sizeof path, "/proc/%u/ns/pid", tid);
  struct stat st {};
  if (::stat(path, &st) != 0) return fail(ENOENT);
  if (st.st_ino != ino || st.st_dev != dev) return fail(EINVAL);
  // The innermost of the task's ids (and its leader's), from /proc's NSpid lines.
  os::TaskFacts task, leader;
  if (!os::read_task_facts(tid, task) || !os::read_task_facts(tgid, leader) || !task.nspid_levels || !leader.nspid_levels) {
    return fail(ENOENT);
  }
  const struct bpf_pidns_info info {task.nspid[task.nspid_levels - 1], leader.nspid[leader.nspid_levels - 1]};
  std::memcpy(reinterpret_cast<void*>(nsdata), &info, sizeof info);
  return 0;
}

void install_task_helpers(Registry& table) {
  table.set(BPF_FUNC_get_current_ancestor_cgroup_id, get_current_ancestor_cgroup_id);
  table.set(BPF_FUNC_get_ns_current_pid_tgid, get_ns_current_pid_tgid);
  table.set(BPF_FUNC_task_storage_get, task_storage_get);
  table.set(BPF_FUNC_sk_storage_get, sk_storage_get);
  table.set(BPF_FUNC_sk_storage_delete, sk_storage_delete);
  table.set(BPF_FUNC_task_storage_delete, task_storage_delete);
  table.set(BPF_FUNC_current_task_under_cgroup, current_task_under_cgroup);
  table.set(BPF_FUNC_get_stack, get_stack);
  table.set(BPF_FUNC_get_task_stack, get_task_stack);
  table.set(BPF_FUNC_get_stackid, get_stackid);
  table.set(BPF_FUNC_get_current_cgroup_id, get_current_cgroup_id);
  table.set(BPF_FUNC_get_current_task, get_current_task);
  // (the same task as a trusted BTF pointer: its fields are read by loads, which read the emulated
  // objects through probe_load)
  table.set(BPF_FUNC_get_current_task_btf, get_current_task);
  table.set(BPF_FUNC_get_current_pid_tgid, get_current_pid_tgid);
  table.set(BPF_FUNC_get_current_uid_gid, get_current_uid_gid);
  table.set(BPF_FUNC_get_current_comm, get_current_comm);
  table.set(BPF_FUNC_probe_read, probe_read);
  table.set(BPF_FUNC_probe_read_str, probe_read_str);
  table.set(BPF_FUNC_probe_read_user, probe_read_user);
  table.set(BPF_FUNC_probe_read_user_str, probe_read_user_str);
  table.set(BPF_FUNC_probe_read_kernel, probe_read_kernel);
  table.set(BPF_FUNC_probe_read_kernel_str, probe_read_kernel_str);
  table.set(BPF_FUNC_get_func_ip, get_func_ip);
  table.set(BPF_FUNC_copy_from_user, copy_from_user);
  table.set(BPF_FUNC_copy_from_user_task, copy_from_user_task);
  table.set(BPF_FUNC_get_func_arg, get_func_arg);
  table.set(BPF_FUNC_get_func_ret, get_func_ret);
  table.set(BPF_FUNC_get_func_arg_cnt, get_func_arg_cnt);
  table.set(BPF_FUNC_get_attach_cookie, get_attach_cookie);
  table.set(BPF_FUNC_send_signal, send_signal);
}

}  // namespace bpfvm::helpers
