#include "bpfvm/attach/syscall_probes.hpp"

#include <linux/ptrace.h>
#include <sys/syscall.h>

#include <cstring>

#include "bpfvm/attach/syscalls.hpp"
#include "bpfvm/maps/cpu.hpp"
#include "bpfvm/runtime/context.hpp"

namespace bpfvm::attach {

namespace {

std::string_view strip(std::string_view s, std::string_view prefix) {
  return s.starts_with(prefix) ? s.substr(prefix.size()) : std::string_view{};
}

// "tracepoint/<category>/<event>" or "tp/<category>/<event>": the rest after the prefix, else empty.
std::string_view tracepoint_of(std::string_view section) {
  if (auto rest = strip(section, "tracepoint/"); !rest.empty()) return rest;
  return strip(section, "tp/");
}

std::string_view raw_tracepoint_of(std::string_view section) {
  if (auto rest = strip(section, "raw_tracepoint/"); !rest.empty()) return rest;
  return strip(section, "raw_tp/");
}

void put(std::uint8_t* at, const void* value, std::size_t size) { std::memcpy(at, value, size); }

}  // namespace

bool is_syscall_section(std::string_view section) {
  const std::string_view tp = tracepoint_of(section);
  const std::string_view raw = raw_tracepoint_of(section);
  return tp.starts_with("syscalls/") || tp.starts_with("raw_syscalls/") || tp.starts_with("sched/sched_process_") ||
         raw == "sys_enter" || raw == "sys_exit" || raw.starts_with("sched_process_");
}

Result<SyscallPoint> parse_syscall_section(std::string_view section, std::uint32_t type, std::uint32_t target_args) {
  SyscallPoint point;
  if (const std::string_view tp = tracepoint_of(section); !tp.empty()) {
    if (type != BPF_PROG_TYPE_TRACEPOINT) {
      return make_error(Errc::kInvalid, "'{}' needs a tracepoint program", section);
    }
    if (tp == "raw_syscalls/sys_enter" || tp == "raw_syscalls/sys_exit") {
      point.kind = SyscallPoint::Kind::kRawSyscalls;
      point.exit = tp.ends_with("exit");
    } else if (const std::string_view sched = strip(tp, "sched/"); sched.starts_with("sched_process_")) {
      point.kind = SyscallPoint::Kind::kProcess;
      if (sched == "sched_process_exec") point.event = ProcessEvent::kExec;
      else if (sched == "sched_process_fork") point.event = ProcessEvent::kFork;
      else if (sched == "sched_process_exit") point.event = ProcessEvent::kExit;
      if (point.event != ProcessEvent::kNone) {
        // The layout now, not when the event comes (a fork's return may hold malloc's lock).
        SyscallStop none;
        helpers::Task task;
        none.task = &task;
        none.event = point.event;
        std::uint8_t scratch[512];
        make_process_record(none, scratch, sizeof scratch);
      } else {
        return make_error(Errc::kNotSupported,
                          "'{}': of the scheduler's process events bpfvm produces sched_process_exec, "
                          "sched_process_fork and sched_process_exit (as seen from user space)", section);
      }
    } else if (tp == "signal/signal_generate" || tp == "signal/signal_deliver") {
      point.kind = SyscallPoint::Kind::kProcess;
      point.event = tp == "signal/signal_generate" ? ProcessEvent::kSignalGenerate : ProcessEvent::kSignalDeliver;
      SyscallStop none;  // the layout now (see above; signal_deliver's record is made in a signal handler)
      helpers::Task task;
      none.task = &task;
      none.event = point.event;
      std::uint8_t scratch[512];
      make_process_record(none, scratch, sizeof scratch);
    } else if (const std::string_view event = strip(tp, "syscalls/"); !event.empty()) {
      std::string_view name = strip(event, "sys_enter_");
      point.exit = name.empty();
      if (point.exit) name = strip(event, "sys_exit_");
      const SyscallFormat* f = name.empty() ? nullptr : syscall_by_name(name);
      if (!f) return make_error(Errc::kNotFound, "'{}': no such syscall tracepoint on x86-64", section);
      point.nr = f->nr;
    } else {
      return make_error(Errc::kNotSupported,
                        "'{}': bpfvm trace attaches to syscall tracepoints (syscalls/sys_enter_<name>, "
                        "syscalls/sys_exit_<name>, raw_syscalls/sys_enter|sys_exit) and the process events "
                        "(sched/sched_process_exec|fork|exit)", section);
    }
  } else if (section.starts_with("fentry/") || section.starts_with("fexit/")) {
    const bool ret = section.starts_with("fexit/");
    const std::string_view name = section.substr(ret ? 6 : 7);
    if (type != BPF_PROG_TYPE_TRACING) return make_error(Errc::kInvalid, "'{}' needs a tracing program", section);
    const auto f = kernel_function(name);
    if (!f) {
      return make_error(Errc::kNotSupported,
                        "'{}': the kernel function {} has no events in user space (bpfvm's fentry and fexit are "
                        "on the syscall entries: __x64_sys_NAME, __se_sys_NAME, __do_sys_NAME, sys_NAME, "
                        "ksys_NAME, do_sys_open, do_sys_openat2)", section, name);
    }
    if (target_args > 6) {
      return make_error(Errc::kNotSupported, "'{}': {} has {} arguments; a syscall entry has at most 6", section,
                        name, target_args);
    }
    point.kind = SyscallPoint::Kind::kKernelFunction;
    point.exit = ret;
    point.function = *f;
    point.typed = true;
    point.typed_args = static_cast<std::uint8_t>(target_args);
  } else if (section.starts_with("tp_btf/")) {
    const std::string_view name = section.substr(7);
    if (type != BPF_PROG_TYPE_TRACING) return make_error(Errc::kInvalid, "'{}' needs a tracing program", section);
    if (name != "sys_enter" && name != "sys_exit") {
      return make_error(Errc::kNotSupported,
                        "'{}': of the kernel's BTF tracepoints bpfvm produces sys_enter and sys_exit (the others "
                        "pass kernel objects user space does not have)", section);
    }
    point.kind = SyscallPoint::Kind::kRawTracepoint;
    point.exit = name == "sys_exit";
  } else if (section.starts_with("kprobe/") || section.starts_with("kretprobe/")) {
    const bool ret = section.starts_with("kretprobe/");
    const std::string_view name = section.substr(ret ? 10 : 7);
    if (type != BPF_PROG_TYPE_KPROBE) return make_error(Errc::kInvalid, "'{}' needs a kprobe program", section);
    const auto f = kernel_function(name);
    if (!f) {
      return make_error(Errc::kNotSupported,
                        "'{}': the kernel function {} has no events in user space (bpfvm's kprobes are the "
                        "syscall entries: __x64_sys_NAME, __se_sys_NAME, __do_sys_NAME, sys_NAME, ksys_NAME, "
                        "do_sys_open, do_sys_openat2)", section, name);
    }
    point.kind = SyscallPoint::Kind::kKernelFunction;
    point.exit = ret;
    point.function = *f;
  } else if (const std::string_view raw = raw_tracepoint_of(section); raw == "sys_enter" || raw == "sys_exit") {
    if (type != BPF_PROG_TYPE_RAW_TRACEPOINT) {
      return make_error(Errc::kInvalid, "'{}' needs a raw_tracepoint program", section);
    }
    point.kind = SyscallPoint::Kind::kRawTracepoint;
    point.exit = raw == "sys_exit";
  } else if (raw.starts_with("sched_process_")) {
    return make_error(Errc::kNotSupported,
                      "'{}': a raw tracepoint of the scheduler passes kernel pointers (struct task_struct *), "
                      "which user space does not have; use tracepoint/sched/{}", section, raw);
  } else {
    return make_error(Errc::kNotSupported,
                      "'{}': bpfvm trace attaches to syscall and process events only (tracepoint/syscalls/..., "
                      "tracepoint/raw_syscalls/..., raw_tracepoint/sys_enter|sys_exit, "
                      "tracepoint/sched/sched_process_exec|fork|exit)", section);
  }
  return point;
}

void make_syscall_context(const SyscallPoint& point, const SyscallStop& stop, SyscallContext& out) {
  if (point.kind == SyscallPoint::Kind::kProcess) {
    make_process_record(stop, out.bytes, sizeof out.bytes);
    out.size = sizeof out.bytes;
    return;
  }
  if (point.kind == SyscallPoint::Kind::kKernelFunction && point.typed) {
    // fentry/fexit: the registers the function has (made past the args, which the program cannot
    // read), its argument registers as u64 args[], then fexit's return value.
    static_assert(sizeof out.bytes >= 4096 + sizeof(struct pt_regs));
    auto* regs = reinterpret_cast<struct pt_regs*>(out.bytes + 4096);
    kernel_function_regs(point.function, stop.nr, stop.args, stop.exit, stop.ret, stop.ip, stop.sp,
                         reinterpret_cast<std::uint8_t*>(regs), out.regs);
    const std::uint64_t in_regs[6] = {regs->rdi, regs->rsi, regs->rdx, regs->rcx, regs->r8, regs->r9};
    std::uint64_t args[runtime::kRawTracepointArgsMax / 8] = {};
    const std::size_t n = std::min<std::size_t>(point.typed_args, 6);
    std::memcpy(args, in_regs, 8 * n);
    if (point.exit) args[n] = regs->rax;
    std::memcpy(out.bytes, args, sizeof args);
    out.size = 8 * (n + (point.exit ? 1 : 0));
    return;
  }
  if (point.kind == SyscallPoint::Kind::kKernelFunction) {
    kernel_function_regs(point.function, stop.nr, stop.args, stop.exit, stop.ret, stop.ip, stop.sp, out.bytes, out.regs);
    out.size = 168;
    return;
  }
  if (point.kind == SyscallPoint::Kind::kRawTracepoint) {
    // The syscall's registers as the kernel's struct pt_regs (x86-64).
    static_assert(sizeof(struct pt_regs) == sizeof out.regs);
    syscall_regs(stop.nr, stop.args, stop.exit, stop.ret, stop.ip, stop.sp, out.regs);
    std::uint64_t args[runtime::kRawTracepointArgsMax / 8] = {};
    args[0] = reinterpret_cast<std::uint64_t>(out.regs);
    args[1] = stop.exit ? static_cast<std::uint64_t>(stop.ret) : static_cast<std::uint64_t>(stop.nr);
    std::memcpy(out.bytes, args, sizeof args);
    out.size = sizeof args;
    return;
  }
  // The record's fixed part; the rest of the buffer stays zero (a program may read up to its size).
  std::uint8_t* rec = out.bytes;
  std::memset(rec, 0, 64);
  const SyscallFormat* f = point.kind == SyscallPoint::Kind::kSyscall ? syscall_by_nr(stop.nr) : nullptr;
  std::uint16_t type = 0;
  if (point.kind == SyscallPoint::Kind::kRawSyscalls) type = stop.exit ? kRawSysExitId : kRawSysEnterId;
  else if (f) type = stop.exit ? f->exit_id : f->enter_id;
  const std::int32_t pid = static_cast<std::int32_t>(stop.task->pid);
  put(rec, &type, 2);
  put(rec + 4, &pid, 4);
  if (point.kind == SyscallPoint::Kind::kRawSyscalls) {
    const std::int64_t id = stop.nr;
    put(rec + 8, &id, 8);
  } else {
    const std::int32_t nr = stop.nr;
    put(rec + 8, &nr, 4);
  }
  if (stop.exit) {
    put(rec + kSyscallRecordArgs, &stop.ret, 8);
  } else {
    // sys_enter_<name> has only its own arguments; raw_syscalls/sys_enter all six.
    const std::size_t n = f ? f->arg_count() : 6;
    put(rec + kSyscallRecordArgs, stop.args.data(), 8 * n);
  }
  out.size = sizeof out.bytes;
}

Result<void> SyscallProbes::attach(std::string_view section, std::shared_ptr<runtime::Program> program) {
  const SyscallPoint point = BPFVM_TRY(tracing_point(section, *program));
  if (point.kind == SyscallPoint::Kind::kKernelFunction && !in_process_) {
    return make_error(Errc::kNotSupported, "'{}': kprobes on syscall entries run in the agent (bpfvm run), not "
                      "under the ptrace tracer", section);
  }
  probes_.push_back({point, std::string(section), std::move(program), 0, 0, {}});
  return {};
}

Result<SyscallPoint> tracing_point(std::string_view section, const runtime::Program& program) {
  if (program.type() == BPF_PROG_TYPE_TRACING) {
    const std::string_view target = section.substr(section.find('/') + 1);
    if (target != program.attach_target()) {
      return make_error(Errc::kInvalid, "'{}': the program was verified against '{}', not '{}'", section,
                        program.attach_target(), target);
    }
  }
  return parse_syscall_section(section, program.type(), program.attach_args());
}

std::string_view link_kind(const SyscallPoint& point, std::uint32_t prog_type) {
  const bool tracing = prog_type == BPF_PROG_TYPE_TRACING;
  switch (point.kind) {
    case SyscallPoint::Kind::kRawTracepoint: return tracing ? "tp_btf" : "raw_tracepoint";
    case SyscallPoint::Kind::kKernelFunction:
      if (point.typed) return point.exit ? "fexit" : "fentry";
      return point.exit ? "kretprobe" : "kprobe";
    default: return "tracepoint";
  }
}

bool is_syscall_link_kind(std::string_view kind) {
  for (const std::string_view k : {"tracepoint", "raw_tracepoint", "kprobe", "kretprobe", "fentry", "fexit", "tp_btf"}) {
    if (kind == k) return true;
  }
  return false;
}

std::uint32_t link_attach_type(const SyscallPoint& point) {
  if (point.kind == SyscallPoint::Kind::kKernelFunction && point.typed) {
    return point.exit ? BPF_TRACE_FEXIT : BPF_TRACE_FENTRY;
  }
  if (point.kind == SyscallPoint::Kind::kRawTracepoint) return BPF_TRACE_RAW_TP;
  return BPF_PERF_EVENT;
}

SyscallSelection SyscallProbes::selection() const {
  SyscallSelection s;
  for (const Probe& probe : probes_) {
    const SyscallPoint& p = probe.point;
    if (p.kind == Probe::Kind::kProcess) {
      s.events |= static_cast<std::uint8_t>(1u << static_cast<unsigned>(p.event));
      if (p.event == ProcessEvent::kExec) s.enter.insert({SYS_execve, SYS_execveat});  // for the filename
      if (p.event == ProcessEvent::kSignalGenerate) {  // reported from the sending syscall's entry
        s.enter.insert({SYS_kill, SYS_tkill, SYS_tgkill, SYS_rt_sigqueueinfo, SYS_rt_tgsigqueueinfo, SYS_pidfd_send_signal});
      }
      if (p.event == ProcessEvent::kSignalDeliver) s.exit.insert(SYS_rt_sigaction);  // the actions signals meet

    } else if (p.kind == Probe::Kind::kSyscall) {
      (p.exit ? s.exit : s.enter).insert(p.nr);
    } else if (p.kind == Probe::Kind::kKernelFunction) {
      for (std::size_t i = 0; i < p.function.count; ++i) (p.exit ? s.exit : s.enter).insert(p.function.nrs[i]);
    } else {
      (p.exit ? s.all_exit : s.all_enter) = true;
    }
  }
  return s;
}

void SyscallProbes::run(const SyscallStop& stop) {
  for (Probe& p : probes_) {
    const SyscallPoint& at = p.point;
    if ((at.kind == Probe::Kind::kProcess) != (stop.event != ProcessEvent::kNone)) continue;
    if (at.kind == Probe::Kind::kProcess && at.event != stop.event) continue;
    if (at.kind != Probe::Kind::kProcess && at.exit != stop.exit) continue;
    if (at.kind == Probe::Kind::kSyscall && at.nr != stop.nr) continue;
    if (at.kind == Probe::Kind::kKernelFunction && !at.function.covers(stop.nr)) continue;
    run_one(p, stop);
  }
}

void SyscallProbes::run_one(Probe& probe, const SyscallStop& stop) {
  helpers::RunEnv env;
  env.task = *stop.task;
  env.memory_pid = static_cast<pid_t>(stop.task->pid);
  env.cpu = maps::this_cpu();
  make_syscall_context(probe.point, stop, context_);
  const Result<std::uint64_t> r = probe.program->run_for(env, context_.bytes, context_.size);
  ++probe.runs;
  if (!r) {
    if (probe.failures++ == 0) probe.first_failure = r.error().message();
  }
}

}  // namespace bpfvm::attach
