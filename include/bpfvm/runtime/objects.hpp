// The objects of the runtime (the "kernel"): maps, programs, BTF blobs and links, each with an id.
// Programs and embedders hold them by shared_ptr; the Runtime's registry and fd table hold them too.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "bpfvm/base/result.hpp"
#include "bpfvm/helpers/run_env.hpp"
#include "bpfvm/helpers/timers.hpp"
#include "bpfvm/isa/insn.hpp"
#include "bpfvm/maps/map.hpp"
#include "bpfvm/obj/btf.hpp"
#include "bpfvm/obj/btf_ext.hpp"
#include "bpfvm/runtime/program_profile.hpp"
#include "bpfvm/verifier/verifier.hpp"
#include "bpfvm/vm/interpreter.hpp"
#include "bpfvm/vm/jit.hpp"
#include "bpfvm/vm/memory.hpp"

namespace bpfvm::runtime {

class Runtime;

class BtfObject {
 public:
  BtfObject(std::uint32_t id, obj::Btf btf) : id_(id), btf_(std::move(btf)) {}
  std::uint32_t id() const { return id_; }
  const obj::Btf& btf() const { return btf_; }
  // Its record in the system registry, removed when the object goes (runtime/registry.hpp).
  void set_registration(std::shared_ptr<void> r) { registration_ = std::move(r); }

 private:
  std::uint32_t id_;
  obj::Btf btf_;
  std::shared_ptr<void> registration_;
};

class Map {
 public:
  Map(std::shared_ptr<maps::Map> impl, std::shared_ptr<const BtfObject> btf, std::uint32_t btf_key_type_id,
      std::uint32_t btf_value_type_id);

  std::uint32_t id() const { return impl_->id(); }
  const maps::MapDef& def() const { return impl_->def(); }
  const std::string& name() const { return impl_->def().name; }
  maps::Map& impl() const { return *impl_; }
  const std::shared_ptr<maps::Map>& shared_impl() const { return impl_; }
  const BtfObject* btf() const { return btf_.get(); }
  std::uint32_t btf_key_type_id() const { return btf_key_type_id_; }
  std::uint32_t btf_value_type_id() const { return btf_value_type_id_; }

  // The value at index 0 of an array (global data, direct value access); null for other types.
  std::uint8_t* direct_value() const;
  void set_registration(std::shared_ptr<void> r) { registration_ = std::move(r); }

 private:
  std::shared_ptr<void> registration_;
  std::shared_ptr<maps::Map> impl_;
  std::shared_ptr<const BtfObject> btf_;
  std::uint32_t btf_key_type_id_, btf_value_type_id_;
};

// How programs run: the x86-64 JIT, or the interpreter. The JIT is the default where the host can run
// it, unless $BPFVM_JIT is 0 (the kernel's net.core.bpf_jit_enable); $BPFVM_JIT_HARDEN=1 blinds the
// JIT's constants (net.core.bpf_jit_harden).
enum class ExecMode { kInterpreter, kJit };
ExecMode default_exec_mode();
bool default_jit_harden();

struct TestRunRequest {
  std::span<const std::uint8_t> data_in;
  std::span<const std::uint8_t> ctx_in;
  std::uint32_t repeat = 1;  // 0 counts as 1
  // A syscall program's bpf() and close() (bpf_sys_bpf, bpf_sys_close): the caller's runtime, whose
  // descriptors the program's commands make and use.
  Runtime* runtime = nullptr;
};

struct TestRunResult {
  std::uint32_t retval = 0;
  std::uint32_t duration_ns = 0;  // average per run
  std::vector<std::uint8_t> data_out;
  std::vector<std::uint8_t> ctx_out;  // the user-visible context after the run
};

// The kernel's license_is_gpl_compatible.
bool gpl_compatible(std::string_view license);

class Program final : public helpers::TimerProgram, public std::enable_shared_from_this<Program> {
 public:
  struct Parts {  // what the runtime hands over when a load succeeds
    std::uint32_t id = 0;
    std::uint32_t prog_type = 0, expected_attach_type = 0, attach_btf_id = 0;
    // A tracing program's target by name (a kernel function, a raw tracepoint) and how many arguments
    // it has (fexit's return value comes after them in the context).
    std::string attach_target;
    std::uint32_t attach_args = 0;
    bool sleepable = false;  // loaded with BPF_F_SLEEPABLE
    // A syscall program: the end of the furthest context bytes it reads or writes (ctx_in must hold them).
    std::uint32_t max_ctx_offset = 0;
    // Its cgroup storages' value sizes (0: none), found at load so that runs of other programs pay
    // nothing for them.
    std::uint32_t cgroup_storage_size = 0, percpu_cgroup_storage_size = 0;
    std::string name, license;
    std::vector<isa::RawInsn> original;  // as loaded, map references as BPF_PSEUDO_MAP_IDX(_VALUE) into maps
    std::vector<isa::RawInsn> xlated;    // after rewriting, map references as map ids (what bpftool dumps)
    std::vector<std::shared_ptr<Map>> maps;
    std::shared_ptr<const BtfObject> btf;
    std::vector<obj::FuncInfo> func_info;
    std::vector<obj::LineInfo> line_info;
    std::array<std::uint8_t, 8> tag{};
    std::shared_ptr<maps::Map> trace_pipe;       // where bpf_trace_printk writes
    std::optional<vm::Interpreter> interpreter;  // one of these two runs the program
    std::optional<vm::JitProgram> jit;
    // What the verifier's proof took (every loaded program was verified; it runs unchecked).
    verifier::VerifierStats verified;
  };
  explicit Program(Parts parts) : p_(std::move(parts)) { load_time_ = std::chrono::system_clock::now(); }

