// bpfvm trace PROG.bpf.c|PROG.bpf.o [-- CMD ARGS... | -p PID]: BCC's one step, without a kernel.
// Compiles C (clang -target bpf -O2 -g, with libbpf's headers and include/bpf/bpfvm_trace.h), loads and
// verifies every program (a refusal is explained), attaches each by its SEC name to the syscall events
// of the traced process tree, runs the command (or attaches to PID), and prints trace_printk lines
// (trace_pipe format) and perf/ring buffer records (a table, through BTF) as they come. When the traced
// tree has exited, or on Ctrl-C, it prints the object's maps as bpftrace does.
#include <fmt/format.h>

#include <poll.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <set>

#include "bpfvm/attach/syscall_probes.hpp"
#include "bpfvm/attach/uprobe.hpp"
#include "bpfvm/attach/usdt.hpp"
#include "bpfvm/obj/native_elf.hpp"
#include "bpfvm/base/file.hpp"
#include "bpfvm/base/sha256.hpp"
#include "bpfvm/base/process.hpp"
#include "bpfvm/maps/cpu.hpp"
#include "bpfvm/maps/perf_buffer.hpp"
#include "bpfvm/maps/ringbuf.hpp"
#include "bpfvm/runtime/object.hpp"
#include "btf_raw.hpp"
#include "command.hpp"
#include "event_table.hpp"
#include "map_report.hpp"
#include "scope.hpp"

#ifndef BPFVM_BPF_INCLUDE_DIR
#define BPFVM_BPF_INCLUDE_DIR "/usr/local/include/bpfvm-bpf"
#endif

namespace bpfvm::cli {

namespace {

std::atomic<bool> g_stop{false};
std::atomic<int> g_stop_signal{SIGINT};


// clang -target bpf, as libbpf-tools build their programs. $BPFVM_CLANG picks the compiler,
// $BPFVM_BPF_INCLUDE the directory of bpfvm_trace.h.
// The directory of a vmlinux.h for `#include "vmlinux.h"` (libbpf-tools' convention): the running
// kernel's types as C, as `bpftool btf dump file /sys/kernel/btf/vmlinux format c` prints them, made
// once per kernel BTF (by its hash) in the user's cache ($XDG_CACHE_HOME or ~/.cache, else the
// temporary directory of this trace).
Result<std::string> vmlinux_include_dir(const os::TempDirectory& tmp) {
  const auto bytes = BPFVM_TRY_CTX(os::read_file("/sys/kernel/btf/vmlinux"), "vmlinux.h needs the kernel's BTF");
  const auto digest = sha256(bytes);
  std::string hash;
  for (std::size_t i = 0; i < 8; ++i) hash += fmt::format("{:02x}", digest[i]);
  auto cached = os::user_cache_directory("vmlinux-" + hash);
  const std::string dir = cached ? *cached : tmp.path();
  const std::string header = dir + "/vmlinux.h";
  if (os::exists(header)) return dir;
  const obj::Btf btf = BPFVM_TRY_CTX(obj::Btf::parse(bytes), "/sys/kernel/btf/vmlinux");
  const std::string text = BPFVM_TRY(btf_c(btf));
  BPFVM_TRY(os::write_file(header, std::span(reinterpret_cast<const std::uint8_t*>(text.data()), text.size())));
  return dir;
}

Result<std::string> compile(const std::string& source, const os::TempDirectory& dir) {
  const char* clang = std::getenv("BPFVM_CLANG");
  const char* include = std::getenv("BPFVM_BPF_INCLUDE");
  const std::string out = dir.path() + "/prog.bpf.o";
  std::vector<std::string> argv = {clang && *clang ? clang : "clang",
                                   "-target", "bpf", "-O2", "-g", "-D__TARGET_ARCH_x86",
                                   "-I/usr/include/x86_64-linux-gnu",
                                   std::string("-I") + (include && *include ? include : BPFVM_BPF_INCLUDE_DIR)};
  const std::string text = BPFVM_TRY(os::read_text_file(source));
  if (text.find("vmlinux.h") != std::string::npos) {
    const std::string vmlinux = BPFVM_TRY(vmlinux_include_dir(dir));
    argv.push_back("-I" + vmlinux);
  }
  for (const std::string a : {"-c", source.c_str(), "-o", out.c_str()}) argv.push_back(a);
  const int rc = BPFVM_TRY(os::run_process(argv));
  if (rc != 0) return make_error(Errc::kInvalid, "clang could not compile '{}' (exit code {})", source, rc);
  return out;
}

struct Outputs {
  std::vector<std::unique_ptr<maps::PerfBuffer>> perf;
  std::vector<std::shared_ptr<maps::Map>> ringbufs;
  std::shared_ptr<maps::RingBuffer> trace_pipe;
  EventTable table;

