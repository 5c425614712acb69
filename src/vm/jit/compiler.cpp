// BPF -> x86-64. Each BPF register lives in one host register for the whole program:
//
//   r0 rax   r1 rdi   r2 rsi   r3 rdx   r4 rcx   r5 r8      (r1-r5: the SysV argument registers, so a
//   r6 rbx   r7 r13   r8 r14   r9 r15   r10 rbp             helper call needs no shuffling; r6-r10 in
//   r12: the RunState      r9, r10, r11: scratch            callee-saved registers survive it)
//
// A BPF function is a native function: `call` into it, `ret` at its exit. A bpf-to-bpf call saves the
// caller's r6-r10 on the native stack and gives the callee the 512-byte frame below the caller's (as the
// interpreter does); a callback runs through the trampoline like a program. Early exits (a helper that
// asks to end the program, a fault) restore the trampoline's rsp and return from there.
//
// The native stack: the trampoline leaves rsp = 8 (mod 16) inside every BPF function, a bpf-to-bpf call
// pushes 48 bytes (five registers and the return address), and a helper call adjusts by 8 so that
// helpers see the ABI's 16-byte alignment.
#include "compiler.hpp"

#include <asmjit/x86.h>

#include <functional>
#include <random>

#include "bpfvm/isa/opcode.hpp"
#include "run_state.hpp"

namespace bpfvm::vm::jit {

namespace {

using namespace asmjit;
using detail::IOp;
using detail::Op;
using x86::Gp;
using x86::Mem;

const Gp kReg[isa::kNumRegisters] = {x86::rax, x86::rdi, x86::rsi, x86::rdx, x86::rcx, x86::r8,
                                      x86::rbx, x86::r13, x86::r14, x86::r15, x86::rbp};
const Gp kState = x86::r12;
// The SysV callee-saved registers JIT code uses, saved by the trampoline.
const Gp kHostSaved[] = {x86::rbp, x86::rbx, x86::r12, x86::r13, x86::r14, x86::r15};

// asmjit reports encoding errors here; the first one fails the compilation.
class FirstError : public ErrorHandler {
 public:
  void handleError(asmjit::Error err, const char* message, BaseEmitter*) override {
    if (!failed) {
      failed = true;
      what = fmt::format("{} ({})", message, err);
    }
  }
  bool failed = false;
  std::string what;
};

// Operand widths of the four variants an ALU or jump op comes in (64/32 x imm/reg), in IOp order.
struct Variant {
  bool is64;
  bool is_reg;
};
Variant variant_of(IOp code, IOp base) {
  const int v = static_cast<int>(code) - static_cast<int>(base);
  return {v < 2, (v & 1) != 0};
}

int field(std::size_t offset) { return static_cast<int>(offset); }

#define CASE4(N) case IOp::N##64_IMM: case IOp::N##64_REG: case IOp::N##32_IMM: case IOp::N##32_REG

class Compiler {
 public:
  Compiler(x86::Assembler& a, std::span<const Op> ops, std::span<const HelperFn> callx_table,
           const JitOptions& options, ContextLayout layout, bool short_jumps)
      : a_(a), ops_(ops), callx_(callx_table), options_(options), layout_(layout), labels_(ops.size()),
        offsets_(ops.size(), 0), short_jumps_(short_jumps) {
    if (options_.harden) rng_.seed(std::random_device{}());
  }

  std::vector<std::uint32_t> take_offsets() { return std::move(offsets_); }

  void run() {
    unwind_ = a_.newLabel();
    abort_zero_ = a_.newLabel();
    // Every instruction a jump or call lands on gets a label before any code is emitted.
    std::vector<bool> loop_head(ops_.size(), false);
    for (std::size_t i = 0; i < ops_.size(); ++i) {
      const Op& op = ops_[i];
      if (is_jump(op.code) || op.code == IOp::CALL_LOCAL) label(static_cast<std::size_t>(op.off));
      if (is_jump(op.code) && static_cast<std::size_t>(op.off) <= i) loop_head[static_cast<std::size_t>(op.off)] = true;
    }
    // An upper bound of where each instruction's code starts, for choosing short forward jumps.
    if (short_jumps_) {
      bound_.assign(ops_.size() + 1, 0);
      for (std::size_t i = 0; i < ops_.size(); ++i) {
        bound_[i + 1] = bound_[i] + max_bytes(ops_[i]) + (i + 1 < ops_.size() && loop_head[i + 1] ? 15 : 0);
      }
    }
    trampoline();
    for (std::size_t i = 0; i < ops_.size(); ++i) {
      // Loops start on a 16-byte boundary, as compilers align them: the front end fetches the loop
      // body in fewer blocks.
      if (loop_head[i]) a_.align(AlignMode::kCode, 16);
      if (labels_[i].isValid()) a_.bind(labels_[i]);
      offsets_[i] = static_cast<std::uint32_t>(a_.offset());
      if (ops_[i].code == IOp::FILLER) {
        if (i > 0) offsets_[i] = offsets_[i - 1];
        continue;
      }
      pc_ = i;
      if (i + 1 < ops_.size() && !labels_[i + 1].isValid() && fuse_move_add(ops_[i], ops_[i + 1])) {
        offsets_[i + 1] = offsets_[i];
        ++i;
        continue;
      }
      emit(ops_[i]);
    }
    // Validation keeps control from running off the end; should it, stop with a fault.
    a_.jmp(fault_stub(Fault::kNoCode, ops_.size()));
    out_of_line();
  }

