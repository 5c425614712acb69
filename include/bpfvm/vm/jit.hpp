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
  // What the verifier proved about the maps helper calls pass (VerifierOptions::call_maps: per
  // instruction, an index into `maps`, or negative where no one map is known), so that a call of
  // `map_lookup` (the bpf_map_lookup_elem implementation) on a known map skips the helper, as the
  // kernel's fixups do for a map whose type has map_gen_lookup:
  //  - an array (values set): r0 = values + key * stride when the u32 key at r2 is below max_entries,
  //    else 0, with no call (array_map_gen_lookup); a per-CPU array's (cpu_stride set) adds the
  //    thread's slot times cpu_stride, the slot read from cpu_slot_tls (percpu_array_map_gen_lookup);
  //  - else, when `lookup` is set: r0 = lookup(r1, r2), the map's own function called directly
  //    (htab_map_gen_lookup's call of __htab_map_lookup_elem).
  struct KnownMap {
    std::uint64_t values = 0;
    std::uint32_t stride = 0;
    std::uint32_t max_entries = 0;
    void* (*lookup)(void* map, const void* key) = nullptr;
    std::uint32_t cpu_stride = 0;
  };
  // The thread's slot for per-CPU arrays: slot + 1 at this offset from the thread pointer (0 until
  // assigned, when `cpu_slot` is called to assign and return it); see maps::this_cpu_tls_offset.
  std::intptr_t cpu_slot_tls = 0;
  std::uint32_t (*cpu_slot)() = nullptr;
  HelperFn map_lookup = nullptr;
  std::vector<std::int64_t> call_maps;
  std::vector<KnownMap> maps;
  // Helpers whose answer is a field of the run's user data (CallContext::user(), the embedder's per-run
  // data): a call becomes a load of the `size`-byte value at user() + offset, zero-extended (the
  // kernel inlines bpf_get_smp_processor_id as a per-CPU load); with no user data the helper is called.
  struct UserField {
    HelperFn helper = nullptr;
    std::int32_t offset = 0;
    std::uint8_t size = 8;  // 4 or 8
  };
  std::vector<UserField> user_fields;
  // Loads through pointers to kernel objects, made fault-tolerant (see ProbeLoads): a call of
  // probe_loads.read with r0-r5 kept.
  ProbeLoads probe_loads;
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
