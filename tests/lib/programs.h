// programs.h: programs a test runs. The project's executables are found through
// the environment meson sets for the test (`env : {'FARAD' :
// farad_exe.full_path()}`), never compiled in; run_program() and spawn_program()
// start one with its output in files, run_shell() runs a command line and reads
// its standard output.
#pragma once

#include <fcntl.h>
#include <gtest/gtest.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "tests/lib/temp_dir.h"

extern char** environ;

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
  args.insert(args.begin(), path);
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 1, out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_addopen(&fa, 2, err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  pid_t pid = -1;
  if (int e = posix_spawn(&pid, path.c_str(), &fa, nullptr, argv.data(), environ); e != 0) {
    ADD_FAILURE() << "cannot start " << path << ": " << std::strerror(e);
    pid = -1;
  }
  posix_spawn_file_actions_destroy(&fa);
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
