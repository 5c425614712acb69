// The verifier's explorer (private to src/verifier): walks every path of a program on the abstract
// state. Its parts live in separate files: the walk, branches and pruning (explorer.cpp), arithmetic
// (alu.cpp), memory accesses by region (memory_access.cpp) and helper calls (helper_call.cpp).
#pragma once

#include <fmt/format.h>

#include <array>
#include <cstdint>
#include <string>
#include <optional>
#include <unordered_map>
#include <vector>

#include "bpfvm/verifier/cfg.hpp"
#include "bpfvm/verifier/platform.hpp"
#include "bpfvm/verifier/state.hpp"
#include "bpfvm/verifier/verifier.hpp"

namespace bpfvm::verifier {

// Explored states kept for pruning: `branches` counts the paths below one that are still being
// explored; at 0 it is complete and may cover later paths (the kernel's bpf_verifier_state.branches).
struct Checkpoint {
  State state;
  std::uint32_t pc;
  std::int32_t parent;
  std::uint32_t branches;
  std::uint32_t hits = 0, misses = 0;  // pruning checks this state passed and failed
  // The current frame's registers that hold a constant: where its value matters (demanded here or
  // marked precise), a state covers another only if it holds the same constant (a quick test before
  // the whole comparison).
  std::uint16_t const_mask = 0;
  std::array<std::uint64_t, 11> consts{};
  // The instructions its path ran from the previous checkpoint (`parent`) to here, and the current
  // frame's registers and slots whose values decided something on the paths below it (the kernel's
  // precision marks, found by walking those instructions backwards).
  std::vector<std::uint32_t> trail{};
  std::uint16_t precise_regs = 0;
  std::uint64_t precise_slots = 0;
  std::size_t depth = 0;  // frames
};

struct Path {
  State state;
  std::uint32_t pc;
  std::int32_t checkpoint;    // the last checkpoint on this path, -1 for none
  std::int32_t decision = -1;  // the last branch decision on this path (Explorer::decisions_), -1: none
  std::vector<std::uint32_t> trail{};  // the instructions run since `checkpoint` (or the start)
};

// A sign-extended constant of `bits` bits.
std::uint64_t sign_extend(std::uint64_t v, unsigned bits);

inline constexpr std::int64_t kMaxVarOff = 1 << 29;  // BPF_MAX_VAR_OFF: the largest offset tracked

// A known 0: what NULL is to the verifier.
inline bool is_null_const(const RegState& r) {
  return r.type == RegType::kScalar && r.value.is_const() && r.value.const_value() == 0;
}

class Explorer {
 public:
  Explorer(std::span<const isa::RawInsn> program, const Cfg& cfg, const Platform& platform,
           const VerifierOptions& options);
  Result<VerifierStats> run();
  const VerifierStats& stats() const { return stats_; }

 private:
  friend struct HelperCall;

