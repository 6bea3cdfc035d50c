// faradayd-wg: faradayd as wg-quick's userspace implementation. wg-quick runs
// `$WG_QUICK_USERSPACE_IMPLEMENTATION IFNAME` and goes on once that returns,
// expecting the interface and its UAPI socket to exist, as wireguard-go
// leaves them: in the background. `faradayd standalone IFNAME` stays in the
// foreground, so this starts it in a session of its own, waits until it
// serves, and returns; `wg-quick down` deletes the interface, and faradayd
// stops with it.
//
//   faradayd-wg [-f] IFNAME
//
// -f, or WG_PROCESS_FOREGROUND=1 (wireguard-go's switch), runs faradayd in the
// foreground instead (exec). The background daemon's log goes to
// FARADAYD_LOG_FILE, or /var/log/faraday/IFNAME.log. faradayd is the one
// installed beside this program (the same directory), else the one on PATH.
#include <fcntl.h>
#include <limits.h>
#include <net/if.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <string>
#include <thread>
#include <vector>

#include "config.h"
#include "dataplane/tun_port.h"

namespace {

using namespace std::chrono_literals;

constexpr auto kReadyTimeout = 15s;
constexpr const char* kUapiDir = "/var/run/wireguard";

// faradayd beside this program, or "faradayd" (PATH).
std::string faradayd_path() {
  std::error_code ec;
  const auto self = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    const auto beside = self.parent_path() / "faradayd";
    if (::access(beside.c_str(), X_OK) == 0) return beside;
  }
  return "faradayd";
}

[[noreturn]] void exec_faradayd(const std::string& faradayd, const std::string& ifname) {
  std::vector<std::string> args = {"faradayd", "standalone", ifname};
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  ::execvp(faradayd.c_str(), argv.data());
  std::cerr << "faradayd-wg: cannot run " << faradayd << ": " << std::strerror(errno) << "\n";
  std::_Exit(1);
}

// Something accepts connections on the UAPI socket.
bool uapi_answers(const std::string& path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof(addr.sun_path)) return false;
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  const bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
  ::close(fd);
  return ok;
}

std::string tail(const std::string& path, size_t lines) {
  std::ifstream in(path);
  std::vector<std::string> last;
  for (std::string line; std::getline(in, line);) {
    last.push_back(line);
    if (last.size() > lines) last.erase(last.begin());
  }
  std::string out;
  for (const auto& l : last) out += "  " + l + "\n";
  return out;
}

int run_background(const std::string& faradayd, const std::string& ifname) {
  const char* env_log = std::getenv("FARADAYD_LOG_FILE");
  const std::string log = env_log && *env_log ? env_log : "/var/log/faraday/" + ifname + ".log";
  std::error_code ec;
  const auto dir = std::filesystem::path(log).parent_path();
  if (!dir.empty()) std::filesystem::create_directories(dir, ec);
  const int log_fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
  if (log_fd < 0) {
    std::cerr << "faradayd-wg: cannot open the log " << log << ": " << std::strerror(errno)
              << " (FARADAYD_LOG_FILE names another)\n";
    return 1;
  }
  const pid_t pid = ::fork();
  if (pid < 0) {
    std::cerr << "faradayd-wg: fork: " << std::strerror(errno) << "\n";
    return 1;
  }
  if (pid == 0) {
    ::setsid();
    const int null = ::open("/dev/null", O_RDONLY);
    if (null >= 0) ::dup2(null, STDIN_FILENO);
    ::dup2(log_fd, STDOUT_FILENO);
    ::dup2(log_fd, STDERR_FILENO);
    exec_faradayd(faradayd, ifname);
  }
  ::close(log_fd);
  const std::string socket = std::string(kUapiDir) + "/" + ifname + ".sock";
  const auto deadline = std::chrono::steady_clock::now() + kReadyTimeout;
  while (std::chrono::steady_clock::now() < deadline) {
    int status = 0;
    if (::waitpid(pid, &status, WNOHANG) == pid) {
      std::cerr << "faradayd-wg: faradayd for " << ifname << " exited ("
                << (WIFEXITED(status) ? "status " + std::to_string(WEXITSTATUS(status))
                                      : "signal " + std::to_string(WTERMSIG(status)))
                << ") before it served; the end of " << log << ":\n"
                << tail(log, 5);
      return 1;
    }
    if (::if_nametoindex(ifname.c_str()) != 0 && uapi_answers(socket)) return 0;
    std::this_thread::sleep_for(20ms);
  }
  ::kill(pid, SIGTERM);
  std::cerr << "faradayd-wg: faradayd for " << ifname << " did not serve " << socket << " within "
            << std::chrono::seconds(kReadyTimeout).count() << " s; stopped it. The end of " << log
            << ":\n"
            << tail(log, 5);
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "faradayd as wg-quick's userspace implementation: starts `faradayd standalone IFNAME` "
      "in the background and returns once the interface and its UAPI socket serve, as "
      "wireguard-go does.\n\n"
      "  WG_QUICK_USERSPACE_IMPLEMENTATION=faradayd-wg wg-quick up wg0\n\n"
      "`wg-quick down wg0` deletes the interface, and faradayd stops with it.",
      "faradayd-wg"};
  app.footer(
      "\nEnvironment: WG_PROCESS_FOREGROUND=1 is -f; FARADAYD_LOG_FILE is where the background "
      "daemon logs (default /var/log/faraday/IFNAME.log). faradayd is the one beside this "
      "program, else the one on PATH. Exit status: 0 once faradayd serves (or, with -f, "
      "faradayd's own), 1 if it exited or did not serve within 15 s (the end of its log is "
      "printed), 2 on a bad argument.");
  std::string ifname;
  bool foreground = false;
  app.add_option("IFNAME", ifname, "Interface name (at most 15 characters)")->required();
  app.add_flag("-f,--foreground", foreground,
               "Run faradayd in the foreground (exec), as `wireguard-go -f`");
  app.set_version_flag("--version", FARADAY_VERSION);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e);
    return code == 0 ? 0 : 2;
  }
  if (auto ok = faraday::dataplane::check_interface_name(ifname); !ok) {
    std::cerr << "faradayd-wg: " << ok.error() << "\n";
    return 2;
  }
  const char* fg = std::getenv("WG_PROCESS_FOREGROUND");
  if (fg && std::string_view(fg) == "1") foreground = true;
  const std::string faradayd = faradayd_path();
  if (foreground) exec_faradayd(faradayd, ifname);
  return run_background(faradayd, ifname);
}
