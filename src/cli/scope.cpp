#include "scope.hpp"

#include <dlfcn.h>
#include <link.h>
#include <limits.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <span>
#include <string_view>

#include <fmt/format.h>

#include "bpfvm/attach/kernel_functions.hpp"
#include "bpfvm/attach/remote_call.hpp"
#include "bpfvm/base/file.hpp"
#include "bpfvm/base/process.hpp"
#include "bpfvm/obj/native_elf.hpp"

namespace bpfvm::cli {

Result<std::string> agent_library() {
  if (const char* env = std::getenv("BPFVM_AGENT_LIBRARY"); env && *env) {
    if (::access(env, R_OK) != 0) return make_error(Errc::kNotFound, "$BPFVM_AGENT_LIBRARY '{}': {}", env, std::strerror(errno));
    return std::string(env);
  }
  char self[PATH_MAX];
  const ssize_t n = ::readlink("/proc/self/exe", self, sizeof self - 1);
  if (n <= 0) return make_error(Errc::kNotFound, "cannot find bpfvm's own executable to find the agent library");
  self[n] = '\0';
  std::string dir(self);
  dir.resize(dir.rfind('/'));
  for (const std::string& candidate : {dir + "/../lib/libbpfvm-agent.so", dir + "/libbpfvm-agent.so",
                                      dir + "/../lib/bpfvm/libbpfvm-agent.so"}) {
    char real[PATH_MAX];
    if (::realpath(candidate.c_str(), real)) return std::string(real);
  }
  return make_error(Errc::kNotFound, "the agent library libbpfvm-agent.so is not beside '{}' (set $BPFVM_AGENT_LIBRARY)", self);
}

namespace {

#if defined(__SANITIZE_ADDRESS__)
// A sanitized build's agent needs the sanitizer runtimes loaded first in programs built without them
// (ASan refuses to start otherwise): the ones this bpfvm runs with, ahead of the agent. Leak reports
// are off in those programs: the agent keeps its state for the process's life on purpose.
std::string sanitizer_runtimes() {
  std::string out;
  dl_iterate_phdr(
      [](dl_phdr_info* info, std::size_t, void* data) {
        const std::string_view name = info->dlpi_name ? info->dlpi_name : "";
        if (name.find("libasan.so") != std::string_view::npos || name.find("libubsan.so") != std::string_view::npos) {
          auto& list = *static_cast<std::string*>(data);
          list += std::string(name) + ":";
        }
        return 0;
      },
      &out);
  ::setenv("ASAN_OPTIONS", "detect_leaks=0:verify_asan_link_order=0:handle_segv=0:handle_sigbus=0:handle_sigfpe=0:handle_abort=0:handle_sigill=0", 1);
  return out;
}
#else
std::string sanitizer_runtimes() { return {}; }
#endif

}  // namespace

Result<void> export_agent_environment(const std::string& pin_root, std::uint32_t scope, bool verbose) {
  const std::string lib = sanitizer_runtimes() + BPFVM_TRY(agent_library());
  const char* old = std::getenv("LD_PRELOAD");
  std::string preload = lib;
  if (old && *old && std::string_view(old).find(lib) == std::string_view::npos) preload += std::string(":") + old;
  else if (old && *old) preload = old;
  ::setenv("LD_PRELOAD", preload.c_str(), 1);
  // The early module (src/agent/early_log.h) records what the process does before the agent starts: the
  // dynamic loader's syscalls. Not with a sanitizer's runtime preloaded, whose start makes syscalls of
  // its own that would be taken for the process's.
  const std::string agent = BPFVM_TRY(agent_library());
  const std::string early = agent.substr(0, agent.rfind('/') + 1) + "libbpfvm-early.so";
  if (sanitizer_runtimes().empty() && ::access(early.c_str(), R_OK) == 0) {
    const char* audit = std::getenv("LD_AUDIT");
    std::string modules = early;
    if (audit && *audit && std::string_view(audit).find(early) == std::string_view::npos) modules += std::string(":") + audit;
    else if (audit && *audit) modules = audit;
    ::setenv("LD_AUDIT", modules.c_str(), 1);
  }
  ::setenv("BPFVM_AGENT", pin_root.c_str(), 1);
  ::setenv("BPFVM_AGENT_SCOPE", std::to_string(scope).c_str(), 1);
  if (verbose) ::setenv("BPFVM_AGENT_VERBOSE", "1", 1);
  return {};
}

namespace {

bool is_agent_line(std::string_view line) {
  while (!line.empty() && (line.back() == ' ' || line.back() == '\t')) line.remove_suffix(1);
  return line.ends_with("/libbpfvm-agent.so");
}

// ld.so.preload's lines (entries may also be separated by spaces; bpfvm's own are whole lines).
std::vector<std::string> preload_lines(const std::string& file) {
  std::vector<std::string> lines;
  auto text = os::read_text_file(file);
  if (!text) return lines;
  std::size_t at = 0;
  while (at < text->size()) {
    std::size_t nl = text->find('\n', at);
    if (nl == std::string::npos) nl = text->size();
    lines.push_back(text->substr(at, nl - at));
    at = nl + 1;
  }
  return lines;
}

Result<void> write_text(const std::string& path, const std::string& text, mode_t mode) {
  BPFVM_TRY(os::write_file(path, std::span(reinterpret_cast<const std::uint8_t*>(text.data()), text.size())));
  if (::chmod(path.c_str(), mode) != 0) return make_error(Errc::kAccess, "chmod '{}': {}", path, std::strerror(errno));
  return {};
}

// A library every process will load must be root's alone: the file and each directory above it owned
// by root and writable by nobody else, but for a sticky directory (/tmp), where others cannot rename or
// remove the root-owned entry below it (checked too), as OpenSSH's StrictModes allows.
Result<void> check_root_owned(const std::string& lib) {
  std::string path = lib;
  while (!path.empty()) {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) return make_error(Errc::kNotFound, "'{}': {}", path, std::strerror(errno));
    const bool sticky_dir = S_ISDIR(st.st_mode) && (st.st_mode & S_ISVTX) != 0 && path != lib;
    if (st.st_uid != 0 || ((st.st_mode & 022) != 0 && !sticky_dir)) {
      return make_error(Errc::kAccess,
                        "'{}' is {} (owner {}, mode {:o}): a library preloaded into every process must be root's "
                        "alone, from the file up",
                        path, path == lib ? "the agent library" : "a directory above the agent library",
                        st.st_uid, st.st_mode & 07777);
    }
    if (path == "/") break;
    path.resize(path.rfind('/'));
    if (path.empty()) path = "/";
  }
  return {};
}

}  // namespace

