// faraday_cni.cpp: main() of faraday-cni, the CNI plugin (rkt/plugin.h does
// the work): reads stdin, runs one invocation against the local faradayd and
// prints what it answered. `--help` or `-h` prints the usage; other arguments
// are ignored, as runtimes pass none.
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <string>
#include <string_view>

#include "rkt/plugin.h"

namespace {

void write_all(int fd, const std::string& text) {
  size_t done = 0;
  while (done < text.size()) {
    const ssize_t n = ::write(fd, text.data() + done, text.size() - done);
    if (n > 0)
      done += static_cast<size_t>(n);
    else if (n < 0 && errno == EINTR)
      continue;
    else
      return;
  }
}

}  // namespace

int main(int argc, char** argv) {
  namespace rkt = faraday::rkt;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      write_all(STDOUT_FILENO, rkt::cni_usage());
      return 0;
    }
  }
  auto getenv = [](const char* name) -> const char* { return std::getenv(name); };
  std::string input;
  const char* command = std::getenv("CNI_COMMAND");
  if (command && *command) {  // without a command the plugin only says what it is
    auto read = rkt::read_config(STDIN_FILENO);
    if (!read) {
      write_all(STDOUT_FILENO, rkt::cni_error(read.failure(), rkt::kCniLatestVersion) + "\n");
      return 1;
    }
    input = std::move(*read);
  }
  std::string out, err;
  const int code = rkt::run_plugin(getenv, input, out, err, rkt::call_faradayd);
  write_all(STDERR_FILENO, err);
  write_all(STDOUT_FILENO, out);
  return code;
}
