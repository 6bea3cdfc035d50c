// unix_socket.h: the client side of a UNIX stream socket at a path, for the
// tests of the sockets faradayd listens on (control socket, UAPI socket).
// Header-only; plain descriptors, closed by the caller.
#pragma once

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

namespace faraday::testing {

// The address of the socket file at `path` (cut to what sun_path holds).
inline sockaddr_un unix_address(const std::string& path) {
  sockaddr_un sa{};
  sa.sun_family = AF_UNIX;
  std::strncpy(sa.sun_path, path.c_str(), sizeof(sa.sun_path) - 1);
  return sa;
}

// A stream socket connected to `path`: its descriptor, or -1 with errno set.
inline int unix_connect(const std::string& path) {
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  const sockaddr_un sa = unix_address(path);
  if (::connect(fd, reinterpret_cast<const sockaddr*>(&sa), sizeof(sa)) != 0) {
    int e = errno;
    ::close(fd);
    errno = e;
    return -1;
  }
  return fd;
}

// Leaves a socket file at `path` that nobody listens on, as a daemon that
// crashed leaves it; false if it could not be bound.
inline bool leave_stale_socket(const std::string& path) {
  int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
  const sockaddr_un sa = unix_address(path);
  bool bound = ::bind(fd, reinterpret_cast<const sockaddr*>(&sa), sizeof(sa)) == 0;
  ::close(fd);
  return bound;
}

}  // namespace faraday::testing
