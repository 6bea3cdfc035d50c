// plugin.h: one run of faraday-cni, from what the runtime gives (the CNI_*
// environment and the network configuration on stdin) to what it gets back
// (stdout, stderr, the exit code), asking the local faradayd over its control
// socket (proto/ctl.h) on the way. faraday_cni.cpp's main() only reads stdin
// and prints what run_plugin() wrote.
//
// faradayd's commands, one request line each; every answer is one JSON object,
// and an error is {"error": MSG} with an optional "code": N (a CNI code, passed
// through; absent: kIoFailure, or kPluginNotAvailable for cni-status):
//   cni-add ID IFNAME NETNS     {"interface", "mac", "sandbox", "address":
//                               "10.99.1.2/24", "gateway", "family": 4 | 6}
//   cni-del ID IFNAME [NETNS]   {} (also when nothing was there)
//   cni-check ID IFNAME NETNS   {}
//   cni-status                  {} once faradayd can add containers
//   cni-list                    {"attachments": [{"containerID", "ifname"}]}
// The socket is the configuration's "controlSocket", or
// proto::default_ctl_socket("interface").
//
// Per command (the CNI spec):
// - VERSION: the supported versions; faradayd is not asked.
// - ADD: cni-add, answered with the result in the configuration's version: the
//   address, and a default route via the gateway.
// - DEL: cni-del. Idempotent: when faradayd is not running nothing is printed,
//   a warning goes to stderr and the exit code is 0 (faradayd releases what
//   belonged to namespaces that are gone when it starts again).
// - CHECK: cni-check; from 0.4.0 on (older versions have no CHECK: code 1).
// - STATUS: cni-status; 1.1.0 only. Any failure to get an answer is code 50.
// - GC: 1.1.0 only. cni-list, then cni-del for every attachment that is not in
//   the configuration's "cni.dev/valid-attachments"; as DEL, nothing to do
//   when faradayd is not running.
// A CNI_* value that the control socket's grammar cannot carry (a namespace
// path with a space or a byte outside printable ASCII, a line over 1024
// bytes) is refused with code 4 before anything is sent. faradayd not
// running is code 11 for ADD and CHECK, its socket named in the message.
// Success: exit 0, and stdout holds the result (ADD, VERSION) or nothing.
// Failure: exit 1, and stdout holds the CNI error in the configuration's
// version (the latest when the configuration names none that can be read).
// Nothing else is ever written to stdout. With CNI_COMMAND unset or empty,
// the plugin says what it is on stderr and exits 0, as the reference
// plugins do.
//
// Threads: run_plugin() keeps no state and may run on any thread; it blocks
// for as long as `call` does. call_faradayd() blocks up to kCniCallTimeout.
#pragma once

#include <chrono>
#include <functional>
#include <string>
#include <string_view>

#include "result.h"
#include "rkt/cni.h"

namespace faraday::rkt {

using namespace std::chrono_literals;

// How long one exchange with faradayd may take.
inline constexpr std::chrono::milliseconds kCniCallTimeout = 20s;

// Why no answer came from faradayd.
struct CallError {
  enum class Kind {
    kNotRunning,  // the socket is missing or nothing accepts on it
    kTimedOut,    // no answer within the timeout
    kFailed,      // anything else (permissions, a reply too large, ...)
  };
  std::string message;  // names the socket
  Kind kind = Kind::kFailed;
};

// Sends one request line (without its "\n") to the socket at `socket` and
// returns faradayd's answer (one JSON text), or why there is none.
using CallFn = std::function<Result<std::string, CallError>(const std::string& socket,
                                                            const std::string& line)>;

// The real CallFn: proto::ctl_call() with kCniCallTimeout; when it fails, a
// probe of the socket tells kNotRunning from the rest.
Result<std::string, CallError> call_faradayd(const std::string& socket, const std::string& line);

// Reads `fd` to its end, at most kCniMaxConfigBytes + 1 bytes (one more than
// parse_netconf() takes, so that a larger configuration is refused, not cut).
Result<std::string, CniError> read_config(int fd);

// One invocation: `getenv` reads the CNI_* variables (null: unset),
// `stdin_bytes` is what read_config() returned (not read at all when
// CNI_COMMAND is unset or empty), `call` reaches faradayd. Appends to `out`
// (stdout) and `err` (stderr) and returns the exit code.
int run_plugin(const std::function<const char*(const char*)>& getenv, std::string_view stdin_bytes,
               std::string& out, std::string& err, const CallFn& call);

// `faraday-cni --help`.
std::string cni_usage();

}  // namespace faraday::rkt
