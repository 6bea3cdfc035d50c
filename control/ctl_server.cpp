// ctl_server.cpp: faradayd's side of the local control socket (ctl_server.h).
#include "control/ctl_server.h"

#include "control/unix_listener.h"

#include <fcntl.h>
#include <fmt/core.h>
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
#include <unordered_set>
#include <utility>

namespace faraday::control {

namespace {

namespace asio = boost::asio;
using local = asio::local::stream_protocol;
using namespace proto;  // the grammar: CtlRequest, CtlReject, ctl_error, ...

constexpr std::chrono::milliseconds kAcceptRetry = 100ms;  // after EMFILE and the like

void set_cloexec(int fd) {
  int flags = ::fcntl(fd, F_GETFD);
  if (flags >= 0) ::fcntl(fd, F_SETFD, flags | FD_CLOEXEC);
}

}  // namespace

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
  bool owns_file = false;  // listener identifies the socket file this server made
  UnixListener listener;
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
               fmt::format("no request line within {}", ctl_duration_text(opt.request_timeout)));
        break;
      case Phase::kHandling:
        reject(CtlReject::kReplyTimeout, fmt::format("no answer to `{}` within {}", command,
                                                     ctl_duration_text(opt.reply_timeout)));
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
  if (!parsed) {
    reject(parsed.failure().reason, parsed.error());
    return;
  }
  const auto& request = *parsed;
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
  if (owns_file) remove_if_present(path, listener);
  owns_file = false;
}

Result<std::unique_ptr<CtlServer>> CtlServer::listen(asio::io_context& io, const std::string& path,
                                                     Commands commands, CtlServerOptions options) {
  auto made = listen_unix(path, "faradayd");
  if (!made) return Error{made.failure().message};
  auto impl = std::make_shared<Impl>(io, path, std::move(commands), options);
  boost::system::error_code ec;
  impl->acceptor.assign(local(), made->fd, ec);
  if (ec) {
    ::close(made->fd);
    remove_if_present(path, *made);
    return Error{fmt::format("cannot serve {}: {}", path, ec.message())};
  }
  impl->listener = *made;
  impl->owns_file = true;
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
}  // namespace faraday::control
