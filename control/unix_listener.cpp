// unix_listener.cpp: one way to make a root-only UNIX socket file (unix_listener.h).
#include "control/unix_listener.h"

#include <fmt/core.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <system_error>

namespace faraday::control {
namespace {

std::string errno_text(int e) {
  return std::error_code(e, std::system_category()).message();
}

ListenError sys_error(const std::string& what) {
  int e = errno;
  return ListenError{fmt::format("{}: {}", what, errno_text(e)), e};
}

bool fill_sockaddr(const std::string& path, sockaddr_un& sa) {
  std::memset(&sa, 0, sizeof(sa));
  sa.sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof(sa.sun_path)) return false;
  std::memcpy(sa.sun_path, path.c_str(), path.size() + 1);
  return true;
}

// True if a process accepts connections at sa right now.
bool someone_listening(const sockaddr_un& sa) {
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  int rc = ::connect(fd, reinterpret_cast<const sockaddr*>(&sa), sizeof(sa));
  // EAGAIN: a live listener whose backlog is full.
  bool live = rc == 0 || errno == EAGAIN || errno == EINPROGRESS;
  ::close(fd);
  return live;
}

// Creates `dir` (one level, mode 0755 whatever the umask) if it is missing.
Result<void, ListenError> ensure_directory(const std::string& dir) {
  if (dir.empty()) return {};
  struct stat st {};
  if (::stat(dir.c_str(), &st) == 0) {
    if (!S_ISDIR(st.st_mode)) return ListenError{dir + " is not a directory", ENOTDIR};
    return {};
  }
  if (errno != ENOENT) return sys_error("cannot use " + dir);
  if (::mkdir(dir.c_str(), 0755) != 0) {
    if (errno == EEXIST) return {};
    return sys_error("cannot create " + dir);
  }
  if (::chmod(dir.c_str(), 0755) != 0) return sys_error("cannot chmod " + dir);
  return {};
}

// Refuses what must not be replaced at `path`; a stale socket is left for the
// rename to replace.
Result<void, ListenError> check_existing(const std::string& path, const sockaddr_un& sa,
                                         std::string_view who) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return {};
    return sys_error("cannot use " + path);
  }
  if (!S_ISSOCK(st.st_mode))
    return ListenError{path + " exists and is not a socket; not replacing it", EEXIST};
  if (someone_listening(sa))
    return ListenError{fmt::format("another {} serves {}", who, path), EADDRINUSE};
  return {};
}

}  // namespace

Result<UnixListener, ListenError> listen_unix(const std::string& path, std::string_view who) {
  std::filesystem::path p(path);
  std::string dir = p.parent_path().string();
  std::string tmp =
      (p.parent_path() / ("." + p.filename().string() + "." + std::to_string(::getpid()) + ".tmp"))
          .string();
  sockaddr_un sa{}, tmp_sa{};
  if (p.filename().empty() || !fill_sockaddr(path, sa)) {
    return ListenError{fmt::format("socket path \"{}\" is empty or longer than {} bytes", path,
                                   sizeof(sa.sun_path) - 1),
                       ENAMETOOLONG};
  }
  if (!fill_sockaddr(tmp, tmp_sa)) {
    return ListenError{fmt::format("socket path \"{}\" is too long for its temporary name {} "
                                   "(at most {} bytes)",
                                   path, tmp, sizeof(sa.sun_path) - 1),
                       ENAMETOOLONG};
  }
  if (auto ok = ensure_directory(dir); !ok) return ok.failure();
  if (auto ok = check_existing(path, sa, who); !ok) return ok.failure();

  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return sys_error("cannot open a UNIX socket");
  ::unlink(tmp.c_str());
  auto fail = [&](const std::string& what) {
    ListenError e = sys_error(what);
    ::close(fd);
    ::unlink(tmp.c_str());
    return e;
  };
  if (::bind(fd, reinterpret_cast<const sockaddr*>(&tmp_sa), sizeof(tmp_sa)) != 0)
    return fail("cannot bind " + tmp);
  if (::chmod(tmp.c_str(), 0600) != 0) return fail("cannot chmod " + tmp);
  if (::listen(fd, SOMAXCONN) != 0) return fail("cannot listen on " + tmp);
  if (::rename(tmp.c_str(), path.c_str()) != 0) return fail("cannot rename " + tmp + " to " + path);
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) return fail("cannot stat " + path);
  return UnixListener{fd, st.st_dev, st.st_ino};
}

bool still_present(const std::string& path, const UnixListener& l) {
  struct stat st {};
  return ::lstat(path.c_str(), &st) == 0 && st.st_dev == l.dev && st.st_ino == l.ino;
}

void remove_if_present(const std::string& path, const UnixListener& l) {
  if (still_present(path, l)) ::unlink(path.c_str());
}

}  // namespace faraday::control
