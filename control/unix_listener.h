// unix_listener.h: the socket file faradayd serves local clients on (the UAPI's
// /var/run/wireguard/IFNAME.sock and the control socket), made one way for both:
//   - the parent directory is created if missing (one level, 0755 whatever the
//     umask);
//   - a file at the path that is not a socket is refused, a socket some process
//     still accepts on is refused ("another <who> serves PATH"), a stale socket
//     left by a dead process is replaced;
//   - the socket is bound under a private name beside the path, made 0600 and
//     set listening, then renamed into place: it is never reachable at the path
//     with the umask's permissions, and root alone can connect.
// The listener remembers the file's device and inode, so a daemon removes the
// file at exit only if it is still its own (not one a successor made).
//
// Threads: plain system calls, callable from any thread; a UnixListener is a
// value the caller owns (it closes `fd`).
#pragma once

#include <sys/types.h>

#include <string>
#include <string_view>

#include "result.h"

namespace faraday::control {

struct UnixListener {
  int fd = -1;  // listening, non-blocking, close-on-exec
  dev_t dev = 0;
  ino_t ino = 0;
};

// Why the socket could not be made, with the errno behind it (0 if none).
struct ListenError {
  std::string message;
  int errno_value = 0;
};

// `who` names the kind of process a live socket belongs to, for the error.
Result<UnixListener, ListenError> listen_unix(const std::string& path, std::string_view who);

// True while `path` is still the socket file `l` made (same device and inode).
bool still_present(const std::string& path, const UnixListener& l);

// Removes `path` if it is still the file `l` made.
void remove_if_present(const std::string& path, const UnixListener& l);

}  // namespace faraday::control
