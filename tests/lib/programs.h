// programs.h: the project's executables a test runs, found through the
// environment meson sets for it (`env : {'FARAD' : farad_exe.full_path()}`),
// never compiled in.
#pragma once

#include <gtest/gtest.h>

#include <cstdlib>

namespace faraday::testing {

// The path in environment variable `var` (FARAD, FARADAYCTL, ...); a test
// failure and a path that does not exist when it is unset.
inline const char* program_path(const char* var) {
  const char* path = std::getenv(var);
  if (path && *path) return path;
  ADD_FAILURE() << "environment variable " << var
                << " is not set: run this test through `meson test`, or set it";
  return "/nonexistent";
}

}  // namespace faraday::testing
