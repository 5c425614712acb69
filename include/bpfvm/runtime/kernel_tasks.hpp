// The kernel objects programs reach from bpf_get_current_task (helpers::KernelMemory): for each task a
// "slot" in the kernel's half of the address space (kBase + tid * slot size) holding its task_struct
// and the objects it points to: cred (real_cred and cred), nsproxy and the namespaces it names (each with
// its ns.inum), mm_struct (the code, data, heap, stack, argument and environment bounds), the pid
// (thread_pid: level, numbers[].nr and .ns), and the memory area bpf_find_vma last found for the task
// (vm_area_struct, with its file, the file's dentry and inode). Pointers between tasks are slots too: real_parent and
// parent are the parent's slot, group_leader the process's; so BPF_CORE_READ(task, real_parent, tgid)
// reads the parent's tgid, and a chain of parents goes on up to pid 0 (the kernel's init_task, swapper/0).
//
// Layouts are the running kernel's, from /sys/kernel/btf/vmlinux: the same BTF libbpf and bpfvm relocate
// CO-RE programs against, so a program's offsets land on the fields written here. Values come from /proc
// (os::read_task_facts) when a slot is first read and again after a second; the current task's ids,
// name, uid/gid and exit code come from the event itself (helpers::Task) at each bpf_get_current_task.
// What bpfvm cannot know (the kernel's own pointers: files, fs, signal, sched entities...) reads as zero,
// as memory the kernel had not filled.
//
// Runs take a spin lock (recursion from a signal handler of the same thread fails the read instead of
// deadlocking) and allocate nothing: the layout and the slot cache are made by prepare(), which the
// runtime calls when it loads a program that calls bpf_get_current_task.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <span>
#include <string>

#include "bpfvm/base/result.hpp"
#include "bpfvm/helpers/run_env.hpp"

namespace bpfvm::obj {
class Btf;
}
namespace bpfvm::os {
struct TaskFacts;
}

namespace bpfvm::runtime {

class KernelTasks final : public helpers::KernelMemory {
 public:
  // The process's one instance (never destroyed: exit events run after static destructors).
  static KernelTasks& instance();

  static constexpr std::uint64_t kBase = 0xffff888100000000ULL;  // in the x86-64 kernel's direct map
  static constexpr std::uint32_t kMaxPid = 4194304;               // PID_MAX_LIMIT on 64-bit

  // Reads the layouts from the kernel's BTF, once; the error (no /sys/kernel/btf/vmlinux, no
  // task_struct in it) is kept and returned again.
  Result<void> prepare();
  // The layouts from `btf` (a test's, or another kernel's): replaces the slots.
  Result<void> prepare(const obj::Btf& btf);
  bool prepared() const { return slot_size_.load(std::memory_order_acquire) != 0; }

  // Where task `tid`'s task_struct is (whether or not it exists).
  std::uint64_t task_address(std::uint32_t tid) const;
  // The bytes of a slot's objects are in these places (for tests and `bpfvm` reports): the task_struct
  // member `path`'s offset in the slot, or -1 when this kernel's task_struct has no such member.
  std::int64_t task_member_offset(const std::string& path) const;

  std::uint64_t current_task(const helpers::Task& current) override;
  bool contains(std::uint64_t addr) const override;
  bool read(std::uint64_t addr, void* dst, std::size_t size) override;
  std::uint32_t task_at(std::uint64_t addr) const override;
  // bpf_find_vma: the task's memory area holding `addr` (os::find_task_area), as a vm_area_struct
  // with its file, dentry and inode, in the task's slot; 0 when none holds it.
  std::uint64_t find_vma(std::uint64_t task, std::uint64_t addr) override;

  struct Layout;

 private:
  KernelTasks();
  struct Entry;
  Entry* slot_of(std::uint32_t tid, std::uint64_t now);  // with the lock held
  std::uint8_t* image_of(const Entry* e) const;           // the bytes of its slot
  void fill(std::uint8_t* image, std::uint32_t tid, const os::TaskFacts& facts) const;
  void apply_current(std::uint8_t* image, const helpers::Task& current) const;
  bool lock();
  void unlock();

  std::unique_ptr<Layout> layout_;
  std::atomic<std::uint32_t> slot_size_{0};
  std::unique_ptr<Entry[]> entries_;
  std::unique_ptr<std::uint8_t[]> images_;
  std::atomic<int> owner_{0};  // the thread holding the lock, 0 when free
  bool tried_ = false;
  std::string error_;
};

}  // namespace bpfvm::runtime
