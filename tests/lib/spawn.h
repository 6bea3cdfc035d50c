// spawn.h: starting a program with its output in files, for the tests
// (through programs.h) and the benchmarks. Header-only, no gtest.
#pragma once

#include <fcntl.h>
#include <spawn.h>
#include <unistd.h>

#include <cerrno>
#include <string>
#include <vector>

extern char** environ;

namespace faraday::testing {

// Starts `path args...` with its stdout written to `out_path` and its stderr to
// `err_path`, each created or truncated ("" leaves that stream as it is); its
// pid, or -1 with errno set. The caller waits for it.
inline pid_t spawn_with_output(const std::string& path, std::vector<std::string> args,
                               const std::string& out_path, const std::string& err_path) {
  args.insert(args.begin(), path);
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  const int flags = O_WRONLY | O_CREAT | O_TRUNC;
  if (!out_path.empty()) posix_spawn_file_actions_addopen(&fa, 1, out_path.c_str(), flags, 0644);
  if (!err_path.empty()) posix_spawn_file_actions_addopen(&fa, 2, err_path.c_str(), flags, 0644);
  pid_t pid = -1;
  int e = posix_spawn(&pid, path.c_str(), &fa, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  if (e != 0) {
    errno = e;
    return -1;
  }
  return pid;
}

}  // namespace faraday::testing
