// Result<T>: a value or an Error (the expected<T, Error> of this project; std::expected is C++23).
//
// External input (object files, bytecode, text, CLI arguments) is answered with a Result, never with a
// crash or an exception. BPFVM_TRY(expr) unwraps a Result or returns its error from the enclosing
// function (a GNU statement expression, supported by g++ and clang).
#pragma once

#include <cassert>
#include <type_traits>
#include <utility>
#include <variant>

#include "bpfvm/base/error.hpp"

namespace bpfvm {

template <typename T>
class [[nodiscard]] Result {
 public:
  Result(const T& value) : v_(std::in_place_index<0>, value) {}  // NOLINT(google-explicit-constructor)
  Result(T&& value) : v_(std::in_place_index<0>, std::move(value)) {}  // NOLINT
  Result(Error error) : v_(std::in_place_index<1>, std::move(error)) {}  // NOLINT
  template <typename U>
    requires(std::is_constructible_v<T, U&&> && !std::is_same_v<std::remove_cvref_t<U>, T> &&
             !std::is_same_v<std::remove_cvref_t<U>, Error>)
  Result(U&& value) : v_(std::in_place_index<0>, T(std::forward<U>(value))) {}  // NOLINT

  bool has_value() const { return v_.index() == 0; }
  explicit operator bool() const { return has_value(); }

  T& value() & {
    assert(has_value());
    return std::get<0>(v_);
  }
  const T& value() const& {
    assert(has_value());
    return std::get<0>(v_);
  }
  T&& value() && {
    assert(has_value());
    return std::get<0>(std::move(v_));
  }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

  const Error& error() const& {
    assert(!has_value());
    return std::get<1>(v_);
  }
  Error&& error() && {
    assert(!has_value());
    return std::get<1>(std::move(v_));
  }

 private:
  std::variant<T, Error> v_;
};

template <>
class [[nodiscard]] Result<void> {
 public:
  // User-provided on purpose: `return {};` value-initialises, and with a defaulted constructor that
  // would first zero the whole (large) optional<Error> on every successful return.
  Result() {}  // NOLINT(modernize-use-equals-default)
  Result(Error error) : error_(std::move(error)) {}  // NOLINT(google-explicit-constructor)

  bool has_value() const { return !error_.has_value(); }
  explicit operator bool() const { return has_value(); }
  void value() const { assert(has_value()); }
  const Error& error() const& { return *error_; }
  Error&& error() && { return std::move(*error_); }

 private:
  std::optional<Error> error_;
};

inline Result<void> ok() { return {}; }

}  // namespace bpfvm

#define BPFVM_CONCAT_INNER(a, b) a##b
#define BPFVM_CONCAT(a, b) BPFVM_CONCAT_INNER(a, b)

// Unwraps a Result; on error returns it from the enclosing function (whose return type is any Result).
// Each expansion names its temporary uniquely, so uses may nest.
#define BPFVM_TRY(expr) BPFVM_TRY_IMPL(expr, BPFVM_CONCAT(bpfvm_try_, __COUNTER__))
#define BPFVM_TRY_IMPL(expr, tmp)              \
  ({                                           \
    auto&& tmp = (expr);                       \
    if (!tmp.has_value())                      \
      return std::move(tmp).error();           \
    std::move(tmp).value();                    \
  })

// As BPFVM_TRY, adding an outer context to the error.
#define BPFVM_TRY_CTX(expr, ...) BPFVM_TRY_CTX_IMPL(expr, BPFVM_CONCAT(bpfvm_try_, __COUNTER__), __VA_ARGS__)
#define BPFVM_TRY_CTX_IMPL(expr, tmp, ...)                                           \
  ({                                                                                 \
    auto&& tmp = (expr);                                                             \
    if (!tmp.has_value())                                                            \
      return std::move(tmp).error().with_context(fmt::format(__VA_ARGS__));          \
    std::move(tmp).value();                                                          \
  })
