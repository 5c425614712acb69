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
#include <memory>
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
  kNotSocket = ENOTSOCK,
  kOverflow = EOVERFLOW,
  kKernelNotSupported = 524,  // the kernel's internal ENOTSUPP, which bpf() returns for some commands
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

// An error is one pointer wide (its parts live on the heap), so that Result<T> costs little more than T
// on the success path, which decoding and verification take millions of times.
class Error {
 public:
  Error(Errc code, std::string message) : d_(std::make_unique<Data>(Data{code, std::move(message), {}, {}})) {}
  Error(const Error& other) : d_(std::make_unique<Data>(*other.d_)) {}
  Error& operator=(const Error& other) {
    if (this != &other) d_ = std::make_unique<Data>(*other.d_);
    return *this;
  }
  Error(Error&&) noexcept = default;
  Error& operator=(Error&&) noexcept = default;

  Errc code() const { return d_->code; }
  int errno_value() const { return static_cast<int>(d_->code); }
  const std::string& message() const { return d_->message; }
  const std::string& context() const { return d_->context; }
  const Location& location() const { return d_->location; }
  Location& location() { return d_->location; }

  // Prepends an outer operation: "load program 'x'" + "bad opcode" -> "load program 'x': bad opcode".
  Error&& with_context(std::string_view outer) &&;
  Error& with_context(std::string_view outer) &;
  Error&& at(Location loc) && {
    d_->location = std::move(loc);
    return std::move(*this);
  }
  // The same error under another code (a refusal the kernel answers with EINVAL rather than EACCES).
  Error&& with_code(Errc code) && {
    d_->code = code;
    return std::move(*this);
  }
  Error&& at_insn(std::size_t index) && {
    d_->location.insn = index;
    return std::move(*this);
  }

  // The whole message: context, location, cause.
  std::string to_string() const;

 private:
  struct Data {
    Errc code;
    std::string message;
    std::string context;
    Location location;
  };
  std::unique_ptr<Data> d_;  // never null, except in a moved-from Error
};

template <typename... Args>
Error make_error(Errc code, fmt::format_string<Args...> format, Args&&... args) {
  return Error(code, fmt::format(format, std::forward<Args>(args)...));
}

}  // namespace bpfvm