 private:
  // At most how many bytes emit() produces for `op` (the loop alignment is counted apart). Generous:
  // a short jump chosen on a wrong bound fails to encode, and compile_native then compiles again with
  // long jumps only.
  std::uint32_t max_bytes(const Op& op) const {
    std::uint32_t n = 16;
    switch (op.code) {
      CASE4(DIV): CASE4(MOD): CASE4(SDIV): CASE4(SMOD): n = 80; break;
      case IOp::CALL_HELPER: n = 56 + 64; break;  // the helper's call, or an inline lookup or load before it
      case IOp::CALL_LOCAL: n = 56; break;
      case IOp::CALLX: n = 96; break;
      case IOp::ATOMIC_FETCH_OR32: case IOp::ATOMIC_FETCH_AND32: case IOp::ATOMIC_FETCH_XOR32:
      case IOp::ATOMIC_FETCH_OR64: case IOp::ATOMIC_FETCH_AND64: case IOp::ATOMIC_FETCH_XOR64: n = 48; break;
      case IOp::LDABSB: case IOp::LDABSH: case IOp::LDABSW:
      case IOp::LDINDB: case IOp::LDINDH: case IOp::LDINDW: n = 64; break;
      case IOp::PROBE_LDX: n = 80; break;
      case IOp::FILLER: n = 0; break;
      default: break;
    }
    return options_.harden ? n + 24 : n;
  }
  // Whether a forward jump from instruction `from` to `to` certainly fits a signed byte.
  bool near(std::size_t from, std::size_t to) const {
    return short_jumps_ && to > from && bound_[to] - bound_[from + 1] <= 120;
  }
  // A jump (jmp or jcc) to instruction `to`: the two-byte form where it reaches.
  void jump_to(InstId inst, std::size_t to) {
    if (near(pc_, to)) a_.short_();
    a_.emit(inst, label(to));
  }

  static bool is_jump(IOp c) {
    return c == IOp::JA || (c >= IOp::JEQ64_IMM && c <= IOp::JSLE32_REG);
  }
  Label& label(std::size_t i) {
    if (!labels_[i].isValid()) labels_[i] = a_.newLabel();
    return labels_[i];
  }
  Gp q(int r) const { return kReg[r]; }
  Gp d(int r) const { return kReg[r].r32(); }
  Gp reg(int r, bool is64) const { return is64 ? q(r) : Gp(d(r)); }
  // The low `size` bytes of a register.
  static Gp part(const Gp& r, std::uint32_t size) {
    switch (size) {
      case 8: return r.r64();
      case 4: return r.r32();
      case 2: return r.r16();
      default: return r.r8();
    }
  }
  Mem state(std::size_t offset, std::uint32_t size = 8) const { return x86::ptr(kState, field(offset), size); }
  std::int32_t imm32(const Op& op) const { return static_cast<std::int32_t>(op.imm); }

  // The entry: see run_state.hpp for its signature.
  void trampoline() {
    for (const Gp& r : kHostSaved) a_.push(r);
    a_.sub(x86::rsp, 8);
    a_.mov(kState, x86::rdi);
    a_.mov(x86::rbp, x86::rdx);
    a_.mov(x86::r11, x86::rcx);
    a_.mov(state(offsetof(RunState, entry_rsp)), x86::rsp);
    a_.mov(x86::rdi, x86::qword_ptr(x86::rsi, 0));
    a_.mov(x86::rdx, x86::qword_ptr(x86::rsi, 16));
    a_.mov(x86::rcx, x86::qword_ptr(x86::rsi, 24));
    a_.mov(x86::r8, x86::qword_ptr(x86::rsi, 32));
    a_.mov(x86::rsi, x86::qword_ptr(x86::rsi, 8));
    // The interpreter starts every other register at zero; so does JIT code.
    a_.xor_(x86::eax, x86::eax);
    a_.xor_(x86::ebx, x86::ebx);
    a_.xor_(x86::r13d, x86::r13d);
    a_.xor_(x86::r14d, x86::r14d);
    a_.xor_(x86::r15d, x86::r15d);
    a_.call(x86::r11);
    Label done = a_.newLabel();
    a_.bind(done);
    a_.add(x86::rsp, 8);
    for (auto r = std::rbegin(kHostSaved); r != std::rend(kHostSaved); ++r) a_.pop(*r);
    a_.ret();
    // Early exit from any depth with r0 in rax.
    a_.bind(unwind_);
    a_.mov(x86::rsp, state(offsetof(RunState, entry_rsp)));
    a_.jmp(done);
  }

  // Code for rare cases, emitted after the program; returns where it starts.
  Label cold(std::function<void()> body) {
    Label l = a_.newLabel();
    cold_.push_back({l, std::move(body)});
    return l;
  }

  // Faults are rare: their code goes after the program, reached by a conditional jump.
  Label fault_stub(Fault kind, std::size_t pc) {
    Label l = a_.newLabel();
    stubs_.push_back({l, kind, static_cast<std::uint32_t>(pc)});
    return l;
  }
  void out_of_line() {
    for (const Cold& c : cold_) {
      a_.bind(c.label);
      c.body();
    }
    for (const Stub& s : stubs_) {
      a_.bind(s.label);
      a_.mov(state(offsetof(RunState, fault), 4), static_cast<std::uint32_t>(s.kind));
      a_.mov(state(offsetof(RunState, fault_pc), 4), s.pc);
      a_.jmp(unwind_);
    }
    // LD_ABS/LD_IND out of the packet: the program ends with r0 = 0.
    a_.bind(abort_zero_);
    a_.xor_(x86::eax, x86::eax);
    a_.jmp(unwind_);
  }