  std::uint32_t id() const { return p_.id; }
  std::uint32_t type() const { return p_.prog_type; }
  std::uint32_t expected_attach_type() const { return p_.expected_attach_type; }
  // A tracing program's target in the kernel's BTF (0 for other types).
  std::uint32_t attach_btf_id() const { return p_.attach_btf_id; }
  const std::string& attach_target() const { return p_.attach_target; }
  std::uint32_t attach_args() const { return p_.attach_args; }
  bool sleepable() const { return p_.sleepable; }
  const std::string& name() const { return p_.name; }
  const std::string& license() const { return p_.license; }
  std::span<const isa::RawInsn> xlated() const { return p_.xlated; }
  std::span<const isa::RawInsn> original() const { return p_.original; }
  const std::vector<std::shared_ptr<Map>>& maps() const { return p_.maps; }
  const BtfObject* btf() const { return p_.btf.get(); }
  std::span<const obj::FuncInfo> func_info() const { return p_.func_info; }
  std::span<const obj::LineInfo> line_info() const { return p_.line_info; }
  const std::array<std::uint8_t, 8>& tag() const { return p_.tag; }
  const verifier::VerifierStats& verified() const { return p_.verified; }
  // The native code, when the program runs in the JIT.
  const vm::JitProgram* jited() const { return p_.jit ? &*p_.jit : nullptr; }
  std::chrono::system_clock::time_point load_time() const { return load_time_; }
  // Run statistics, kept only while enabled (the kernel's kernel.bpf_stats_enabled), as timing every
  // run costs more than a short program.
  static void enable_stats(bool on);
  static bool stats_enabled();
  std::uint64_t run_count() const { return run_count_.load(std::memory_order_relaxed); }
  std::uint64_t run_time_ns() const { return run_time_ns_.load(std::memory_order_relaxed); }
  void set_registration(std::shared_ptr<void> r) { registration_ = std::move(r); }
  // Where runs are counted while `bpfvm prog profile` watches (runtime/program_profile.hpp).
  void set_profile(std::shared_ptr<ProgramProfile> p) { profile_ = std::move(p); }

  // A run of this program on one context, set up once and run many times by one thread (test_run's
  // repeat loop, the events of one attach point): what helpers see (task, slot, trace pipe, packet) and
  // the engine's run are prepared when it is made; run() resets what a run changes and enters the
  // program. run() and run_for() below are a Runner used once. The program and the context must outlive it.
  class Runner {
   public:
    // `env`: what helpers see (the task and its slot); `tail_calls`: the length of the tail-call chain
    // that led here.
    Runner(const Program& program, void* ctx, std::size_t ctx_size, std::span<const std::uint8_t> packet,
           const helpers::RunEnv& env, std::uint32_t tail_calls = 0);
    Runner(const Runner&) = delete;
    Runner& operator=(const Runner&) = delete;
    Result<std::uint64_t> run();
    // A run on another context object of the same type and size (an event source whose context lives
    // where the event is, as a probe's pt_regs on the probed thread's stack), on slot `cpu`.
    Result<std::uint64_t> run_on(void* ctx, std::uint32_t cpu) {
      rc_.r1 = reinterpret_cast<std::uint64_t>(ctx);
      frame_.ctx = ctx;
      env_.cpu = cpu;
      return run();
    }
    // The task helpers see from now on (an event source whose thread changed identity: a vfork child
    // running on its parent's thread state).
    void set_user_regs(const void* regs) { env_.user_regs = regs; }
    // A test run's packet socket (`sk` in its context), an owner of local storage until the runner goes
    // (the kernel frees the dummy socket, and the storage hung on it, after the run).
    void set_test_socket(const void* sk);
    ~Runner();
    void set_task(const helpers::Task& task, pid_t memory_pid) {
      env_.task = task;
      env_.memory_pid = memory_pid;
    }
    // A run of the program's function at instruction `pc` with r1-r5 (a timer's callback, which starts
    // outside any run of the program).
    Result<std::uint64_t> run_function(std::uint32_t pc, const std::uint64_t (&args)[5]);

   private:
    Result<std::uint64_t> enter();
    // After a run: releases a spin lock left held, names the program in an error.
    Result<std::uint64_t> finish(Result<std::uint64_t> r);
    const Program& program_;
    helpers::RunEnv env_;
    // What a tail call needs of the run it replaces: the same context, memory and packet.
    struct Frame {
      void* ctx;
      std::size_t ctx_size;
      std::span<const std::uint8_t> packet;
    } frame_;
    vm::RunContext rc_;
    std::optional<vm::JitProgram::Runner> jit_;
    // The program's cgroup storages for this runner's runs (shared, per-CPU), zeroed at the start.
    std::vector<std::uint8_t> cgroup_storage_, percpu_cgroup_storage_;
  };

