// Helper prototypes as data: what each helper takes and returns, in the kernel's terms
// (struct bpf_func_proto), for the verifier to check calls against, and which program types may call it.
#pragma once

#include <array>
#include <cstdint>
#include <span>
#include <string_view>

namespace bpfvm::helpers {

enum class Arg : std::uint8_t {
  kNone,                 // ARG_DONTCARE: not an argument
  kAnything,             // ARG_ANYTHING: any initialised value
  kConstMapPtr,          // ARG_CONST_MAP_PTR
  kMapKey,               // ARG_PTR_TO_MAP_KEY: key_size readable bytes
  kMapValue,             // ARG_PTR_TO_MAP_VALUE: value_size readable bytes
  kUninitMapValue,       // ARG_PTR_TO_MAP_VALUE | MEM_UNINIT: value_size writable bytes
  kMem,                  // ARG_PTR_TO_MEM | MEM_RDONLY: readable, sized by the next argument
  kMemOrNull,            // ARG_PTR_TO_MEM | PTR_MAYBE_NULL
  kUninitMem,            // ARG_PTR_TO_UNINIT_MEM: writable, sized by the next argument
  kConstSize,            // ARG_CONST_SIZE: the size of the previous pointer, > 0
  kConstSizeOrZero,      // ARG_CONST_SIZE_OR_ZERO
  kConstAllocSizeOrZero, // ARG_CONST_ALLOC_SIZE_OR_ZERO (ringbuf_reserve)
  kCtx,                  // ARG_PTR_TO_CTX
  kCtxOrNull,            // ARG_PTR_TO_CTX_OR_NULL
  kFunc,                 // ARG_PTR_TO_FUNC: a callback
  kStackOrNull,          // ARG_PTR_TO_STACK_OR_NULL (callback context)
  kConstStr,             // ARG_PTR_TO_CONST_STR: a NUL-terminated string in a read-only map
  kSpinLock,             // ARG_PTR_TO_SPIN_LOCK
  kRingbufRecord,        // ARG_PTR_TO_RINGBUF_MEM | OBJ_RELEASE: releases the reference
  kSockCommon,           // ARG_PTR_TO_SOCK_COMMON
  kBtfIdSockCommon,      // ARG_PTR_TO_BTF_ID_SOCK_COMMON
  kSockRelease,          // ARG_PTR_TO_BTF_ID_SOCK_COMMON | OBJ_RELEASE
  kSocketOrNull,         // ARG_PTR_TO_SOCKET | PTR_MAYBE_NULL
  kMapValueOrNull,       // ARG_PTR_TO_MAP_VALUE | PTR_MAYBE_NULL: value_size readable bytes, or NULL
  kBtfId,                // ARG_PTR_TO_BTF_ID: a kernel object of the struct Prototype::btf_struct names
  kBtfIdOrNull,          // ... | PTR_MAYBE_NULL
  kUninitLong,           // ARG_PTR_TO_FIXED_SIZE_MEM | MEM_UNINIT | MEM_ALIGNED: 8 writable, aligned bytes
  kFixedMem,             // ARG_PTR_TO_FIXED_SIZE_MEM | MEM_RDONLY: Prototype::arg_size readable bytes
  kFixedMemWrite,        // ARG_PTR_TO_FIXED_SIZE_MEM | MEM_WRITE | MEM_ALIGNED (the old ARG_PTR_TO_INT/LONG):
                         // arg_size initialised, aligned bytes the helper reads and rewrites
  kDynptr,               // ARG_PTR_TO_DYNPTR | MEM_RDONLY: an initialised struct bpf_dynptr of any kind
  kDynptrUninitLocal,    // ARG_PTR_TO_DYNPTR | DYNPTR_TYPE_LOCAL | MEM_UNINIT: the helper makes one here
  kDynptrUninitRingbuf,  // ARG_PTR_TO_DYNPTR | DYNPTR_TYPE_RINGBUF | MEM_UNINIT (it holds a reference)
  kDynptrRingbufRelease, // ARG_PTR_TO_DYNPTR | DYNPTR_TYPE_RINGBUF | OBJ_RELEASE: gives the reference back
  kTimer,                // ARG_PTR_TO_TIMER: the struct bpf_timer of a map value
  kPercpuBtfId,          // ARG_PTR_TO_PERCPU_BTF_ID: a per-CPU kernel variable (a typed __ksym)
  kKptrXchgDest,         // ARG_KPTR_XCHG_DEST: a referenced kptr field of a map value, at its offset
  kKptrRelease,          // ARG_PTR_TO_BTF_ID_OR_NULL | OBJ_RELEASE: NULL, or a referenced pointer of the
                         // kptr's struct, whose reference goes into the field
};

enum class Ret : std::uint8_t {
  kInteger,              // RET_INTEGER
  kVoid,                 // RET_VOID
  kMapValueOrNull,       // RET_PTR_TO_MAP_VALUE_OR_NULL
  kMapValue,             // RET_PTR_TO_MAP_VALUE: never NULL (bpf_get_local_storage)
  kRingbufRecordOrNull,  // RET_PTR_TO_RINGBUF_MEM_OR_NULL (its helper acquires a reference)
  kSockCommonOrNull,     // RET_PTR_TO_SOCK_COMMON_OR_NULL
  kSocketOrNull,         // RET_PTR_TO_SOCKET_OR_NULL
  kTcpSockOrNull,        // RET_PTR_TO_TCP_SOCK_OR_NULL
  kBtfIdTrusted,         // RET_PTR_TO_BTF_ID_TRUSTED: never NULL, to the struct Prototype::ret_struct names
  kBtfIdOrNull,          // RET_PTR_TO_BTF_ID_OR_NULL: the same, or NULL
  kDynptrMemOrNull,      // RET_PTR_TO_DYNPTR_MEM_OR_NULL: a slice of the dynptr argument's data, or NULL
  kPercpuMemOrNull,      // RET_PTR_TO_MEM_OR_BTF_ID | PTR_MAYBE_NULL | MEM_RDONLY: a CPU's copy of it
  kPercpuMem,            // RET_PTR_TO_MEM_OR_BTF_ID | MEM_RDONLY: this CPU's copy
  kKptrOrNull,           // RET_PTR_TO_BTF_ID_OR_NULL of the kptr argument's struct (bpf_kptr_xchg)
};

// References: ring buffer reservations and the socket lookups acquire one; bpf_sk_fullsock and
// bpf_tcp_sock pass their argument's on.
enum class Ref : std::uint8_t { kNone, kAcquires, kCasts };

struct Prototype {
  std::int32_t id;  // BPF_FUNC_*
  std::string_view name;
  Ret ret;
  std::array<Arg, 5> args;
  bool gpl_only;
  bool changes_packet = false;  // moves or resizes the packet: packet pointers are stale after it
  Ref ref = Ref::kNone;
  std::string_view btf_struct = {};          // kBtfId/kBtfIdOrNull: the kernel struct the argument points to
  std::string_view ret_struct = {};          // kBtfIdTrusted/kBtfIdOrNull returns: the struct r0 points to
  std::array<std::uint8_t, 5> arg_size = {};  // kFixedMem/kFixedMemWrite: the bytes (bpf_func_proto.argN_size)
};

// Whether a helper may take packet pointers as arguments (the kernel's bpf_func_proto.pkt_access: map
// element helpers, csum_diff, socket lookups and syncookies); other helpers refuse them ("helper
// access to the packet is not allowed"): the program copies the bytes to its stack first.
bool takes_packet_pointers(std::int64_t id);
// Whether a helper may sleep (copy_from_user, copy_from_user_task, the IMA hashes): only sleepable
// programs call it (bpf_func_proto.might_sleep).
bool might_sleep(std::int64_t id);

// Every helper whose prototype bpfvm's verifier models, by id (the kernel's arguments and return types;
// whether bpfvm can also run it is implemented(), in helpers.hpp).
std::span<const Prototype> prototypes();
// nullptr for a helper bpfvm does not have.
const Prototype* find_prototype(std::int64_t id);
// The prototype a program of this type sees: a few helpers take other arguments in some types
// (bpf_sk_assign takes a socket or NULL in sk_lookup programs, a referenced socket in tc).
const Prototype* find_prototype(std::int64_t id, std::uint32_t prog_type);
// Whether a program of this type may call the helper (the kernel's get_func_proto per type, as the
// running kernel answered scripts/probe_helpers); `attach_type` (expected_attach_type) narrows the
// types whose helpers depend on it (a tracing program: iterator, trampoline or raw tracepoint).
bool allowed(std::uint32_t prog_type, std::int64_t id, std::uint32_t attach_type = 0);
// The same for a struct_ops program of the kernel's struct `type` (tcp_congestion_ops...) at `member`
// (each type has its own get_func_proto).
bool allowed_struct_ops(std::string_view type, std::string_view member, std::int64_t id);

}  // namespace bpfvm::helpers