  // Constant blinding: the immediate arrives in r11 as (imm ^ key) ^ key, the key fresh for each use.
  Gp blinded(std::int32_t value, bool is64) {
    const auto key = static_cast<std::int32_t>(rng_());
    if (is64) {
      a_.mov(x86::r11, static_cast<std::int64_t>(value ^ key));
      a_.xor_(x86::r11, key);
      return x86::r11;
    }
    a_.mov(x86::r11d, static_cast<std::uint32_t>(value ^ key));
    a_.xor_(x86::r11d, key);
    return x86::r11d;
  }

  // "dst = a; dst += b" (BPF has only two-operand arithmetic, so clang emits the pair for every
  // three-operand add, pointer arithmetic included: "r1 = r10; r1 += -8") becomes one lea, when no jump
  // lands between the two. A 32-bit lea zero-extends as the 32-bit add would.
  bool fuse_move_add(const Op& mov, const Op& add) {
    const bool is64 = mov.code == IOp::MOV64_REG;
    if (!is64 && mov.code != IOp::MOV32_REG) return false;
    if (mov.dst == mov.src || add.dst != mov.dst) return false;
    const Gp dst = reg(mov.dst, is64);
    if (add.code == (is64 ? IOp::ADD64_IMM : IOp::ADD32_IMM)) {
      if (options_.harden) return false;  // the immediate would appear as a displacement
      a_.lea(dst, x86::ptr(q(mov.src), imm32(add)));
      return true;
    }
    if (add.code == (is64 ? IOp::ADD64_REG : IOp::ADD32_REG)) {
      // The add's source is read after the move: if it names dst, it means the moved value.
      const int other = add.src == mov.dst ? mov.src : add.src;
      a_.lea(dst, x86::ptr(q(mov.src), q(other)));
      return true;
    }
    return false;
  }

  // dst op= src for the two-operand instructions whose immediate form takes a sign-extended imm32.
  void alu(InstId inst, const Op& op, Variant v) {
    const Gp dst = reg(op.dst, v.is64);
    if (v.is_reg) {
      a_.emit(inst, dst, reg(op.src, v.is64));
    } else if (options_.harden) {
      a_.emit(inst, dst, blinded(imm32(op), v.is64));
    } else {
      a_.emit(inst, dst, Imm(imm32(op)));
    }
  }

  void mov(const Op& op, Variant v) {
    const Gp dst = reg(op.dst, v.is64);
    if (v.is_reg) {
      // A 32-bit move zero-extends even onto itself.
      if (op.dst != op.src || !v.is64) a_.mov(dst, reg(op.src, v.is64));
    } else if (options_.harden) {
      a_.mov(dst, blinded(imm32(op), v.is64));
    } else if (imm32(op) == 0) {
      a_.xor_(d(op.dst), d(op.dst));
    } else if (v.is64) {
      a_.mov(dst, static_cast<std::int64_t>(imm32(op)));
    } else {
      a_.mov(dst, static_cast<std::uint32_t>(imm32(op)));
    }
  }

  void mul(const Op& op, Variant v) {
    const Gp dst = reg(op.dst, v.is64);
    if (v.is_reg) {
      a_.imul(dst, reg(op.src, v.is64));
    } else if (options_.harden) {
      a_.imul(dst, blinded(imm32(op), v.is64));
    } else {
      a_.imul(dst, dst, imm32(op));
    }
  }

  // Shifts: the count is masked to the width (x86 does the same for 32- and 64-bit operands).
  void shift(InstId inst, InstId bmi2_inst, const Op& op, Variant v) {
    const Gp dst = reg(op.dst, v.is64);
    if (!v.is_reg) {
      const std::uint32_t n = static_cast<std::uint32_t>(op.imm) & (v.is64 ? 63 : 31);
      if (n != 0) {
        a_.emit(inst, dst, Imm(n));
      } else if (!v.is64) {
        a_.mov(dst, dst);  // a 32-bit op still zero-extends
      }
      return;
    }
    if (options_.bmi2) {
      a_.emit(bmi2_inst, dst, dst, reg(op.src, v.is64));
      return;
    }
    // The count must be in cl, which is r4's: park r4 in r11 meanwhile.
    if (op.src == 4) {
      a_.emit(inst, dst, x86::cl);
      return;
    }
    a_.mov(x86::r11, x86::rcx);
    a_.mov(x86::rcx, q(op.src));
    if (op.dst == 4) {
      const Gp t = part(x86::r11, v.is64 ? 8 : 4);
      a_.emit(inst, t, x86::cl);
      a_.mov(dst, t);
    } else {
      a_.emit(inst, dst, x86::cl);
      a_.mov(x86::rcx, x86::r11);
    }
  }

