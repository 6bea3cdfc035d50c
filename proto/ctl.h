// ctl.h: the local control socket's grammar, the one way faradayctl (and the
// CNI plugin) talk to a running faradayd; its server is control/ctl_server.h.
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
//     (control::CtlServer::counters()): a line without a newline within 1024 bytes, bytes
//     outside printable ASCII, an empty or badly spaced line, too many words,
//     a command nobody registered. A client that has not sent its whole line
//     within 5 s is answered with an error and closed; one the handler has not
//     answered within 30 s likewise. At most kCtlMaxClients (16) connections
//     are open at once; more are answered {"error": "too many clients"} and
//     closed at once. A connection closed before sending any byte (a liveness
//     probe) is not counted.
//
// The library knows no command: the owner registers each one with its handler
// (control::CtlServer::Commands). faradayd serves `status` (faradayctl/status_view.h shows
// the reply) and `query NAME` ({"name": NAME, "state": "PRESENT"|"ABSENT"|
// "UNKNOWN"}).
//
// Threads: parse_ctl_request(), ctl_error() and default_ctl_socket() are pure
// and callable anywhere. A control::CtlServer belongs to the thread running its
// io_context (faradayd's control thread): create it, use it and destroy it on
// that thread; handlers run there too. A Reply may be called from any thread.
// ctl_call() is a blocking client for any thread that owns no io_context.
#pragma once

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

struct sockaddr_un;

#include "result.h"

namespace faraday::proto {

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
Result<CtlRequest, CtlBadRequest> parse_ctl_request(std::string_view line);

// ---- client ------------------------------------------------------------------

struct CtlError {
  std::string message;  // says what failed and mentions the socket path
};

// Blocking client: connects to `path`, sends `line` + "\n" and returns the
// answer without its "\n" (the JSON text, possibly {"error": ...}), or why no
// answer arrived within `timeout` (the whole exchange). Never raises SIGPIPE.
Result<std::string, CtlError> ctl_call(const std::string& path, std::string_view line,
                                       std::chrono::milliseconds timeout);

// ---- shared with the server (control/ctl_server.cpp) ---------------------------

// Fills a UNIX socket address; false if `path` is empty or too long.
bool ctl_sockaddr(const std::string& path, sockaddr_un& addr);
// Whether something accepts connections on the socket file at `path`, or why
// that cannot be told.
enum class CtlProbe { kLive, kStale, kGone };
Result<CtlProbe> ctl_probe(const std::string& path);
// "5 s", "1.5 s" or "200 ms".
std::string ctl_duration_text(std::chrono::milliseconds d);

}  // namespace faraday::proto
