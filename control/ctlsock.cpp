// ctlsock.cpp: the local control socket (ctlsock.h): the request parser, the
// Asio server faradayd runs and the blocking client faradayctl uses.
#include "control/ctlsock.h"

#include <fcntl.h>
#include <fmt/core.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <system_error>
#include <thread>
#include <unordered_set>
#include <utility>

namespace faraday::control {

namespace {

namespace asio = boost::asio;
using local = asio::local::stream_protocol;
using Clock = std::chrono::steady_clock;

constexpr std::chrono::milliseconds kAcceptRetry = 100ms;  // after EMFILE and the like
constexpr std::chrono::milliseconds kConnectRetry = 10ms;  // client: listen backlog full

std::string errno_text(int e) {
  return std::error_code(e, std::system_category()).message();
}

// "5 s", "1.5 s" or "200 ms".
std::string duration_text(std::chrono::milliseconds d) {
  if (d.count() % 1000 == 0) return fmt::format("{} s", d.count() / 1000);
  if (d.count() > 1000) return fmt::format("{:.1f} s", d.count() / 1000.0);
  return fmt::format("{} ms", d.count());
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

void set_cloexec(int fd) {
  int flags = ::fcntl(fd, F_GETFD);
  if (flags >= 0) ::fcntl(fd, F_SETFD, flags | FD_CLOEXEC);
}

bool fill_sockaddr(const std::string& path, sockaddr_un& addr) {
  if (path.empty() || path.size() >= sizeof(addr.sun_path)) return false;
  std::memset(&addr, 0, sizeof(addr));
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path.data(), path.size());
  return true;
}

// Whether something accepts connections on the socket file at `path`.
enum class Probe { kLive, kStale, kGone };
std::variant<Probe, std::string> probe_socket(const std::string& path) {
  sockaddr_un addr;
  if (!fill_sockaddr(path, addr)) return std::string("socket path too long");
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (fd.get() < 0) return "socket: " + errno_text(errno);
  if (::connect(fd.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) == 0) {
    return Probe::kLive;
  }
  switch (errno) {
    case EAGAIN:  // listening, its backlog full
    case EINPROGRESS:
      return Probe::kLive;
    case ECONNREFUSED:
      return Probe::kStale;
    case ENOENT:
      return Probe::kGone;
    default:
      return fmt::format("cannot probe {}: {}", path, errno_text(errno));
  }
}

// Creates `dir` (one level, mode 0755 whatever the umask) if it is missing.
std::string ensure_directory(const std::filesystem::path& dir) {
  if (dir.empty()) return {};
  struct stat st;
  if (::stat(dir.c_str(), &st) == 0) {
    if (!S_ISDIR(st.st_mode)) return fmt::format("{} is not a directory", dir.string());
    return {};
  }
  if (errno != ENOENT) return fmt::format("cannot use {}: {}", dir.string(), errno_text(errno));
  if (::mkdir(dir.c_str(), 0755) != 0) {
    if (errno == EEXIST) return {};
    return fmt::format("cannot create {}: {}", dir.string(), errno_text(errno));
  }
  if (::chmod(dir.c_str(), 0755) != 0) {
    return fmt::format("cannot chmod {}: {}", dir.string(), errno_text(errno));
  }
  return {};
}

}  // namespace

std::string default_ctl_socket(const std::string& ifname) {
  return "/run/faraday/" + ifname + ".sock";
}

std::string ctl_error(std::string_view message) {
  nlohmann::json j = {{"error", std::string(message)}};
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

const char* to_string(CtlReject reason) {
  switch (reason) {
    case CtlReject::kTooLong:
      return "too_long";
    case CtlReject::kNoNewline:
      return "no_newline";
    case CtlReject::kNotAscii:
      return "not_ascii";
    case CtlReject::kMalformed:
      return "malformed";
    case CtlReject::kUnknownCommand:
      return "unknown_command";
    case CtlReject::kRequestTimeout:
      return "request_timeout";
    case CtlReject::kReplyTimeout:
      return "reply_timeout";
    case CtlReject::kHandlerFailed:
      return "handler_failed";
    case CtlReject::kTooManyClients:
      return "too_many_clients";
    case CtlReject::kCount:
      break;
  }
  return "unknown";
}

// ---- parser ------------------------------------------------------------------

std::variant<CtlRequest, CtlBadRequest> parse_ctl_request(std::string_view line) {
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

// ---- server ------------------------------------------------------------------

struct CtlServer::Impl : std::enable_shared_from_this<CtlServer::Impl> {
  struct Session;
  struct ReplyOnce;

  Impl(asio::io_context& io, std::string path, Commands commands, CtlServerOptions options)
      : path(std::move(path)),
        commands(std::move(commands)),
        options(options),
        acceptor(io),
        accept_retry(io) {}

  void count(CtlReject reason) { ++counters.rejected[static_cast<size_t>(reason)]; }
  void accept();
  void on_accept(const boost::system::error_code& ec, local::socket socket);
  void close();
  std::string known_commands() const;

  const std::string path;
  const Commands commands;
  const CtlServerOptions options;
  local::acceptor acceptor;
  asio::steady_timer accept_retry;
  Counters counters;
  std::unordered_set<std::shared_ptr<Session>> sessions;
  bool owns_file = false;  // dev/ino below identify the socket file this server bound
  dev_t dev = 0;
  ino_t ino = 0;
  bool closed = false;
};

// One client connection: reading its line, waiting for the handler, writing the
// answer. Lives while an asynchronous operation or the server's set holds it.
struct CtlServer::Impl::Session : std::enable_shared_from_this<Session> {
  enum class Phase { kReading, kHandling, kWriting, kClosed };

  Session(std::shared_ptr<Impl> server, local::socket socket)
      : server(std::move(server)),
        socket(std::move(socket)),
        deadline(this->socket.get_executor()) {}

  void start() {
    arm(server->options.request_timeout);
    read();
  }

  void read() {
    socket.async_read_some(asio::buffer(buf.data() + used, buf.size() - used),
                           [self = shared_from_this()](const boost::system::error_code& ec,
                                                       size_t n) { self->on_read(ec, n); });
  }

  void on_read(const boost::system::error_code& ec, size_t n) {
    if (phase != Phase::kReading) return;
    if (ec) {
      if (ec == asio::error::eof && used > 0) {
        reject(CtlReject::kNoNewline, "the request ended without a newline");
      } else {
        close();  // a probe that sent nothing, a reset, or the server closing
      }
      return;
    }
    const char* fresh = buf.data() + used;
    const void* newline = std::memchr(fresh, '\n', n);
    used += n;
    if (newline != nullptr) {
      dispatch(std::string_view(buf.data(), static_cast<const char*>(newline) - buf.data()));
    } else if (used == buf.size()) {
      reject(CtlReject::kTooLong, fmt::format("no newline within {} bytes", kCtlMaxLineBytes));
    } else {
      read();
    }
  }

  void dispatch(std::string_view line);

  // The handler's Reply arrived (or was dropped: failure set).
  void handled(std::string json, bool failure) {
    if (phase != Phase::kHandling) return;
    if (failure) server->count(CtlReject::kHandlerFailed);
    answer(std::move(json));
  }

  void reject(CtlReject reason, const std::string& message) {
    server->count(reason);
    answer(ctl_error(message));
  }

  void answer(std::string json) {
    if (phase != Phase::kReading && phase != Phase::kHandling) return;
    phase = Phase::kWriting;
    out = std::move(json);
    out += '\n';
    arm(server->options.reply_timeout);
    asio::async_write(
        socket, asio::buffer(out),
        [self = shared_from_this()](const boost::system::error_code&, size_t) { self->close(); });
  }

  // (Re)starts the one deadline of the current phase.
  void arm(std::chrono::milliseconds timeout) {
    unsigned generation = ++deadline_generation;
    deadline.expires_after(timeout);
    deadline.async_wait(
        [self = shared_from_this(), generation](const boost::system::error_code& ec) {
          if (!ec && generation == self->deadline_generation) self->on_deadline();
        });
  }

  void on_deadline() {
    const auto& opt = server->options;
    switch (phase) {
      case Phase::kReading:
        reject(CtlReject::kRequestTimeout,
               fmt::format("no request line within {}", duration_text(opt.request_timeout)));
        break;
      case Phase::kHandling:
        reject(CtlReject::kReplyTimeout, fmt::format("no answer to `{}` within {}", command,
                                                     duration_text(opt.reply_timeout)));
        break;
      case Phase::kWriting:
        close();  // the client does not read its answer
        break;
      case Phase::kClosed:
        break;
    }
  }

  void close() {
    if (phase == Phase::kClosed) return;
    phase = Phase::kClosed;
    ++deadline_generation;
    auto self = shared_from_this();
    boost::system::error_code ignored;
    deadline.cancel();
    socket.shutdown(local::socket::shutdown_both, ignored);
    socket.close(ignored);
    server->sessions.erase(self);
  }

  std::shared_ptr<Impl> server;
  local::socket socket;
  asio::steady_timer deadline;
  unsigned deadline_generation = 0;
  Phase phase = Phase::kReading;
  std::array<char, kCtlMaxLineBytes> buf;
  size_t used = 0;
  std::string command;  // once dispatched, for messages
  std::string out;
};

// The state behind one Reply and its copies: answers once; if every copy is
// dropped unanswered, answers an error instead. Either may happen on any
// thread: the answer itself always runs on the session's executor (inline when
// already there).
struct CtlServer::Impl::ReplyOnce {
  ReplyOnce(std::weak_ptr<Session> session, asio::any_io_executor executor)
      : session(std::move(session)), executor(std::move(executor)) {}
  ~ReplyOnce() {
    if (done.exchange(true)) return;
    asio::dispatch(executor, [session = std::move(session)] {
      if (auto s = session.lock()) {
        s->handled(ctl_error(fmt::format("`{}` gave no answer", s->command)), true);
      }
    });
  }
  void send(std::string json) {
    if (done.exchange(true)) return;
    asio::dispatch(executor, [session = session, json = std::move(json)]() mutable {
      if (auto s = session.lock()) s->handled(std::move(json), false);
    });
  }

  std::weak_ptr<Session> session;
  asio::any_io_executor executor;
  std::atomic<bool> done = false;
};

void CtlServer::Impl::Session::dispatch(std::string_view line) {
  phase = Phase::kHandling;
  auto parsed = parse_ctl_request(line);
  if (auto* bad = std::get_if<CtlBadRequest>(&parsed)) {
    reject(bad->reason, bad->message);
    return;
  }
  const auto& request = std::get<CtlRequest>(parsed);
  command = request.command;
  auto it = server->commands.find(request.command);
  if (it == server->commands.end()) {
    reject(CtlReject::kUnknownCommand, fmt::format("unknown command \"{}\" (known: {})",
                                                   request.command, server->known_commands()));
    return;
  }
  ++server->counters.requests;
  arm(server->options.reply_timeout);
  // Keep one reference while the handler runs, so that an exception's message
  // wins over "gave no answer" when the handler's copy unwinds.
  auto once = std::make_shared<ReplyOnce>(weak_from_this(), socket.get_executor());
  try {
    it->second(request, [once](std::string json) { once->send(std::move(json)); });
  } catch (const std::exception& e) {
    if (!once->done.exchange(true)) {
      handled(ctl_error(fmt::format("`{}` failed: {}", command, e.what())), true);
    }
  }
}

std::string CtlServer::Impl::known_commands() const {
  std::string names;
  for (const auto& [name, handler] : commands) {
    if (!names.empty()) names += ", ";
    names += name;
  }
  return names.empty() ? "none" : names;
}

void CtlServer::Impl::accept() {
  acceptor.async_accept(
      [self = shared_from_this()](const boost::system::error_code& ec, local::socket socket) {
        self->on_accept(ec, std::move(socket));
      });
}

void CtlServer::Impl::on_accept(const boost::system::error_code& ec, local::socket socket) {
  if (closed) return;
  if (ec) {
    if (ec == asio::error::operation_aborted) return;
    // Out of descriptors or memory: try again shortly instead of spinning.
    accept_retry.expires_after(kAcceptRetry);
    accept_retry.async_wait([self = shared_from_this()](const boost::system::error_code& e) {
      if (!e && !self->closed) self->accept();
    });
    return;
  }
  set_cloexec(socket.native_handle());
  ++counters.connections;
  if (sessions.size() >= options.max_clients) {
    count(CtlReject::kTooManyClients);
    // Best effort: the answer fits any socket buffer; never wait for this client.
    std::string text = ctl_error("too many clients") + "\n";
    [[maybe_unused]] ssize_t n =
        ::send(socket.native_handle(), text.data(), text.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
    boost::system::error_code ignored;
    socket.close(ignored);
  } else {
    auto session = std::make_shared<Session>(shared_from_this(), std::move(socket));
    sessions.insert(session);
    session->start();
  }
  accept();
}

void CtlServer::Impl::close() {
  if (closed) return;
  closed = true;
  boost::system::error_code ignored;
  acceptor.close(ignored);
  accept_retry.cancel();
  auto open = std::move(sessions);
  sessions.clear();
  for (const auto& session : open) session->close();
  struct stat st;
  if (owns_file && ::lstat(path.c_str(), &st) == 0 && st.st_dev == dev && st.st_ino == ino) {
    ::unlink(path.c_str());
  }
  owns_file = false;
}

std::variant<std::unique_ptr<CtlServer>, std::string> CtlServer::listen(asio::io_context& io,
                                                                        const std::string& path,
                                                                        Commands commands,
                                                                        CtlServerOptions options) {
  sockaddr_un addr;
  if (!fill_sockaddr(path, addr)) {
    return fmt::format("socket path \"{}\" is empty or longer than {} bytes", path,
                       sizeof(addr.sun_path) - 1);
  }
  if (auto err = ensure_directory(std::filesystem::path(path).parent_path()); !err.empty()) {
    return err;
  }

  struct stat st;
  if (::lstat(path.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode)) {
      return fmt::format("{} exists and is not a socket; not replacing it", path);
    }
    auto probe = probe_socket(path);
    if (auto* err = std::get_if<std::string>(&probe)) return *err;
    switch (std::get<Probe>(probe)) {
      case Probe::kLive:
        return fmt::format("another faradayd serves {}", path);
      case Probe::kStale:
        if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
          return fmt::format("cannot remove the stale socket {}: {}", path, errno_text(errno));
        }
        break;
      case Probe::kGone:
        break;
    }
  } else if (errno != ENOENT) {
    return fmt::format("cannot use {}: {}", path, errno_text(errno));
  }

  auto impl = std::make_shared<Impl>(io, path, std::move(commands), options);
  boost::system::error_code ec;
  impl->acceptor.open(local(), ec);
  if (ec) return fmt::format("cannot open a UNIX socket: {}", ec.message());
  set_cloexec(impl->acceptor.native_handle());
  impl->acceptor.bind(local::endpoint(path), ec);
  if (ec) return fmt::format("cannot bind {}: {}", path, ec.message());
  if (::lstat(path.c_str(), &st) != 0) {
    return fmt::format("{} vanished after bind: {}", path, errno_text(errno));
  }
  impl->owns_file = true;
  impl->dev = st.st_dev;
  impl->ino = st.st_ino;
  // Bound but not yet listening, so every connect is refused until the mode is
  // 0600: no one but root ever gets in.
  if (::chmod(path.c_str(), 0600) != 0) {
    std::string err = fmt::format("cannot chmod {}: {}", path, errno_text(errno));
    impl->close();
    return err;
  }
  impl->acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    std::string err = fmt::format("cannot listen on {}: {}", path, ec.message());
    impl->close();
    return err;
  }
  impl->accept();
  return std::unique_ptr<CtlServer>(new CtlServer(std::move(impl)));
}

CtlServer::CtlServer(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}
CtlServer::~CtlServer() {
  impl_->close();
}
const std::string& CtlServer::path() const {
  return impl_->path;
}
const CtlServer::Counters& CtlServer::counters() const {
  return impl_->counters;
}
size_t CtlServer::open_connections() const {
  return impl_->sessions.size();
}

// ---- client ------------------------------------------------------------------

std::variant<std::string, CtlError> ctl_call(const std::string& path, std::string_view line,
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
        fmt::format("faradayd at {} did not answer within {}", path, duration_text(timeout))};
  };
  sockaddr_un addr;
  if (!fill_sockaddr(path, addr)) return unreachable("the socket path is empty or too long");

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

}  // namespace faraday::control