  // Division and modulo (RFC 9669 4.1): x / 0 = 0, x % 0 = x (32-bit: truncated); signed INT_MIN / -1
  // = INT_MIN and INT_MIN % -1 = 0, where x86 would trap. x86 divides rdx:rax, which hold r3 and r0, so
  // those are parked in r9 and r10 around the division; the divisor goes to r11.
  void div(const Op& op, Variant v, bool is_signed, bool is_mod) {
    const Gp dst = reg(op.dst, v.is64);
    const bool known = !v.is_reg;
    const std::int32_t k = imm32(op);
    if (known && k == 0) {
      if (!is_mod) {
        a_.xor_(d(op.dst), d(op.dst));
      } else if (!v.is64) {
        a_.mov(dst, dst);
      }
      return;
    }
    if (known && is_signed && k == -1) {
      if (is_mod) {
        a_.xor_(d(op.dst), d(op.dst));
      } else {
        a_.neg(dst);
      }
      return;
    }
    const Gp divisor = part(x86::r11, v.is64 ? 8 : 4);
    // A register divisor is tested at run time. Its special cases are rare: their code goes after the
    // program, so that the common path runs straight through without a taken jump.
    Label done;
    if (!known) {
      done = a_.newLabel();
      const Label zero = cold([this, op, v, is_mod, dst, done] {
        if (!is_mod) {
          a_.xor_(d(op.dst), d(op.dst));
        } else if (!v.is64) {
          a_.mov(dst, dst);
        }
        a_.jmp(done);
      });
      a_.mov(divisor, reg(op.src, v.is64));
      a_.test(divisor, divisor);
      a_.jz(zero);
      if (is_signed) {
        const Label minus_one = cold([this, op, is_mod, dst, done] {
          if (is_mod) {
            a_.xor_(d(op.dst), d(op.dst));
          } else {
            a_.neg(dst);
          }
          a_.jmp(done);
        });
        a_.cmp(divisor, -1);
        a_.je(minus_one);
      }
    }
    if (known) {
      if (options_.harden) {
        blinded(k, v.is64);
      } else if (v.is64) {
        a_.mov(x86::r11, static_cast<std::int64_t>(k));
      } else {
        a_.mov(x86::r11d, static_cast<std::uint32_t>(k));
      }
    }
    const Gp rax = part(x86::rax, v.is64 ? 8 : 4);
    const Gp rdx = part(x86::rdx, v.is64 ? 8 : 4);
    if (op.dst != 0) a_.mov(x86::r10, x86::rax);
    if (op.dst != 3) a_.mov(x86::r9, x86::rdx);
    if (op.dst != 0) a_.mov(rax, dst);
    if (is_signed) {
      if (v.is64) {
        a_.cqo(x86::rdx, x86::rax);
      } else {
        a_.cdq(x86::edx, x86::eax);
      }
      a_.idiv(rdx, rax, divisor);
    } else {
      a_.xor_(x86::edx, x86::edx);
      a_.div(rdx, rax, divisor);
    }
    const Gp result = is_mod ? rdx : rax;
    if (op.dst == 0) {
      if (is_mod) a_.mov(rax, rdx);
      a_.mov(x86::rdx, x86::r9);
    } else if (op.dst == 3) {
      if (!is_mod) a_.mov(rdx, rax);
      a_.mov(x86::rax, x86::r10);
    } else {
      a_.mov(dst, result);
      a_.mov(x86::rax, x86::r10);
      a_.mov(x86::rdx, x86::r9);
    }
    if (!known) a_.bind(done);
  }

  void jump(InstId jcc, const Op& op, Variant v, bool test) {
    const Gp dst = reg(op.dst, v.is64);
    if (v.is_reg) {
      if (test) {
        a_.test(dst, reg(op.src, v.is64));
      } else {
        a_.cmp(dst, reg(op.src, v.is64));
      }
    } else if (options_.harden) {
      const Gp k = blinded(imm32(op), v.is64);
      if (test) {
        a_.test(dst, k);
      } else {
        a_.cmp(dst, k);
      }
    } else if (!test && imm32(op) == 0 && (jcc == x86::Inst::kIdJe || jcc == x86::Inst::kIdJne)) {
      a_.test(dst, dst);
    } else if (test) {
      a_.test(dst, imm32(op));
    } else {
      a_.cmp(dst, imm32(op));
    }
    jump_to(jcc, static_cast<std::size_t>(op.off));
  }

  // The map the verifier proved r1 holds at this call of bpf_map_lookup_elem, when the JIT has a
  // faster way to its lookup; null otherwise.
  const JitOptions::KnownMap* known_lookup(const Op& op) const {
    if (!options_.map_lookup || op.imm != reinterpret_cast<std::uint64_t>(options_.map_lookup)) return nullptr;
    if (pc_ >= options_.call_maps.size()) return nullptr;
    const std::int64_t handle = options_.call_maps[pc_];
    if (handle < 0 || static_cast<std::uint64_t>(handle) >= options_.maps.size()) return nullptr;
    const JitOptions::KnownMap& m = options_.maps[static_cast<std::size_t>(handle)];
    if (m.values && m.cpu_stride && !options_.cpu_slot) return nullptr;
    if (m.values && (m.stride > INT32_MAX || m.cpu_stride > INT32_MAX)) return nullptr;  // imul takes an imm32
    return m.values || m.lookup ? &m : nullptr;
  }

