// Error: what went wrong, as a value.
//
// An Error carries a code that maps one-to-one to an errno (so the bpf() layer can return the kernel's
// numbers), a message that reads "verb object: cause", and an optional location (file, section,
// instruction index, source line and column). Context is added outermost-last with with_context(),
// so the final text reads from the outermost operation inwards:
//   "load program 'xdp_prog': instruction 12: jump out of range (target 40, program has 30)".
#pragma once

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include <fmt/format.h>

namespace bpfvm {

enum class Errc : int {
  kInvalid = EINVAL,         // malformed input: bad bytecode, bad syntax, bad argument
  kNotFound = ENOENT,        // no such file, key, object
  kExists = EEXIST,
  kFault = EFAULT,           // a program touched memory it may not touch
  kTooBig = E2BIG,
  kNoMemory = ENOMEM,
  kPermission = EPERM,
  kAccess = EACCES,          // the verifier's rejection code
  kNotSupported = EOPNOTSUPP,
  kIo = EIO,
  kLimit = ERANGE,           // a run-time limit was hit (call depth, instruction budget)
  kBadFd = EBADF,
  kNoSpace = ENOSPC,         // an output buffer is too small
  kBusy = EBUSY,
  kNoDevice = ENODEV,
};

// Where in the input an error was found. Every field is optional; to_string() prints those that are set.
struct Location {
  std::string file;
  std::string section;
  std::optional<std::size_t> insn;    // instruction index (in 8-byte slots)
  std::optional<std::uint32_t> line;  // 1-based
  std::optional<std::uint32_t> column;

  bool empty() const { return file.empty() && section.empty() && !insn && !line; }
  std::string to_string() const;
};

class Error {
 public:
  Error(Errc code, std::string message) : code_(code), message_(std::move(message)) {}

  Errc code() const { return code_; }
  int errno_value() const { return static_cast<int>(code_); }
  const std::string& message() const { return message_; }
  const std::string& context() const { return context_; }
  const Location& location() const { return location_; }
  Location& location() { return location_; }

  // Prepends an outer operation: "load program 'x'" + "bad opcode" -> "load program 'x': bad opcode".
  Error&& with_context(std::string_view outer) &&;
  Error& with_context(std::string_view outer) &;
  Error&& at(Location loc) && {
    location_ = std::move(loc);
    return std::move(*this);
  }
  Error&& at_insn(std::size_t index) && {
    location_.insn = index;
    return std::move(*this);
  }

  // The whole message: context, location, cause.
  std::string to_string() const;

 private:
  Errc code_;
  std::string message_;
  std::string context_;
  Location location_;
};

template <typename... Args>
Error make_error(Errc code, fmt::format_string<Args...> format, Args&&... args) {
  return Error(code, fmt::format(format, std::forward<Args>(args)...));
}

}  // namespace bpfvm
