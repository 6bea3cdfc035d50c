// ctl.cpp: the local control socket's grammar and client (ctl.h).
#include "proto/ctl.h"

#include <fcntl.h>
#include <fmt/core.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include "common/names.h"

#include <cerrno>
#include <cstring>
#include <nlohmann/json.hpp>
#include <system_error>
#include <thread>

namespace faraday::proto {

namespace {

using Clock = std::chrono::steady_clock;

constexpr std::chrono::milliseconds kConnectRetry = 10ms;  // client: listen backlog full

std::string errno_text(int e) {
  return std::error_code(e, std::system_category()).message();
}

class UniqueFd {
 public:
  explicit UniqueFd(int fd) : fd_(fd) {}
  ~UniqueFd() {
    if (fd_ >= 0) ::close(fd_);
  }
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;
  int get() const { return fd_; }

 private:
  int fd_;
};

}  // namespace

std::string ctl_duration_text(std::chrono::milliseconds d) {
  if (d.count() % 1000 == 0) return fmt::format("{} s", d.count() / 1000);
  if (d.count() > 1000) return fmt::format("{:.1f} s", d.count() / 1000.0);
  return fmt::format("{} ms", d.count());
}

bool ctl_sockaddr(const std::string& path, sockaddr_un& addr) {
  if (path.empty() || path.size() >= sizeof(addr.sun_path)) return false;
  std::memset(&addr, 0, sizeof(addr));
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path.data(), path.size());
  return true;
}

Result<CtlProbe> ctl_probe(const std::string& path) {
  sockaddr_un addr;
  if (!ctl_sockaddr(path, addr)) return faraday::Error{"socket path too long"};
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (fd.get() < 0) return faraday::Error{"socket: " + errno_text(errno)};
  if (::connect(fd.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) == 0) {
    return CtlProbe::kLive;
  }
  switch (errno) {
    case EAGAIN:  // listening, its backlog full
    case EINPROGRESS:
      return CtlProbe::kLive;
    case ECONNREFUSED:
      return CtlProbe::kStale;
    case ENOENT:
      return CtlProbe::kGone;
    default:
      return faraday::Error{fmt::format("cannot probe {}: {}", path, errno_text(errno))};
  }
}

std::string default_ctl_socket(const std::string& ifname) {
  return "/run/faraday/" + ifname + ".sock";
}

