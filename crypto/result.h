// result.h: common/result.h's Result, Status and Error for crypto/ and
// dataplane/, as faraday::crypto::Result.
//
// The contract is common/result.h's: a fallible call returns Result<T> (a T or
// an Error) or Status (success or an Error); failure is `return Error{"why"};`,
// the caller checks ok() and reads *r or r.error(). crypto/ may include nothing
// of ours and dataplane/ only crypto/ (DESIGN.md's layout table), so the
// template is repeated here word for word rather than included; only the
// namespace differs. tests/control/result_test.cpp runs both through the same
// cases. Change both or neither.
#pragma once

#include <cassert>
#include <string>
#include <type_traits>
#include <utility>
#include <variant>

namespace faraday::crypto {

// Why an operation failed: one line, ready for a log or an operator.
struct Error {
  std::string message;
};

template <typename T, typename E = Error>
class [[nodiscard]] Result {
 public:
  // A value (anything T can be made from: a derived unique_ptr, a literal).
  template <typename U = T>
  requires(std::is_constructible_v<T, U&&> && !std::is_same_v<std::remove_cvref_t<U>, Result> &&
           !std::is_same_v<std::remove_cvref_t<U>, E>) Result(U&& value)
      : state_(std::in_place_index<0>, std::forward<U>(value)) {}
  // A failure.
  Result(E failure) : state_(std::in_place_index<1>, std::move(failure)) {}

  bool ok() const { return state_.index() == 0; }
  explicit operator bool() const { return ok(); }

  T& value() & {
    assert(ok());
    return *std::get_if<0>(&state_);
  }
  const T& value() const& {
    assert(ok());
    return *std::get_if<0>(&state_);
  }
  T&& value() && {
    assert(ok());
    return std::move(*std::get_if<0>(&state_));
  }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T&& operator*() && { return std::move(*this).value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

  // The reason, when !ok().
  const std::string& error() const { return failure().message; }
  const E& failure() const {
    assert(!ok());
    return *std::get_if<1>(&state_);
  }

 private:
  std::variant<T, E> state_;
};

template <typename E>
class [[nodiscard]] Result<void, E> {
 public:
  Result() = default;  // success
  Result(E failure) : failure_(std::move(failure)), failed_(true) {}

  bool ok() const { return !failed_; }
  explicit operator bool() const { return ok(); }

  const std::string& error() const { return failure().message; }
  const E& failure() const {
    assert(!ok());
    return failure_;
  }

 private:
  E failure_{};
  bool failed_ = false;
};

using Status = Result<void>;

}  // namespace faraday::crypto
