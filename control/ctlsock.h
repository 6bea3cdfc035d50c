// ctlsock.h: faradayd's local control socket, the one way faradayctl (and the
// CNI plugin) talk to a running node.
//
// Protocol:
//   - A UNIX stream socket, by default /run/faraday/IFNAME.sock
//     (default_ctl_socket()). It is mode 0600: only root may ask.
//   - A client connects and writes ONE request line: words of printable ASCII
//     (0x21..0x7e) separated by single spaces, ending in "\n", at most
//     kCtlMaxLineBytes (1024) bytes including the newline and at most
//     kCtlMaxWords (8) words. The first word is the command, the rest its
//     arguments. Anything the client writes after the newline is ignored.
//   - The server answers with exactly one JSON document followed by "\n" and
//     closes the connection. An error is {"error": "message"} (ctl_error()).
//   - Rejected, answered with an error and counted by reason
//     (CtlServer::counters()): a line without a newline within 1024 bytes, bytes
//     outside printable ASCII, an empty or badly spaced line, too many words,
//     a command nobody registered. A client that has not sent its whole line
//     within 5 s is answered with an error and closed; one the handler has not
//     answered within 30 s likewise. At most kCtlMaxClients (16) connections
//     are open at once; more are answered {"error": "too many clients"} and
//     closed at once. A connection closed before sending any byte (a liveness
//     probe) is not counted.
//
// The library knows no command: the owner registers each one with its handler
// (CtlServer::Commands). faradayd serves `status` (control/status_view.h shows
// the reply) and `query NAME` ({"name": NAME, "state": "PRESENT"|"ABSENT"|
// "UNKNOWN"}).
//
// Threads: parse_ctl_request(), ctl_error() and default_ctl_socket() are pure
// and callable anywhere. A CtlServer belongs to the thread running its
// io_context (faradayd's control thread): create it, use it and destroy it on
// that thread; handlers run there too. A Reply may be called from any thread.
// ctl_call() is a blocking client for any thread that owns no io_context.
#pragma once

#include <array>
#include <boost/asio/io_context.hpp>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace faraday::control {

using namespace std::chrono_literals;

inline constexpr size_t kCtlMaxLineBytes = 1024;  // including the "\n"
inline constexpr size_t kCtlMaxWords = 8;
inline constexpr size_t kCtlMaxClients = 16;
inline constexpr std::chrono::milliseconds kCtlRequestTimeout = 5s;  // whole line must arrive
inline constexpr std::chrono::milliseconds kCtlReplyTimeout = 30s;   // handler must answer
inline constexpr size_t kCtlMaxReplyBytes = 16 << 20;                // ctl_call() refuses more

// "/run/faraday/" + ifname + ".sock"
std::string default_ctl_socket(const std::string& ifname);

// {"error": message} on one line, without the "\n".
std::string ctl_error(std::string_view message);

// ---- requests ----------------------------------------------------------------

struct CtlRequest {
  std::string command;            // the first word
  std::vector<std::string> args;  // the other words, in order
};

// Why the server refused or failed a connection; the index into
// CtlServer::Counters::rejected.
enum class CtlReject : uint8_t {
  kTooLong,         // no "\n" within kCtlMaxLineBytes
  kNoNewline,       // the client closed its side before the "\n"
  kNotAscii,        // a byte outside printable ASCII (0x20..0x7e)
  kMalformed,       // empty line, leading/trailing/double space, more than kCtlMaxWords
  kUnknownCommand,  // no handler registered for the command
  kRequestTimeout,  // the line did not arrive within request_timeout
  kReplyTimeout,    // the handler did not answer within reply_timeout
  kHandlerFailed,   // the handler threw, or dropped its Reply without calling it
  kTooManyClients,  // max_clients connections already open
  kCount,
};
const char* to_string(CtlReject reason);

struct CtlBadRequest {
  CtlReject reason = CtlReject::kMalformed;  // kTooLong, kNotAscii or kMalformed
  std::string message;                       // for the error reply; never echoes raw bytes
};

// Parses one request line, given without its "\n". Pure; never throws. A line
// of kCtlMaxLineBytes or more bytes is kTooLong (it would not fit with its "\n").
std::variant<CtlRequest, CtlBadRequest> parse_ctl_request(std::string_view line);

// ---- server ------------------------------------------------------------------

struct CtlServerOptions {
  std::chrono::milliseconds request_timeout = kCtlRequestTimeout;
  std::chrono::milliseconds reply_timeout = kCtlReplyTimeout;  // also bounds writing the answer
  size_t max_clients = kCtlMaxClients;
};

class CtlServer {
 public:
  // Answers the request: `json` is one JSON document (nlohmann::json::dump()),
  // sent with a "\n" before the connection closes. Call it once, now or later,
  // from any thread while the io_context exists (the answer is written on the
  // io_context's thread); later calls do nothing, and so does a call after the
  // connection timed out or the server was destroyed. A Reply whose every copy
  // is dropped without being called answers an error (and counts kHandlerFailed).
  using Reply = std::function<void(std::string json)>;
  // Runs on the io_context's thread. May throw (the client gets an error), must
  // not destroy the server.
  using Handler = std::function<void(const CtlRequest& request, Reply reply)>;
  // Command name -> its handler. Requests for other commands are rejected.
  using Commands = std::map<std::string, Handler, std::less<>>;

  struct Counters {
    uint64_t connections = 0;  // accepted, including those refused as too many
    uint64_t requests = 0;     // well-formed requests handed to their handler
    std::array<uint64_t, static_cast<size_t>(CtlReject::kCount)> rejected{};
    uint64_t rejected_by(CtlReject r) const { return rejected[static_cast<size_t>(r)]; }
  };

  // Serves `commands` at `path`: creates the parent directory (0755; not its
  // parents) if it is missing, replaces a stale socket file nothing listens on (refusing with
  // "another faradayd serves PATH" if something answers, and any file that is
  // not a socket), binds, makes the socket 0600 before it accepts anyone, and
  // starts accepting on `io`. Returns the server or why it cannot serve.
  static std::variant<std::unique_ptr<CtlServer>, std::string> listen(
      boost::asio::io_context& io, const std::string& path, Commands commands,
      CtlServerOptions options = {});

  // Closes every connection (their pending Replies then do nothing) and unlinks
  // the socket file if it is still the one this server bound (same dev/inode).
  ~CtlServer();
  CtlServer(const CtlServer&) = delete;
  CtlServer& operator=(const CtlServer&) = delete;

  const std::string& path() const;
  const Counters& counters() const;
  size_t open_connections() const;

  struct Impl;  // opaque; shared with the asynchronous operations in flight

 private:
  explicit CtlServer(std::shared_ptr<Impl> impl);
  std::shared_ptr<Impl> impl_;
};

// ---- client ------------------------------------------------------------------

struct CtlError {
  std::string message;  // says what failed and mentions the socket path
};

// Blocking client: connects to `path`, sends `line` + "\n" and returns the
// answer without its "\n" (the JSON text, possibly {"error": ...}), or why no
// answer arrived within `timeout` (the whole exchange). Never raises SIGPIPE.
std::variant<std::string, CtlError> ctl_call(const std::string& path, std::string_view line,
                                             std::chrono::milliseconds timeout);

}  // namespace faraday::control
