// The calling convention between programs and helpers, shared by the vm (which calls helpers) and the
// helpers (which implement them) so that neither includes the other: the memory regions a run may touch,
// what a helper sees of the run that called it, and a helper's signature.
//
// A helper receives r1-r5 and a CallContext and returns r0. The signature is SysV-friendly on purpose:
// r1-r5 arrive in the argument registers and the context in the sixth, so JIT code calls helpers
// without shuffling.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>
#include <type_traits>
#include <vector>

#include "bpfvm/base/result.hpp"

namespace bpfvm {

// Memory a program may touch, for the interpreter's checked mode.
struct MemoryRegion {
  std::uint64_t start = 0;
  std::uint64_t size = 0;
  bool writable = true;
  std::string_view name;  // "ctx", "packet", "map value": used in fault messages

  bool contains(std::uint64_t addr, std::uint64_t len) const {
    return addr >= start && len <= size && addr - start <= size - len;
  }
  template <typename T>
  static MemoryRegion of(T* p, std::uint64_t bytes, std::string_view name) {
    return {reinterpret_cast<std::uint64_t>(p), bytes, !std::is_const_v<T>, name};
  }
};

// What a helper sees of the run that called it.
class CallContext {
 public:
  explicit CallContext(void* user) : user_(user) {}

  // The embedder's per-run data (RunContext::user).
  void* user() const { return user_; }
  // Where it is kept: JIT code that inlines a helper reads it from there.
  void* const* user_slot() const { return &user_; }

  // Ends the program when this helper returns, with r0 = the helper's return value. The conformance
  // suite's "unwind" helper is built on this.
  void request_exit() { exit_requested_ = true; }
  bool exit_requested() const { return exit_requested_; }
  // Where that request is kept: JIT code tests this byte after every helper call.
  const bool* exit_flag() const { return &exit_requested_; }

  // In checked mode, lets the program access [start, start + size) from now on, e.g. a map value a
  // lookup returned. Ignored in unchecked mode, where the verifier vouches for every access.
  void allow_region(MemoryRegion region) {
    if (check_) extra_regions_.push_back(region);
  }
  const std::vector<MemoryRegion>& extra_regions() const { return extra_regions_; }

  // Whether the program may access [addr, addr + size): helpers that take pointers from a program no
  // verifier vouched for ask before touching them. Always true in unchecked mode.
  using AccessCheck = bool (*)(const void* self, std::uint64_t addr, std::uint64_t size, bool write);
  void set_access_check(AccessCheck check, const void* self) {
    check_ = check;
    check_self_ = self;
  }
  bool checked() const { return check_ != nullptr; }
  bool may_access(std::uint64_t addr, std::uint64_t size, bool write) const {
    return !check_ || check_(check_self_, addr, size, write);
  }

  // Runs the program's function at instruction `pc` (a callback: what a BPF_PSEUDO_FUNC load gave the
  // program) with r1-r5 and returns its r0. The callback sees the same memory as the program, including
  // the caller's stack (bpf_loop passes a pointer into it).
  using Invoke = Result<std::uint64_t> (*)(const void* self, std::uint64_t pc, const std::uint64_t (&args)[5]);
  void set_invoker(Invoke invoke, const void* self) {
    invoke_ = invoke;
    invoke_self_ = self;
  }
  Result<std::uint64_t> call_function(std::uint64_t pc, const std::uint64_t (&args)[5]) const {
    if (!invoke_) return make_error(Errc::kNotSupported, "callbacks are not available here");
    return invoke_(invoke_self_, pc, args);
  }

  // Ends the program with an error (a callback failed, a checked access inside a helper went wrong).
  void fail(Error error) {
    failure_ = std::move(error);
    exit_requested_ = true;
  }
  bool failed() const { return failure_.has_value(); }
  Error take_failure() {
    Error e = std::move(*failure_);
    failure_.reset();
    return e;
  }

  // The interpreter reuses one context for every call of a run.
  void begin_call() {
    exit_requested_ = false;
    extra_regions_.clear();
  }

 private:
  void* user_;
  bool exit_requested_ = false;
  std::vector<MemoryRegion> extra_regions_;
  AccessCheck check_ = nullptr;
  const void* check_self_ = nullptr;
  Invoke invoke_ = nullptr;
  const void* invoke_self_ = nullptr;
  std::optional<Error> failure_;
};

using HelperFn = std::uint64_t (*)(std::uint64_t r1, std::uint64_t r2, std::uint64_t r3, std::uint64_t r4,
                                   std::uint64_t r5, CallContext* ctx);

}  // namespace bpfvm