bool sanitized_build() { return !sanitizer_runtimes().empty(); }

Result<void> attach_process(pid_t pid, const std::string& pin_root) {
  if (sanitized_build()) {
    return make_error(Errc::kNotSupported, "a sanitized bpfvm's agent cannot be loaded into a running process "
                                           "(its sanitizer runtimes must come first)");
  }
  const std::string lib = BPFVM_TRY(agent_library());
  if (auto is_static = obj::is_static_executable(fmt::format("/proc/{}/exe", pid)); is_static && *is_static) {
    return make_error(Errc::kNotSupported, "process {} is linked statically: the agent cannot be loaded into it "
                                           "(bpfvm trace --ptrace -p {} traces its syscalls)", pid, pid);
  }
  // A process that has just been started may still be in the dynamic loader, which maps libc (where
  // dlopen is) within moments: wait up to a second for it rather than fail.
  for (int i = 0; i < 100; ++i) {
    const auto maps = os::read_text_file(fmt::format("/proc/{}/maps", pid));
    if (!maps || maps->find("/libc.so.6") != std::string::npos) break;
    ::usleep(10000);
  }
  auto call = BPFVM_TRY(attach::RemoteCall::seize(pid));
  std::uint64_t join = BPFVM_TRY(call->function_address("/libbpfvm-agent.so", "bpfvm_agent_join"));
  if (!join) {
    const std::uint64_t dlopen = BPFVM_TRY(call->function_address("/libc.so.6", "dlopen"));
    if (!dlopen) return make_error(Errc::kNotFound, "process {} has no dlopen (no glibc libc.so.6 mapped)", pid);
    const std::uint64_t handle = BPFVM_TRY(call->call(dlopen, {lib, std::uint64_t{RTLD_NOW}}));
    if (!handle) return make_error(Errc::kIo, "dlopen(\"{}\") failed in process {}", lib, pid);
    join = BPFVM_TRY(call->function_address("/libbpfvm-agent.so", "bpfvm_agent_join"));
    if (!join) return make_error(Errc::kNotFound, "the agent loaded in process {} has no bpfvm_agent_join", pid);
  }
  const std::uint64_t r = BPFVM_TRY(call->call(join, {pin_root, std::uint64_t{0}, std::uint64_t{0}, std::uint64_t{1}}));
  if (static_cast<std::int32_t>(r) != 0) {
    return make_error(Errc::kIo, "the agent could not start in process {} (registry at {})", pid, pin_root);
  }
  // Other threads run: the agent prepared its syscall sites (a jump over two instructions is safe only
  // where no thread can be between them); they are written with every other thread stopped here, but
  // where one of them resumes inside a site.
  const std::uint64_t commit = BPFVM_TRY(call->function_address("/libbpfvm-agent.so", "bpfvm_agent_commit_sites"));
  const std::uint64_t ready = BPFVM_TRY(call->function_address("/libbpfvm-agent.so", "bpfvm_agent_sites_ready"));
  if (commit && ready) {
    const std::vector<std::uint64_t> positions = BPFVM_TRY(call->stop_others());
    std::string text;
    for (const std::uint64_t p : positions) text += fmt::format("{}{:x}", text.empty() ? "" : ",", p);
    Result<std::uint64_t> written = call->call(commit, {text});
    call->resume_others();
    if (!written) return std::move(written).error().with_context("patching the syscall sites");
    BPFVM_TRY(call->call(ready, {}));
  }
  return {};
}

