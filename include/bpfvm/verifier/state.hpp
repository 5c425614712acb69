// The verifier's abstract state at one instruction: what each register holds (its type, as the kernel
// types registers, and its value or offset) and what each stack byte holds, per call frame; plus the
// references the program has acquired and must release. `includes` answers state pruning: when a state
// already explored at an instruction includes the new one, every path from the new one is safe too.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "bpfvm/isa/opcode.hpp"
#include "bpfvm/verifier/liveness.hpp"
#include "bpfvm/verifier/scalar.hpp"

namespace bpfvm::verifier {

// The kernel's register types (enum bpf_reg_type), those bpfvm's programs meet.
enum class RegType : std::uint8_t {
  kNotInit,     // NOT_INIT: reading it is an error
  kScalar,      // SCALAR_VALUE
  kCtx,         // PTR_TO_CTX
  kStack,       // PTR_TO_STACK
  kMapPtr,      // CONST_PTR_TO_MAP
  kMapValue,    // PTR_TO_MAP_VALUE (maybe_null: PTR_TO_MAP_VALUE_OR_NULL)
  kMapKey,      // PTR_TO_MAP_KEY
  kPacket,      // PTR_TO_PACKET
  kPacketMeta,  // PTR_TO_PACKET_META
  kPacketEnd,   // PTR_TO_PACKET_END
  kMem,         // PTR_TO_MEM (a ring buffer record: with a reference)
  kFunc,        // PTR_TO_FUNC (a callback)
  kBtfId,       // PTR_TO_BTF_ID: a kernel object of a BTF type (a tracing program's arguments)
  // Sockets (struct bpf_sock_common / bpf_sock / bpf_tcp_sock as UAPI shows them): from the socket
  // lookup helpers (with a reference to release), bpf_sk_fullsock and bpf_tcp_sock, or a context's
  // `sk`. Read-only, at fixed offsets, never moved.
  kSockCommon,  // PTR_TO_SOCK_COMMON
  kSocket,      // PTR_TO_SOCKET
  kTcpSock,     // PTR_TO_TCP_SOCK
  kConstDynptr, // CONST_PTR_TO_DYNPTR: a struct bpf_dynptr a helper hands its callback (user_ringbuf_drain)
  kTpBuffer,    // PTR_TO_TP_BUFFER: a writable raw tracepoint's buffer (its size is checked at attach)
};
// One of the socket pointer types (the kernel's type_is_sk_pointer).
constexpr bool is_socket_type(RegType t) {
  return t == RegType::kSockCommon || t == RegType::kSocket || t == RegType::kTcpSock;
}
std::string_view reg_type_name(RegType type, bool maybe_null = false);

struct RegState {
  RegType type = RegType::kNotInit;
  bool maybe_null = false;  // must be compared with 0 before use (the _OR_NULL types)
  // Scalars: the value. Pointers: the variable part of the offset (the fixed part is `off`).
  Scalar value = Scalar::constant(0);
  std::int32_t off = 0;
  // Copies of one maybe-null pointer (or of one packet pointer) share an id: a null check or a range
  // proven on one holds for all.
  std::uint32_t id = 0;
  std::uint32_t ref_id = 0;      // the acquired reference this pointer carries (0: none)
  std::uint32_t map_index = 0;   // kMapPtr, kMapValue, kMapKey: which of the program's maps
  std::uint32_t mem_size = 0;    // kMem: bytes
  std::uint32_t range = 0;       // kPacket: bytes from this pointer proven below data_end
  std::uint32_t frame = 0;       // kStack: whose frame
  std::uint32_t subprog = 0;     // kFunc: which subprogram
  std::uint32_t btf_id = 0;      // kBtfId: the object's type in the attach target's BTF
  bool untrusted = false;        // kBtfId: PTR_UNTRUSTED (read from a __kptr_untrusted field): no helper takes it
  std::uint32_t dynptr_id = 0;   // kMem: the dynptr (StackSlot::dynptr_id) this slice was taken from

