// names.h: the one way an enum is printed: a table of names in the enum's
// order, whose size is checked against the enum's kCount when it compiles, so
// a value added without its name does not build. Pure; any thread.
#pragma once

#include <array>
#include <cstddef>

namespace faraday::names {

template <typename Enum, size_t N>
constexpr const char* name_of(const std::array<const char*, N>& names, Enum e) {
  static_assert(N == static_cast<size_t>(Enum::kCount), "one name per value, in order");
  auto i = static_cast<size_t>(e);
  return i < N ? names[i] : "?";
}

}  // namespace faraday::names
