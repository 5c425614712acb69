// Runtime::bpf: the kernel's bpf(2) commands over `union bpf_attr`, with the kernel's errno values.
// Pointers in attr (__aligned_u64) are addresses in this process.
#include <fcntl.h>
#include <linux/bpf.h>
#include <net/if.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "bpfvm/isa/codec.hpp"
#include "bpfvm/base/process.hpp"
#include "bpfvm/maps/cgroup_array.hpp"
#include "bpfvm/maps/cpu.hpp"
#include "bpfvm/maps/object_map.hpp"
#include "bpfvm/obj/btf.hpp"
#include "bpfvm/maps/perf_event_array.hpp"
#include "bpfvm/maps/prog_array.hpp"
#include "bpfvm/runtime/runtime.hpp"

namespace bpfvm::runtime {

namespace {

constexpr int kEnotsupp = 524;  // the kernel's internal ENOTSUPP, which bpf() returns for some commands

template <typename T = std::uint8_t>
T* user_ptr(std::uint64_t addr) {
  return reinterpret_cast<T*>(static_cast<std::uintptr_t>(addr));
}

long fail(int err) {
  errno = err;
  return -1;
}
long fail(const Error& e) { return fail(e.errno_value()); }

template <typename T>
Result<std::shared_ptr<T>> fd_as(const Runtime& rt, int fd) {
  auto obj = BPFVM_TRY(rt.object_for_fd(fd));
  if (auto* p = std::get_if<std::shared_ptr<T>>(&obj)) return *p;
  return make_error(Errc::kInvalid, "fd {} is not the right kind of object", fd);
}

// The descriptor in a map value: u32, or u64 for 8-byte values (above S32_MAX: EINVAL).
Result<int> value_fd(const maps::Map& m, const void* value) {
  std::uint64_t fd = 0;
  std::memcpy(&fd, value, m.def().value_size == 8 ? 8 : 4);
  if (fd > 0x7fffffff) return make_error(Errc::kInvalid, "fd {} is out of range", fd);
  return static_cast<int>(fd);
}

// A socket bpfvm may put into a sockmap or sockhash (sock_map_sk_is_suitable and
// sock_map_sk_state_allowed): TCP established or listening, UDP bound, unix streams connected, unix
// datagrams; EOPNOTSUPP for others.
Result<void> check_sockmap_socket(int fd) {
  const os::SocketFacts s = os::socket_facts(fd);
  auto unsupported = [&](std::string_view why) { return make_error(Errc::kNotSupported, "socket fd {} {}", fd, why); };
  if (s.domain == AF_INET || s.domain == AF_INET6) {
    if (s.protocol == IPPROTO_TCP && s.tcp_state != TCP_ESTABLISHED && s.tcp_state != TCP_LISTEN) {
      return unsupported("is a TCP socket neither established nor listening");
    }
    if (s.protocol == IPPROTO_UDP && !s.bound_port) return unsupported("is an unbound UDP socket");
    if (s.protocol != IPPROTO_TCP && s.protocol != IPPROTO_UDP) return unsupported("is neither TCP nor UDP");
    return {};
  }
  if (s.domain == AF_UNIX) {
    if (s.type == SOCK_STREAM && !s.connected) return unsupported("is an unconnected unix stream");
    return {};
  }
  return unsupported("is of a family a sockmap cannot hold");
}

// A socket for a reuseport_sockarray (reuseport_array_update_check): TCP or UDP over IPv4/6 (ENOTSUPP
// otherwise), listening or bound with SO_REUSEPORT (EINVAL otherwise).
Result<void> check_reuseport_socket(int fd) {
  const os::SocketFacts s = os::socket_facts(fd);
  if ((s.protocol != IPPROTO_TCP && s.protocol != IPPROTO_UDP) || (s.domain != AF_INET && s.domain != AF_INET6) ||
      (s.type != SOCK_STREAM && s.type != SOCK_DGRAM)) {
    return make_error(Errc::kKernelNotSupported, "socket fd {} is not a TCP or UDP socket over IPv4 or IPv6", fd);
  }
  const bool hashed = s.protocol == IPPROTO_TCP ? s.tcp_state == TCP_LISTEN : s.bound_port;
  if (!hashed || !s.reuseport) return make_error(Errc::kInvalid, "socket fd {} is not listening (TCP) or bound (UDP) with SO_REUSEPORT", fd);
  return {};
}

// A local storage's owner, named by the descriptor in the key (an int): a pidfd's task (EBADF for
// another file), a socket (ENOTSOCK), any file's inode, a cgroup directory (EBADF for another).
Result<maps::ObjectMap::OwnerKey> storage_owner(const maps::ObjectMap& m, const void* key) {
  std::int32_t fd;
  std::memcpy(&fd, key, 4);
  maps::ObjectMap::OwnerKey owner;
  switch (m.def().type) {
    case BPF_MAP_TYPE_SK_STORAGE: owner.a = BPFVM_TRY(os::socket_cookie(fd)); break;
    case BPF_MAP_TYPE_INODE_STORAGE: {
      struct stat st{};
      if (::fstat(fd, &st) != 0) return make_error(Errc::kBadFd, "fd {} is not open", fd);
      owner.a = st.st_dev;
      owner.b = st.st_ino;
      break;
    }
    case maps::ObjectMap::kTaskStorage: {
      const std::uint32_t pid = BPFVM_TRY(os::pid_of_pidfd(fd));
      owner = BPFVM_TRY(maps::ObjectMap::task_owner(pid));
      break;
    }
    default: {  // cgrp_storage
      auto cgroup = os::cgroup_of_fd(fd);
      if (!cgroup) return make_error(Errc::kBadFd, "fd {} is not a cgroup directory", fd);
      owner.a = cgroup->second;
      break;
    }
  }
  return owner;
}

// bpf()'s element commands on the maps of kernel objects and local storages.
long object_map_command(const Runtime& rt, int cmd, const union bpf_attr& a, maps::ObjectMap& m) {
  const void* key = user_ptr(a.key);
  void* value = user_ptr(a.value);
  const std::uint32_t type = m.def().type;
  const auto flags = a.flags;
  Result<void> r;
  // Pointers the command reads or writes (the kernel's copy_from_user / copy_to_user fail: EFAULT).
  const bool needs_value = cmd == BPF_MAP_LOOKUP_ELEM || cmd == BPF_MAP_UPDATE_ELEM || cmd == BPF_MAP_LOOKUP_AND_DELETE_ELEM;
  if ((!key && cmd != BPF_MAP_GET_NEXT_KEY) || (needs_value && !value) || (cmd == BPF_MAP_GET_NEXT_KEY && !a.next_key)) {
    return fail(EFAULT);
  }
  if (type == BPF_MAP_TYPE_STRUCT_OPS) {
    // Nothing is registered (the kernel's update registers the callbacks with a kernel subsystem, which
    // user space does not have): the value reads as the kernel's unregistered one, zeroed.
    std::uint32_t index;
    std::memcpy(&index, key ? key : "\0\0\0", 4);
    switch (cmd) {
      case BPF_MAP_LOOKUP_ELEM:
        if (index != 0) return fail(ENOENT);
        std::memset(value, 0, m.def().value_size);
        return 0;
      case BPF_MAP_UPDATE_ELEM: return fail(EOPNOTSUPP);
      case BPF_MAP_DELETE_ELEM: return fail(ENOENT);
      case BPF_MAP_GET_NEXT_KEY: r = m.next_key(a.key ? key : nullptr, user_ptr(a.next_key)); return r ? 0 : fail(r.error());
      default: return fail(kEnotsupp);
    }
  }
  if (m.kind() == maps::ObjectMap::Kind::kOwner) {
    // Lookups take BPF_F_LOCK only, updates BPF_ANY / BPF_NOEXIST / BPF_EXIST (and BPF_F_LOCK, for a
    // value with a lock: bpfvm's storages have none); no walk, no lookup-and-delete.
    if (cmd == BPF_MAP_GET_NEXT_KEY || cmd == BPF_MAP_LOOKUP_AND_DELETE_ELEM) return fail(kEnotsupp);
    if (cmd == BPF_MAP_LOOKUP_ELEM && (flags & ~static_cast<std::uint64_t>(BPF_F_LOCK))) return fail(EINVAL);
    if (cmd == BPF_MAP_UPDATE_ELEM && (flags & ~static_cast<std::uint64_t>(BPF_F_LOCK)) > BPF_EXIST) return fail(EINVAL);
    if ((flags & BPF_F_LOCK) && m.def().spin_lock_off < 0) return fail(EINVAL);
    auto owner = storage_owner(m, key);
    if (!owner) return fail(owner.error());
    if (cmd == BPF_MAP_LOOKUP_ELEM) r = m.fetch(&*owner, value);
    else if (cmd == BPF_MAP_UPDATE_ELEM && m.frozen()) return fail(EPERM);
    else if (cmd == BPF_MAP_UPDATE_ELEM) r = m.install(&*owner, value, flags);
    else r = m.remove(&*owner);
    return r ? 0 : fail(r.error());
  }
  switch (cmd) {
    case BPF_MAP_LOOKUP_ELEM:
      if (flags) return fail(EINVAL);
      r = m.lookup(key, value);
      break;
    case BPF_MAP_DELETE_ELEM: r = m.erase(key); break;
    case BPF_MAP_GET_NEXT_KEY: r = m.next_key(a.key ? key : nullptr, user_ptr(a.next_key)); break;
    case BPF_MAP_LOOKUP_AND_DELETE_ELEM: return fail(kEnotsupp);
    case BPF_MAP_UPDATE_ELEM: {
      if (m.frozen()) return fail(EPERM);
      if (m.kind() == maps::ObjectMap::Kind::kCgroupStorage) {
        // Only the entries of attached cgroups exist (cgroup_storage_update_elem).
        if (flags & ~static_cast<std::uint64_t>(BPF_EXIST | BPF_F_LOCK) || flags == BPF_NOEXIST) return fail(EINVAL);
        return fail(ENOENT);
      }
      std::uint32_t index;
      std::memcpy(&index, key, 4);
      const bool array = m.kind() == maps::ObjectMap::Kind::kArray;
      if (type == BPF_MAP_TYPE_DEVMAP || type == BPF_MAP_TYPE_DEVMAP_HASH || type == BPF_MAP_TYPE_CPUMAP) {
        // A device (ifindex) or a CPU's queue size, and an XDP program to run there (fd > 0).
        if (flags > BPF_EXIST) return fail(EINVAL);
        if (array && index >= m.def().max_entries) return fail(E2BIG);
        if (array && flags == BPF_NOEXIST) return fail(EEXIST);  // arrays are never "not there" (dev_map_update_elem)
        std::uint32_t v[2] = {0, 0};
        std::memcpy(v, value, m.def().value_size);
        const auto prog_fd = static_cast<std::int32_t>(v[1]);
        if (type == BPF_MAP_TYPE_CPUMAP) {
          if (v[0] > 16384) return fail(EOVERFLOW);  // the kernel's largest queue
          if (index >= maps::possible_cpus()) return fail(ENODEV);
          if (v[0] == 0) {
            (void)m.remove(key);  // a queue size of 0 empties the slot
            return 0;
          }
        } else if (type == BPF_MAP_TYPE_DEVMAP && v[0] == 0) {
          if (prog_fd > 0) return fail(EINVAL);
          (void)m.remove(key);  // ifindex 0 empties a devmap's slot
          return 0;
        } else {
          char name[IF_NAMESIZE];
          if (!::if_indextoname(v[0], name)) return fail(EINVAL);  // no such device (dev_get_by_index)
        }
        v[1] = 0;
        if (m.def().value_size == 8 && prog_fd > 0) {
          // The program runs on the device's or CPU's packets in the kernel; here its id is kept, as
          // lookups report it. It must be XDP for this map (expected_attach_type BPF_XDP_DEVMAP/CPUMAP).
          auto prog = fd_as<Program>(rt, prog_fd);
          const std::uint32_t want = type == BPF_MAP_TYPE_CPUMAP ? BPF_XDP_CPUMAP : BPF_XDP_DEVMAP;
          if (!prog || (*prog)->type() != BPF_PROG_TYPE_XDP || (*prog)->expected_attach_type() != want) {
            return fail(type == BPF_MAP_TYPE_CPUMAP ? ENOMEM : EINVAL);
          }
          v[1] = (*prog)->id();
        }
        // An array's slot is always there; a devmap_hash creates the key under BPF_EXIST too
        // (__dev_map_hash_update_elem refuses only BPF_NOEXIST on a present key).
        r = m.install(key, v, flags == BPF_NOEXIST && !array ? flags : std::uint64_t{BPF_ANY});
        break;
      }
      // Sockets: stored by their cookie.
      const bool reuseport = type == BPF_MAP_TYPE_REUSEPORT_SOCKARRAY;
      if (reuseport || type == BPF_MAP_TYPE_XSKMAP) {
        if (flags > BPF_EXIST) return fail(EINVAL);
        if (index >= m.def().max_entries) return fail(E2BIG);
      }
      auto fd = value_fd(m, value);
      if (!fd) return fail(fd.error());
      auto cookie = os::socket_cookie(*fd);
      if (!cookie) return fail(cookie.error());
      if (type == BPF_MAP_TYPE_XSKMAP) {
        if (os::socket_facts(*fd).domain != AF_XDP) return fail(EOPNOTSUPP);
      } else if (reuseport) {
        std::uint64_t old;
        const bool present = static_cast<bool>(m.fetch(key, &old));
        if (present && flags == BPF_NOEXIST) return fail(EEXIST);
        if (!present && flags == BPF_EXIST) return fail(ENOENT);
        if (auto ok = check_reuseport_socket(*fd); !ok) return fail(ok.error());
      } else if (auto ok = check_sockmap_socket(*fd); !ok) {
        return fail(ok.error());
      }
      r = m.install(key, &*cookie, flags);
      break;
    }
    default: return fail(EINVAL);
  }
  return r ? 0 : fail(r.error());
}

// Copies an info struct out: at most the user's info_len bytes; bytes the user passes beyond what bpfvm
// knows must be zero (E2BIG otherwise), as bpf_check_uarg_tail_zero.
template <typename Info>
long finish_info(union bpf_attr* attr, const Info& info) {
  const std::uint32_t user_len = attr->info.info_len;
  std::uint8_t* dst = user_ptr(attr->info.info);
  for (std::uint32_t i = sizeof(Info); i < user_len; ++i) {
    if (dst[i]) return fail(E2BIG);
  }
  const std::uint32_t n = std::min<std::uint32_t>(user_len, sizeof(Info));
  std::memcpy(dst, &info, n);
  attr->info.info_len = n;
  return 0;
}

template <typename Info>
Info info_in(const union bpf_attr* attr) {
  Info info{};
  std::memcpy(&info, user_ptr(attr->info.info), std::min<std::size_t>(attr->info.info_len, sizeof(Info)));
  return info;
}

void write_log(std::uint64_t buf, std::uint32_t size, const std::string& text) {
  if (!buf || size == 0) return;
  const std::size_t n = std::min<std::size_t>(text.size(), size - 1);
  std::memcpy(user_ptr(buf), text.data(), n);
  user_ptr(buf)[n] = 0;
}

}  // namespace

long Runtime::bpf(int cmd, union bpf_attr* attr, unsigned int size) {
  if (!attr) return fail(EFAULT);
  if (size > sizeof(union bpf_attr)) {
    const auto* extra = reinterpret_cast<const std::uint8_t*>(attr);
    for (unsigned i = sizeof(union bpf_attr); i < size; ++i) {
      if (extra[i]) return fail(E2BIG);
    }
  }
  // A shorter attr is zero-extended, as the kernel does.
  union bpf_attr a {};
  std::memcpy(&a, attr, std::min<std::size_t>(size, sizeof a));
  auto write_back = [&] { std::memcpy(attr, &a, std::min<std::size_t>(size, sizeof a)); };

  switch (cmd) {
    case BPF_MAP_CREATE: {
      if (a.map_type == BPF_MAP_TYPE_STRUCT_OPS) {
        // bpf_struct_ops_map_alloc_check, then the value type: one of the kernel's struct_ops value
        // types (bpf_struct_ops_tcp_congestion_ops...) by its id in the kernel's BTF, ENOTSUPP for any
        // other, and value_size its size.
        constexpr std::uint32_t kLink = 1u << 13, kVtypeBtfObjFd = 1u << 15;  // BPF_F_LINK, BPF_F_VTYPE_BTF_OBJ_FD
        if (a.key_size != 4 || a.max_entries != 1 || (a.map_flags & ~(kLink | kVtypeBtfObjFd)) || !a.btf_vmlinux_value_type_id) {
          return fail(EINVAL);
        }
        auto kernel = obj::running_kernel_btf();
        if (!kernel) return fail(kEnotsupp);
        const std::string_view name = (*kernel)->type_name(a.btf_vmlinux_value_type_id);
        if (!name.starts_with("bpf_struct_ops_") || (*kernel)->find_struct(name) != a.btf_vmlinux_value_type_id) {
          return fail(kEnotsupp);
        }
        if (a.value_size != (*kernel)->type_size(a.btf_vmlinux_value_type_id)) return fail(EINVAL);
        // map_create: the object's BTF too (its programs' types are how a loader matched the kernel's).
        if (!fd_as<BtfObject>(*this, static_cast<int>(a.btf_fd))) return fail(EINVAL);
      }
      MapCreateRequest req;
      req.def = {a.map_type, a.key_size, a.value_size, a.max_entries, a.map_flags,
                 std::string(a.map_name, strnlen(a.map_name, sizeof a.map_name)), a.map_extra};
      if (req.def.type == BPF_MAP_TYPE_ARRAY_OF_MAPS || req.def.type == BPF_MAP_TYPE_HASH_OF_MAPS) {
        auto inner = fd_as<Map>(*this, static_cast<int>(a.inner_map_fd));
        if (!inner) return fail(EBADF);
        req.inner = (*inner)->def();
      }
      if (a.btf_fd) {
        auto btf = fd_as<BtfObject>(*this, static_cast<int>(a.btf_fd));
        if (!btf) return fail(EINVAL);
        req.btf = *btf;
        req.btf_key_type_id = a.btf_key_type_id;
        req.btf_value_type_id = a.btf_value_type_id;
      }
      auto map = create_map(req);
      if (!map) return fail(map.error());
      return install_fd(*map);
    }
    case BPF_MAP_LOOKUP_ELEM:
    case BPF_MAP_UPDATE_ELEM:
    case BPF_MAP_DELETE_ELEM:
    case BPF_MAP_GET_NEXT_KEY:
    case BPF_MAP_LOOKUP_AND_DELETE_ELEM: {
      // CHECK_ATTR: the fields after a command's last one must be zero (delete ends at key, get_next_key
      // at next_key).
      if ((cmd == BPF_MAP_DELETE_ELEM && (a.value || a.flags)) || (cmd == BPF_MAP_GET_NEXT_KEY && a.flags)) {
        return fail(EINVAL);
      }
      auto map = fd_as<Map>(*this, static_cast<int>(a.map_fd));
      if (!map) return fail(EBADF);
      maps::Map& m = (*map)->impl();
      const void* key = user_ptr(a.key);
      Result<void> r;
      // A map without keys takes no key pointer (the kernel's __bpf_copy_key).
      if (m.def().key_size == 0 && a.key) return fail(EINVAL);
      if (auto* om = dynamic_cast<maps::ObjectMap*>(&m)) return object_map_command(*this, cmd, a, *om);
      if (m.is_keyless()) {
        // Queues, stacks and bloom filters: no key; lookup peeks, update pushes, lookup-and-delete pops.
        if (cmd == BPF_MAP_LOOKUP_ELEM) {
          r = m.peek(user_ptr(a.value));
        } else if (cmd == BPF_MAP_UPDATE_ELEM) {
          if (m.frozen()) return fail(EPERM);
          r = m.push(user_ptr(a.value), a.flags);
        } else if (cmd == BPF_MAP_LOOKUP_AND_DELETE_ELEM) {
          if (m.def().type == BPF_MAP_TYPE_BLOOM_FILTER) return fail(kEnotsupp);
          if (m.frozen()) return fail(EPERM);
          r = m.pop(user_ptr(a.value));
        } else {
          return fail(m.def().type == BPF_MAP_TYPE_BLOOM_FILTER ? EOPNOTSUPP : EINVAL);
        }
        if (!r) return fail(r.error());
        return 0;
      }
      if (cmd == BPF_MAP_LOOKUP_ELEM) {
        // Perf events cannot be read back (no map_fd_sys_lookup_elem).
        if (m.def().type == BPF_MAP_TYPE_PERF_EVENT_ARRAY || m.def().type == BPF_MAP_TYPE_CGROUP_ARRAY) return fail(kEnotsupp);
        if (a.flags & ~static_cast<std::uint64_t>(BPF_F_LOCK)) return fail(EINVAL);
        r = (a.flags & BPF_F_LOCK) ? m.lookup_locked(key, user_ptr(a.value)) : m.lookup(key, user_ptr(a.value));
      } else if (cmd == BPF_MAP_UPDATE_ELEM) {
        if (a.flags & BPF_F_LOCK) {
          r = m.update_locked(key, user_ptr(a.value), a.flags);
        } else if (m.def().type == BPF_MAP_TYPE_CGROUP_ARRAY) {
          // The value is the descriptor of a cgroup2 directory (cgroup_fd_array_get_ptr): EBADF otherwise.
          std::uint32_t value_fd;
          std::memcpy(&value_fd, user_ptr(a.value), 4);
          auto cgroup = os::cgroup_of_fd(static_cast<int>(value_fd));
          if (!cgroup) return fail(EBADF);
          r = static_cast<maps::CgroupArray&>(m).set_cgroup(key, cgroup->first, cgroup->second, a.flags);
        } else if (const bool takes_fds = m.def().type == BPF_MAP_TYPE_PROG_ARRAY ||
                                          m.def().type == BPF_MAP_TYPE_PERF_EVENT_ARRAY || m.inner_def();
                   takes_fds) {
          // Maps of fds: the value names a program, a perf event or a map; EBADF for anything else.
          std::uint32_t value_fd;
          std::memcpy(&value_fd, user_ptr(a.value), 4);
          const int fd = static_cast<int>(value_fd);
          if (m.def().type == BPF_MAP_TYPE_PROG_ARRAY) {
            auto prog = fd_as<Program>(*this, fd);
            if (!prog) return fail(EBADF);
            r = static_cast<maps::ProgArray&>(m).set_program(key, *prog, (*prog)->id(), (*prog)->type(), a.flags);
          } else if (m.def().type == BPF_MAP_TYPE_PERF_EVENT_ARRAY) {
            auto event = fd_as<maps::PerfEvent>(*this, fd);
            if (!event) {
              // A counting event of the kernel's, for bpf_perf_event_read: the map keeps a descriptor of
              // its own (as the kernel's map holds the event), closed when the slot changes.
              const auto counter = kernel_counter(fd);
              if (!counter) return fail(EBADF);
              const int kept = ::fcntl(fd, F_DUPFD_CLOEXEC, 3);
              if (kept < 0) return fail(errno);
              maps::PerfEventArray::Counter c;
              c.pid = static_cast<std::int32_t>(::getpid());
              c.fd = kept;
              c.cpu = counter->cpu;
              c.tid = counter->tid;
              c.read_format = counter->read_format;
              c.opened_ns = counter->opened_ns;
              r = static_cast<maps::PerfEventArray&>(m).set_counter(key, c, a.flags);
              if (!r) ::close(kept);
            } else {
              // An application's BPF output event gets its buffer at mmap (interpose): until then bpfvm
              // has nowhere to put samples (the kernel would drop them).
              if (!*event) return fail(EINVAL);
              r = static_cast<maps::PerfEventArray&>(m).set_event(key, *event, a.flags);
            }
          } else {
            auto inner = fd_as<Map>(*this, fd);
            if (!inner) return fail(EBADF);
            r = m.update_inner(key, (*inner)->shared_impl(), a.flags);
          }
        } else {
          r = m.update(key, user_ptr(a.value), a.flags);
        }
      } else if (cmd == BPF_MAP_DELETE_ELEM) {
        r = m.erase(key);
      } else if (cmd == BPF_MAP_GET_NEXT_KEY) {
        r = m.next_key(a.key ? key : nullptr, user_ptr(a.next_key));
      } else {
        // Hashes support lookup-and-delete (keyless maps are handled above); arrays do not.
        const auto t = m.def().type;
        if (t != BPF_MAP_TYPE_HASH && t != BPF_MAP_TYPE_PERCPU_HASH && t != BPF_MAP_TYPE_LRU_HASH &&
            t != BPF_MAP_TYPE_LRU_PERCPU_HASH && t != BPF_MAP_TYPE_LPM_TRIE) {
          return fail(kEnotsupp);
        }
        if (m.frozen()) return fail(EPERM);
        r = m.lookup(key, user_ptr(a.value));
        if (r) r = m.erase(key);
      }
      if (!r) return fail(r.error());
      return 0;
    }
    case BPF_MAP_LOOKUP_BATCH:
    case BPF_MAP_LOOKUP_AND_DELETE_BATCH:
    case BPF_MAP_UPDATE_BATCH:
    case BPF_MAP_DELETE_BATCH: {
      auto map = fd_as<Map>(*this, static_cast<int>(a.batch.map_fd));
      if (!map) return fail(EBADF);
      maps::Map& m = (*map)->impl();
      const std::uint32_t ks = m.def().key_size, vs = static_cast<std::uint32_t>(m.user_value_size());
      if (a.batch.flags) return fail(EINVAL);
      const std::uint32_t count = a.batch.count;
      std::uint32_t done = 0;
      auto* keys = user_ptr(a.batch.keys);
      auto* values = user_ptr(a.batch.values);
      if (cmd == BPF_MAP_UPDATE_BATCH || cmd == BPF_MAP_DELETE_BATCH) {
        for (; done < count; ++done) {
          auto r = cmd == BPF_MAP_UPDATE_BATCH ? m.update(keys + done * ks, values + done * vs, a.batch.elem_flags)
                                               : m.erase(keys + done * ks);
          if (!r) {
            a.batch.count = done;
            write_back();
            return fail(r.error());
          }
        }
        a.batch.count = done;
        write_back();
        return 0;
      }
      if (cmd == BPF_MAP_LOOKUP_AND_DELETE_BATCH && m.def().type != BPF_MAP_TYPE_HASH) return fail(EINVAL);
      if (count == 0) return fail(EINVAL);
      // The batch token is a u32 position in the map's key order (opaque to user space).
      std::uint32_t position = 0;
      if (a.batch.in_batch) std::memcpy(&position, user_ptr(a.batch.in_batch), 4);
      std::vector<std::uint8_t> key(ks), next(ks);
      bool have = false;
      std::uint32_t skipped = 0;
      const bool deleting = cmd == BPF_MAP_LOOKUP_AND_DELETE_BATCH;
      while (skipped < (deleting ? 0u : position) && m.next_key(have ? key.data() : nullptr, next.data())) {
        key = next;
        have = true;
        ++skipped;
      }
      std::vector<std::vector<std::uint8_t>> to_delete;
      bool end = false;
      while (done < count) {
        if (!m.next_key(have ? key.data() : nullptr, next.data())) {
          end = true;
          break;
        }
        key = next;
        have = true;
        if (!m.lookup(key.data(), values + done * vs)) continue;  // gone meanwhile
        std::memcpy(keys + done * ks, key.data(), ks);
        if (deleting) to_delete.push_back(key);
        ++done;
      }
      if (!end && done == count && !m.next_key(key.data(), next.data())) end = true;
      for (const auto& k : to_delete) (void)m.erase(k.data());
      const std::uint32_t out = deleting ? 0 : position + done;
      if (a.batch.out_batch) std::memcpy(user_ptr(a.batch.out_batch), &out, 4);
      a.batch.count = done;
      write_back();
      return end ? fail(ENOENT) : 0;
    }
    case BPF_MAP_FREEZE: {
      auto map = fd_as<Map>(*this, static_cast<int>(a.map_fd));
      if (!map) return fail(EBADF);
      // A frozen map has no write permission left on any fd (the kernel's map_get_sys_perms), and
      // map_freeze checks that before it checks for a freeze: EPERM, not EBUSY.
      if ((*map)->impl().frozen()) return fail(EPERM);
      (*map)->impl().freeze();
      return 0;
    }
    case BPF_PROG_LOAD: {
      ProgramLoadRequest req;
      req.prog_type = a.prog_type;
      req.expected_attach_type = a.expected_attach_type;
      // attach_prog_fd (the same field as attach_btf_obj_fd): a program, for an extension (freplace); a
      // target in a module's BTF is not one bpfvm has: the kernel's own only.
      if (a.attach_prog_fd) {
        auto target = fd_as<Program>(*this, static_cast<int>(a.attach_prog_fd));
        if (!target) return fail(EINVAL);
        req.attach_program = *target;
      }
      req.attach_btf_id = a.attach_btf_id;
      req.sleepable = a.prog_flags & BPF_F_SLEEPABLE;
      req.name = std::string(a.prog_name, strnlen(a.prog_name, sizeof a.prog_name));
      if (a.license) req.license = std::string(user_ptr<const char>(a.license), strnlen(user_ptr<const char>(a.license), 128));
      if (a.log_level || a.log_buf || a.log_size) {
        if (!a.log_buf || a.log_size < 128 || !a.log_level || a.log_level > 7) return fail(EINVAL);
      }
      if (a.insn_cnt == 0 || a.insn_cnt > 1'000'000 || !a.insns) return fail(a.insn_cnt ? E2BIG : EINVAL);
      auto insns = isa::from_wire({user_ptr<const std::uint8_t>(a.insns), std::size_t{a.insn_cnt} * 8});
      if (!insns) return fail(EINVAL);
      req.insns = std::move(*insns);
      // Map fds (and fd_array indexes) become indexes into the request's map list.
      std::map<int, std::uint32_t> index_of_fd;
      for (std::size_t i = 0; i + 1 < req.insns.size(); ++i) {
        isa::RawInsn& in = req.insns[i];
        if (!in.is_lddw()) continue;
        int fd = -1;
        if (in.src == BPF_PSEUDO_MAP_FD || in.src == BPF_PSEUDO_MAP_VALUE) {
          fd = in.imm;
        } else if (in.src == BPF_PSEUDO_MAP_IDX || in.src == BPF_PSEUDO_MAP_IDX_VALUE) {
          if (!a.fd_array) return fail(EPROTO);
          fd = user_ptr<const std::int32_t>(a.fd_array)[in.imm];
        }
        if (fd >= 0) {
          auto map = fd_as<Map>(*this, fd);
          if (!map) {
            const std::string msg = fmt::format("fd {} is not pointing to valid bpf_map\n", fd);
            write_log(a.log_buf, a.log_size, msg);
            return fail(EBADF);
          }
          auto [it, added] = index_of_fd.emplace(fd, static_cast<std::uint32_t>(req.maps.size()));
          if (added) req.maps.push_back(*map);
          const bool value = in.src == BPF_PSEUDO_MAP_VALUE || in.src == BPF_PSEUDO_MAP_IDX_VALUE;
          in.src = value ? BPF_PSEUDO_MAP_IDX_VALUE : BPF_PSEUDO_MAP_IDX;
          in.imm = static_cast<std::int32_t>(it->second);
        }
        ++i;
      }
      if (a.prog_btf_fd) {
        auto btf = fd_as<BtfObject>(*this, static_cast<int>(a.prog_btf_fd));
        if (!btf) return fail(EBADF);
        req.btf = *btf;
      }
      if (a.func_info_cnt) {
        if (a.func_info_rec_size < 8 || a.func_info_rec_size % 4) return fail(EINVAL);
        for (std::uint32_t i = 0; i < a.func_info_cnt; ++i) {
          const auto* rec = user_ptr<const std::uint32_t>(a.func_info + std::uint64_t{i} * a.func_info_rec_size);
          req.func_info.push_back({rec[0], rec[1]});
        }
      }
      if (a.line_info_cnt) {
        if (a.line_info_rec_size < 16 || a.line_info_rec_size % 4) return fail(EINVAL);
        for (std::uint32_t i = 0; i < a.line_info_cnt; ++i) {
          const auto* rec = user_ptr<const std::uint32_t>(a.line_info + std::uint64_t{i} * a.line_info_rec_size);
          req.line_info.push_back({rec[0], rec[1], rec[2], rec[3]});
        }
      }
      std::string log;
      req.log_level = a.log_buf ? a.log_level : 0;
      auto prog = load_program(std::move(req), &log);
      if (!prog) {
        write_log(a.log_buf, a.log_size, log + "\n");
        return fail(prog.error());
      }
      write_log(a.log_buf, a.log_size, log);
      return install_fd(*prog);
    }
    case BPF_OBJ_PIN: {
      auto obj = object_for_fd(static_cast<int>(a.bpf_fd));
      if (!obj) return fail(EBADF);
      if (!a.pathname) return fail(EFAULT);
      auto r = pin(user_ptr<const char>(a.pathname), *obj);
      if (!r) return fail(r.error());
      return 0;
    }
    case BPF_OBJ_GET: {
      if (!a.pathname) return fail(EFAULT);
      auto obj = open_pinned(user_ptr<const char>(a.pathname));
      if (!obj) return fail(obj.error());
      return install_fd(*obj);
    }
    case BPF_PROG_TEST_RUN: {
      auto prog = fd_as<Program>(*this, static_cast<int>(a.test.prog_fd));
      if (!prog) return fail(EBADF);
      if (a.test.flags & ~static_cast<std::uint32_t>(BPF_F_TEST_RUN_ON_CPU)) return fail(EINVAL);
      if ((a.test.data_size_in && !a.test.data_in) || (a.test.ctx_size_in && !a.test.ctx_in)) return fail(EINVAL);
      TestRunRequest req;
      req.data_in = {user_ptr<const std::uint8_t>(a.test.data_in), a.test.data_size_in};
      req.ctx_in = {user_ptr<const std::uint8_t>(a.test.ctx_in), a.test.ctx_size_in};
      req.repeat = a.test.repeat;
      const bool syscall_prog = (*prog)->type() == BPF_PROG_TYPE_SYSCALL;
      if (syscall_prog) {
        // bpf_prog_test_run_syscall: ctx_in and nothing else; the context is written back there.
        if (a.test.data_in || a.test.data_out || a.test.ctx_out || a.test.duration || a.test.repeat || a.test.flags ||
            a.test.batch_size) {
          return fail(EINVAL);
        }
        req.runtime = this;
      }
      auto result = (*prog)->test_run(req);
      if (!result) return fail(result.error());
      if (syscall_prog) {
        if (a.test.ctx_in && !result->ctx_out.empty()) {
          std::memcpy(user_ptr(a.test.ctx_in), result->ctx_out.data(), result->ctx_out.size());
        }
        a.test.retval = result->retval;
        write_back();
        return 0;
      }
      int err = 0;
      // bpf_test_finish: data_size_out 0 means "no limit" (the old interface).
      const auto data_size = static_cast<std::uint32_t>(result->data_out.size());
      std::uint32_t copy = data_size;
      if (a.test.data_size_out && copy > a.test.data_size_out) {
        copy = a.test.data_size_out;
        err = ENOSPC;
      }
      if (a.test.data_out) std::memcpy(user_ptr(a.test.data_out), result->data_out.data(), copy);
      a.test.data_size_out = data_size;
      if (a.test.ctx_out && !result->ctx_out.empty()) {
        std::uint32_t ccopy = static_cast<std::uint32_t>(result->ctx_out.size());
        if (ccopy > a.test.ctx_size_out) {
          ccopy = a.test.ctx_size_out;
          err = ENOSPC;
        }
        std::memcpy(user_ptr(a.test.ctx_out), result->ctx_out.data(), ccopy);
        a.test.ctx_size_out = static_cast<std::uint32_t>(result->ctx_out.size());
      }
      a.test.retval = result->retval;
      a.test.duration = result->duration_ns;
      write_back();
      return err ? fail(err) : 0;
    }
    case BPF_PROG_GET_NEXT_ID:
    case BPF_MAP_GET_NEXT_ID:
    case BPF_BTF_GET_NEXT_ID:
    case BPF_LINK_GET_NEXT_ID: {
      const int kind = cmd == BPF_PROG_GET_NEXT_ID ? 0 : cmd == BPF_MAP_GET_NEXT_ID ? 1 : cmd == BPF_BTF_GET_NEXT_ID ? 2 : 3;
      const std::uint32_t next = next_id(kind, a.start_id);
      if (!next) return fail(ENOENT);
      a.next_id = next;
      write_back();
      return 0;
    }
    case BPF_PROG_GET_FD_BY_ID: {
      auto p = program_by_id(a.prog_id);
      return p ? install_fd(p) : fail(ENOENT);
    }
    case BPF_MAP_GET_FD_BY_ID: {
      auto m = map_by_id(a.map_id);
      return m ? install_fd(m) : fail(ENOENT);
    }
    case BPF_BTF_GET_FD_BY_ID: {
      auto b = btf_by_id(a.btf_id);
      return b ? install_fd(b) : fail(ENOENT);
    }
    case BPF_LINK_GET_FD_BY_ID: {
      auto l = link_by_id(a.link_id);
      return l ? install_fd(l) : fail(ENOENT);
    }
    case BPF_OBJ_GET_INFO_BY_FD: {
      auto obj = object_for_fd(static_cast<int>(a.info.bpf_fd));
      if (!obj) return fail(EBADF);
      if (!a.info.info) return fail(EFAULT);
      long rc = 0;
      if (auto* pp = std::get_if<std::shared_ptr<Program>>(&*obj)) {
        const Program& p = **pp;
        auto info = info_in<struct bpf_prog_info>(&a);
        struct bpf_prog_info out {};
        out.type = p.type();
        out.id = p.id();
        std::memcpy(out.tag, p.tag().data(), sizeof out.tag);
        out.xlated_prog_len = static_cast<std::uint32_t>(p.xlated().size() * 8);
        if (info.xlated_prog_insns && info.xlated_prog_len) {
          const auto wire = isa::to_wire(p.xlated());
          std::memcpy(user_ptr(info.xlated_prog_insns), wire.data(), std::min<std::size_t>(info.xlated_prog_len, wire.size()));
          out.xlated_prog_insns = info.xlated_prog_insns;
        }
        // The native image, when the program runs in the JIT (0 bytes in the interpreter, as the kernel
        // reports for a program it did not JIT).
        if (const vm::JitProgram* jit = p.jited()) {
          out.jited_prog_len = static_cast<std::uint32_t>(jit->code().size());
          if (info.jited_prog_insns && info.jited_prog_len) {
            std::memcpy(user_ptr(info.jited_prog_insns), jit->code().data(),
                        std::min<std::size_t>(info.jited_prog_len, jit->code().size()));
            out.jited_prog_insns = info.jited_prog_insns;
          }
        }
        out.load_time = static_cast<std::uint64_t>(
            std::chrono::duration_cast<std::chrono::nanoseconds>(p.load_time().time_since_epoch()).count());
        out.nr_map_ids = static_cast<std::uint32_t>(p.maps().size());
        if (info.map_ids && info.nr_map_ids) {
          auto* ids = user_ptr<std::uint32_t>(info.map_ids);
          for (std::size_t i = 0; i < p.maps().size() && i < info.nr_map_ids; ++i) ids[i] = p.maps()[i]->id();
          out.map_ids = info.map_ids;
        }
        std::strncpy(out.name, p.name().c_str(), sizeof out.name - 1);
        out.gpl_compatible = gpl_compatible(p.license());
        out.btf_id = p.btf() ? p.btf()->id() : 0;
        out.func_info_rec_size = 8;
        out.nr_func_info = static_cast<std::uint32_t>(p.func_info().size());
        if (info.func_info && info.nr_func_info) {
          auto* dst = user_ptr<std::uint32_t>(info.func_info);
          for (std::size_t i = 0; i < p.func_info().size() && i < info.nr_func_info; ++i) {
            dst[2 * i] = p.func_info()[i].insn;
            dst[2 * i + 1] = p.func_info()[i].type_id;
          }
          out.func_info = info.func_info;
        }
        out.line_info_rec_size = 16;
        out.nr_line_info = static_cast<std::uint32_t>(p.line_info().size());
        if (info.line_info && info.nr_line_info) {
          auto* dst = user_ptr<std::uint32_t>(info.line_info);
          for (std::size_t i = 0; i < p.line_info().size() && i < info.nr_line_info; ++i) {
            const auto& l = p.line_info()[i];
            dst[4 * i] = l.insn;
            dst[4 * i + 1] = l.file_name_off;
            dst[4 * i + 2] = l.line_off;
            dst[4 * i + 3] = l.line_col;
          }
          out.line_info = info.line_info;
        }
        out.run_time_ns = p.run_time_ns();
        out.run_cnt = p.run_count();
        out.verified_insns = static_cast<std::uint32_t>(p.verified().insns_processed);
        rc = finish_info(&a, out);
      } else if (auto* mp = std::get_if<std::shared_ptr<Map>>(&*obj)) {
        const Map& m = **mp;
        struct bpf_map_info out {};
        out.type = m.def().type;
        out.id = m.id();
        out.key_size = m.def().key_size;
        out.value_size = m.def().value_size;
        out.max_entries = m.def().max_entries;
        out.map_flags = m.def().map_flags;
        std::strncpy(out.name, m.name().c_str(), sizeof out.name - 1);
        out.btf_id = m.btf() ? m.btf()->id() : 0;
        out.btf_key_type_id = m.btf_key_type_id();
        out.btf_value_type_id = m.btf_value_type_id();
        rc = finish_info(&a, out);
      } else if (auto* bp = std::get_if<std::shared_ptr<BtfObject>>(&*obj)) {
        const BtfObject& b = **bp;
        auto info = info_in<struct bpf_btf_info>(&a);
        struct bpf_btf_info out {};
        out.id = b.id();
        out.btf_size = static_cast<std::uint32_t>(b.btf().bytes().size());
        if (info.btf && info.btf_size) {
          std::memcpy(user_ptr(info.btf), b.btf().bytes().data(), std::min<std::size_t>(info.btf_size, out.btf_size));
          out.btf = info.btf;
        }
        rc = finish_info(&a, out);
      } else if (auto* lp = std::get_if<std::shared_ptr<Link>>(&*obj)) {
        struct bpf_link_info out {};
        out.id = (*lp)->id();
        out.prog_id = (*lp)->program()->id();
        rc = finish_info(&a, out);
      }
      if (rc == 0) write_back();
      return rc;
    }
    case BPF_BTF_LOAD: {
      if (!a.btf || a.btf_size == 0) return fail(EINVAL);
      auto btf = load_btf({user_ptr<const std::uint8_t>(a.btf), a.btf_size});
      if (!btf) {
        if (a.btf_log_level) write_log(a.btf_log_buf, a.btf_log_size, btf.error().to_string() + "\n");
        return fail(btf.error());
      }
      return install_fd(*btf);
    }
    case BPF_LINK_CREATE: {
      auto prog = fd_as<Program>(*this, static_cast<int>(a.link_create.prog_fd));
      if (!prog) return fail(EBADF);
      if (a.link_create.attach_type == BPF_PERF_EVENT) {
        // bpf_perf_link_attach: the target is a perf event fd (EBADF for anything else, as perf_event_get).
        auto point = fd_as<PerfAttachPoint>(*this, static_cast<int>(a.link_create.target_fd));
        if (!point) return fail(EBADF);
        if (a.link_create.flags) return fail(EINVAL);
        auto link = link_perf_event(*prog, **point, a.link_create.perf_event.bpf_cookie);
        if (!link) return fail(link.error());
        return install_fd(*link);
      }
      auto link = create_link(*prog, a.link_create.attach_type, a.link_create.target_fd);
      if (!link) return fail(link.error());
      return install_fd(*link);
    }
    case BPF_LINK_DETACH: {
      auto link = fd_as<Link>(*this, static_cast<int>(a.link_detach.link_fd));
      if (!link) return fail(EBADF);
      (*link)->detach();
      return 0;
    }
    default: return fail(EINVAL);
  }
}

}  // namespace bpfvm::runtime
