// bpf_trace_printk (6): formats like the kernel's bpf_trace_printk (at most 3 arguments; %d %i %u %x
// %X %c %s %p %% with l/ll, flags, width and precision) and writes the line, in the kernel's
// trace_pipe format, to the run's trace pipe.
#include <linux/bpf.h>
#include <time.h>

#include <cctype>
#include <cerrno>
#include <cstring>
#include <optional>
#include <string>

#include "bpfvm/helpers/run_env.hpp"
#include "bpfvm/maps/ringbuf.hpp"
#include "helper_args.hpp"

namespace bpfvm::helpers {

namespace {

constexpr std::size_t kMaxOutput = 1024;  // MAX_BPRINTF_BUF
constexpr std::size_t kMaxString = 512;

// Reads a NUL-terminated string argument without faulting (as the kernel's %s does with
// strncpy_from_kernel_nofault); "(efault)" when it cannot.
std::string string_arg(std::uint64_t addr, vm::CallContext* ctx) {
  std::string out;
  for (std::size_t i = 0; i < kMaxString; ++i) {
    if (!ctx->may_access(addr + i, 1, false)) return out.empty() ? "(efault)" : out;
    const char c = *reinterpret_cast<const char*>(addr + i);
    if (!c) break;
    out += c;
  }
  return out;
}

// Formats `fmt` with args; a bad format gives nullopt (the helper returns -EINVAL). Each conversion is
// handed to snprintf as a spec built only from validated flag, width and precision characters and a
// conversion chosen here, so the non-literal formats below are safe.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
std::optional<std::string> format(std::string_view fmt, const std::uint64_t* args, int nargs, vm::CallContext* ctx) {
  std::string out;
  int used = 0;
  for (std::size_t i = 0; i < fmt.size(); ++i) {
    if (fmt[i] != '%') {
      out += fmt[i];
      continue;
    }
    if (++i >= fmt.size()) return std::nullopt;
    if (fmt[i] == '%') {
      out += '%';
      continue;
    }
    std::string spec = "%";
    while (i < fmt.size() && std::strchr("-+ #0", fmt[i])) spec += fmt[i++];
    while (i < fmt.size() && std::isdigit(static_cast<unsigned char>(fmt[i]))) spec += fmt[i++];
    if (i < fmt.size() && fmt[i] == '.') {
      spec += fmt[i++];
      while (i < fmt.size() && std::isdigit(static_cast<unsigned char>(fmt[i]))) spec += fmt[i++];
    }
    // Only l and ll modify (bpf_bprintf_prepare has no h, hh, z or j).
    int longs = 0;
    while (i < fmt.size() && fmt[i] == 'l') ++longs, ++i;
    if (i >= fmt.size() || longs > 2) return std::nullopt;
    const char conv = fmt[i];
    if (used >= nargs) return std::nullopt;  // more conversions than the 3 arguments
    const std::uint64_t a = args[used++];
    char buf[128];
    switch (conv) {
      case 'd':
      case 'i': {
        const long long v = longs ? static_cast<long long>(a) : static_cast<int>(a);
        std::snprintf(buf, sizeof buf, (spec + "lld").c_str(), v);
        break;
      }
      case 'u':
      case 'x':
      case 'X': {
        const unsigned long long v = longs ? a : static_cast<unsigned int>(a);
        std::snprintf(buf, sizeof buf, (spec + "ll" + conv).c_str(), v);
        break;
      }
      case 'c': std::snprintf(buf, sizeof buf, (spec + "c").c_str(), static_cast<int>(static_cast<char>(a))); break;
      case 'p': std::snprintf(buf, sizeof buf, "0x%llx", static_cast<unsigned long long>(a)); break;
      case 's': {
        const std::string s = string_arg(a, ctx);
        std::snprintf(buf, sizeof buf, (spec + "s").c_str(), s.c_str());
        if (s.size() >= sizeof buf) {
          out += s;
          continue;
        }
        break;
      }
      default: return std::nullopt;
    }
    out += buf;
    if (out.size() > kMaxOutput) return std::nullopt;
  }
  return out;
}
#pragma GCC diagnostic pop

std::uint64_t trace_printk(std::uint64_t fmt, std::uint64_t fmt_size, std::uint64_t a1, std::uint64_t a2,
                           std::uint64_t a3, vm::CallContext* ctx) {
  if (fmt_size == 0 || !ctx->may_access(fmt, fmt_size, false)) return errno_result(EFAULT);
  const char* f = reinterpret_cast<const char*>(fmt);
  // The format must be NUL-terminated within fmt_size.
  const std::size_t len = strnlen(f, fmt_size);
  if (len == fmt_size) return errno_result(EINVAL);
  const std::uint64_t args[3] = {a1, a2, a3};
  const auto msg = format({f, len}, args, 3, ctx);
  if (!msg) return errno_result(EINVAL);
  const RunEnv& env = ctx->user() ? *static_cast<const RunEnv*>(ctx->user()) : current_thread_env();
  if (env.trace_pipe) {
    struct timespec ts {};
    ::clock_gettime(CLOCK_MONOTONIC, &ts);
    // The kernel's trace_pipe line: comm right-aligned in 16, -pid, [cpu], irq/preempt flags,
    // seconds.microseconds, the event name, the message.
    std::string line = fmt::format("{:>16}-{:<7} [{:03}] d..31 {:5}.{:06}: bpf_trace_printk: {}", env.task.comm,
                                   env.task.pid, env.cpu, ts.tv_sec, ts.tv_nsec / 1000, *msg);
    if (line.empty() || line.back() != '\n') line += '\n';
    (void)env.trace_pipe->output(line.data(), line.size(), 0);
  }
  return msg->size();
}

}  // namespace

void install_trace_helpers(vm::HelperTable& table) { table.set(BPF_FUNC_trace_printk, trace_printk); }

}  // namespace bpfvm::helpers
