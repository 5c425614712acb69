// The interpreter: runs a structurally valid program with RFC 9669's semantics.
//
// load() checks the program (isa::validate), resolves helper calls against a HelperTable, and
// pre-decodes it into a compact stream that run() executes with an indirect-threaded dispatch
// (computed goto). Two modes:
//  - unchecked (default): for programs the verifier accepted. Memory accesses go straight to the host.
//  - checked: for programs that did not go through the verifier. Every load, store and atomic is
//    checked against the stack and the regions the caller registered (plus those helpers allow), an
//    optional instruction budget bounds the run, and a bad access ends the run with an error naming
//    the instruction; the host never crashes.
// A loaded Interpreter is immutable; run() may be called from several threads at once.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "bpfvm/base/result.hpp"
#include "bpfvm/isa/insn.hpp"
#include "bpfvm/vm/helper.hpp"
#include "bpfvm/vm/memory.hpp"

namespace bpfvm::vm {

struct InterpreterOptions {
  bool checked = false;
  // Checked mode only: stop with an error after this many instructions (0 = no limit).
  std::uint64_t max_instructions = 0;
  // kSwitch is the plain switch loop, kept as the benchmark's baseline; both run the same op bodies.
  enum class Dispatch { kThreaded, kSwitch } dispatch = Dispatch::kThreaded;
  // Loads through pointers to kernel objects, made fault-tolerant (see ProbeLoads).
  ProbeLoads probe_loads;
};

struct RunContext {
  std::uint64_t r1 = 0, r2 = 0, r3 = 0, r4 = 0, r5 = 0;
  // Checked mode: what the program may access besides its stack.
  std::span<const MemoryRegion> regions;
  // Legacy LD_ABS/LD_IND read from here; an access outside it ends the program with r0 = 0.
  std::span<const std::uint8_t> packet;
  void* user = nullptr;  // passed to helpers through CallContext::user()
  std::size_t entry = 0;  // the instruction to start at (callbacks start inside the program)
  int nesting = 0;        // callbacks running below this run (bounded, like call frames)

  // The context of a callback this run makes (bpf_loop, for_each_map_elem): r1-r5 = args, from
  // instruction `pc` of a program of `slots` slots, one level deeper, with this run's packet and user
  // data (regions are the engine's to set). An error past the nesting limit or outside the program.
  Result<RunContext> callback(std::uint64_t pc, const std::uint64_t (&args)[5], std::size_t slots) const;
};

struct RunStats {
  std::uint64_t instructions = 0;  // counted in checked mode only
};

class Interpreter {
 public:
  static Result<Interpreter> load(std::span<const isa::RawInsn> program, const HelperTable& helpers,
                                  InterpreterOptions options = {});

  Result<std::uint64_t> run(const RunContext& ctx, RunStats* stats = nullptr) const;

  std::size_t size() const;  // in instruction slots
  const InterpreterOptions& options() const { return options_; }

  Interpreter(Interpreter&&) noexcept;
  Interpreter& operator=(Interpreter&&) noexcept;
  ~Interpreter();

  struct Code;  // the pre-decoded stream (private)

 private:
  Interpreter(std::unique_ptr<Code> code, InterpreterOptions options);
  std::unique_ptr<Code> code_;
  InterpreterOptions options_;
};

}  // namespace bpfvm::vm