  // bpf_map_lookup_elem on a known map. An array: r0 = values + key * stride for a key below
  // max_entries, else NULL, without a call (the kernel's array_map_gen_lookup). Another map: its own
  // lookup called directly with r1 and r2 where they are (no CallContext, no exit check: it cannot end
  // the program). r1-r5 are dead after a call, so either may leave them changed.
  void known_map_lookup(const JitOptions::KnownMap& m) {
    if (!m.values) {
      a_.mov(x86::r11, reinterpret_cast<std::uint64_t>(m.lookup));
      a_.sub(x86::rsp, 8);
      a_.call(x86::r11);
      a_.add(x86::rsp, 8);
      return;
    }
    const Label null = a_.newLabel(), done = a_.newLabel();
    if (m.cpu_stride) {
      // r11 = the thread's slot + 1, read at %fs:cpu_slot_tls; assigned by a call the first time.
      const Label have = a_.newLabel();
      Mem slot = x86::dword_ptr_abs(static_cast<std::uint64_t>(options_.cpu_slot_tls));
      slot.setSegment(x86::fs);
      a_.mov(x86::r11d, slot);
      a_.test(x86::r11d, x86::r11d);
      a_.jnz(have);
      a_.push(q(2));  // the key's address; the push keeps the stack 16-byte aligned for the call
      a_.mov(x86::rax, reinterpret_cast<std::uint64_t>(options_.cpu_slot));
      a_.call(x86::rax);
      a_.pop(q(2));
      a_.lea(x86::r11d, x86::ptr(x86::rax, 1));
      a_.bind(have);
    }
    a_.mov(x86::eax, x86::dword_ptr(q(2)));  // the u32 key; the upper half of rax is cleared
    a_.cmp(x86::eax, m.max_entries);
    a_.jae(null);
    if (m.stride && (m.stride & (m.stride - 1)) == 0) {
      a_.shl(x86::rax, static_cast<std::uint32_t>(__builtin_ctz(m.stride)));
    } else {
      a_.imul(x86::rax, x86::rax, m.stride);
    }
    if (m.cpu_stride) {
      // (slot + 1) * cpu_stride, the extra cpu_stride taken off the base below
      a_.imul(x86::r11, x86::r11, m.cpu_stride);  // the upper half of r11 was cleared by the 32-bit load
      a_.add(x86::rax, x86::r11);
    }
    a_.mov(x86::r11, m.values - m.cpu_stride);
    a_.add(x86::rax, x86::r11);
    a_.jmp(done);
    a_.bind(null);
    a_.xor_(x86::eax, x86::eax);
    a_.bind(done);
  }

  // The user-data field this helper's answer is, if any.
  const JitOptions::UserField* user_field(const Op& op) const {
    for (const JitOptions::UserField& f : options_.user_fields) {
      if (f.helper && op.imm == reinterpret_cast<std::uint64_t>(f.helper)) return &f;
    }
    return nullptr;
  }

  // r0 = the field at user() + offset; the helper when the run has no user data.
  void user_field_load(const JitOptions::UserField& f, const Op& op) {
    const Label call = a_.newLabel(), done = a_.newLabel();
    a_.mov(x86::r11, x86::qword_ptr(kState, layout_.user));
    a_.test(x86::r11, x86::r11);
    a_.jz(call);
    if (f.size == 8) {
      a_.mov(x86::rax, x86::qword_ptr(x86::r11, f.offset));
    } else {
      a_.mov(x86::eax, x86::dword_ptr(x86::r11, f.offset));
    }
    a_.jmp(done);
    a_.bind(call);
    a_.mov(x86::r11, op.imm);
    call_helper(x86::r11);
    a_.bind(done);
  }

  void call_helper(const Gp& target) {
    a_.lea(x86::r9, x86::ptr(kState, layout_.call));
    a_.sub(x86::rsp, 8);
    a_.call(target);
    a_.add(x86::rsp, 8);
    a_.cmp(x86::byte_ptr(kState, layout_.exit_flag), 0);
    a_.jne(unwind_);
  }

  void load(const Op& op, std::uint32_t size, bool sign) {
    const Mem m = x86::ptr(q(op.src), op.off, size);
    if (size == 8) {
      a_.mov(q(op.dst), m);
    } else if (size == 4) {
      if (sign) {
        a_.movsxd(q(op.dst), m);
      } else {
        a_.mov(d(op.dst), m);
      }
    } else if (sign) {
      a_.movsx(q(op.dst), m);
    } else {
      a_.movzx(d(op.dst), m);
    }
  }

  // A load through a pointer to a kernel object (ProbeLoads): the reader called with r0-r5 pushed
  // around it (six pushes and 8 bytes keep the call 16-byte aligned), its answer extended into dst.
  void probe_load(const Op& op) {
    const std::uint32_t size = op.aux & 0x7fu;
    a_.lea(x86::r11, x86::ptr(q(op.src), op.off));
    for (int r = 0; r <= 5; ++r) a_.push(q(r));
    a_.mov(x86::rdi, x86::r11);
    a_.mov(x86::esi, size);
    a_.lea(x86::r9, x86::ptr(kState, layout_.call));
    a_.mov(x86::r11, op.imm);
    a_.sub(x86::rsp, 8);
    a_.call(x86::r11);
    a_.add(x86::rsp, 8);
    a_.mov(x86::r11, x86::rax);
    for (int r = 5; r >= 0; --r) a_.pop(q(r));
    if (!(op.aux & 0x80) || size == 8) {
      a_.mov(q(op.dst), x86::r11);
    } else if (size == 4) {
      a_.movsxd(q(op.dst), x86::r11d);
    } else if (size == 2) {
      a_.movsx(q(op.dst), x86::r11w);
    } else {
      a_.movsx(q(op.dst), x86::r11b);
    }
  }

  void store(const Op& op, std::uint32_t size, bool from_reg) {
    const Mem m = x86::ptr(q(op.dst), op.off, size);
    if (from_reg) {
      const Gp s = q(op.src);
      a_.mov(m, part(s, size));
      return;
    }
    if (options_.harden) {
      const Gp k = blinded(imm32(op), size == 8);
      a_.mov(m, part(k, size));
      return;
    }
    // The 64-bit form sign-extends its imm32, as BPF's STDW does.
    if (size == 8) {
      a_.mov(m, imm32(op));
    } else {
      a_.mov(m, static_cast<std::uint32_t>(imm32(op)) & (size == 4 ? 0xffffffffu : size == 2 ? 0xffffu : 0xffu));
    }
  }

