// The x86-64 JIT: compiles a program the verifier accepted to native code with the interpreter's
// semantics, bit for bit (RFC 9669 plus the kernel's extensions; see src/vm/jit/compiler.cpp for how
// each instruction maps).
//
// JIT code trusts the program as the interpreter's unchecked mode does: memory accesses go straight to
// the host. Call frames, bad callx ids and LD_ABS/LD_IND ranges are still checked at run time. The code
// lives in pages that are writable while it is written and executable afterwards, never both (W^X).
// A compiled JitProgram is immutable; run() may be called from several threads at once.
#pragma once

#include <cstddef>
#include <cstdint>
#include <new>
#include <memory>
#include <span>
#include <vector>

#include "bpfvm/base/result.hpp"
#include "bpfvm/isa/insn.hpp"
#include "bpfvm/vm/helper.hpp"
#include "bpfvm/vm/interpreter.hpp"

namespace bpfvm::vm {

struct JitOptions {
  // Constant blinding (the kernel's bpf_jit_harden): immediates a program supplies never appear in the
  // native code as they are; each is stored xor a random key and decoded into a scratch register, so an
  // untrusted program cannot plant chosen bytes in executable memory (JIT spraying).
  bool harden = false;
  // Variable shifts with BMI2's shlx/shrx/sarx (which mask the count as BPF does) where the host has
  // them; off forces the cl-based sequence (tests run both).
  bool bmi2 = true;
  // Array maps whose lookups become address arithmetic, as the kernel's verifier inlines them
  // (array_map_gen_lookup): at a call of `map_lookup` (the bpf_map_lookup_elem implementation) whose r1
  // is one of these maps (compared at run time), r0 = values + key * stride when the u32 key at r2 is
  // below max_entries, else 0, without a call. The first kMaxInlineArrays are compared; other maps call.
  struct InlineArray {
    std::uint64_t map = 0;  // what r1 holds for it
    std::uint64_t values = 0;
    std::uint32_t stride = 0;
    std::uint32_t max_entries = 0;
  };
  static constexpr std::size_t kMaxInlineArrays = 4;
  HelperFn map_lookup = nullptr;
  std::vector<InlineArray> inline_arrays;
};

class JitProgram {
 public:
  // Whether this host can run JIT code (x86-64).
  static bool available();

  // Validates and compiles `program`; helper calls are resolved against `helpers` now, as the
  // interpreter resolves them at load. Fails on what the interpreter's load refuses.
  static Result<JitProgram> compile(std::span<const isa::RawInsn> program, const HelperTable& helpers,
                                    JitOptions options = {});

  // Runs from ctx.entry with r1-r5 from ctx; ctx.regions is not consulted (the program is trusted).
  Result<std::uint64_t> run(const RunContext& ctx) const;

  // A run set up once and entered many times, by one thread at a time (test_run's repeat loop, the
  // events of one attach point): the stack, the run state and the helpers' CallContext are made with
  // it, and run(r1) only resets what a run changes and enters the code, with r2-r5, the packet, the
  // user data and the entry of `ctx`. No allocation: it lives where it is declared (about 4.5 KiB, the
  // BPF stack included). The program must outlive it.
  class Runner {
   public:
    Runner(const JitProgram& program, const RunContext& ctx);
    ~Runner();
    Runner(const Runner&) = delete;
    Runner& operator=(const Runner&) = delete;
    Result<std::uint64_t> run(std::uint64_t r1);

    struct State;  // private: the run state, the CallContext and the stack

   private:
    State& state() { return *std::launder(reinterpret_cast<State*>(storage_)); }
    alignas(64) std::byte storage_[4608];
  };

  // The native code, and where the code of each BPF instruction starts in it (one entry per
  // instruction slot; the second slot of a 64-bit load repeats the first's). The listing of
  // `bpfvm prog dump jited` is made from these.
  std::span<const std::uint8_t> code() const;
  std::uint64_t code_address() const;
  std::span<const std::uint32_t> insn_offsets() const;
  const JitOptions& options() const { return options_; }

  JitProgram(JitProgram&&) noexcept;
  JitProgram& operator=(JitProgram&&) noexcept;
  ~JitProgram();

  struct Code;  // the executable memory and its tables (private)

 private:
  JitProgram(std::unique_ptr<Code> code, JitOptions options);
  std::unique_ptr<Code> code_;
  JitOptions options_;
};

}  // namespace bpfvm::vm