Result<void> detach_process(pid_t pid) {
  auto call = BPFVM_TRY(attach::RemoteCall::seize(pid));
  const std::uint64_t leave = BPFVM_TRY(call->function_address("/libbpfvm-agent.so", "bpfvm_agent_leave"));
  if (!leave) return make_error(Errc::kNotFound, "process {} has no agent", pid);
  BPFVM_TRY(call->call(leave, {}));
  return {};
}

Result<std::string> enable_system_wide(const std::string& pin_root, const std::string& etc) {
  if (::geteuid() != 0) return make_error(Errc::kPermission, "the system-wide scope is root's to enable (it edits {}/ld.so.preload)", etc);
  if (!sanitizer_runtimes().empty()) {
    return make_error(Errc::kNotSupported, "a sanitized bpfvm's agent needs its sanitizer runtimes first in every process: "
                                          "not enabled system-wide");
  }
  const std::string lib = BPFVM_TRY(agent_library());
  BPFVM_TRY(check_root_owned(lib));
  BPFVM_TRY(os::make_directories(etc + "/bpfvm"));
  ::chmod((etc + "/bpfvm").c_str(), 0755);
  BPFVM_TRY(write_text(etc + "/" + kAgentConf, fmt::format("# written by bpfvm agent enable\npin_root={}\n", pin_root), 0644));
  std::string text;
  for (const std::string& line : preload_lines(etc + "/ld.so.preload")) {
    if (!is_agent_line(line)) text += line + "\n";
  }
  text += lib + "\n";
  BPFVM_TRY(write_text(etc + "/ld.so.preload", text, 0644));
  return lib;
}