  static RegState scalar(const Scalar& s);
  static RegState unknown_scalar() { return scalar(Scalar::unknown()); }
  static RegState pointer(RegType type, std::int32_t off = 0);
  bool is_pointer() const { return type != RegType::kNotInit && type != RegType::kScalar; }
  // What the kernel's log shows: "scalar(umax=15)", "map_value_or_null(id=2,off=0)", "fp-8".
  std::string to_string() const;
  friend bool operator==(const RegState&, const RegState&) = default;
};

// One 8-byte stack slot: what each byte holds, and the register spilled there when the slot holds one,
// or which struct bpf_dynptr it is part of (STACK_DYNPTR: two slots a dynptr helper initialised; only
// dynptr helpers use them, a store destroys them).
enum class ByteType : std::uint8_t { kInvalid, kMisc, kZero, kSpill, kDynptr };
enum class DynptrKind : std::uint8_t { kNone, kLocal, kRingbuf };  // BPF_DYNPTR_TYPE_LOCAL, _RINGBUF
struct StackSlot {
  std::array<ByteType, 8> bytes{};  // all kInvalid: never written
  RegState spilled;                 // valid when the bytes are kSpill
  // Valid when the bytes are kDynptr: the kind, whether this is the dynptr's first slot (its start, the
  // lower address), the dynptr's id (its slices carry it) and the reference it holds (ring buffer).
  DynptrKind dynptr = DynptrKind::kNone;
  bool dynptr_first = false;
  std::uint32_t dynptr_id = 0, dynptr_ref = 0;
  friend bool operator==(const StackSlot&, const StackSlot&) = default;
};

inline constexpr int kStackSize = isa::kStackSize;
inline constexpr int kStackSlots = kStackSize / 8;

struct Frame {
  std::array<RegState, 11> regs;
  // Slot i covers fp-8*(i+1) .. fp-8*i-1; only as many as the function has touched are kept (slots
  // past the end were never written), so that the states kept for pruning stay small.
  std::vector<StackSlot> stack;
  std::uint32_t callsite = 0;                  // the call instruction that made this frame
  std::uint32_t subprog = 0;
  bool callback = false;                       // called by a helper (bpf_loop...), which it returns to
  // Slot i, made when first touched.
  StackSlot& slot(std::size_t i) {
    if (i >= stack.size()) stack.resize(i + 1);
    return stack[i];
  }
  friend bool operator==(const Frame&, const Frame&) = default;
};

// A reference the program holds (a ring buffer record) and must release on every path.
struct Reference {
  std::uint32_t id = 0;
  std::uint32_t insn = 0;  // where it was acquired
  bool socket = false;     // a socket from a lookup (bpf_sk_release) rather than a ring buffer record
  bool dynptr = false;     // a ring buffer record held by a dynptr (bpf_ringbuf_reserve_dynptr)
  bool kptr = false;       // a kernel object bpf_kptr_xchg took out of a map
  friend bool operator==(const Reference&, const Reference&) = default;
};

struct State {
  std::vector<Frame> frames;       // [0] = the entry function; back() is the current one
  std::vector<Reference> refs;     // acquired references not yet released
  std::uint64_t active_lock = 0;   // the bpf_spin_lock held: (map << 32 | pointer id) + 1, 0: none
  std::uint32_t lock_insn = 0;     // where it was taken
  // Calls into callbacks on this path (the kernel's callback_unroll_depth): a callback's second call
  // may come back to the first one's state, which is no loop of the program's (the helper bounds the
  // calls), so that the infinite-loop check compares it too; pruning does not.
  std::uint32_t callback_unroll_depth = 0;

  // The state at the entry of a program: r1 = ctx, r10 = frame pointer, everything else unset.
  static State entry();
  Frame& cur() { return frames.back(); }
  const Frame& cur() const { return frames.back(); }
  // Whether every concrete state this one (an explored state) stands for covers `other`: true means
  // `other` needs no further exploration (the kernel's states_equal with regsafe / stacksafe).
  bool includes(const State& other) const;
  // The same, comparing only what matters from instruction `pc` on (liveness: dead registers and
  // slots are ignored, numbers whose value nothing checks cover any number).
  bool includes(const State& other, const Liveness& liveness, std::uint32_t pc) const;
  // The same, with more of the current frame's registers and slots demanded (what this state's own
  // paths found deciding: the kernel's precision marks).
  bool includes(const State& other, const Liveness& liveness, std::uint32_t pc, std::uint16_t more_regs,
                std::uint64_t more_slots) const;

 private:
  bool compare(const State& other, const Liveness* liveness, std::uint32_t pc, std::uint16_t more_regs = 0,
               std::uint64_t more_slots = 0) const;
};

// Whether `old` covers `cur` for pruning. `ids` pairs the ids of `old` with those of `cur` (a null
// check on one copy must meet the same copies in both).
struct IdMap {
  // Pruning compares states many times per instruction: the first pairs live here, not on the heap.
  static constexpr std::size_t kInline = 24;
  std::array<std::pair<std::uint32_t, std::uint32_t>, kInline> first;  // [0, count) set
  std::size_t count = 0;
  std::vector<std::pair<std::uint32_t, std::uint32_t>> more;
  bool check(std::uint32_t old_id, std::uint32_t cur_id);
};
bool reg_includes(const RegState& old, const RegState& cur, IdMap& ids);

}  // namespace bpfvm::verifier
