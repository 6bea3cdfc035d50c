// temp_dir.h: a fresh temporary directory for one test or fixture, removed
// with everything in it when the object dies. Header-only, for every suite.
#pragma once

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>

namespace faraday::testing {

// mkdtemp under $TMPDIR (or /tmp) as PREFIX-XXXXXX. A test cannot go on without
// it, so a failure to create one ends the program with the reason.
class TempDir {
 public:
  explicit TempDir(const std::string& prefix = "faraday-test") {
    const char* base = std::getenv("TMPDIR");
    std::string tmpl = std::string(base && *base ? base : "/tmp") + "/" + prefix + "-XXXXXX";
    if (::mkdtemp(tmpl.data()) == nullptr) {
      std::fprintf(stderr, "mkdtemp %s: %s\n", tmpl.c_str(), std::strerror(errno));
      std::abort();
    }
    path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

}  // namespace faraday::testing
