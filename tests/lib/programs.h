// programs.h: programs a test runs. The project's executables are found through
// the environment meson sets for the test (`env : {'FARAD' :
// farad_exe.full_path()}`), never compiled in; run_program() and spawn_program()
// start one with its output in files, run_shell() runs a command line and reads
// its standard output.
#pragma once

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "tests/lib/spawn.h"
#include "tests/lib/temp_dir.h"

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

// The whole content of a file ("" if it cannot be read).
inline std::string slurp(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

// Starts `path args...` with its stdout and stderr written to the files
// `out_path` and `err_path` (created or truncated); its pid, or a test failure
// and -1 if it could not be started. The caller waits for it.
inline pid_t spawn_program(const std::string& path, std::vector<std::string> args,
                           const std::string& out_path, const std::string& err_path) {
  pid_t pid = spawn_with_output(path, std::move(args), out_path, err_path);
  if (pid < 0) ADD_FAILURE() << "cannot start " << path << ": " << std::strerror(errno);
  return pid;
}

struct ProgramRun {
  int status = -1;  // the exit status; -1 if it did not start or did not exit
  std::string out, err;
};

// Runs `path args...` to its end with stdout and stderr captured.
inline ProgramRun run_program(const std::string& path, std::vector<std::string> args) {
  TempDir io("program-run");
  ProgramRun r;
  pid_t pid = spawn_program(path, std::move(args), io.path() + "/out", io.path() + "/err");
  if (pid > 0) {
    int st = 0;
    waitpid(pid, &st, 0);
    r.status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  }
  r.out = slurp(io.path() + "/out");
  r.err = slurp(io.path() + "/err");
  return r;
}

struct ShellRun {
  int status = -1;  // the exit status; -1 if it did not start or did not exit
  std::string out;  // standard output (add 2>&1 to the command for both)
};

// Runs `command` with /bin/sh to its end.
inline ShellRun run_shell(const std::string& command) {
  ShellRun r;
  FILE* p = ::popen(command.c_str(), "r");
  if (p == nullptr) return r;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof(buf), p)) > 0) r.out.append(buf, n);
  int st = ::pclose(p);
  r.status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  return r;
}

}  // namespace faraday::testing