Result<bool> disable_system_wide(const std::string& etc) {
  if (::geteuid() != 0) return make_error(Errc::kPermission, "the system-wide scope is root's to disable (it edits {}/ld.so.preload)", etc);
  bool was = false;
  std::string text;
  bool others = false;
  for (const std::string& line : preload_lines(etc + "/ld.so.preload")) {
    if (is_agent_line(line)) {
      was = true;
    } else {
      text += line + "\n";
      others = others || line.find_first_not_of(" \t") != std::string::npos;
    }
  }
  if (was && others) {
    BPFVM_TRY(write_text(etc + "/ld.so.preload", text, 0644));
  } else if (was && ::unlink((etc + "/ld.so.preload").c_str()) != 0) {
    return make_error(Errc::kAccess, "cannot remove {}/ld.so.preload: {}", etc, std::strerror(errno));
  }
  if (::unlink((etc + "/" + kAgentConf).c_str()) == 0) was = true;
  return was;
}

std::string system_wide_library(const std::string& etc) {
  for (const std::string& line : preload_lines(etc + "/ld.so.preload")) {
    if (is_agent_line(line)) return line;
  }
  return {};
}

Result<std::string> command_path(const std::string& name) {
  const std::string path = BPFVM_TRY(os::find_command(name));
  char real[PATH_MAX];
  return std::string(::realpath(path.c_str(), real) ? real : path.c_str());
}

Result<pid_t> spawn(const std::vector<std::string>& command,
                    const std::function<void(const char*, char* const*, char* const*)>& before_exec) {
  const std::string path = BPFVM_TRY(os::find_command(command.at(0)));
  std::vector<char*> argv;
  for (const auto& a : command) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  const pid_t pid = ::fork();
  if (pid < 0) return make_error(Errc::kNoMemory, "fork: {}", std::strerror(errno));
  if (pid == 0) {
    if (before_exec) before_exec(path.c_str(), argv.data(), environ);
    ::execv(path.c_str(), argv.data());
    _exit(127);
  }
  return pid;
}

void run_exec_entry(attach::SyscallProbes& probes, const char* path, char* const* argv, char* const* envp) {
  helpers::Task task;
  task.pid = task.tgid = static_cast<std::uint32_t>(::getpid());
  task.uid = ::getuid();
  task.gid = ::getgid();
  ::prctl(PR_GET_NAME, task.comm, 0, 0, 0);
  attach::SyscallStop stop;
  stop.task = &task;
  stop.nr = SYS_execve;
  stop.args = {reinterpret_cast<std::uint64_t>(path), reinterpret_cast<std::uint64_t>(argv),
               reinterpret_cast<std::uint64_t>(envp), 0, 0, 0};
  probes.run(stop);
}

void attach_exec_entry_links(runtime::Runtime& rt, attach::SyscallProbes& probes) {
  const auto& registry = rt.registry();
  if (!registry) return;
  for (const auto& link : registry->list(runtime::ObjectKind::kLink)) {
    const std::string kind = link.value("kind", "");
    const std::string name = link.value("name", "");
    if (!link.value("agent", false) || !runtime::Registry::link_fires_here(link, 0)) continue;
    const auto function = kind == "kprobe" ? attach::kernel_function(name) : std::nullopt;
    const bool entry = (kind == "tracepoint" && (name == "syscalls/sys_enter_execve" || name == "raw_syscalls/sys_enter")) ||
                       (kind == "raw_tracepoint" && name == "sys_enter") || (function && function->covers(SYS_execve));
    if (!entry) continue;
    auto program = rt.open_program_by_id(link.value("prog_id", 0u));
    if (!program) continue;  // (gone since it was listed)
    (void)probes.attach(kind + "/" + name, *program);
  }
}

}  // namespace bpfvm::cli