  // Atomics are fully ordered: lock-prefixed instructions and xchg are. The fetch forms of or/and/xor
  // have no x86 instruction and loop on cmpxchg, which needs rax (r0): r0 waits in r10.
  void atomic(const Op& op, std::uint32_t size, InstId inst, bool fetch) {
    const bool w64 = size == 8;
    const Mem m = x86::ptr(q(op.dst), op.off, size);
    const Gp src = reg(op.src, w64);
    if (!fetch) {
      a_.lock().emit(inst, m, src);
      return;
    }
    if (inst == x86::Inst::kIdAdd) {
      a_.lock().xadd(m, src);
      return;
    }
    a_.lea(x86::r9, x86::ptr(q(op.dst), op.off));
    const Mem at = x86::ptr(x86::r9, 0, size);
    a_.mov(x86::r10, x86::rax);
    const Gp operand = op.src == 0 ? part(x86::r10, size) : src;
    const Gp rax = part(x86::rax, size);
    const Gp tmp = part(x86::r11, size);
    a_.mov(rax, at);
    Label again = a_.newLabel();
    a_.bind(again);
    a_.mov(tmp, rax);
    a_.emit(inst, tmp, operand);
    a_.lock().cmpxchg(at, tmp, rax);
    a_.jne(again);
    if (op.src != 0) {
      a_.mov(src, rax);
      a_.mov(x86::rax, x86::r10);
    }
  }

  // Legacy packet loads: r0 = the big-endian value at imm (+ src as a signed 32-bit sum); outside the
  // packet the program ends with r0 = 0.
  void packet_load(const Op& op, std::uint32_t size, bool indirect) {
    const Mem packet_size = state(offsetof(RunState, packet_size));
    if (!indirect) {
      const std::int64_t at = imm32(op);
      if (at < 0) {
        a_.jmp(abort_zero_);
        return;
      }
      a_.cmp(packet_size, static_cast<std::int32_t>(at + size));
      a_.jb(abort_zero_);
      a_.mov(x86::r11, state(offsetof(RunState, packet)));
      packet_value(x86::ptr(x86::r11, static_cast<std::int32_t>(at), size), size);
      return;
    }
    a_.mov(x86::r11d, d(op.src));
    a_.add(x86::r11d, imm32(op));
    a_.movsxd(x86::r11, x86::r11d);
    a_.test(x86::r11, x86::r11);
    a_.js(abort_zero_);
    a_.lea(x86::r10, x86::ptr(x86::r11, static_cast<std::int32_t>(size)));
    a_.cmp(x86::r10, packet_size);
    a_.ja(abort_zero_);
    a_.add(x86::r11, state(offsetof(RunState, packet)));
    packet_value(x86::ptr(x86::r11, 0, size), size);
  }
  void packet_value(const Mem& m, std::uint32_t size) {
    if (size == 1) {
      a_.movzx(x86::eax, m);
    } else if (size == 2) {
      a_.movzx(x86::eax, m);
      a_.rol(x86::ax, 8);
    } else {
      a_.mov(x86::eax, m);
      a_.bswap(x86::eax);
    }
  }

  void emit(const Op& op);

  struct Stub {
    Label label;
    Fault kind;
    std::uint32_t pc;
  };
  struct Cold {
    Label label;
    std::function<void()> body;
  };

