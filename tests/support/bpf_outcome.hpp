// What differential tests of bpf() compare between the kernel and bpfvm: a command's return value,
// errno and output bytes; and the kernel's bpf() itself.
#pragma once

#include <linux/bpf.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <fmt/format.h>

#include <cstdint>
#include <string>
#include <vector>

namespace bpfvm::test {

inline long kernel_bpf(int cmd, union bpf_attr* attr) { return ::syscall(__NR_bpf, cmd, attr, sizeof *attr); }

struct Outcome {
  long rc;
  int err;
  std::vector<std::uint8_t> out;
  bool operator==(const Outcome&) const = default;
};

inline std::string describe(const Outcome& o) {
  std::string s = fmt::format("rc={} errno={} out=", o.rc, o.err);
  for (auto b : o.out) s += fmt::format("{:02x}", b);
  return s;
}

}  // namespace bpfvm::test
