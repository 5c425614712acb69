// Time, randomness, the execution slot, strings: ktime_get_ns (5), get_prandom_u32 (7),
// get_smp_processor_id (8), get_numa_node_id (42), jiffies64 (118), ktime_get_boot_ns (125),
// ktime_get_coarse_ns (160), strncmp (182), strtol (105), strtoul (106).
#include <linux/bpf.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <random>

#include "bpfvm/helpers/helpers.hpp"
#include "bpfvm/helpers/run_env.hpp"
#include "bpfvm/base/process.hpp"
#include "helper_args.hpp"

namespace bpfvm::helpers {

namespace {

using os::clock_ns;

std::uint64_t ktime_get_ns(std::uint64_t, std::uint64_t, std::uint64_t, std::uint64_t, std::uint64_t,
                           CallContext*) {
  return clock_ns(CLOCK_MONOTONIC);  // the kernel's ktime_get_mono_fast_ns
}
std::uint64_t ktime_get_boot_ns(std::uint64_t, std::uint64_t, std::uint64_t, std::uint64_t, std::uint64_t,
                                CallContext*) {
  return clock_ns(CLOCK_BOOTTIME);
}
std::uint64_t ktime_get_coarse_ns(std::uint64_t, std::uint64_t, std::uint64_t, std::uint64_t, std::uint64_t,
                                  CallContext*) {
  return clock_ns(CLOCK_MONOTONIC_COARSE);
}
std::uint64_t ktime_get_tai_ns(std::uint64_t, std::uint64_t, std::uint64_t, std::uint64_t, std::uint64_t,
                               CallContext*) {
  return clock_ns(CLOCK_TAI);
}
// bpf_get_netns_cookie (122): the cookie of the network namespace the program runs in (the traced
// process's, a test run's caller's), as SO_NETNS_COOKIE reads it; found once per process.
std::uint64_t get_netns_cookie(std::uint64_t, std::uint64_t, std::uint64_t, std::uint64_t, std::uint64_t,
                               CallContext*) {
  static const std::uint64_t cookie = [] {
    std::uint64_t c = 0;
    const int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    socklen_t len = sizeof c;
    if (fd >= 0) {
      if (::getsockopt(fd, SOL_SOCKET, SO_NETNS_COOKIE, &c, &len) != 0) c = 0;
      ::close(fd);
    }
    return c;
  }();
  return cookie;
}
// jiffies at Debian's CONFIG_HZ=250, counted from CLOCK_MONOTONIC (there is no kernel tick to read).
std::uint64_t jiffies64(std::uint64_t, std::uint64_t, std::uint64_t, std::uint64_t, std::uint64_t, CallContext*) {
  return clock_ns(CLOCK_MONOTONIC) / (1'000'000'000u / 250);
}

std::uint64_t get_prandom_u32(std::uint64_t, std::uint64_t, std::uint64_t, std::uint64_t, std::uint64_t,
                              CallContext*) {
  thread_local std::minstd_rand rng{std::random_device{}()};
  return static_cast<std::uint32_t>(rng());
}

std::uint64_t get_smp_processor_id(std::uint64_t, std::uint64_t, std::uint64_t, std::uint64_t, std::uint64_t,
                                   CallContext* ctx) {
  return ctx->user() ? static_cast<const RunEnv*>(ctx->user())->cpu : 0;
}

std::uint64_t get_numa_node_id(std::uint64_t, std::uint64_t, std::uint64_t, std::uint64_t, std::uint64_t,
                               CallContext*) {
  return 0;  // one node
}

// strncmp(s1, s1_sz, s2): the kernel's strncmp over at most s1_sz bytes; s2 is a NUL-terminated
// constant string. Returns -1, 0 or 1.
std::uint64_t strncmp_helper(std::uint64_t s1, std::uint64_t size, std::uint64_t s2, std::uint64_t, std::uint64_t,
                             CallContext* ctx) {
  if (size == 0 || !ctx->may_access(s1, size, false)) return errno_result(EFAULT);
  const auto* a = reinterpret_cast<const unsigned char*>(s1);
  const auto* b = reinterpret_cast<const unsigned char*>(s2);
  for (std::uint64_t i = 0; i < size; ++i) {
    if (!ctx->may_access(s2 + i, 1, false)) return errno_result(EFAULT);
    if (a[i] != b[i]) return a[i] < b[i] ? static_cast<std::uint64_t>(-1) : 1;
    if (a[i] == 0) break;
  }
  return 0;
}

// bpf_strtol (105) and bpf_strtoul (106), as the kernel parses (kernel/bpf/helpers.c, lib/kstrtox.c):
// leading white space, a '-', then digits of base 8, 10 or 16 (flags' low 5 bits; 0: by prefix, "0x"
// hex, "0" octal), at most 63 bytes of them; returns how many bytes were consumed, EINVAL when no digit,
// ERANGE on overflow (and strtoul EINVAL for a negative number).
constexpr std::uint64_t kStrtoxBaseMask = 0x1f;

int digit_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return 99;
}

// The unsigned parse: bytes consumed (> 0) or a negative errno; the value and its sign.
std::int64_t parse_unsigned(const char* buf, std::size_t len, std::uint64_t flags, std::uint64_t& value, bool& negative) {
  unsigned base = static_cast<unsigned>(flags & kStrtoxBaseMask);
  if (len == 0 || (base != 0 && base != 8 && base != 10 && base != 16) || (flags & ~kStrtoxBaseMask)) return -EINVAL;
  std::size_t i = 0;
  auto space = [](char c) { return c == ' ' || (c >= '\t' && c <= '\r'); };
  while (i < len && space(buf[i])) ++i;
  negative = i < len && buf[i] == '-';
  if (negative) ++i;
  if (i == len) return -EINVAL;
  // The rest, as a NUL-terminated copy of at most 63 bytes.
  char str[64];
  const std::size_t n = std::min<std::size_t>(len - i, sizeof str - 1);
  std::memcpy(str, buf + i, n);
  str[n] = 0;
  const char* s = str;
  auto lower = [](char c) { return static_cast<char>(c | 0x20); };
  if (base == 0) {
    if (s[0] == '0') base = (lower(s[1]) == 'x' && digit_value(s[2]) < 16) ? 16 : 8;
    else base = 10;
  }
  if (base == 16 && s[0] == '0' && lower(s[1]) == 'x') s += 2;
  std::uint64_t v = 0;
  bool overflow = false;
  std::size_t digits = 0;
  for (; s[digits]; ++digits) {
    const int d = digit_value(s[digits]);
    if (d >= static_cast<int>(base)) break;
    if (v > (UINT64_MAX - static_cast<unsigned>(d)) / base) overflow = true;
    v = v * base + static_cast<unsigned>(d);
  }
  if (overflow) return -ERANGE;
  if (digits == 0) return -EINVAL;
  value = v;
  return static_cast<std::int64_t>(i + static_cast<std::size_t>(s + digits - str));
}

// The two helpers' shared part: the parse into *res as a signed (strtol) or unsigned (strtoul) number.
std::uint64_t strtox(std::uint64_t buf, std::uint64_t len, std::uint64_t flags, std::uint64_t res, bool is_signed,
                     CallContext* ctx) {
  if (!ctx->may_access(buf, len, false) || !ctx->may_access(res, 8, true)) return errno_result(EFAULT);
  std::uint64_t v = 0;
  bool negative = false;
  const std::int64_t n = parse_unsigned(reinterpret_cast<const char*>(buf), len, flags, v, negative);
  if (n < 0) return static_cast<std::uint64_t>(n);
  if (is_signed) {
    const auto sv = static_cast<std::int64_t>(negative ? 0 - v : v);
    if (negative ? sv > 0 : sv < 0) return errno_result(ERANGE);
  } else if (negative) {
    return errno_result(EINVAL);
  }
  if (negative) v = 0 - v;
  std::memcpy(reinterpret_cast<void*>(res), &v, 8);
  return static_cast<std::uint64_t>(n);
}

std::uint64_t strtol_helper(std::uint64_t buf, std::uint64_t len, std::uint64_t flags, std::uint64_t res,
                            std::uint64_t, CallContext* ctx) {
  return strtox(buf, len, flags, res, true, ctx);
}
std::uint64_t strtoul_helper(std::uint64_t buf, std::uint64_t len, std::uint64_t flags, std::uint64_t res,
                             std::uint64_t, CallContext* ctx) {
  return strtox(buf, len, flags, res, false, ctx);
}

}  // namespace

void install_basic_helpers(Registry& table) {
  table.set(BPF_FUNC_strtol, strtol_helper);
  table.set(BPF_FUNC_strtoul, strtoul_helper);
  table.set(BPF_FUNC_ktime_get_ns, ktime_get_ns);
  table.set(BPF_FUNC_ktime_get_boot_ns, ktime_get_boot_ns);
  table.set(BPF_FUNC_ktime_get_coarse_ns, ktime_get_coarse_ns);
  table.set(BPF_FUNC_ktime_get_tai_ns, ktime_get_tai_ns);
  table.set(BPF_FUNC_get_netns_cookie, get_netns_cookie);
  table.set(BPF_FUNC_jiffies64, jiffies64);
  table.set(BPF_FUNC_get_prandom_u32, get_prandom_u32);
  table.set(BPF_FUNC_get_smp_processor_id, get_smp_processor_id);
  table.set(BPF_FUNC_get_numa_node_id, get_numa_node_id);
  table.set(BPF_FUNC_strncmp, strncmp_helper);
}

namespace {
void install(Registry& table) {
  install_map_helpers(table);
  install_basic_helpers(table);
  install_task_helpers(table);
  install_callback_helpers(table);
  install_ringbuf_helpers(table);
  install_dynptr_helpers(table);
  install_syscall_helpers(table);
  install_trace_helpers(table);
  install_lock_helpers(table);
  install_tail_call_helper(table);
  install_snprintf_helper(table);
  install_perf_event_helpers(table);
  install_packet_helpers(table);
  install_socket_helpers(table);
  install_timer_helpers(table);
}
}  // namespace

std::span<const Implementation> implementations() {
  // Never destroyed: an agent's watcher thread may load a program (and ask here) while the process's
  // exit() runs the static destructors.
  static const Registry& registry = *[] {
    auto* r = new Registry;
    install(*r);
    return r;
  }();
  return registry.entries();
}

bool implemented(std::int64_t id) {
  for (const Implementation& h : implementations()) {
    if (h.id == id) return true;
  }
  return false;
}

}  // namespace bpfvm::helpers
