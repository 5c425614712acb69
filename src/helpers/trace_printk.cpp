// bpf_trace_printk (6): formats like the kernel's bpf_trace_printk (at most 3 arguments, see
// bprintf.hpp) and writes the line, in the kernel's trace_pipe format, to the run's trace pipe.
#include <linux/bpf.h>
#include <time.h>

#include <cctype>
#include <cerrno>
#include <cstring>
#include <optional>
#include <string>

#include "bpfvm/helpers/run_env.hpp"
#include "bpfvm/maps/ringbuf.hpp"
#include "bprintf.hpp"
#include "helper_args.hpp"

namespace bpfvm::helpers {

namespace {

std::uint64_t trace_printk(std::uint64_t fmt, std::uint64_t fmt_size, std::uint64_t a1, std::uint64_t a2,
                           std::uint64_t a3, CallContext* ctx) {
  if (fmt_size == 0 || !ctx->may_access(fmt, fmt_size, false)) return errno_result(EFAULT);
  const char* f = reinterpret_cast<const char*>(fmt);
  // The format must be NUL-terminated within fmt_size.
  const std::size_t len = strnlen(f, fmt_size);
  if (len == fmt_size) return errno_result(EINVAL);
  const std::uint64_t args[3] = {a1, a2, a3};
  const auto msg = bprintf({f, len}, args, 3, ctx);
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

void install_trace_helpers(Registry& table) { table.set(BPF_FUNC_trace_printk, trace_printk); }

}  // namespace bpfvm::helpers