  // --- explorer.cpp: the walk
  Error error(std::uint32_t pc, std::string message) const { return reject(pc, std::move(message), {}); }
  // A rejection with a fix hint and, when known, the pointer id whose origin explains it.
  Error reject(std::uint32_t pc, std::string message, std::string hint, std::uint32_t origin_id = 0,
               std::optional<std::uint32_t> origin_insn = {}) const;
  // A call the kernel refuses with EINVAL rather than EACCES (check_helper_call: a helper number it does
  // not know, or one the program type may not call).
  Error invalid_call(std::uint32_t pc, std::string message, std::string hint) const {
    return reject(pc, std::move(message), std::move(hint)).with_code(Errc::kInvalid);
  }
  // Both sides of the branch at `pc` go on: each remembers which way it went.
  void record_fork(Path& fall, Path& taken, std::uint32_t pc);
  void log_insn(const Path& path, const Frame& before);
  Error unsupported(std::uint32_t pc, std::string_view what) const;
  void finish(std::int32_t cp);
  Result<bool> visit(Path& path, bool callback_site);
  Result<void> explore(Path path);
  Result<bool> exit(Path& path);
  // The program's end: no lock held, no reference left (check_reference_leak). False (the path ends).
  Result<bool> leave_program(const Path& path);
  Result<bool> branch(Path& path, const isa::CondJump& j);
  // Registers (and slots) of the current frame whose values decided something at the end of `path`'s
  // trail (the last instruction's own operands when skip_last): marked in the checkpoints back along
  // the path, through what each instruction computed them from (the kernel's mark_chain_precision).
  // False when the walk meets what it cannot follow (calls, exits, stack accesses at unknown offsets):
  // the caller then demands them statically, for every path.
  bool mark_precise(const Path& path, std::uint16_t regs, std::uint64_t slots, bool skip_last);
  // Registers whose values decide the instruction at `pc` (the last of `path`'s trail): marked back
  // along the path, or demanded statically for every path where the walk cannot follow.
  void precise_here(const Path* path, std::uint32_t pc, std::uint16_t regs);
  // `touched`: the slots a stack mark says this access touched, else what the static analysis knows.
  bool backtrack_insn(std::uint32_t pc, std::uint16_t& regs, std::uint64_t& slots,
                      std::optional<std::uint64_t> touched = std::nullopt, bool zeros_kept = false) const;
  // A jump that refined copies of a number (registers and slots of the current frame sharing an
  // operand's scalar id) leaves a mark in the trail after its own entry: its index in links_ with
  // kLinkMark set. Walking back, a precise member makes all of them precise (the kernel's linked
  // registers in the jump history, bt_sync_linked_regs). False when a copy is in another frame.
  bool record_links(Path& path, const isa::CondJump& j, const RegState& a, const RegState& b);
  static constexpr std::uint32_t kLinkMark = 0x80000000u;
  struct Link {
    std::uint16_t regs;
    std::uint64_t slots;
  };
  std::vector<Link> links_;
  // A memory access whose stack slots the static analysis cannot name (through a pointer loaded
  // from the stack, or one that points into the stack on some paths only) leaves a mark after its
  // entry: the slots of the current frame it touched on this path, its index in stack_marks_ with
  // kStackMark set (the kernel's stack access flags in the jump history), or kOtherFrame when it
  // touched a caller's stack.
  void record_stack_access(Path& path, std::uint32_t pc, const isa::Insn& insn);
  void record_zeros_kept(Path& path, const isa::Insn& insn);
  static constexpr std::uint32_t kStackMark = 0x40000000u;
  // A narrow spill at a slot's start that leaves zero bytes of an older write in the slot leaves this
  // mark after its entry: walking back, the slot's mark goes on past it (the zero bytes may be what was
  // read), where a spill otherwise ends it.
  static constexpr std::uint32_t kZerosKept = 0x20000000u;
  static constexpr std::uint64_t kOtherFrame = ~0ull;
  std::vector<std::uint64_t> stack_marks_;
  bool branch_on_pointers(Path& path, const isa::CondJump& j, const RegState& a, const RegState& b);
  void fork(const Path& path, std::uint32_t target);
  void push(Path p);
  Result<void> step(State& s, std::uint32_t pc, const isa::Insn& insn);
  Result<const RegState*> read(const Frame& f, std::uint32_t pc, std::uint8_t reg) const;
  Result<void> write_check(std::uint32_t pc, std::uint8_t reg) const;
  Result<void> check_no_recursion() const;
  Result<void> check_stack_depth() const;
  std::uint32_t new_id() { return ++id_gen_; }
  // Every register and spilled register of every frame.
  template <typename F>
  static void for_each_reg(State& s, F&& f) {
    for (Frame& fr : s.frames) {
      for (RegState& r : fr.regs) f(r);
      for (StackSlot& slot : fr.stack) {
        if (slot.bytes[0] == ByteType::kSpill) f(slot.spilled);
      }
    }
  }
  // After a branch refined `reg`, its copies (same scalar id) learn the same.
  static void sync_copies(State& s, const RegState& reg);
  // A scalar id no other number of the state shares links nothing: a kept state forgets it, so that
  // pruning does not ask a new state to mirror it (the kernel's clear_singular_ids on the state it
  // keeps). A copy made after that point is linked in either state alike.
  static void clear_singular_ids(State& s);
  // A null check decided: the copies of pointer `id` are null (0) or not.
  void mark_null_checked(State& s, std::uint32_t id, bool is_null);
  Result<void> load_imm64(Frame& f, std::uint32_t pc, const isa::LoadImm64& l);

  // --- alu.cpp: arithmetic
  Result<void> alu(Frame& f, std::uint32_t pc, const isa::Alu& a);
  Result<void> pointer_alu(RegState& dst, std::uint32_t pc, const isa::Alu& a, const RegState& d, const RegState& src);

