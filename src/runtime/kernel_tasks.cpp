// The emulated kernel objects of bpf_get_current_task (see the header).
#include "bpfvm/runtime/kernel_tasks.hpp"

#include <sched.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <cstring>
#include <mutex>
#include <string_view>

#include "bpfvm/base/file.hpp"
#include "bpfvm/base/process.hpp"
#include "bpfvm/obj/btf.hpp"

namespace bpfvm::runtime {

namespace {

// The objects of a slot, each the kernel struct of that name.
enum Obj : std::uint8_t {
  kTask, kCred, kNsproxy, kMm, kPid,
  kUtsNs, kIpcNs, kMntNs, kPidNs, kPidNsChildren, kNetNs, kTimeNs, kTimeNsChildren, kCgroupNs,
  // the memory area bpf_find_vma last found for the task, its file, the file's dentry and inode
  kVma, kFile, kDentry, kInode,
  kObjCount
};
constexpr std::uint32_t kDentryNameRoom = 256;  // a dentry's name (NAME_MAX + 1), after the struct
struct ObjSpec {
  const char* type;
  std::uint32_t extra;  // room after the struct (struct pid's numbers[], one per pid namespace level)
};
constexpr ObjSpec kObjs[kObjCount] = {
    {"task_struct", 0}, {"cred", 0}, {"nsproxy", 0}, {"mm_struct", 0}, {"pid", 8 * 16},
    {"uts_namespace", 0}, {"ipc_namespace", 0}, {"mnt_namespace", 0}, {"pid_namespace", 0}, {"pid_namespace", 0},
    {"net", 0}, {"time_namespace", 0}, {"time_namespace", 0}, {"cgroup_namespace", 0},
    {"vm_area_struct", 0}, {"file", 0}, {"dentry", kDentryNameRoom}, {"inode", 0},
};

// The members written, each with the names kernels have given it ('|': older names after).
enum Field : std::uint8_t {
  // task_struct
  kTaskPid, kTaskTgid, kTaskComm, kRealParent, kParent, kGroupLeader, kTaskFlags, kExitCode, kExitSignal,
  kExitState, kStartTime, kStartBoottime, kRealCred, kCredPtr, kNsproxyPtr, kMmPtr, kActiveMm, kThreadPid,
  kLoginuid, kSessionid, kState, kPrio, kStaticPrio, kNormalPrio, kTaskCpu,
  // cred
  kUid, kGid, kSuid, kSgid, kEuid, kEgid, kFsuid, kFsgid,
  // nsproxy
  kUtsNsPtr, kIpcNsPtr, kMntNsPtr, kPidNsChildrenPtr, kNetNsPtr, kTimeNsPtr, kTimeNsChildrenPtr, kCgroupNsPtr,
  // mm_struct
  kStartCode, kEndCode, kStartData, kEndData, kStartBrk, kStartStack, kArgStart, kArgEnd, kEnvStart, kEnvEnd,
  // pid
  kPidLevel,
  // each namespace's ns.inum; pid namespaces' level
  kUtsInum, kIpcInum, kMntInum, kPidInum, kPidChildrenInum, kNetInum, kTimeInum, kTimeChildrenInum, kCgroupInum,
  kPidNsLevel, kPidNsChildrenLevel,
  // vm_area_struct, file, dentry, inode
  kVmStart, kVmEnd, kVmMm, kVmFlags, kVmPgoff, kVmFile, kFileDentry, kFileInode, kDentryName, kDentryLen,
  kDentryParent, kDentryInode, kDentryShortName, kInodeIno,
  kFieldCount
};
struct FieldSpec {
  Obj obj;
  const char* paths;
};
constexpr FieldSpec kFields[kFieldCount] = {
    {kTask, "pid"}, {kTask, "tgid"}, {kTask, "comm"}, {kTask, "real_parent"}, {kTask, "parent"},
    {kTask, "group_leader"}, {kTask, "flags"}, {kTask, "exit_code"}, {kTask, "exit_signal"}, {kTask, "exit_state"},
    {kTask, "start_time"}, {kTask, "start_boottime|real_start_time"}, {kTask, "real_cred"}, {kTask, "cred"},
    {kTask, "nsproxy"}, {kTask, "mm"}, {kTask, "active_mm"}, {kTask, "thread_pid"}, {kTask, "loginuid"},
    {kTask, "sessionid"}, {kTask, "__state|state"}, {kTask, "prio"}, {kTask, "static_prio"}, {kTask, "normal_prio"},
    {kTask, "cpu|thread_info.cpu"},
    {kCred, "uid"}, {kCred, "gid"}, {kCred, "suid"}, {kCred, "sgid"}, {kCred, "euid"}, {kCred, "egid"},
    {kCred, "fsuid"}, {kCred, "fsgid"},
    {kNsproxy, "uts_ns"}, {kNsproxy, "ipc_ns"}, {kNsproxy, "mnt_ns"}, {kNsproxy, "pid_ns_for_children"},
    {kNsproxy, "net_ns"}, {kNsproxy, "time_ns"}, {kNsproxy, "time_ns_for_children"}, {kNsproxy, "cgroup_ns"},
    {kMm, "start_code"}, {kMm, "end_code"}, {kMm, "start_data"}, {kMm, "end_data"}, {kMm, "start_brk"},
    {kMm, "start_stack"}, {kMm, "arg_start"}, {kMm, "arg_end"}, {kMm, "env_start"}, {kMm, "env_end"},
    {kPid, "level"},
    {kUtsNs, "ns.inum"}, {kIpcNs, "ns.inum"}, {kMntNs, "ns.inum"}, {kPidNs, "ns.inum"}, {kPidNsChildren, "ns.inum"},
    {kNetNs, "ns.inum"}, {kTimeNs, "ns.inum"}, {kTimeNsChildren, "ns.inum"}, {kCgroupNs, "ns.inum"},
    {kPidNs, "level"}, {kPidNsChildren, "level"},
    {kVma, "vm_start"}, {kVma, "vm_end"}, {kVma, "vm_mm"}, {kVma, "vm_flags"}, {kVma, "vm_pgoff"}, {kVma, "vm_file"},
    {kFile, "f_path.dentry"}, {kFile, "f_inode"}, {kDentry, "d_name.name"}, {kDentry, "d_name.len"},
    {kDentry, "d_parent"}, {kDentry, "d_inode"}, {kDentry, "d_shortname.string|d_iname"}, {kInode, "i_ino"},
};

// PF_* and the kernel's task states (include/linux/sched.h).
constexpr std::uint32_t kPfIdle = 0x00000002, kPfKthread = 0x00200000;
constexpr std::uint32_t kTaskInterruptible = 1, kTaskUninterruptible = 2, kTaskStopped = 4, kTaskTraced = 8,
                        kTaskNoload = 0x400, kExitDead = 16, kExitZombie = 32;

constexpr std::uint64_t kRefreshNs = 1000000000;  // a slot's /proc facts are read again after a second
constexpr std::size_t kEntries = 64;               // slots kept

using os::clock_ns;

}  // namespace

struct KernelTasks::Layout {
  struct Place {
    std::int64_t at = -1;  // offset in the slot; -1: not in this kernel
    std::uint32_t size = 0;
  };
  std::int64_t obj_at[kObjCount] = {};  // -1 when the kernel has no such struct
  std::uint32_t obj_size[kObjCount] = {};  // its size, with the room after it
  Place field[kFieldCount];
  Place pid_numbers;                   // struct pid's numbers[0]
  std::uint32_t upid_size = 0;         // sizeof(struct upid)
  std::int64_t upid_nr = -1, upid_ns = -1;
};

struct KernelTasks::Entry {
  std::uint32_t tid = 0;
  bool valid = false;
  std::uint64_t built = 0;  // CLOCK_MONOTONIC_COARSE
};

KernelTasks& KernelTasks::instance() {
  static KernelTasks* const tasks = new KernelTasks();
  return *tasks;
}

KernelTasks::KernelTasks() = default;

Result<void> KernelTasks::prepare() {
  static std::mutex once;
  std::lock_guard guard(once);
  if (prepared()) return {};
  if (tried_) return make_error(Errc::kNotSupported, "{}", error_);
  tried_ = true;
  auto prepared = [&]() -> Result<void> {
    const auto btf = BPFVM_TRY_CTX(obj::running_kernel_btf(), "bpf_get_current_task");
    return prepare(*btf);
  }();
  if (!prepared) error_ = prepared.error().message();
  return prepared;
}

Result<void> KernelTasks::prepare(const obj::Btf& btf) {
  auto layout = std::make_unique<Layout>();
  std::uint32_t ids[kObjCount] = {};
  std::uint64_t at = 0;
  for (int o = 0; o < kObjCount; ++o) {
    ids[o] = btf.find_struct(kObjs[o].type);
    const std::uint32_t size = ids[o] ? btf.type_size(ids[o]) : 0;
    if (!ids[o] || size == 0) {
      layout->obj_at[o] = -1;
      continue;
    }
    layout->obj_at[o] = static_cast<std::int64_t>(at);
    layout->obj_size[o] = size + kObjs[o].extra;
    at = (at + size + kObjs[o].extra + 63) & ~std::uint64_t{63};
  }
  if (layout->obj_at[kTask] < 0) return make_error(Errc::kNotSupported, "the kernel's BTF has no struct task_struct");
  for (int f = 0; f < kFieldCount; ++f) {
    const FieldSpec& spec = kFields[f];
    if (layout->obj_at[spec.obj] < 0) continue;
    std::string_view names = spec.paths;
    while (!names.empty()) {
      const std::size_t bar = names.find('|');
      const std::string_view name = names.substr(0, bar);
      names = bar == std::string_view::npos ? std::string_view{} : names.substr(bar + 1);
      if (const auto place = btf.member_place(ids[spec.obj], name)) {
        layout->field[f] = {layout->obj_at[spec.obj] + place->offset, place->size};
        break;
      }
    }
  }
  if (layout->obj_at[kPid] >= 0) {
    if (const auto numbers = btf.member_place(ids[kPid], "numbers")) {
      if (const std::uint32_t upid = btf.find_struct("upid")) {
        const auto nr = btf.member_place(upid, "nr");
        const auto ns = btf.member_place(upid, "ns");
        layout->upid_size = btf.type_size(upid);
        if (nr && ns && layout->upid_size > 0) {
          layout->pid_numbers = {layout->obj_at[kPid] + numbers->offset, layout->upid_size};
          layout->upid_nr = nr->offset;
          layout->upid_ns = ns->offset;
        }
      }
    }
  }
  std::uint32_t slot = 4096;
  while (slot < at) slot *= 2;
  // Tests may prepare again: the slots go with the old layout.
  if (!lock()) return make_error(Errc::kBusy, "kernel objects in use");
  layout_ = std::move(layout);
  entries_ = std::make_unique<Entry[]>(kEntries);
  images_.reset(new std::uint8_t[kEntries * slot]);  // untouched until a slot is built
  slot_size_.store(slot, std::memory_order_release);
  unlock();
  return {};
}

std::uint64_t KernelTasks::task_address(std::uint32_t tid) const {
  return kBase + std::uint64_t{tid} * slot_size_.load(std::memory_order_acquire);
}

std::int64_t KernelTasks::task_member_offset(const std::string& path) const {
  if (!prepared()) return -1;
  for (int f = 0; f < kFieldCount; ++f) {
    if (kFields[f].obj != kTask) continue;
    const std::string_view names = kFields[f].paths;
    if (names == path || names.starts_with(path + "|")) return layout_->field[f].at;
  }
  return -1;
}

std::uint32_t KernelTasks::task_at(std::uint64_t addr) const {
  const std::uint64_t slot = slot_size_.load(std::memory_order_acquire);
  if (slot == 0 || addr < kBase || (addr - kBase) % slot != 0) return 0;
  const std::uint64_t tid = (addr - kBase) / slot;
  return tid <= kMaxPid ? static_cast<std::uint32_t>(tid) : 0;
}

bool KernelTasks::contains(std::uint64_t addr) const {
  const std::uint64_t slot = slot_size_.load(std::memory_order_acquire);
  return slot != 0 && addr >= kBase && (addr - kBase) / slot <= kMaxPid;
}

bool KernelTasks::lock() {
  const int self = static_cast<int>(::gettid());
  for (int spins = 0;; ++spins) {
    int expected = 0;
    if (owner_.compare_exchange_weak(expected, self, std::memory_order_acquire)) return true;
    if (expected == self) return false;  // a signal handler's program inside this thread's own read
    if (spins > 64) ::sched_yield();
  }
}

void KernelTasks::unlock() { owner_.store(0, std::memory_order_release); }

namespace {

void put(std::uint8_t* image, const KernelTasks::Layout& l, Field f, std::uint64_t value) {
  const auto& p = l.field[f];
  if (p.at < 0 || p.size == 0 || p.size > 8) return;
  std::memcpy(image + p.at, &value, p.size);  // little-endian: the low bytes for a narrower member
}

std::uint64_t object_address(const KernelTasks::Layout& l, std::uint64_t slot_base, Obj o) {
  return l.obj_at[o] < 0 ? 0 : slot_base + static_cast<std::uint64_t>(l.obj_at[o]);
}

}  // namespace

void KernelTasks::fill(std::uint8_t* image, std::uint32_t tid, const os::TaskFacts& f) const {
  const Layout& l = *layout_;
  const std::uint32_t slot = slot_size_.load(std::memory_order_relaxed);
  std::memset(image, 0, slot);
  const std::uint64_t base = task_address(tid);
  put(image, l, kTaskPid, f.pid);
  put(image, l, kTaskTgid, f.tgid);
  if (const auto& comm = l.field[kTaskComm]; comm.at >= 0) {
    std::memcpy(image + comm.at, f.comm, std::min<std::size_t>(comm.size, sizeof f.comm));
  }
  // init_task is its own parent; a task whose parent /proc does not name (gone) has init_task's.
  const std::uint64_t parent = task_address(tid == 0 ? 0 : f.ppid);
  put(image, l, kRealParent, parent);
  put(image, l, kParent, parent);
  put(image, l, kGroupLeader, task_address(f.tgid));
  put(image, l, kTaskFlags, f.flags);
  put(image, l, kExitCode, static_cast<std::uint32_t>(f.exit_code));
  put(image, l, kExitSignal, static_cast<std::uint32_t>(f.pid == f.tgid ? SIGCHLD : -1));
  std::uint32_t state = 0, exit_state = 0;
  switch (f.state) {
    case 'S': state = kTaskInterruptible; break;
    case 'D': state = kTaskUninterruptible; break;
    case 'T': state = kTaskStopped; break;
    case 't': state = kTaskTraced; break;
    case 'I': state = kTaskUninterruptible | kTaskNoload; break;
    case 'Z': exit_state = kExitZombie; break;
    case 'X': exit_state = kExitDead; break;
    default: break;
  }
  put(image, l, kState, state);
  put(image, l, kExitState, exit_state);
  // start_time is CLOCK_MONOTONIC at fork, start_boottime CLOCK_BOOTTIME; /proc keeps the latter.
  const std::uint64_t monotonic = clock_ns(CLOCK_MONOTONIC), boottime = clock_ns(CLOCK_BOOTTIME);
  std::uint64_t suspended = boottime > monotonic ? boottime - monotonic : 0;
  if (suspended < 1000000) suspended = 0;  // the two reads' distance, not a suspension
  put(image, l, kStartBoottime, f.start_boottime_ns);
  put(image, l, kStartTime, f.start_boottime_ns > suspended ? f.start_boottime_ns - suspended : 0);
  put(image, l, kRealCred, object_address(l, base, kCred));
  put(image, l, kCredPtr, object_address(l, base, kCred));
  put(image, l, kNsproxyPtr, object_address(l, base, kNsproxy));
  const bool kthread = (f.flags & kPfKthread) != 0;
  put(image, l, kMmPtr, kthread ? 0 : object_address(l, base, kMm));
  put(image, l, kActiveMm, kthread ? 0 : object_address(l, base, kMm));
  put(image, l, kThreadPid, object_address(l, base, kPid));
  put(image, l, kLoginuid, f.loginuid);
  put(image, l, kSessionid, f.sessionid);
  put(image, l, kPrio, static_cast<std::uint32_t>(f.prio + 100));  // /proc shows prio - MAX_RT_PRIO
  put(image, l, kStaticPrio, static_cast<std::uint32_t>(120 + f.nice));
  put(image, l, kNormalPrio, static_cast<std::uint32_t>(f.prio + 100));
  put(image, l, kTaskCpu, f.cpu);

  const Field creds[8] = {kUid, kEuid, kSuid, kFsuid, kGid, kEgid, kSgid, kFsgid};
  for (int i = 0; i < 4; ++i) {
    put(image, l, creds[i], f.uid[i]);
    put(image, l, creds[4 + i], f.gid[i]);
  }

  struct NsLink {
    Field pointer, inum;
    Obj obj;
    os::TaskFacts::Ns ns;
  };
  constexpr NsLink kLinks[] = {
      {kUtsNsPtr, kUtsInum, kUtsNs, os::TaskFacts::kUts},
      {kIpcNsPtr, kIpcInum, kIpcNs, os::TaskFacts::kIpc},
      {kMntNsPtr, kMntInum, kMntNs, os::TaskFacts::kMnt},
      {kPidNsChildrenPtr, kPidChildrenInum, kPidNsChildren, os::TaskFacts::kPidForChildren},
      {kNetNsPtr, kNetInum, kNetNs, os::TaskFacts::kNet},
      {kTimeNsPtr, kTimeInum, kTimeNs, os::TaskFacts::kTime},
      {kTimeNsChildrenPtr, kTimeChildrenInum, kTimeNsChildren, os::TaskFacts::kTimeForChildren},
      {kCgroupNsPtr, kCgroupInum, kCgroupNs, os::TaskFacts::kCgroup},
  };
  for (const NsLink& link : kLinks) {
    if (f.ns_inode[link.ns] == 0) continue;
    put(image, l, link.pointer, object_address(l, base, link.obj));
    put(image, l, link.inum, f.ns_inode[link.ns]);
  }
  const std::uint32_t level = f.nspid_levels > 0 ? f.nspid_levels - 1 : 0;
  put(image, l, kPidInum, f.ns_inode[os::TaskFacts::kPid]);
  put(image, l, kPidNsLevel, level);
  const bool same_children_ns = f.ns_inode[os::TaskFacts::kPidForChildren] == f.ns_inode[os::TaskFacts::kPid];
  put(image, l, kPidNsChildrenLevel, same_children_ns ? level : level + 1);

  if (!kthread) {
    put(image, l, kStartCode, f.start_code);
    put(image, l, kEndCode, f.end_code);
    put(image, l, kStartData, f.start_data);
    put(image, l, kEndData, f.end_data);
    put(image, l, kStartBrk, f.start_brk);
    put(image, l, kStartStack, f.start_stack);
    put(image, l, kArgStart, f.arg_start);
    put(image, l, kArgEnd, f.arg_end);
    put(image, l, kEnvStart, f.env_start);
    put(image, l, kEnvEnd, f.env_end);
  }

  put(image, l, kPidLevel, level);
  if (l.pid_numbers.at >= 0) {
    for (std::uint32_t i = 0; i <= level && i < 8; ++i) {
      std::uint8_t* upid = image + l.pid_numbers.at + std::uint64_t{i} * l.upid_size;
      std::memcpy(upid + l.upid_nr, &f.nspid[i], 4);
      if (i == level && l.obj_at[kPidNs] >= 0) {
        const std::uint64_t ns = object_address(l, base, kPidNs);
        std::memcpy(upid + l.upid_ns, &ns, 8);
      }
    }
  }
}

std::uint8_t* KernelTasks::image_of(const Entry* e) const {
  return images_.get() + static_cast<std::size_t>(e - entries_.get()) * slot_size_.load(std::memory_order_relaxed);
}

KernelTasks::Entry* KernelTasks::slot_of(std::uint32_t tid, std::uint64_t now) {
  Entry* fresh = nullptr;
  Entry* reuse = nullptr;
  for (std::size_t i = 0; i < kEntries; ++i) {
    Entry& e = entries_[i];
    if (e.valid && e.tid == tid) {
      if (now - e.built < kRefreshNs) return &e;
      reuse = &e;
      break;
    }
    if (!fresh || !e.valid || (fresh->valid && e.built < fresh->built)) fresh = &e;
  }
  Entry* e = reuse ? reuse : fresh;
  os::TaskFacts facts;
  if (tid == 0) {
    std::memcpy(facts.comm, "swapper/0", 10);
    facts.flags = kPfKthread | kPfIdle;
    facts.prio = 20;
    facts.nspid_levels = 1;
  } else if (!os::read_task_facts(tid, facts)) {
    facts = {};  // gone (or never was): its ids, the rest zero
    facts.pid = facts.tgid = tid;
    facts.nspid[0] = tid;
    facts.nspid_levels = 1;
  }
  e->tid = tid;
  e->valid = true;
  e->built = now;
  fill(image_of(e), tid, facts);
  return e;
}

void KernelTasks::apply_current(std::uint8_t* image, const helpers::Task& t) const {
  const Layout& l = *layout_;
  put(image, l, kTaskPid, t.pid);
  put(image, l, kTaskTgid, t.tgid);
  put(image, l, kGroupLeader, task_address(t.tgid));
  if (const auto& comm = l.field[kTaskComm]; comm.at >= 0) {
    std::memcpy(image + comm.at, t.comm, std::min<std::size_t>(comm.size, sizeof t.comm));
  }
  put(image, l, kUid, t.uid);
  put(image, l, kGid, t.gid);
  put(image, l, kExitCode, static_cast<std::uint32_t>(t.exit_code));
  put(image, l, kState, 0);  // running: it is running this program
}

std::uint64_t KernelTasks::current_task(const helpers::Task& current) {
  if (!prepared() && !prepare()) return 0;
  if (current.pid > kMaxPid || !lock()) return 0;
  Entry* e = slot_of(current.pid, clock_ns(CLOCK_MONOTONIC_COARSE));
  apply_current(image_of(e), current);
  unlock();
  return task_address(current.pid);
}

namespace {

// vm_pgoff: a file's offset in pages. Private anonymous memory is numbered by its start page when made
// (mm/vma.c), which it keeps as it grows up (the heap). The stack was made as the page under
// STACK_TOP_MAX (fs/exec.c, __bprm_mm_init), moved down to its randomized top without renumbering, and
// grows down one number a page: its start page as if its top had stayed at STACK_TOP_MAX (x86-64 with
// four-level page tables). An anonymous area moved by mremap keeps its old numbers, which /proc does
// not show.
std::uint64_t area_pgoff(const os::TaskArea& area) {
  constexpr std::uint64_t kStackTopMax = 0x7ffffffff000;  // DEFAULT_MAP_WINDOW
  if (area.file) return area.offset / 4096;
  if (area.stack && area.end <= kStackTopMax) return (kStackTopMax - (area.end - area.start)) / 4096;
  return area.start / 4096;
}

}  // namespace

// The area, written into the task's slot: vm_start, vm_end, vm_flags (smaps' VmFlags), vm_pgoff (the
// file offset in pages; an anonymous area's start page, as the kernel numbers private anonymous memory),
// vm_mm (the task's mm_struct), vm_file; a file's f_path.dentry and f_inode, the dentry's name (d_name,
// and inline when it fits) and inode, its parent itself (the path above the name is not known here:
// a walk up ends at once), the inode's number. A later find_vma of the same task replaces them.
std::uint64_t KernelTasks::find_vma(std::uint64_t task, std::uint64_t addr) {
  if (!prepared() || !contains(task)) return 0;
  const std::uint32_t tid = task_at(task);
  if (tid == 0 || task != task_address(tid)) return 0;  // init_task (a kernel thread: no memory) or no task
  os::TaskArea area;
  if (!os::find_task_area(tid, addr, area)) return 0;
  if (!lock()) return 0;
  const std::uint64_t now = clock_ns(CLOCK_MONOTONIC_COARSE);
  Entry* e = slot_of(tid, now);
  // A slot is made again from /proc a second after it was made, zeroing these: the callback reads
  // them in the coming microseconds, so make it now if it is half that old.
  if (now - e->built > kRefreshNs / 2) {
    e->valid = false;
    e = slot_of(tid, now);
  }
  const Layout& l = *layout_;
  const std::uint64_t base = task_address(tid);
  std::uint8_t* image = image_of(e);
  for (const Obj o : {kVma, kFile, kDentry, kInode}) {
    if (l.obj_at[o] >= 0) std::memset(image + l.obj_at[o], 0, l.obj_size[o]);
  }
  put(image, l, kVmStart, area.start);
  put(image, l, kVmEnd, area.end);
  put(image, l, kVmMm, object_address(l, base, kMm));
  put(image, l, kVmFlags, area.vm_flags);
  put(image, l, kVmPgoff, area_pgoff(area));
  if (area.file && l.obj_at[kFile] >= 0 && l.obj_at[kDentry] >= 0) {
    const std::uint64_t dentry = object_address(l, base, kDentry), inode = object_address(l, base, kInode);
    put(image, l, kVmFile, object_address(l, base, kFile));
    put(image, l, kFileDentry, dentry);
    put(image, l, kFileInode, inode);
    const std::size_t len = std::strlen(area.name);
    const std::uint64_t name_at = static_cast<std::uint64_t>(l.obj_at[kDentry]) + l.obj_size[kDentry] - kDentryNameRoom;
    std::memcpy(image + name_at, area.name, len + 1);
    put(image, l, kDentryName, base + name_at);
    put(image, l, kDentryLen, len);
    put(image, l, kDentryParent, dentry);
    put(image, l, kDentryInode, inode);
    if (const auto& inline_name = l.field[kDentryShortName]; inline_name.at >= 0 && len < inline_name.size) {
      std::memcpy(image + inline_name.at, area.name, len + 1);
    }
    put(image, l, kInodeIno, area.inode);
  }
  unlock();
  return object_address(l, base, kVma);
}

bool KernelTasks::read(std::uint64_t addr, void* dst, std::size_t size) {
  if (!contains(addr)) return false;
  const std::uint64_t slot = slot_size_.load(std::memory_order_acquire);
  const auto tid = static_cast<std::uint32_t>((addr - kBase) / slot);
  const std::uint64_t offset = (addr - kBase) % slot;
  if (size > slot - offset) return false;
  if (!lock()) return false;
  Entry* e = slot_of(tid, clock_ns(CLOCK_MONOTONIC_COARSE));
  std::memcpy(dst, image_of(e) + offset, size);
  unlock();
  return true;
}

}  // namespace bpfvm::runtime