  // Runs once with `ctx` (the type's context object, `ctx_size` bytes) in r1; LD_ABS / LD_IND read
  // `packet`. `parent` is the run that tail-called this one (its task, slot and tail-call count carry
  // over).
  Result<std::uint64_t> run(void* ctx, std::size_t ctx_size, std::span<const std::uint8_t> packet,
                            const helpers::RunEnv* parent = nullptr) const;
  // Runs as an attached program does: helpers see `origin`'s task (its ids, comm and memory) and slot.
  Result<std::uint64_t> run_for(const helpers::RunEnv& origin, void* ctx, std::size_t ctx_size) const;

  // BPF_PROG_TEST_RUN with the kernel's semantics for the program's type (see test_run.cpp).
  Result<TestRunResult> test_run(const TestRunRequest& request) const;

  // What a timer asks of the program (helpers/timers.hpp): its callbacks run on the timer's thread,
  // which is then the task; `pc` must be a function the program passes to a helper (BPF_PSEUDO_FUNC).
  std::uint32_t timer_program_id() const override { return id(); }
  maps::Map* timer_map(const void* addr, std::size_t size) const override;
  Result<std::uint64_t> run_timer_callback(std::uint32_t pc, const std::uint64_t (&args)[5]) const override;
  std::shared_ptr<const helpers::TimerProgram> keep_for_timer() const override { return weak_from_this().lock(); }

 private:
  std::shared_ptr<void> registration_;
  std::shared_ptr<ProgramProfile> profile_;

  Parts p_;
  std::chrono::system_clock::time_point load_time_;
  mutable std::atomic<std::uint64_t> run_count_{0}, run_time_ns_{0};
};

// Where an attached program runs, in bpftool's words: the event kind ("tracepoint", "raw_tracepoint",
// "uprobe", "uretprobe"), its name ("syscalls/sys_enter_openat", "sys_enter", "/bin/x:main") and the
// process it is limited to (0: every process in scope).
struct LinkTarget {
  std::string kind, name;
  std::uint32_t pid = 0;
  // Uprobes: the probed byte as the kernel's uprobe names it (the file, by canonical path, device and
  // inode, and the offset in it), the function it is in (when known) and the bpf_get_attach_cookie value.
  std::string path;
  std::uint64_t dev = 0, inode = 0, offset = 0;
  std::string function;
  std::uint64_t func_offset = 0, func_size = 0, func_slack = 0, func_pad_before = 0;
  std::uint64_t cookie = 0;
  // A USDT semaphore (the kernel's uprobe ref_ctr_offset): the file offset of a 2-byte counter each
  // process has counted up while the link is applied there (0: none).
  std::uint64_t ref_ctr_offset = 0;
  bool self = false;  // fires in the loader's own process too (a loader does not trace itself otherwise)
  // The scope it fires in: 0, every process in scope (`bpfvm run`, `bpfvm agent enable`); else only the
  // processes started for that scope (`bpfvm trace PROG -- CMD`: its command's tree, $BPFVM_AGENT_SCOPE).
  std::uint32_t scope = 0;
  // Fired by the agents of the processes in scope rather than by the loader's own tracer: uprobes
  // always; syscall tracepoints when the loader chose the agent (bpfvm trace without --ptrace).
  bool in_process = false;
};

class Link {
 public:
  Link(std::uint32_t id, std::shared_ptr<Program> prog, std::uint32_t attach_type, std::uint32_t target,
       LinkTarget where = {})
      : id_(id), prog_(std::move(prog)), attach_type_(attach_type), target_(target), where_(std::move(where)) {}
  std::uint32_t id() const { return id_; }
  const LinkTarget& where() const { return where_; }
  void set_registration(std::shared_ptr<void> r) { registration_ = std::move(r); }
  const std::shared_ptr<Program>& program() const { return prog_; }
  std::uint32_t attach_type() const { return attach_type_; }
  std::uint32_t target() const { return target_; }
  bool detached() const { return detached_; }
  void detach() { detached_ = true; }

 private:
  std::uint32_t id_;
  std::shared_ptr<Program> prog_;
  std::uint32_t attach_type_, target_;
  LinkTarget where_;
  bool detached_ = false;
  std::shared_ptr<void> registration_;
};

// A perf event programs attach to: perf_event_open of a tracepoint or a uprobe (an application's, served
// by the interposition). BPF_LINK_CREATE (BPF_PERF_EVENT) and PERF_EVENT_IOC_SET_BPF make a link to
// `where`, with the program's cookie.
struct PerfAttachPoint {
  LinkTarget where;
  std::shared_ptr<Link> link;  // PERF_EVENT_IOC_SET_BPF's: lives as long as the event
};

}  // namespace bpfvm::runtime