  x86::Assembler& a_;
  std::span<const Op> ops_;
  std::span<const HelperFn> callx_;
  const JitOptions& options_;
  ContextLayout layout_;
  std::vector<Label> labels_;
  std::vector<std::uint32_t> offsets_;
  std::vector<Stub> stubs_;
  std::vector<Cold> cold_;
  Label unwind_, abort_zero_;
  std::size_t pc_ = 0;
  std::mt19937 rng_;
  bool short_jumps_;
  std::vector<std::uint32_t> bound_;
};

void Compiler::emit(const Op& op) {
  namespace I = x86::Inst;
  const auto v = [&](IOp base) { return variant_of(op.code, base); };
  switch (op.code) {
    CASE4(ADD): alu(I::kIdAdd, op, v(IOp::ADD64_IMM)); return;
    CASE4(SUB): alu(I::kIdSub, op, v(IOp::SUB64_IMM)); return;
    CASE4(OR): alu(I::kIdOr, op, v(IOp::OR64_IMM)); return;
    CASE4(AND): alu(I::kIdAnd, op, v(IOp::AND64_IMM)); return;
    CASE4(XOR): alu(I::kIdXor, op, v(IOp::XOR64_IMM)); return;
    CASE4(MOV): mov(op, v(IOp::MOV64_IMM)); return;
    CASE4(MUL): mul(op, v(IOp::MUL64_IMM)); return;
    CASE4(LSH): shift(I::kIdShl, I::kIdShlx, op, v(IOp::LSH64_IMM)); return;
    CASE4(RSH): shift(I::kIdShr, I::kIdShrx, op, v(IOp::RSH64_IMM)); return;
    CASE4(ARSH): shift(I::kIdSar, I::kIdSarx, op, v(IOp::ARSH64_IMM)); return;
    CASE4(DIV): div(op, v(IOp::DIV64_IMM), false, false); return;
    CASE4(MOD): div(op, v(IOp::MOD64_IMM), false, true); return;
    CASE4(SDIV): div(op, v(IOp::SDIV64_IMM), true, false); return;
    CASE4(SMOD): div(op, v(IOp::SMOD64_IMM), true, true); return;
    case IOp::NEG64: a_.neg(q(op.dst)); return;
    case IOp::NEG32: a_.neg(d(op.dst)); return;
    case IOp::MOVSX64_8: a_.movsx(q(op.dst), q(op.src).r8()); return;
    case IOp::MOVSX64_16: a_.movsx(q(op.dst), q(op.src).r16()); return;
    case IOp::MOVSX64_32: a_.movsxd(q(op.dst), d(op.src)); return;
    case IOp::MOVSX32_8: a_.movsx(d(op.dst), q(op.src).r8()); return;
    case IOp::MOVSX32_16: a_.movsx(d(op.dst), q(op.src).r16()); return;
    case IOp::LE16: a_.movzx(d(op.dst), q(op.dst).r16()); return;
    case IOp::LE32: a_.mov(d(op.dst), d(op.dst)); return;
    case IOp::LE64: return;
    case IOp::BE16:
      a_.rol(q(op.dst).r16(), 8);
      a_.movzx(d(op.dst), q(op.dst).r16());
      return;
    case IOp::BE32: a_.bswap(d(op.dst)); return;
    case IOp::BE64: a_.bswap(q(op.dst)); return;
    CASE4(JEQ): jump(I::kIdJe, op, v(IOp::JEQ64_IMM), false); return;
    CASE4(JNE): jump(I::kIdJne, op, v(IOp::JNE64_IMM), false); return;
    CASE4(JGT): jump(I::kIdJa, op, v(IOp::JGT64_IMM), false); return;
    CASE4(JGE): jump(I::kIdJae, op, v(IOp::JGE64_IMM), false); return;
    CASE4(JLT): jump(I::kIdJb, op, v(IOp::JLT64_IMM), false); return;
    CASE4(JLE): jump(I::kIdJbe, op, v(IOp::JLE64_IMM), false); return;
    CASE4(JSGT): jump(I::kIdJg, op, v(IOp::JSGT64_IMM), false); return;
    CASE4(JSGE): jump(I::kIdJge, op, v(IOp::JSGE64_IMM), false); return;
    CASE4(JSLT): jump(I::kIdJl, op, v(IOp::JSLT64_IMM), false); return;
    CASE4(JSLE): jump(I::kIdJle, op, v(IOp::JSLE64_IMM), false); return;
    CASE4(JSET): jump(I::kIdJnz, op, v(IOp::JSET64_IMM), true); return;
    case IOp::JA:
      if (static_cast<std::size_t>(op.off) != pc_ + 1) jump_to(I::kIdJmp, static_cast<std::size_t>(op.off));
      return;
    case IOp::CALL_HELPER:
      if (const JitOptions::KnownMap* m = known_lookup(op)) {
        known_map_lookup(*m);
        return;
      }
      if (const JitOptions::UserField* f = user_field(op)) {
        user_field_load(*f, op);
        return;
      }
      a_.mov(x86::r11, op.imm);
      call_helper(x86::r11);
      return;
    case IOp::CALLX: {
      // The register holds a helper id (as in the interpreter): look it up in the table at run time.
      const Label bad = fault_stub(Fault::kCallx, pc_);
      a_.mov(state(offsetof(RunState, fault_value)), q(op.dst));
      a_.cmp(q(op.dst), static_cast<std::int32_t>(callx_.size()));
      a_.jae(bad);
      a_.mov(x86::r10, reinterpret_cast<std::uint64_t>(callx_.data()));
      a_.mov(x86::r11, x86::ptr(x86::r10, q(op.dst), 3));
      a_.test(x86::r11, x86::r11);
      a_.jz(bad);
      call_helper(x86::r11);
      return;
    }
    case IOp::CALL_LOCAL:
      // Room for the callee's frame below this one, else the call-depth fault.
      a_.cmp(x86::rbp, state(offsetof(RunState, frame_floor)));
      a_.jb(fault_stub(Fault::kCallDepth, pc_));
      for (int r = 6; r <= 10; ++r) a_.push(q(r));
      a_.sub(x86::rbp, isa::kStackSize);
      a_.call(label(static_cast<std::size_t>(op.off)));
      for (int r = 10; r >= 6; --r) a_.pop(q(r));
      return;
    case IOp::EXIT: a_.ret(); return;
    case IOp::LDDW:
      if (options_.harden) {
        std::uint64_t key = rng_();
        key = key << 32 | rng_();
        a_.mov(q(op.dst), op.imm ^ key);
        a_.mov(x86::r11, key);
        a_.xor_(q(op.dst), x86::r11);
      } else if (op.imm == 0) {
        a_.xor_(d(op.dst), d(op.dst));
      } else {
        a_.mov(q(op.dst), op.imm);
      }
      return;
    case IOp::FILLER: a_.jmp(fault_stub(Fault::kNoCode, pc_)); return;
    case IOp::LDXB: load(op, 1, false); return;
    case IOp::LDXH: load(op, 2, false); return;
    case IOp::LDXW: load(op, 4, false); return;
    case IOp::LDXDW: load(op, 8, false); return;
    case IOp::LDXSB: load(op, 1, true); return;
    case IOp::LDXSH: load(op, 2, true); return;
    case IOp::LDXSW: load(op, 4, true); return;
    case IOp::PROBE_LDX: probe_load(op); return;
    case IOp::STB: store(op, 1, false); return;
    case IOp::STH: store(op, 2, false); return;
    case IOp::STW: store(op, 4, false); return;
    case IOp::STDW: store(op, 8, false); return;
    case IOp::STXB: store(op, 1, true); return;
    case IOp::STXH: store(op, 2, true); return;
    case IOp::STXW: store(op, 4, true); return;
    case IOp::STXDW: store(op, 8, true); return;
    case IOp::ATOMIC_ADD32: atomic(op, 4, I::kIdAdd, false); return;
    case IOp::ATOMIC_OR32: atomic(op, 4, I::kIdOr, false); return;
    case IOp::ATOMIC_AND32: atomic(op, 4, I::kIdAnd, false); return;
    case IOp::ATOMIC_XOR32: atomic(op, 4, I::kIdXor, false); return;
    case IOp::ATOMIC_FETCH_ADD32: atomic(op, 4, I::kIdAdd, true); return;
    case IOp::ATOMIC_FETCH_OR32: atomic(op, 4, I::kIdOr, true); return;
    case IOp::ATOMIC_FETCH_AND32: atomic(op, 4, I::kIdAnd, true); return;
    case IOp::ATOMIC_FETCH_XOR32: atomic(op, 4, I::kIdXor, true); return;
    case IOp::ATOMIC_ADD64: atomic(op, 8, I::kIdAdd, false); return;
    case IOp::ATOMIC_OR64: atomic(op, 8, I::kIdOr, false); return;
    case IOp::ATOMIC_AND64: atomic(op, 8, I::kIdAnd, false); return;
    case IOp::ATOMIC_XOR64: atomic(op, 8, I::kIdXor, false); return;
    case IOp::ATOMIC_FETCH_ADD64: atomic(op, 8, I::kIdAdd, true); return;
    case IOp::ATOMIC_FETCH_OR64: atomic(op, 8, I::kIdOr, true); return;
    case IOp::ATOMIC_FETCH_AND64: atomic(op, 8, I::kIdAnd, true); return;
    case IOp::ATOMIC_FETCH_XOR64: atomic(op, 8, I::kIdXor, true); return;
    case IOp::ATOMIC_XCHG32: a_.xchg(x86::dword_ptr(q(op.dst), op.off), d(op.src)); return;
    case IOp::ATOMIC_XCHG64: a_.xchg(x86::qword_ptr(q(op.dst), op.off), q(op.src)); return;
    case IOp::ATOMIC_CMPXCHG32:
      a_.lock().cmpxchg(x86::dword_ptr(q(op.dst), op.off), d(op.src), x86::eax);
      a_.mov(x86::eax, x86::eax);  // r0 gets the old value zero-extended, whether or not it matched
      return;
    case IOp::ATOMIC_CMPXCHG64: a_.lock().cmpxchg(x86::qword_ptr(q(op.dst), op.off), q(op.src), x86::rax); return;
    case IOp::LDABSB: packet_load(op, 1, false); return;
    case IOp::LDABSH: packet_load(op, 2, false); return;
    case IOp::LDABSW: packet_load(op, 4, false); return;
    case IOp::LDINDB: packet_load(op, 1, true); return;
    case IOp::LDINDH: packet_load(op, 2, true); return;
    case IOp::LDINDW: packet_load(op, 4, true); return;
    case IOp::kCount: break;
  }
}

#undef CASE4

}  // namespace

namespace {

Result<NativeCode> compile_with(std::span<const Op> ops, std::span<const HelperFn> callx_table,
                                const JitOptions& options, ContextLayout layout, bool short_jumps) {
  CodeHolder holder;
  holder.init(Environment::host());
  FirstError errors;
  holder.setErrorHandler(&errors);
  // About 10 bytes of x86 per BPF instruction: one allocation up front instead of regrowing.
  holder.reserveBuffer(&holder.textSection()->_buffer, 256 + ops.size() * 12);
  x86::Assembler a(&holder);
  Compiler compiler(a, ops, callx_table, options, layout, short_jumps);
  compiler.run();
  if (!errors.failed) holder.flatten();
  if (!errors.failed) holder.resolveUnresolvedLinks();
  if (errors.failed) return make_error(Errc::kInvalid, "JIT: cannot encode the program: {}", errors.what);
  const std::size_t size = holder.codeSize();
  NativeCode out;
  out.memory = BPFVM_TRY(os::ExecutableMemory::allocate(size));
  if (holder.relocateToBase(reinterpret_cast<std::uint64_t>(out.memory.data())) != kErrorOk ||
      holder.copyFlattenedData(out.memory.data(), size, CopySectionFlags::kPadSectionBuffer) != kErrorOk) {
    return make_error(Errc::kInvalid, "JIT: cannot place the code");
  }
  BPFVM_TRY(out.memory.seal());
  out.size = static_cast<std::uint32_t>(size);
  out.insn_offsets = compiler.take_offsets();
  return out;
}

}  // namespace

Result<NativeCode> compile_native(std::span<const Op> ops, std::span<const HelperFn> callx_table,
                                  const JitOptions& options, ContextLayout layout) {
  auto code = compile_with(ops, callx_table, options, layout, true);
  if (code) return code;
  // A short jump that did not reach (a size bound was wrong): long jumps always do.
  return compile_with(ops, callx_table, options, layout, false);
}

}  // namespace bpfvm::vm::jit
