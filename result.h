// result.h: the one way a fallible call says why it failed.
//
// Contract. A call that can fail with a reason a person should read returns
//   Result<T>  either a T or an Error, or
//   Status     (= Result<void>) success or an Error.
// Success is `return value;` (or `return {};` for a Status); failure is
// `return Error{"why"};`, one line that names what failed, in the words the
// caller may print as they are. The caller tests `ok()` (or the result itself),
// then reads the value with `*r`, `r->`, `r.value()`, or the reason with
// `r.error()`; a failure is passed on with `return r.failure();`. Reading the
// side that is not there is a bug (asserted). No exceptions cross a component
// boundary, no `std::string*` out-parameters, no "optional<string> = error".
//
// A component whose callers act on the kind of failure (faradayctl's PKI:
// a bad argument exits 2) gives Result a second parameter, its own error
// struct with a `message` and a typed reason; `error()` is still the message
// and `failure()` the whole struct.
//
// Where it lives. At the top of the tree, beside the generated config.h: the
// two headers every folder may include, crypto/ and dataplane/ too (which may
// include nothing else of ours). It depends on the standard library only, so
// it adds no arrow between folders. Header-only; no threads involved (a Result
// is a value).
#pragma once

#include <cassert>
#include <string>
#include <type_traits>
#include <utility>
#include <variant>

namespace faraday {

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

}  // namespace faraday