  // --- memory_access.cpp: loads and stores by region
  // Which instruction accesses memory (the kernel's checks of kptr fields differ by class and mode).
  enum class MemInsn : std::uint8_t { kLoad, kStore, kStoreImm, kAtomic };
  Result<RegState> access(State& s, std::uint32_t pc, std::uint8_t reg, std::int16_t off, int size, bool write,
                          const RegState* value, bool sign_extend_load, MemInsn insn = MemInsn::kLoad);
  // A load or store of the kptr field `k` of a map value (check_map_kptr_access).
  Result<RegState> kptr_access(std::uint32_t pc, const MapInfo::Kptr& k, bool write, const RegState* value,
                               MemInsn insn);
  Result<void> atomic(State& s, std::uint32_t pc, const isa::Atomic& a);
  Result<void> packet_load(State& s, std::uint32_t pc, const isa::PacketLoad& p);
  Result<std::int32_t> stack_offset(std::uint32_t pc, const RegState& base, std::uint8_t reg, std::int64_t insn_off,
                                    int size, bool write, bool aligned = true) const;
  void note_depth(const Frame& f, std::int32_t off);
  Result<std::pair<std::int32_t, std::int32_t>> var_stack_range(std::uint32_t pc, const RegState& base, std::uint8_t reg,
                                                                std::int64_t insn_off, int size, bool write,
                                                                bool aligned) const;
  Result<void> stack_write(State& s, std::uint32_t pc, const RegState& base, std::uint8_t reg, std::int16_t insn_off,
                           int size, const RegState& value);
  Result<RegState> stack_read(Frame& f, std::uint32_t pc, const RegState& base, std::uint8_t reg, std::int16_t insn_off,
                              int size, bool sign_extend_load);
  // Dynptrs on the stack (struct bpf_dynptr: two slots). Bytes [lo, hi) of the frame `base` points
  // into are about to be stored to: a dynptr there is destroyed (its slots unwritten, its slices stale),
  // or the store refused when the dynptr holds a reference (destroy_if_dynptr_stack_slot).
  Result<void> overwrite_dynptrs(State& s, std::uint32_t pc, const RegState& base, std::int32_t lo, std::int32_t hi);
  // Whether bytes [lo, hi) of the frame hold part of a dynptr (which only dynptr helpers may use).
  static bool touches_dynptr(const Frame& f, std::int32_t lo, std::int32_t hi);
  // The dynptr whose first slot is at `off` (r10-relative, 8-aligned) in the frame, or nullptr.
  static const StackSlot* dynptr_at(const Frame& f, std::int64_t off);
  // A region of `limit` bytes that `reg` points into, accessed at the pointer's offsets plus `off`.
  Result<void> region_check(std::uint32_t pc, std::uint8_t reg, const RegState& base, std::int64_t off, std::int64_t size,
                            std::int64_t limit, std::string_view what) const;
  // `direct`: a load or store (a helper's access may not reach a kptr field).
  Result<void> map_value_check(std::uint32_t pc, std::uint8_t reg, const RegState& base, std::int64_t off,
                               std::int64_t size, bool write, bool direct = true) const;
  Result<void> packet_check(std::uint32_t pc, std::uint8_t reg, const RegState& base, std::int64_t off,
                            std::int64_t size) const;
  // Memory a helper reads (or, `write`, fills) through `reg`: `size` bytes, any of [umin, umax].
  Result<void> helper_memory(State& s, std::uint32_t pc, std::uint8_t reg, const RegState& ptr, const Scalar& size,
                             bool write, bool zero_ok);
  const MapInfo& map_of(const RegState& r) const;

  // Global functions: checked at each call against their signature, verified once on their own.
  Result<void> global_call(Path& path, std::uint32_t pc, std::uint32_t sub);
  Result<void> verify_global(std::uint32_t sub);
  // r1-r5 as a global function's arguments arrive (verify_global; an extension's entry).
  void set_global_arguments(Frame& f, const GlobalFunction& g);

  Result<void> check_map_compatibility();

  // --- helper_call.cpp
  Result<void> helper_call(Path& path, std::uint32_t pc, const isa::Call& c);
  Result<void> release_reference(State& s, std::uint32_t pc, std::uint32_t ref_id);

  std::span<const isa::RawInsn> program_;
  const Cfg& cfg_;
  // Which registers and slots matter where; conditional jumps demand their operands once a path's
  // values decided them. At a helper that calls back, states still being explored cover new ones:
  // there every jump demands (callback_liveness_, made when the program has such a helper).
  LivenessSolver liveness_;
  std::unique_ptr<Liveness> callback_liveness_;
  // Per-path precision (mark_precise) needs complete states only; with helpers that call back, where
  // states still being explored cover, decided jumps demand statically (LivenessSolver::demand_branch).
  bool per_path_precision_ = true;
  Frame before_;                // log level 2: the registers before the instruction
  std::size_t log_depth_ = 0;
  const Platform& platform_;
  const VerifierOptions& options_;
  std::vector<std::uint8_t> prune_point_;
  std::vector<Path> work_;
  std::vector<Checkpoint> checkpoints_;
  std::vector<std::vector<std::uint32_t>> at_pc_;  // per instruction: the checkpoints kept there
  VerifierStats stats_;
  std::uint64_t jumps_since_ = 0, insns_since_ = 0;  // since the last state kept
  std::vector<std::uint32_t> stack_depth_;             // bytes of stack each subprogram uses
  std::vector<std::vector<std::pair<std::uint32_t, std::uint32_t>>> callees_;  // per subprogram: (call insn, callee)
  std::uint32_t id_gen_ = 0;
  std::uint32_t live_states_ = 0;  // kept and not evicted (peak_states)
  std::vector<const GlobalFunction*> global_;  // per subprogram: its signature when it is global
  std::vector<std::uint8_t> global_queued_;    // per subprogram: a call to it was seen
  const Path* current_ = nullptr;  // the path being explored (for rejections)
  struct Decision {
    std::uint32_t insn;
    bool taken;
    std::int32_t parent;
  };
  std::vector<Decision> decisions_;
  std::unordered_map<std::uint32_t, std::uint32_t> id_origin_;  // pointer id -> the call that made it
  bool callback_pending_ = false;  // set by a helper call that entered a callback
};

}  // namespace bpfvm::verifier
