// What the verifier needs to know of the world a program runs in, and asks through this interface: the
// helpers (their prototypes and whether this program type may call them), the maps the program names
// (types and sizes), and the program type's context (which fields may be read or written, and which
// of them hold packet pointers). The runtime answers from its helper table, its maps and its context
// layouts; tests may answer with anything. The verifier itself stays below both.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <utility>
#include <string>
#include <string_view>
#include <vector>

namespace bpfvm::verifier {

// A helper argument, in the kernel's terms (enum bpf_arg_type with its flags).
enum class ArgType : std::uint8_t {
  kNone,                  // not an argument
  kAnything,              // ARG_ANYTHING: any initialised value
  kConstMapPtr,           // ARG_CONST_MAP_PTR
  kMapKey,                // ARG_PTR_TO_MAP_KEY: key_size readable bytes
  kMapValue,              // ARG_PTR_TO_MAP_VALUE: value_size readable bytes
  kUninitMapValue,        // ARG_PTR_TO_MAP_VALUE | MEM_UNINIT: value_size writable bytes
  kMem,                   // ARG_PTR_TO_MEM | MEM_RDONLY: readable, sized by the next argument
  kMemOrNull,             // ... | PTR_MAYBE_NULL: or 0 (with a size of 0)
  kUninitMem,             // ARG_PTR_TO_UNINIT_MEM: writable, sized by the next argument
  kConstSize,             // ARG_CONST_SIZE: the previous argument's size, > 0
  kConstSizeOrZero,       // ARG_CONST_SIZE_OR_ZERO
  kConstAllocSizeOrZero,  // ARG_CONST_ALLOC_SIZE_OR_ZERO: a known constant
  kCtx,                   // ARG_PTR_TO_CTX: the context pointer, unmodified
  kCtxOrNull,             // ARG_PTR_TO_CTX_OR_NULL: the same, or NULL
  kFunc,                  // ARG_PTR_TO_FUNC: a callback (a function reference)
  kStackOrNull,           // ARG_PTR_TO_STACK_OR_NULL: the callback's context
  kConstStr,              // ARG_PTR_TO_CONST_STR: a NUL-terminated string in a read-only map
  kSpinLock,              // ARG_PTR_TO_SPIN_LOCK: the bpf_spin_lock of a map value
  kRingbufRecord,         // ARG_PTR_TO_RINGBUF_MEM | OBJ_RELEASE: releases the record's reference
  kSockCommon,            // ARG_PTR_TO_SOCK_COMMON: sock_common, sock or tcp_sock, not NULL
  kBtfIdSockCommon,       // ARG_PTR_TO_BTF_ID_SOCK_COMMON: the same (BTF socket types aside)
  kSockRelease,           // ARG_PTR_TO_BTF_ID_SOCK_COMMON | OBJ_RELEASE: a socket a lookup acquired
  kSocketOrNull,          // ARG_PTR_TO_SOCKET | PTR_MAYBE_NULL: a sock, or NULL
  kMapValueOrNull,        // ARG_PTR_TO_MAP_VALUE | PTR_MAYBE_NULL: value_size readable bytes, or NULL
  kBtfId,                 // ARG_PTR_TO_BTF_ID: a kernel object of the struct HelperSignature::arg_struct
  kBtfIdOrNull,           // ... | PTR_MAYBE_NULL
  kUninitLong,            // ARG_PTR_TO_FIXED_SIZE_MEM | MEM_UNINIT | MEM_ALIGNED: 8 writable, aligned bytes
  kFixedMem,              // ARG_PTR_TO_FIXED_SIZE_MEM | MEM_RDONLY: HelperSignature::arg_size readable bytes
  kFixedMemWrite,         // ARG_PTR_TO_FIXED_SIZE_MEM | MEM_WRITE | MEM_ALIGNED: arg_size bytes, read and rewritten
  kDynptr,                // ARG_PTR_TO_DYNPTR | MEM_RDONLY: an initialised struct bpf_dynptr
  kDynptrUninitLocal,     // ARG_PTR_TO_DYNPTR | DYNPTR_TYPE_LOCAL | MEM_UNINIT: made here by the helper
  kDynptrUninitRingbuf,   // ARG_PTR_TO_DYNPTR | DYNPTR_TYPE_RINGBUF | MEM_UNINIT: made here, with a reference
  kDynptrRingbufRelease,  // ARG_PTR_TO_DYNPTR | DYNPTR_TYPE_RINGBUF | OBJ_RELEASE
  kTimer,                 // ARG_PTR_TO_TIMER: the struct bpf_timer of a map value, at its offset
  kPercpuBtfId,           // ARG_PTR_TO_PERCPU_BTF_ID: a per-CPU kernel variable (a typed __ksym)
  kKptrXchgDest,          // ARG_KPTR_XCHG_DEST: a referenced kptr field of a map value, at its offset
  kKptrRelease,           // ARG_PTR_TO_BTF_ID_OR_NULL | OBJ_RELEASE: NULL or a referenced pointer of that struct
};

enum class RetType : std::uint8_t {
  kInteger,              // RET_INTEGER
  kVoid,                 // RET_VOID
  kMapValueOrNull,       // RET_PTR_TO_MAP_VALUE_OR_NULL
  kMapValue,             // RET_PTR_TO_MAP_VALUE: never NULL (bpf_get_local_storage)
  kRingbufRecordOrNull,  // RET_PTR_TO_RINGBUF_MEM_OR_NULL: acquires a reference
  kSockCommonOrNull,     // RET_PTR_TO_SOCK_COMMON_OR_NULL
  kSocketOrNull,         // RET_PTR_TO_SOCKET_OR_NULL
  kTcpSockOrNull,        // RET_PTR_TO_TCP_SOCK_OR_NULL
  kBtfIdTrusted,         // RET_PTR_TO_BTF_ID_TRUSTED: never NULL, a struct HelperSignature::ret_struct
  kBtfIdOrNull,          // RET_PTR_TO_BTF_ID_OR_NULL
  kDynptrMemOrNull,      // RET_PTR_TO_DYNPTR_MEM_OR_NULL
  kPercpuMemOrNull,      // RET_PTR_TO_MEM_OR_BTF_ID | PTR_MAYBE_NULL | MEM_RDONLY
  kPercpuMem,            // RET_PTR_TO_MEM_OR_BTF_ID | MEM_RDONLY
  kKptrOrNull,           // RET_PTR_TO_BTF_ID_OR_NULL of the kptr argument's struct (bpf_kptr_xchg)
};

// What a helper does with references (the kernel's is_acquire_function / is_ptr_cast_function).
enum class RefEffect : std::uint8_t {
  kNone,
  kAcquires,  // r0 holds a new reference, released by a release argument (ringbuf_reserve, socket lookups)
  kCasts,     // r0 is its socket argument seen as another type: it carries that argument's reference
};

struct HelperSignature {
  std::string_view name;  // without the bpf_ prefix
  RetType ret = RetType::kInteger;
  std::array<ArgType, 5> args{};
  bool gpl_only = false;        // callable only from GPL-compatible programs
  bool changes_packet = false;  // moves or resizes the packet (bpf_helper_changes_pkt_data)
  RefEffect ref = RefEffect::kNone;
  bool pkt_access = false;  // may take packet pointers (bpf_func_proto.pkt_access)
  bool might_sleep = false; // only sleepable programs may call it (bpf_func_proto.might_sleep)
  std::string_view arg_struct{};          // kBtfId(OrNull): the kernel struct the argument points to
  std::string_view ret_struct{};          // kBtfIdTrusted/kBtfIdOrNull: the kernel struct r0 points to
  std::array<std::uint8_t, 5> arg_size{};  // kFixedMem(Write): the argument's bytes
};

// A map the program refers to. Map types are the kernel's numbers (enum bpf_map_type).
struct MapInfo {
  std::uint32_t type = 0;
  std::uint32_t key_size = 0, value_size = 0, max_entries = 0;
  bool read_only = false;               // BPF_F_RDONLY_PROG: programs may only read values
  std::int32_t spin_lock_off = -1;      // where the value's struct bpf_spin_lock is, -1: none
  bool direct_value = false;            // its value has an address (global data: one-entry arrays)
  std::int64_t inner = -1;              // maps of maps: the handle of the inner maps' template
  // A frozen read-only direct-value map (libbpf's .rodata after BPF_MAP_FREEZE): its value, which loads
  // at a known offset read as constants (the kernel's bpf_map_direct_read), so that code a `const
  // volatile` setting rules out is never explored, as in the kernel. Empty otherwise.
  std::vector<std::uint8_t> frozen_value;
  std::int32_t timer_off = -1;  // where the value's struct bpf_timer is, -1: none
  std::string name{};           // for messages
  // The value's kptr fields (a pointer to a kernel struct, tagged in BTF): __kptr_untrusted (a program
  // may store a pointer of that type or NULL; loads give an untrusted pointer), __kptr (referenced:
  // moved only by bpf_kptr_xchg; loads give an RCU pointer), __percpu_kptr, __uptr.
  struct Kptr {
    enum class Kind : std::uint8_t { kUntrusted, kReferenced, kPercpu, kUser };
    std::int32_t off = 0;
    Kind kind = Kind::kUntrusted;
    std::string pointee;  // the struct's name, found in the kernel's BTF
  };
  std::vector<Kptr> kptrs{};
  const Kptr* kptr_at(std::int64_t off) const {
    for (const Kptr& k : kptrs) {
      if (k.off == off) return &k;
    }
    return nullptr;
  }
};

// What a context access gives, when the program type allows it.
struct CtxField {
  enum class Result : std::uint8_t {
    kDenied, kScalar, kPacket, kPacketEnd, kPacketMeta, kBtfPointer,
    kSockCommonOrNull, kSocket, kSocketOrNull,  // a context's socket (__sk_buff->sk, bpf_sock_addr->sk...)
    kTpBuffer,  // a writable raw tracepoint's buffer (PTR_TO_TP_BUFFER)
  } result = Result::kDenied;
  std::string why;  // kDenied: the reason, in plain words
  std::uint32_t btf_id = 0;  // kBtfPointer: the pointed-to object's type (a tracing program's argument)
  bool maybe_null = false;   // kBtfPointer: an argument that may be NULL ("__nullable")
};

// What a load from a kernel object of a BTF type gives (the kernel's btf_struct_access): a number, a
// pointer to another object, or a refusal.
struct BtfField {
  enum class Result : std::uint8_t { kDenied, kScalar, kPointer } result = Result::kDenied;
  std::uint32_t btf_id = 0;  // kPointer: the type it points to
  std::string why;           // kDenied: the reason
};

// A global (BTF_FUNC_GLOBAL) function, as the kernel treats one: verified once on its own with
// arguments of these kinds, and called without looking inside (r0 comes back as a number).
struct GlobalFunction {
  enum class Arg : std::uint8_t { kScalar, kCtx, kMem };
  struct Param {
    Arg kind = Arg::kScalar;
    std::uint32_t size = 0;  // kMem: bytes the function may read (the argument may also be NULL)
  };
  std::string name;
  std::vector<Param> params;
  std::string error;  // why its signature cannot be verified ("" when it can)
};

class Platform {
 public:
  virtual ~Platform() = default;
  // nullptr for a helper the platform does not have.
  virtual const HelperSignature* helper(std::int32_t id) const = 0;
  // Whether this program type may call the helper (known to exist).
  virtual bool helper_allowed(std::int32_t id) const = 0;
  // Why this program, though of a type that has the helper, may not call it where it attaches (the
  // kernel's bpf_func_proto.allowed: the IMA hashes at an LSM hook that may not sleep); empty when it may.
  virtual std::string helper_refused_here(std::int32_t id) const {
    (void)id;
    return {};
  }
  // The map behind a handle: an LDDW's map index or fd (BPF_PSEUDO_MAP_IDX/_FD) or an inner template.
  virtual const MapInfo* map(std::int64_t handle) const = 0;
  // A load (write = false) or store of `size` bytes at `off` in the context.
  virtual CtxField ctx_access(std::int32_t off, std::uint32_t size, bool write) const = 0;
  virtual std::string_view prog_type_name() const = 0;
  // Whether BPF_LD_ABS / BPF_LD_IND may read the packet (socket buffers), and packet data be written.
  virtual bool legacy_packet_loads() const = 0;
  virtual bool packet_writable() const { return false; }
  // Whether the program's license lets it call GPL-only helpers.
  virtual bool gpl_compatible() const { return true; }
  // The range the program's return value must lie in at its exit, nullopt for any (check_return_code).
  virtual std::optional<std::pair<std::int64_t, std::int64_t>> return_range() const { return std::nullopt; }
  // Whether nothing reads the program's return value (tracing programs): a pointer it returns leaks
  // nowhere, and the privileged kernel accepts it (allow_ptr_leaks), as BCC's void kprobe functions
  // need. Elsewhere bpfvm refuses a returned pointer, stricter than the privileged kernel.
  virtual bool return_value_ignored() const { return false; }
  // Whether the program's exit leaves r0 unread altogether, set or not (struct_ops members and LSM hooks
  // that return void: check_return_code).
  virtual bool return_unread() const { return false; }
  // Whether return_range holds for r0's lower 32 bits (an LSM hook's int result: check_return_code's
  // return_32bit), not the whole register.
  virtual bool return_range_32bit() const { return false; }
  // Whether the program was loaded sleepable (BPF_F_SLEEPABLE): it may call helpers that sleep.
  virtual bool sleepable() const { return false; }
  // Kernel objects typed by BTF (PTR_TO_BTF_ID, what tracing programs get as arguments): a load of `size`
  // bytes at `off` in an object of type `type_id`, and the type's name for messages ("task_struct").
  virtual BtfField btf_access(std::uint32_t type_id, std::int64_t off, std::uint32_t size) const {
    (void)type_id, (void)off, (void)size;
    return {BtfField::Result::kDenied, 0, "this program has no kernel types"};
  }
  // A store of `size` bytes at `off` in a kernel object of type `type_id` (the program type's
  // btf_struct_access: only struct_ops' own fields): kScalar where a number may be written.
  virtual BtfField btf_write(std::uint32_t type_id, std::int64_t off, std::uint32_t size) const {
    (void)type_id, (void)off, (void)size;
    return {BtfField::Result::kDenied, 0, "only read is supported"};
  }
  // Whether an object of type `have`, `off` bytes in, is (or begins with, as a first member nested at
  // that offset) a `want` (the kernel's btf_struct_ids_match, not strict).
  virtual bool btf_struct_at(std::uint32_t have, std::int64_t off, std::uint32_t want) const {
    return off == 0 && have == want;
  }
  // The id of the kernel's struct `name` in the BTF btf_access walks; 0 when there is none.
  virtual std::uint32_t btf_struct_id(std::string_view name) const {
    (void)name;
    return 0;
  }
  virtual std::string btf_type_name(std::uint32_t type_id) const {
    (void)type_id;
    return {};
  }
  // The global function that starts at instruction `insn`, if it is one (from BTF func_info).
  virtual const GlobalFunction* global_function(std::uint32_t insn) const {
    (void)insn;
    return nullptr;
  }
};

}  // namespace bpfvm::verifier
