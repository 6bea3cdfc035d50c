// uapi.h: the WireGuard cross-platform userspace API (wireguard.com/xplatform), so
// that wg(8) configures faradayd exactly as it configures wireguard-go.
//
// Wire format: a request is "get=1\n\n" or "set=1\n" + "key=value\n" lines + "\n".
// A get is answered with key=value lines ending in "errno=0\n\n"; a set with
// "errno=N\n\n" (0 on success, a positive errno otherwise). Several requests may
// follow one another on one connection.
//
// Errors follow the reference implementation, since wg(8) only prints strerror():
// a line without '=' is EPROTO; an unknown key, a key in the wrong section or a bad
// value is EINVAL; a request over kMaxRequestBytes is EMSGSIZE.
//
// Threads: parse_set() and format_get() are pure functions, callable from any
// thread. A Server belongs to one thread (the loop that polls its fds: the data
// path's, see control/interface.h): every method, and the get/set callbacks it
// invokes, run on that thread.
//
// This is the parser of outside input: it must never crash, and every rejected
// request is answered with an errno and counted by reason (Server::counters()).
#pragma once

#include <poll.h>
#include <sys/types.h>

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "control/unix_listener.h"
#include "crypto/keys.h"
#include "dataplane/config.h"
#include "dataplane/net.h"
#include "result.h"

namespace faraday::control::uapi {

// ---- set=1 -------------------------------------------------------------------

// A set request parses to the data path's configuration values (dataplane/config.h);
// these are their names in the UAPI's vocabulary.
using PeerSet = dataplane::PeerUpdate;       // one "public_key=..." section
using SetRequest = dataplane::ConfigUpdate;  // a whole set=1 body

// Why a request was rejected; the index into Counters::rejected.
enum class Reject : uint8_t {
  kMalformedLine,     // no '=' in a line, or an empty line inside a set body (EPROTO)
  kUnknownKey,        // not a UAPI key, or a device key inside a peer section (EINVAL)
  kNeedsPeer,         // a peer key before any public_key= (EINVAL)
  kInvalidValue,      // bad hex, number, endpoint, prefix or boolean (EINVAL)
  kProtocolVersion,   // protocol_version other than 1 (EINVAL)
  kUnknownOperation,  // first line neither get=1 nor set=1, or junk after get=1 (EINVAL)
  kTooLarge,          // request over kMaxRequestBytes (EMSGSIZE)
  kApplyFailed,       // the set callback refused the request (its errno)
  kTooManyClients,    // connection refused, kMaxClients already open
  kCount,
};
const char* to_string(Reject reason);

struct Error {
  int errno_value = 0;
  std::string message;  // for logs; never contains key material
  Reject reason = Reject::kInvalidValue;
};

// Parses the body of a set=1 request: the lines after "set=1", up to but not
// including the terminating blank line (a missing final '\n' is tolerated).
// Accepts protocol_version=1 only.
Result<SetRequest, Error> parse_set(std::string_view body);

// ---- get=1 -------------------------------------------------------------------

using PeerState = dataplane::PeerState;
using DeviceState = dataplane::DeviceState;

// The whole get=1 reply: device keys, then per peer public_key, preshared_key,
// protocol_version=1, endpoint, last_handshake_time_{sec,nsec}, tx_bytes, rx_bytes,
// persistent_keepalive_interval and allowed_ip lines; ends with "errno=0\n\n".
std::string format_get(const DeviceState& state);

// ---- the socket --------------------------------------------------------------

inline constexpr const char* kSocketDirectory = "/var/run/wireguard";
inline constexpr size_t kMaxRequestBytes = 1 << 20;  // one request, incl. its blank line
inline constexpr size_t kMaxClients = 32;

struct Counters {
  uint64_t connections = 0;       // accepted
  uint64_t get_requests = 0;      // answered with a state
  uint64_t set_requests = 0;      // applied successfully
  uint64_t aborted_requests = 0;  // client hung up in the middle of a request
  std::array<uint64_t, static_cast<size_t>(Reject::kCount)> rejected{};

  uint64_t rejected_by(Reject r) const { return rejected[static_cast<size_t>(r)]; }
};

// Unix stream socket server at /var/run/wireguard/IFNAME.sock. The directory is
// created 0755, the socket 0600 (bound under a temporary name, chmod-ed, then
// renamed into place, so it is never reachable with looser permissions). listen()
// refuses if a live process already answers on the path, and replaces a stale file.
//
// Single-threaded and non-blocking, driven by the owner's poll loop: add
// append_pollfds() to the poll set, then pass those entries, with their revents,
// to handle(fds) after poll returns. It accepts only when the listening socket is
// readable and reads only the clients poll reported. handle() without arguments
// polls the same set itself without waiting (tests). Neither blocks. Each
// connection may carry several requests; partial reads and writes are buffered
// per connection.
class Server {
 public:
  using GetFn = std::function<DeviceState()>;
  using SetFn = std::function<Result<void, Error>(const SetRequest&)>;

  static Result<std::unique_ptr<Server>, Error> listen(const std::string& ifname, GetFn get,
                                                       SetFn set);
  // The same at an explicit socket path (tests; the parent directory is created if
  // missing, one level only).
  static Result<std::unique_ptr<Server>, Error> listen_at(const std::string& path, GetFn get,
                                                          SetFn set);

  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;
  ~Server();  // closes all connections; unlinks the socket if it is still ours

  void append_pollfds(std::vector<pollfd>& fds) const;
  // fds: exactly the entries append_pollfds() added, after poll() filled revents.
  void handle(std::span<const pollfd> fds);
  void handle();  // polls its own fds without waiting, then handle(fds)

  const std::string& path() const { return path_; }
  // False once someone removed or replaced the socket file: wireguard-go shuts the
  // interface down when that happens ("rm /var/run/wireguard/wg0.sock").
  bool socket_file_present() const;
  const Counters& counters() const { return counters_; }
  // The most recent rejection, for the owner's log (its message holds no secrets).
  const std::optional<Error>& last_rejection() const { return last_rejection_; }
  size_t client_count() const { return clients_.size(); }

 private:
  struct Client;
  Server(std::string path, UnixListener listener, GetFn get, SetFn set);

  void accept_clients();
  void close_client(size_t i);
  // Each returns false when the connection must be closed now.
  bool read_client(Client& c);
  bool write_client(Client& c);
  void process_requests(Client& c);
  void answer(Client& c, std::string_view request);
  void reject(Client& c, const Error& e);

  std::string path_;
  UnixListener listener_;  // its fd, and the socket file's identity
  GetFn get_;
  SetFn set_;
  std::vector<std::unique_ptr<Client>> clients_;
  Counters counters_;
  std::optional<Error> last_rejection_;
};

}  // namespace faraday::control::uapi