  void drain() {
    if (trace_pipe) {
      trace_pipe->consume_shared([](std::span<const std::uint8_t> line) {
        std::fwrite(line.data(), 1, line.size(), stdout);
        return 0;
      });
    }
    for (auto& p : perf) p->consume();
    for (auto& r : ringbufs) {
      static_cast<maps::RingBuffer&>(*r).consume([this](std::span<const std::uint8_t> rec) {
        table.print(rec);
        return 0;
      });
    }
  }
};

// Waits (at most 2 s, once, at start) for process `pid`'s agent to apply or refuse each of `links`: the
// first refusal, or nothing when every link applied (or the process is gone).
std::optional<std::string> agent_refusal(runtime::Runtime& rt, std::uint32_t pid,
                                         const std::vector<std::shared_ptr<runtime::Link>>& links) {
  const auto& registry = rt.registry();
  if (!registry) return std::nullopt;
  for (int round = 0; round < 400; ++round) {
    const auto record = registry->find(runtime::ObjectKind::kAgent, pid);
    if (!record) return std::nullopt;
    std::size_t applied = 0;
    for (const auto& l : links) {
      for (const auto& e : record->value("errors", nlohmann::json::array())) {
        if (e.value("link", 0u) == l->id()) return e.value("error", std::string("?"));
      }
      for (const auto& a : record->value("applied", nlohmann::json::array())) {
        if (a.value("link", 0u) == l->id()) ++applied;
      }
    }
    if (applied == links.size()) return std::nullopt;
    ::usleep(5000);
  }
  return std::nullopt;
}

// bpfvm's own failure: reported, and exit code 125 (see command.hpp), so that it is told apart from the
// traced command's codes.
int trace_fail(const Error& e) {
  fail(e);
  return kExitTraceFailure;
}

// Waits for the command `child` (or process `pid`, or Ctrl-C when neither) while the agent in it runs the
// programs, printing what they send every few milliseconds.
Result<attach::TraceeExit> wait_draining(pid_t child, pid_t pid, Outputs& out) {
  const int watched = child > 0 ? child : pid;
  const int pidfd = watched > 0 ? static_cast<int>(::syscall(SYS_pidfd_open, watched, 0)) : -1;
  attach::TraceeExit result{};
  while (!g_stop) {
    if (child > 0) {
      int st = 0;
      const pid_t r = ::waitpid(child, &st, WNOHANG);
      if (r == child) {
        result = WIFSIGNALED(st) ? attach::TraceeExit{128 + WTERMSIG(st), WTERMSIG(st)}
                                 : attach::TraceeExit{WEXITSTATUS(st), 0};
        break;
      }
    } else if (pid > 0 && ::kill(pid, 0) != 0 && errno == ESRCH) {
      break;
    }
    out.drain();
    std::fflush(stdout);
    if (pidfd >= 0) {
      struct pollfd p {pidfd, POLLIN, 0};
      ::poll(&p, 1, 10);
    } else {
      ::usleep(10000);
    }
  }
  if (pidfd >= 0) ::close(pidfd);
  return result;
}

// The link record of a syscall-event program (what `bpfvm link show` shows and an agent applies).
runtime::LinkTarget syscall_link_target(const attach::SyscallProbes::Probe& p, std::uint32_t pid) {
  const std::string_view section = p.section;
  runtime::LinkTarget where;
  where.kind = std::string(attach::link_kind(p.point, p.program->type()));
  where.name = std::string(section.substr(section.find('/') + 1));
  where.pid = pid;
  return where;
}

std::uint32_t link_attach_type(const attach::SyscallProbes::Probe& p) {
  return attach::link_attach_type(p.point);
}

// Exits as the traced command did: with its code, or (through main, once every object is cleaned up)
// killed by the same signal.
int exit_like(const attach::TraceeExit& how) { return how.signal ? kExitBySignal + how.signal : how.code; }

}  // namespace

int cmd_trace(Args& args, std::optional<bool> jit) {
  bool force_ptrace = false;
  std::string file(args.next());
  if (file == "--ptrace") {
    force_ptrace = true;
    file = args.next();
  }
  if (file.empty()) throw UsageError{"trace needs a program: PROG.bpf.c or PROG.bpf.o"};
  std::vector<std::string> command;
  pid_t pid = 0;
  while (!args.empty()) {
    const std::string_view word = args.next();
    if (word == "--ptrace") {
      force_ptrace = true;
    } else if (word == "--") {
      while (!args.empty()) command.emplace_back(args.next());
      if (command.empty()) throw UsageError{"trace: '--' needs a command to run"};
    } else if (word == "-p") {
      const std::string v = args.value_of("-p");
      char* end = nullptr;
      const long n = std::strtol(v.c_str(), &end, 10);
      if (*end || n <= 0) throw UsageError{fmt::format("trace: '-p {}' is not a process id", v)};
      pid = static_cast<pid_t>(n);
    } else {
      throw UsageError{fmt::format("trace: unexpected '{}'", word)};
    }
  }
  if (!command.empty() && pid != 0) throw UsageError{"trace: '--' and '-p' exclude each other"};

  // Ctrl-C from here on ends tracing cleanly (no SA_RESTART: the tracer's wait returns).
  struct sigaction sa {};
  sa.sa_handler = [](int sig) {
    g_stop_signal = sig;
    g_stop = true;
  };
  ::sigaction(SIGINT, &sa, nullptr);
  ::sigaction(SIGTERM, &sa, nullptr);

  // The object: compiled here from C, or as given.
  std::string object = file;
  auto tmp = os::TempDirectory::create("bpfvm-trace-");
  if (!tmp) return trace_fail(tmp.error());
  if (file.ends_with(".c")) {
    if (!os::exists(file)) return trace_fail(make_error(Errc::kNotFound, "'{}': no such file", file));
    auto compiled = compile(file, *tmp);
    if (!compiled) return trace_fail(compiled.error());
    object = *compiled;
  }
  runtime::Runtime rt;
  runtime::ObjectOptions options;
  if (jit) options.mode = *jit ? runtime::ExecMode::kJit : runtime::ExecMode::kInterpreter;
  auto loaded = runtime::Object::open_file(rt, object, options);
  if (!loaded) return trace_fail(std::move(loaded).error().with_context(fmt::format("loading '{}'", file)));

  // (kprobes on syscall entries are accepted here, and refused below where the ptrace tracer would run them)
  attach::SyscallProbes probes(true);
  // Uprobes, and USDT sites (uprobes at the notes' nops, each with its argument spec's id as cookie and
  // its semaphore counted up where it is applied).
  struct Uprobe {
    std::string section;
    std::shared_ptr<runtime::Program> program;
    attach::UprobePoint point;
    bool usdt = false;
    std::string usdt_name, usdt_args;
    std::uint64_t semaphore = 0;
  };
  std::vector<Uprobe> uprobes;
  std::size_t uprobe_programs = 0;
  std::string self_exe;
  if (!command.empty()) {
    auto path = command_path(command[0]);
    if (!path) {
      fail(path.error());
      return path.error().code() == Errc::kNotFound ? kExitCommandNotFound : kExitCannotRun;
    }
    self_exe = *path;
  }
  for (const auto& p : loaded->programs()) {
    const auto name_error = [&](Error e) { return trace_fail(std::move(e).with_context(fmt::format("program '{}'", p.name))); };
    if (attach::is_usdt_section(p.section)) {
      auto spec = attach::parse_usdt_section(p.section);
      if (!spec) return name_error(std::move(spec).error());
      auto sites = attach::resolve_usdt(*spec, self_exe);
      if (!sites) return name_error(std::move(sites).error());
      for (auto& site : *sites) {
        uprobes.push_back({p.section, p.program, std::move(site.point), true, spec->provider + ":" + spec->name,
                           std::move(site.args), site.semaphore_offset});
      }
      ++uprobe_programs;
      continue;
    }
    if (attach::is_uprobe_section(p.section)) {
      auto spec = attach::parse_uprobe_section(p.section);
      if (!spec) return name_error(std::move(spec).error());
      auto point = attach::resolve_uprobe(*spec, self_exe);
      if (!point) return name_error(std::move(point).error());
      uprobes.push_back({p.section, p.program, std::move(*point), false, {}, {}, 0});
      ++uprobe_programs;
      continue;
    }
    if (auto r = probes.attach(p.section, p.program); !r) return name_error(std::move(r).error());
  }
  if (probes.empty() && uprobes.empty()) {
    return trace_fail(make_error(Errc::kNotFound, "'{}' has no program to attach", file));
  }
  // Syscall events: in the processes themselves through the agent (its syscall sites), or by the ptrace
  // tracer with --ptrace, for a statically linked command, or for a process the agent is not in.
  bool in_process = !probes.empty() && !force_ptrace;
  if (in_process && !self_exe.empty()) {
    if (auto is_static = obj::is_static_executable(self_exe); !is_static || *is_static) in_process = false;
  }
  if (in_process && !agent_library()) in_process = false;  // installed without its agent: the tracer
  if (in_process && pid != 0) {
    const auto& registry = rt.registry();
    if (!registry || !registry->find(runtime::ObjectKind::kAgent, static_cast<std::uint32_t>(pid))) in_process = false;
  }
  // Uprobes by the ptrace tracer's int3s: --ptrace, a statically linked command (no agent can be
  // preloaded into it), a process -p names that the agent is not in, an install without the agent.
  bool ptrace_uprobes = false;
  if (!uprobes.empty()) {
    if (force_ptrace || !agent_library()) ptrace_uprobes = true;
    if (!self_exe.empty()) {
      if (auto is_static = obj::is_static_executable(self_exe); is_static && *is_static) ptrace_uprobes = true;
    }
    if (pid != 0) {
      const auto& registry = rt.registry();
      if (!registry || !registry->find(runtime::ObjectKind::kAgent, static_cast<std::uint32_t>(pid))) ptrace_uprobes = true;
    }
  }
  if (ptrace_uprobes) in_process = false;  // one tracer for everything of this trace
  if (!in_process) {
    for (const auto& p : probes.probes()) {
      if (p.point.kind != attach::SyscallProbes::Probe::Kind::kKernelFunction) continue;
      return trace_fail(make_error(Errc::kNotSupported,
                                   "program at '{}': kprobes on syscall entries run in the agent, and this trace "
                                   "uses the ptrace tracer (--ptrace, a statically linked command, a process "
                                   "without the agent, or uprobes it places itself)", p.section));
    }
  }
  if ((ptrace_uprobes || (!probes.empty() && !in_process)) && command.empty() && pid == 0) {
    throw UsageError{"trace --ptrace needs what to trace: '-- CMD ARGS...' or '-p PID'"};
  }
  const obj::Btf* btf = loaded->btf() ? &loaded->btf()->btf() : nullptr;
  Outputs out{{}, {}, nullptr, EventTable(btf, object, stdout)};
  if (auto pipe = rt.trace_pipe()) {
    out.trace_pipe = *pipe;
    out.trace_pipe->consume_shared([](std::span<const std::uint8_t>) { return 0; });  // lines from before
  }
  for (const auto& m : loaded->maps()) {
    if (m->def().type == BPF_MAP_TYPE_PERF_EVENT_ARRAY) {
      auto reader = maps::PerfBuffer::open(
          m->shared_impl(), 64, [&out](std::uint32_t, std::span<const std::uint8_t> data) { out.table.print(data); },
          [&out](std::uint32_t, std::uint64_t lost) { out.table.print_lost(lost); });
      if (!reader) return trace_fail(std::move(reader).error().with_context(fmt::format("map '{}'", m->name())));
      out.perf.push_back(std::move(*reader));
    } else if (m->def().type == BPF_MAP_TYPE_RINGBUF) {
      out.ringbufs.push_back(m->shared_impl());
    }
  }

  // Programs run by the agent (src/agent) of processes in scope: links in the registry, limited to this
  // trace's scope (its command's tree, which inherits the agent in its environment) or to process PID.
  std::vector<std::shared_ptr<runtime::Link>> links;
  const std::uint32_t scope = command.empty() ? 0 : static_cast<std::uint32_t>(::getpid());
  if (in_process) {
    for (const auto& p : probes.probes()) {
      runtime::LinkTarget where = syscall_link_target(p, static_cast<std::uint32_t>(pid));
      where.scope = scope;
      where.in_process = true;
      auto link = rt.create_link(p.program, link_attach_type(p), 0, std::move(where));
      if (!link) return trace_fail(std::move(link).error().with_context(fmt::format("program at '{}'", p.section)));
      links.push_back(std::move(*link));
    }
    // Process PID's agent may not patch its syscall instructions: one joined with `bpfvm attach` while
    // other threads ran (several bytes are patched only while no other thread can be between them).
    // Its syscall events then come through the ptrace tracer, and bpfvm says so.
    if (pid != 0) {
      if (const auto why = agent_refusal(rt, static_cast<std::uint32_t>(pid), links)) {
        fmt::print(stderr, "bpfvm: process {}: syscall events through ptrace: its agent could not take them ({})\n", pid,
                   *why);
        links.clear();  // withdrawn from the registry
        in_process = false;
      }
    }
  }
  // What the tracer's int3s run, by probe index (ptrace_uprobes).
  struct TracerTarget {
    std::shared_ptr<runtime::Program> program;
    std::uint64_t cookie = 0;
    std::string section;
    std::uint64_t runs = 0, failures = 0;
    std::string first_failure;
  };
  std::vector<attach::TracerProbe> tracer_probes;
  std::vector<TracerTarget> tracer_targets;
  if (!uprobes.empty()) {
    // USDT argument specs, as libbpf's loader writes them: id i in the object's __bpf_usdt_specs map
    // for the i-th site, and the site attached with cookie i (bpf_usdt_arg reads the spec by cookie).
    std::uint32_t next_spec = 0;
    const std::shared_ptr<runtime::Map> specs = loaded->find_map("__bpf_usdt_specs");
    for (const auto& u : uprobes) {
      runtime::LinkTarget where = attach::uprobe_link_target(u.point);
      if (u.usdt) {
        const std::uint32_t id = next_spec++;
        const auto site_error = [&](Error e) {
          return trace_fail(std::move(e).with_context(
              fmt::format("USDT probe {} at {}+{:#x}", u.usdt_name, u.point.path, u.point.file_offset)));
        };
        auto usdt_args = attach::parse_usdt_args(u.usdt_args);
        if (!usdt_args) return site_error(std::move(usdt_args).error());
        if (specs) {
          if (specs->def().value_size != attach::kUsdtSpecSize) {
            return site_error(make_error(Errc::kNotSupported,
                                         "the program's __bpf_usdt_specs values are {} bytes; bpfvm writes libbpf 1.0-1.2's "
                                         "struct __bpf_usdt_spec of {}", specs->def().value_size, attach::kUsdtSpecSize));
          }
          if (id >= specs->def().max_entries) {
            return site_error(make_error(Errc::kNoSpace, "more USDT sites than __bpf_usdt_specs' {} entries (BPF_USDT_MAX_SPEC_CNT)",
                                         specs->def().max_entries));
          }
          const std::vector<std::uint8_t> value = attach::usdt_spec_value(*usdt_args, 0);
          if (auto r = specs->impl().update(&id, value.data(), BPF_ANY); !r) return site_error(std::move(r).error());
        }
        where.kind = "usdt";
        where.name = fmt::format("{}:{}", u.point.path, u.usdt_name);
        where.cookie = id;
        where.ref_ctr_offset = u.semaphore;
      }
      where.pid = static_cast<std::uint32_t>(pid);
      where.scope = scope;
      where.in_process = !ptrace_uprobes;
      if (ptrace_uprobes) {
        tracer_probes.push_back({u.point.dev, u.point.inode, u.point.file_offset, u.point.retprobe, u.semaphore});
        tracer_targets.push_back({u.program, where.cookie, u.section, 0, 0, {}});
      }
      auto link = rt.create_link(u.program, BPF_PERF_EVENT, 0, std::move(where));
      if (!link) return trace_fail(std::move(link).error().with_context(fmt::format("program at '{}'", u.section)));
      links.push_back(std::move(*link));
    }
  }
  if ((in_process || (!uprobes.empty() && !ptrace_uprobes)) && !command.empty()) {
    if (auto r = export_agent_environment(rt.pin_root(), scope, true); !r) return trace_fail(r.error());
  }
  const std::size_t attached = probes.probes().size() + uprobe_programs;
  const std::string what = !command.empty() ? "" : pid ? fmt::format(" process {}", pid) : " every process in scope";

  // Interrupted (Ctrl-C, SIGTERM) before the command ran, or while it ran (the tracer then killed it):
  // bpfvm exits as an interrupted process does.
  if (g_stop) return exit_like({128 + g_stop_signal, g_stop_signal});
  Result<attach::TraceeExit> status = attach::TraceeExit{};
  bool failed = false;
  if ((!probes.empty() && !in_process) || ptrace_uprobes) {
    attach::SyscallSelection selection = probes.selection();
    if (ptrace_uprobes) selection.exit.insert(SYS_mmap);  // code mapped later gets its int3s
    auto tracer = command.empty() ? attach::SyscallTracer::attach(pid, selection)
                                  : attach::SyscallTracer::launch(command, selection);
    if (!tracer) {
      const Errc why = tracer.error().code();
      fail(tracer.error());
      if (command.empty()) return kExitTraceFailure;
      return why == Errc::kNotFound ? kExitCommandNotFound : why == Errc::kAccess ? kExitCannotRun : kExitTraceFailure;
    }
    // Links, so that `bpfvm link show` and `bpfvm perf` in another terminal see what is attached where.
    for (const auto& p : probes.probes()) {
      auto link = rt.create_link(p.program, link_attach_type(p), 0,
                                 syscall_link_target(p, static_cast<std::uint32_t>((*tracer)->pid())));
      if (link) links.push_back(std::move(*link));
    }
    if (ptrace_uprobes) {
      (*tracer)->set_probes(tracer_probes, [&](const attach::ProbeHit& hit) {
        TracerTarget& target = tracer_targets[hit.probe];
        helpers::RunEnv env;
        env.task = *hit.task;
        env.memory_pid = static_cast<pid_t>(hit.task->pid);
        env.cpu = maps::this_cpu();
        env.func_ip = hit.address;
        env.attach_cookie = target.cookie;
        alignas(8) std::uint8_t regs[sizeof hit.regs];
        std::memcpy(regs, hit.regs, sizeof regs);
        const Result<std::uint64_t> r = target.program->run_for(env, regs, sizeof regs);
        ++target.runs;
        if (!r && target.failures++ == 0) target.first_failure = r.error().message();
        out.drain();
      });
    }
    fmt::print(stderr, "Attached {} program{}. Tracing{}... Hit Ctrl-C to end.\n", attached, attached == 1 ? "" : "s", what);
    status = (*tracer)->run(
        [&](const attach::SyscallStop& stop) {
          probes.run(stop);
          out.drain();
        },
        g_stop, [] { std::fflush(stdout); });
  } else {
    // In-process: no tracer. The command runs on its own (the agent in it runs the programs); bpfvm
    // prints what they send until it ends, or PID ends, or Ctrl-C.
    pid_t child = 0;
    if (!command.empty()) {
      // The command's own execve is made before any agent runs in it: its entry programs run in the
      // child, as the kernel runs them in the process that calls execve.
      std::function<void(const char*, char* const*, char* const*)> before_exec;
      if (in_process) {
        before_exec = [&probes](const char* path, char* const* argv, char* const* envp) {
          run_exec_entry(probes, path, argv, envp);
        };
      }
      auto spawned = spawn(command, before_exec);
      if (!spawned) {
        fail(spawned.error());
        return spawned.error().code() == Errc::kNotFound ? kExitCommandNotFound : kExitCannotRun;
      }
      child = *spawned;
    }
    fmt::print(stderr, "Attached {} program{}. Tracing{}... Hit Ctrl-C to end.\n", attached, attached == 1 ? "" : "s", what);
    status = wait_draining(child, pid, out);
    if (g_stop && child > 0) {  // Ctrl-C: the command is ended as the tracer ends its
      ::kill(child, SIGKILL);
      int st = 0;
      ::waitpid(child, &st, 0);
    }
  }
  out.drain();
  if (!status) return trace_fail(status.error());
  // A trace of processes it did not start: where in scope its links could not be applied (the agents
  // of its own command say so on the command's stderr as it runs).
  if (command.empty() && !links.empty()) {
    if (const auto& registry = rt.registry()) {
      std::set<std::uint32_t> ours;
      for (const auto& l : links) ours.insert(l->id());
      for (const auto& agent : registry->list(runtime::ObjectKind::kAgent)) {
        for (const auto& e : agent.value("errors", nlohmann::json::array())) {
          if (!ours.count(e.value("link", 0u))) continue;
          fmt::print(stderr, "bpfvm: link {} was not applied in process {} ({}): {}\n", e.value("link", 0u),
                     agent.value("id", 0u), agent.value("comm", std::string("?")), e.value("error", std::string("?")));
        }
      }
    }
  }
  print_map_report(loaded->maps(), stdout);
  for (const auto& t : tracer_targets) {
    if (t.failures) {
      fmt::print(stderr, "Error: program at '{}' failed {} of {} runs: {}\n", t.section, t.failures, t.runs, t.first_failure);
      failed = true;
    }
  }
  for (const auto& p : probes.probes()) {
    if (p.failures) {
      fmt::print(stderr, "Error: program at '{}' failed {} of {} runs: {}\n", p.section, p.failures, p.runs,
                 p.first_failure);
      failed = true;
    }
  }
  if (failed) {  // a program's failure is bpfvm's: it wins over the command's status, which is said
    fmt::print(stderr, "bpfvm trace: the command {} {}\n", status->signal ? "was killed by signal" : "exited with",
               status->signal ? status->signal : status->code);
    return kExitTraceFailure;
  }
  if (command.empty()) return kExitOk;  // -p: the process goes on, detached
  return exit_like(g_stop ? attach::TraceeExit{128 + g_stop_signal, g_stop_signal} : *status);
}

}  // namespace bpfvm::cli