std::string ctl_error(std::string_view message) {
  nlohmann::json j = {{"error", std::string(message)}};
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

const char* to_string(CtlReject reason) {
  static constexpr std::array<const char*, 9> kNames = {
      "too_long",        "no_newline",    "not_ascii",      "malformed",       "unknown_command",
      "request_timeout", "reply_timeout", "handler_failed", "too_many_clients"};
  return names::name_of(kNames, reason);
}

// ---- parser ------------------------------------------------------------------

Result<CtlRequest, CtlBadRequest> parse_ctl_request(std::string_view line) {
  if (line.size() >= kCtlMaxLineBytes) {
    return CtlBadRequest{
        CtlReject::kTooLong,
        fmt::format("request line longer than {} bytes (newline included)", kCtlMaxLineBytes)};
  }
  for (size_t i = 0; i < line.size(); ++i) {
    auto c = static_cast<unsigned char>(line[i]);
    if (c < 0x20 || c > 0x7e) {
      return CtlBadRequest{CtlReject::kNotAscii,
                           fmt::format("byte 0x{:02x} at offset {} is not printable ASCII{}", c, i,
                                       c == '\r' ? " (end the line with \\n alone)" : "")};
    }
  }
  if (line.empty()) return CtlBadRequest{CtlReject::kMalformed, "empty request line"};

  CtlRequest request;
  size_t words = 0;
  size_t start = 0;
  while (true) {
    size_t end = line.find(' ', start);
    std::string_view word = line.substr(start, end == std::string_view::npos ? end : end - start);
    if (word.empty()) {
      return CtlBadRequest{CtlReject::kMalformed,
                           "words must be separated by single spaces, without a leading or "
                           "trailing space"};
    }
    if (++words > kCtlMaxWords) {
      return CtlBadRequest{CtlReject::kMalformed,
                           fmt::format("more than {} words in the request", kCtlMaxWords)};
    }
    if (words == 1) {
      request.command = word;
    } else {
      request.args.emplace_back(word);
    }
    if (end == std::string_view::npos) break;
    start = end + 1;
  }
  return request;
}

// ---- client ------------------------------------------------------------------

Result<std::string, CtlError> ctl_call(const std::string& path, std::string_view line,
                                       std::chrono::milliseconds timeout) {
  if (line.find('\n') != std::string_view::npos) {
    return CtlError{"the request contains a newline"};
  }
  if (line.size() + 1 > kCtlMaxLineBytes) {
    return CtlError{fmt::format("the request is longer than {} bytes", kCtlMaxLineBytes - 1)};
  }
  auto unreachable = [&](const std::string& why) {
    return CtlError{fmt::format("cannot reach faradayd at {}: {}", path, why)};
  };
  auto timed_out = [&] {
    return CtlError{
        fmt::format("faradayd at {} did not answer within {}", path, ctl_duration_text(timeout))};
  };
  sockaddr_un addr;
  if (!ctl_sockaddr(path, addr)) return unreachable("the socket path is empty or too long");

  const auto deadline = Clock::now() + timeout;
  // Waits until `fd` is ready for `events`; false once the deadline passed.
  auto wait = [&](int fd, short events) {
    while (true) {
      auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - Clock::now());
      if (left.count() <= 0) return false;
      pollfd p{fd, events, 0};
      int n = ::poll(&p, 1, static_cast<int>(left.count()));
      if (n > 0) return true;
      if (n < 0 && errno != EINTR) return true;  // let the next call report the error
    }
  };

  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (fd.get() < 0) return unreachable("socket: " + errno_text(errno));
  while (::connect(fd.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) != 0) {
    if (errno == EINTR) continue;
    if (errno == EAGAIN) {  // its listen backlog is full: try again until the deadline
      if (Clock::now() + kConnectRetry >= deadline) return timed_out();
      std::this_thread::sleep_for(kConnectRetry);
      continue;
    }
    if (errno == EINPROGRESS) {
      if (!wait(fd.get(), POLLOUT)) return timed_out();
      int err = 0;
      socklen_t len = sizeof(err);
      ::getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &err, &len);
      if (err != 0) return unreachable(errno_text(err));
      break;
    }
    int err = errno;
    std::string hint = err == ENOENT || err == ECONNREFUSED
                           ? " (is faradayd running in cluster mode on this interface?)"
                           : "";
    return unreachable(errno_text(err) + hint);
  }

  std::string request(line);
  request += '\n';
  size_t sent = 0;
  while (sent < request.size()) {
    ssize_t n = ::send(fd.get(), request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
    if (n > 0) {
      sent += static_cast<size_t>(n);
    } else if (n < 0 && errno == EINTR) {
      continue;
    } else if (n < 0 && errno == EAGAIN) {
      if (!wait(fd.get(), POLLOUT)) return timed_out();
    } else if (n < 0 && (errno == EPIPE || errno == ECONNRESET)) {
      break;  // it closed early; its answer (say, too many clients) may be waiting
    } else {
      return unreachable("send: " + errno_text(errno));
    }
  }

  std::string reply;
  char chunk[4096];
  while (true) {
    ssize_t n = ::recv(fd.get(), chunk, sizeof(chunk), 0);
    if (n > 0) {
      reply.append(chunk, static_cast<size_t>(n));
      if (reply.size() > kCtlMaxReplyBytes + 1) {
        return CtlError{
            fmt::format("faradayd at {} sent more than {} bytes", path, kCtlMaxReplyBytes)};
      }
    } else if (n == 0) {
      break;
    } else if (errno == EINTR) {
      continue;
    } else if (errno == EAGAIN) {
      if (!wait(fd.get(), POLLIN)) return timed_out();
    } else if (errno == ECONNRESET && !reply.empty()) {
      break;  // it answered, then closed with our unread bytes pending
    } else {
      return unreachable("recv: " + errno_text(errno));
    }
  }
  if (reply.empty()) {
    return CtlError{fmt::format("faradayd at {} closed the connection without answering", path)};
  }
  if (reply.back() != '\n') {
    return CtlError{fmt::format("faradayd at {} sent a truncated answer", path)};
  }
  reply.pop_back();
  return reply;
}
}  // namespace faraday::proto
