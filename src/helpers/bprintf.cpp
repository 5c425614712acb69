#include "bprintf.hpp"

#include <linux/bpf.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstring>

#include "helper_args.hpp"

namespace bpfvm::helpers {

namespace {
constexpr std::size_t kMaxOutput = 1024;  // MAX_BPRINTF_BUF
constexpr std::size_t kMaxString = 512;

// Reads a NUL-terminated string argument without faulting (as the kernel's %s does with
// strncpy_from_kernel_nofault): in checked mode within the program's memory, otherwise through
// process_vm_readv; "(efault)" when it cannot.
std::string string_arg(std::uint64_t addr, CallContext* ctx) {
  std::string out;
  for (std::size_t i = 0; i < kMaxString; ++i) {
    char c;
    if (ctx->checked()) {
      if (!ctx->may_access(addr + i, 1, false)) return out.empty() ? "(efault)" : out;
      c = *reinterpret_cast<const char*>(addr + i);
    } else {
      struct iovec local {&c, 1};
      struct iovec remote {reinterpret_cast<void*>(addr + i), 1};
      if (::process_vm_readv(::getpid(), &local, 1, &remote, 1, 0) != 1) return out.empty() ? "(efault)" : out;
    }
    if (!c) break;
    out += c;
  }
  return out;
}

}  // namespace

// Formats `fmt` with args; a bad format gives nullopt (the helper returns -EINVAL). Each conversion is
// handed to snprintf as a spec built only from validated flag, width and precision characters and a
// conversion chosen here, so the non-literal formats below are safe.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
std::optional<std::string> bprintf(std::string_view fmt, const std::uint64_t* args, int nargs, CallContext* ctx) {
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


namespace {

constexpr std::uint64_t kMaxVarargs = 12;  // MAX_BPRINTF_VARARGS

// bpf_snprintf (165): formats into str (at most str_size bytes with the NUL) with the u64 arguments in
// data; returns the length the whole result needs, NUL included.
std::uint64_t snprintf_helper(std::uint64_t str, std::uint64_t str_size, std::uint64_t fmt, std::uint64_t data,
                              std::uint64_t data_len, CallContext* ctx) {
  if (data_len % 8 != 0 || data_len / 8 > kMaxVarargs) return errno_result(EINVAL);
  if (data_len && !ctx->may_access(data, data_len, false)) return errno_result(EFAULT);
  if (str_size && !ctx->may_access(str, str_size, true)) return errno_result(EFAULT);
  std::string format;
  for (std::uint64_t i = 0;; ++i) {
    if (i >= kMaxOutput || !ctx->may_access(fmt + i, 1, false)) return errno_result(EINVAL);
    const char c = *reinterpret_cast<const char*>(fmt + i);
    if (!c) break;
    format += c;
  }
  const auto out = bprintf(format, reinterpret_cast<const std::uint64_t*>(data), static_cast<int>(data_len / 8), ctx);
  if (!out) return errno_result(EINVAL);
  if (str_size) {
    const std::size_t n = std::min<std::size_t>(out->size(), str_size - 1);
    std::memcpy(reinterpret_cast<char*>(str), out->data(), n);
    reinterpret_cast<char*>(str)[n] = 0;
  }
  return out->size() + 1;
}

}  // namespace

void install_snprintf_helper(Registry& table) { table.set(BPF_FUNC_snprintf, snprintf_helper); }

}  // namespace bpfvm::helpers
