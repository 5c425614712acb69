// Private to src/agent: taking over the record libbpfvm-early.so keeps of a process's syscalls from
// before its agent started (early_log.h), and choosing which of them were the process's own.
#pragma once

#include <array>
#include <cstdint>
#include <string_view>
#include <vector>

#include "early_log.h"

namespace bpfvm::agent::detail {

// The hand-over: ends the early module's window and returns its log, or null when no early module runs
// in this process ($LD_AUDIT does not name it; then no syscall is made) or its window is closed (then a
// getppid is made, which changes nothing). Makes no other syscall: it is the agent's first act, before
// anything of the agent's could be recorded as the process's.
bpfvm_early_log* take_early_log();
// Gives the log's memory back.
void release_early_log(bpfvm_early_log* log);

struct EarlySyscall {
  int nr = 0;
  std::array<std::uint64_t, 6> args{};  // a kept path argument points at its copy in the log
  std::int64_t ret = 0;
  std::uint64_t ip = 0;  // after the syscall instruction
};

// What the loaded objects are, for telling the process's syscalls from those bpfvm caused (loading the
// agent and the libraries only it needs). Read from dl_iterate_phdr by default; tests give their own.
struct LoadedObject {
  std::string_view name;  // as the loader opened it ("" for the program)
  std::vector<std::pair<std::uint64_t, std::uint64_t>> ranges;  // its segments, [from, to)
  bool bpfvm = false;  // loaded only for bpfvm (the agent and libraries nothing else of the process needs)
  bool loader = false;  // the dynamic loader
};
std::vector<LoadedObject> loaded_objects();

// The log's syscalls the process would have made without bpfvm: not those on the files and memory of
// objects bpfvm loaded, nor made from their code, nor the loader's own anonymous mappings (their number
// follows the number of objects it holds, which bpfvm raised). In order.
std::vector<EarlySyscall> process_syscalls(const bpfvm_early_log& log, const std::vector<LoadedObject>& objects);

}  // namespace bpfvm::agent::detail
