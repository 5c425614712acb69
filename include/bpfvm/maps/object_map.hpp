// Maps whose entries stand for kernel objects: devices (devmap, devmap_hash), CPUs (cpumap), sockets
// (xskmap, sockmap, sockhash, reuseport_sockarray), and the local storages that hang values on an
// owner (task_storage, sk_storage, inode_storage, cgrp_storage), plus cgroup_storage and
// percpu_cgroup_storage, whose entries exist while a program is attached to a cgroup.
//
// User space names those objects by descriptor; bpf() (runtime/bpf_command.cpp) turns the descriptor
// into what identifies the object system-wide and stores that here: an ifindex and a program id, a CPU
// queue size, a socket's cookie (SO_COOKIE, the kernel's own), an owner's identity (a task's tid, a
// socket's cookie, an inode's device and number, a cgroup's id). So a map in shared memory means the
// same thing in every process that opens it, and a lookup answers what the kernel answers (a devmap's
// ifindex and program id, a sockmap's cookie). What the objects do in the kernel (redirecting packets
// to devices, CPUs and sockets) has no meaning in user space; bpf_redirect_map answers as the kernel's
// does (XDP_REDIRECT when the slot is filled).
//
// Kernel semantics, checked against the running kernel by tests/unit/runtime_map_oracle_test.cpp:
// creation rules per type (kernel/bpf/devmap.c, cpumap.c, net/xdp/xskmap.c, net/core/sock_map.c,
// kernel/bpf/reuseport_array.c, bpf_local_storage.c, local_storage.c), the update flags, errno values,
// and get_next_key order (arrays by index; devmap_hash by the kernel's buckets, key & (buckets - 1),
// newest first in a bucket; sockhash by a hash of bpfvm's, as the kernel's is seeded at random).
//
// Limits that are bpfvm's: a local storage holds at most kOwnerCapacity owners (the kernel's has no
// bound but memory: ENOMEM when full, as the kernel's allocation failure), and an owner's entry stays
// until deleted or the map goes (the kernel frees it with its task, socket, inode or cgroup; bpfvm
// keys a task by tid and its start time, so a new task with an old tid does not see the old value).
#pragma once

#include <cstdint>
#include <string>

#include "bpfvm/maps/map.hpp"

namespace bpfvm::maps {

class ObjectMap final : public Map {
 public:
  enum class Kind : std::uint8_t {
    kArray,          // devmap, cpumap, xskmap, sockmap, reuseport_sockarray: slot = key index
    kHash,           // devmap_hash, sockhash
    kOwner,          // task/sk/inode/cgrp storage: stored key = OwnerKey
    kCgroupStorage,  // (percpu_)cgroup_storage: entries only for attached cgroups (none in user space)
  };
  // An owner of local storage, as bpf() and the helpers identify it.
  struct OwnerKey {
    std::uint64_t a = 0, b = 0;  // task: tid, start time; sk: cookie, 0; inode: dev, ino; cgroup: id, 0
  };
  static constexpr std::uint32_t kOwnerCapacity = 16384;
  static constexpr std::uint32_t kTaskStorage = 29, kCgrpStorage = 32;  // (Debian 12's uapi header lacks the last)
  // A task as an owner: its tid and start time (/proc/TID/stat), so that a new task that reuses a tid is
  // another owner. ENOENT when the task is gone. The calling thread's own answer is cached.
  static Result<OwnerKey> task_owner(std::uint32_t tid);

  static bool handles(std::uint32_t type);
  static bool is_local_storage(std::uint32_t type);  // task, sk, inode, cgrp
  static Result<std::shared_ptr<Map>> create(const MapDef& def, const std::string& storage_dir);
  static Result<std::shared_ptr<Map>> attach(const MapDef& def, os::SharedMemory memory);

  Kind kind() const { return kind_; }
  // What an entry holds: the key (the index, the user's key, or an OwnerKey) and the value bytes bpf()
  // made (a devmap's {ifindex, prog id}, a cpumap's {qsize, prog id}, a socket's cookie, a storage's
  // value).
  std::uint32_t stored_key_size() const;
  std::uint32_t stored_value_size() const;

  // Installs an entry, with the kernel's flags (BPF_ANY, BPF_NOEXIST, BPF_EXIST): EINVAL for others,
  // E2BIG past an array's end or when a hash is full, EEXIST / ENOENT as the flags say.
  Result<void> install(const void* key, const void* value, std::uint64_t flags);
  Result<void> fetch(const void* key, void* value) const;  // ENOENT when absent
  Result<void> remove(const void* key);                    // ENOENT when absent
  // A program's view: the stored value in place, or null.
  void* find(const void* key);

  // User space: lookups of what a type lets user space read (a devmap's or cpumap's value, a socket
  // map's cookie when values are 8 bytes: ENOSPC for 4, EOPNOTSUPP for an xskmap); deletes and
  // get_next_key as each type does them. Updates and the storages' keys are descriptors: bpf() turns
  // them into install()/fetch()/remove() calls.
  Result<void> lookup(const void* key, void* value) const override;
  Result<void> update(const void* key, const void* value, std::uint64_t flags) override;
  Result<void> erase(const void* key) override;
  Result<void> next_key(const void* key, void* next) const override;
  void* lookup_in_place(const void* key) override;

 private:
  struct Meta;
  struct Layout {
    std::uint32_t capacity = 0, buckets = 0, key_stride = 0, value_stride = 0;
    std::size_t slot_size = 0, payload = 0;
  };
  static Result<Layout> layout_for(const MapDef& def);
  ObjectMap(const MapDef& def, os::SharedMemory memory, Layout layout);
  Meta& meta() const;
  std::uint32_t* bucket_heads() const;
  std::uint8_t* slot(std::uint32_t index) const;  // 1-based for hashes; 0-based for arrays
  std::uint32_t bucket_of(const void* key) const;
  std::uint32_t find_slot(const void* key) const;  // hash kinds: 1-based index, 0 when absent; lock held
  Result<std::uint32_t> array_index(const void* key, Errc past_end) const;

  Layout layout_;
  Kind kind_;
};

}  // namespace bpfvm::maps
