#include "control/uapi.h"

#include <array>

#include "common/names.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <utility>

#include "common/log.h"
#include "dataplane/tun_port.h"

namespace faraday::control::uapi {

namespace {

// ---- parsing helpers ----------------------------------------------------------

// Quotes untrusted text for an error message: at most 48 bytes, non-printable
// bytes escaped, so a hostile request cannot forge log lines.
std::string quote(std::string_view s) {
  constexpr size_t kMax = 48;
  std::string out = "'";
  for (size_t i = 0; i < s.size() && i < kMax; ++i) {
    auto c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c < 0x7f && c != '\\' && c != '\'') {
      out += static_cast<char>(c);
    } else {
      static constexpr char kHex[] = "0123456789abcdef";
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  if (s.size() > kMax) out += "...";
  out += "'";
  return out;
}

// A decimal number of digits only (no sign, no spaces), at most max.
std::optional<uint64_t> parse_number(std::string_view s, uint64_t max) {
  if (s.empty() || s.size() > 20) return std::nullopt;
  for (char c : s)
    if (c < '0' || c > '9') return std::nullopt;
  uint64_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size() || v > max) return std::nullopt;
  return v;
}

bool is_hex(std::string_view s) {
  for (char c : s) {
    bool ok = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
    if (!ok) return false;
  }
  return true;
}

enum class Key : uint8_t {
  kUnknown,
  // device section
  kPrivateKey,
  kListenPort,
  kFwmark,
  kReplacePeers,
  // starts a peer section
  kPublicKey,
  // peer section
  kRemove,
  kUpdateOnly,
  kPresharedKey,
  kEndpoint,
  kPersistentKeepalive,
  kReplaceAllowedIps,
  kAllowedIp,
  kProtocolVersion,
};

Key classify(std::string_view k) {
  static constexpr std::pair<std::string_view, Key> kKeys[] = {
      {"private_key", Key::kPrivateKey},
      {"listen_port", Key::kListenPort},
      {"fwmark", Key::kFwmark},
      {"replace_peers", Key::kReplacePeers},
      {"public_key", Key::kPublicKey},
      {"remove", Key::kRemove},
      {"update_only", Key::kUpdateOnly},
      {"preshared_key", Key::kPresharedKey},
      {"endpoint", Key::kEndpoint},
      {"persistent_keepalive_interval", Key::kPersistentKeepalive},
      {"replace_allowed_ips", Key::kReplaceAllowedIps},
      {"allowed_ip", Key::kAllowedIp},
      {"protocol_version", Key::kProtocolVersion},
  };
  for (const auto& [name, key] : kKeys)
    if (name == k) return key;
  return Key::kUnknown;
}

bool is_device_key(Key k) {
  return k == Key::kPrivateKey || k == Key::kListenPort || k == Key::kFwmark ||
         k == Key::kReplacePeers;
}

// Parses one set=1 request, line by line; owns the position for error messages.
class SetParser {
 public:
  Result<SetRequest, Error> run(std::string_view body) {
    size_t pos = 0;
    while (pos < body.size()) {
      size_t nl = body.find('\n', pos);
      size_t end = nl == std::string_view::npos ? body.size() : nl;
      ++line_no_;
      if (auto r = line(body.substr(pos, end - pos)); !r) return r.failure();
      pos = end + 1;
    }
    return std::move(req_);
  }

 private:
  Error fail(Reject reason, int err, const std::string& what) const {
    return Error{err, "line " + std::to_string(line_no_) + ": " + what, reason};
  }
  Error invalid(std::string_view key, std::string_view value) const {
    return fail(Reject::kInvalidValue, EINVAL,
                "invalid " + std::string(key) + " value " + quote(value));
  }
  // Key values are secrets: describe what is wrong without echoing them.
  Result<void, Error> parse_key(std::string_view key, std::string_view value, crypto::Key& out) {
    if (value.size() != 2 * crypto::kKeySize)
      return fail(Reject::kInvalidValue, EINVAL,
                  "invalid " + std::string(key) + ": expected 64 hex digits, got " +
                      std::to_string(value.size()) + " characters");
    auto k = is_hex(value) ? crypto::key_from_hex(value) : std::nullopt;
    if (!k) return fail(Reject::kInvalidValue, EINVAL, "invalid " + std::string(key) + ": not hex");
    out = *k;
    return {};
  }
  Result<void, Error> parse_true(std::string_view key, std::string_view value, bool& out) {
    if (value != "true") return invalid(key, value);
    out = true;
    return {};
  }

  Result<void, Error> line(std::string_view text) {
    auto eq = text.find('=');
    if (text.empty())
      return fail(Reject::kMalformedLine, EPROTO, "empty line inside a set request");
    if (eq == std::string_view::npos)
      return fail(Reject::kMalformedLine, EPROTO, "expected key=value, got " + quote(text));
    std::string_view key = text.substr(0, eq), value = text.substr(eq + 1);
    Key k = classify(key);
    if (k == Key::kUnknown) return fail(Reject::kUnknownKey, EINVAL, "invalid key " + quote(key));

    if (k == Key::kPublicKey) {
      PeerSet peer;
      if (auto r = parse_key(key, value, peer.public_key); !r) return r;
      req_.peers.push_back(std::move(peer));
      return {};
    }
    if (is_device_key(k)) {
      if (!req_.peers.empty())
        return fail(Reject::kUnknownKey, EINVAL,
                    "device key " + quote(key) + " inside a peer section");
      return device_line(k, key, value);
    }
    if (req_.peers.empty())
      return fail(Reject::kNeedsPeer, EINVAL, "key " + quote(key) + " needs a public_key= first");
    return peer_line(k, key, value, req_.peers.back());
  }

  Result<void, Error> device_line(Key k, std::string_view key, std::string_view value) {
    switch (k) {
      case Key::kPrivateKey: {
        crypto::Key priv{};
        if (auto r = parse_key(key, value, priv); !r) return r;
        req_.private_key = priv;
        crypto::wipe(priv);
        return {};
      }
      case Key::kListenPort: {
        auto v = parse_number(value, UINT16_MAX);
        if (!v) return invalid(key, value);
        req_.listen_port = static_cast<uint16_t>(*v);
        return {};
      }
      case Key::kFwmark: {
        auto v = parse_number(value, UINT32_MAX);
        if (!v) return invalid(key, value);
        req_.fwmark = static_cast<uint32_t>(*v);
        return {};
      }
      case Key::kReplacePeers:
        return parse_true(key, value, req_.replace_peers);
      default:
        return fail(Reject::kUnknownKey, EINVAL, "invalid key " + quote(key));
    }
  }

  Result<void, Error> peer_line(Key k, std::string_view key, std::string_view value,
                                PeerSet& peer) {
    switch (k) {
      case Key::kRemove:
        return parse_true(key, value, peer.remove);
      case Key::kUpdateOnly:
        return parse_true(key, value, peer.update_only);
      case Key::kPresharedKey: {
        crypto::Key psk{};
        if (auto r = parse_key(key, value, psk); !r) return r;
        peer.preshared_key = psk;
        crypto::wipe(psk);
        return {};
      }
      case Key::kEndpoint: {
        auto ep = dataplane::Endpoint::parse(value);
        if (!ep || ep->port == 0) return invalid(key, value);
        peer.endpoint = *ep;
        return {};
      }
      case Key::kPersistentKeepalive: {
        auto v = parse_number(value, UINT16_MAX);
        if (!v) return invalid(key, value);
        peer.persistent_keepalive = static_cast<uint16_t>(*v);
        return {};
      }
      case Key::kReplaceAllowedIps:
        return parse_true(key, value, peer.replace_allowed_ips);
      case Key::kAllowedIp: {
        // Require the explicit "/cidr" that wg(8) always sends.
        auto p = value.find('/') == std::string_view::npos ? std::nullopt
                                                           : dataplane::Prefix::parse(value);
        if (!p) return invalid(key, value);
        peer.allowed_ips.push_back(*p);
        return {};
      }
      case Key::kProtocolVersion:
        if (value != "1")
          return fail(Reject::kProtocolVersion, EINVAL,
                      "unsupported protocol_version " + quote(value) + " (only 1)");
        return {};
      default:
        return fail(Reject::kUnknownKey, EINVAL, "invalid key " + quote(key));
    }
  }

  SetRequest req_;
  size_t line_no_ = 0;
};

// Best effort: also clears the spare capacity, where erase() leaves stale copies.
void wipe_string(std::string& s) {
  s.resize(s.capacity());
  if (!s.empty()) crypto::wipe(s.data(), s.size());
  s.clear();
}

void wipe_request(SetRequest& req) {
  if (req.private_key) crypto::wipe(*req.private_key);
  for (auto& p : req.peers)
    if (p.preshared_key) crypto::wipe(*p.preshared_key);
}

std::string errno_reply(int err) {
  return "errno=" + std::to_string(err) + "\n\n";
}

}  // namespace

const char* to_string(Reject reason) {
  static constexpr std::array<const char*, 9> kNames = {
      "malformed_line",    "unknown_key", "needs_peer",   "invalid_value",   "protocol_version",
      "unknown_operation", "too_large",   "apply_failed", "too_many_clients"};
  return names::name_of(kNames, reason);
}

Result<SetRequest, Error> parse_set(std::string_view body) {
  return SetParser().run(body);
}

std::string format_get(const DeviceState& state) {
  std::string out;
  out.reserve(128 + state.peers.size() * 512);
  auto line = [&out](std::string_view key, std::string_view value) {
    out.append(key).append("=").append(value).append("\n");
  };
  if (state.private_key && !crypto::is_zero(*state.private_key)) {
    std::string hex = crypto::to_hex(*state.private_key);
    line("private_key", hex);
    wipe_string(hex);
  }
  if (state.listen_port != 0) line("listen_port", std::to_string(state.listen_port));
  if (state.fwmark != 0) line("fwmark", std::to_string(state.fwmark));
  for (const auto& peer : state.peers) {
    line("public_key", crypto::to_hex(peer.public_key));
    std::string psk = crypto::to_hex(peer.preshared_key);
    line("preshared_key", psk);
    wipe_string(psk);
    line("protocol_version", "1");
    if (peer.endpoint && peer.endpoint->valid()) line("endpoint", peer.endpoint->to_string());
    line("last_handshake_time_sec", std::to_string(peer.last_handshake_sec));
    line("last_handshake_time_nsec", std::to_string(peer.last_handshake_nsec));
    line("tx_bytes", std::to_string(peer.tx_bytes));
    line("rx_bytes", std::to_string(peer.rx_bytes));
    line("persistent_keepalive_interval", std::to_string(peer.persistent_keepalive));
    for (const auto& ip : peer.allowed_ips)
      if (ip.family == AF_INET || ip.family == AF_INET6) line("allowed_ip", ip.to_string());
  }
  out += "errno=0\n\n";
  return out;
}

// ---- Server -----------------------------------------------------------------------

struct Server::Client {
  int fd = -1;
  std::string in;        // bytes received, not yet answered
  size_t scanned = 0;    // in[0..scanned) holds no "\n\n"
  std::string out;       // reply bytes not yet sent
  size_t out_sent = 0;   // out[0..out_sent) already sent
  bool closing = false;  // send what is in out, then close; read nothing more

  size_t backlog() const { return out.size() - out_sent; }
};

namespace {

constexpr size_t kReadChunk = 64 * 1024;
constexpr size_t kMaxBacklog = kMaxRequestBytes;  // stop reading a client that does not read
constexpr int kMaxAcceptsPerCall = 64;

}  // namespace

Result<std::unique_ptr<Server>, Error> Server::listen(const std::string& ifname, GetFn get,
                                                      SetFn set) {
  if (auto ok = dataplane::check_interface_name(ifname); !ok)
    return Error{EINVAL, ok.error(), Reject::kInvalidValue};
  return listen_at(std::string(kSocketDirectory) + "/" + ifname + ".sock", std::move(get),
                   std::move(set));
}

Result<std::unique_ptr<Server>, Error> Server::listen_at(const std::string& path, GetFn get,
                                                         SetFn set) {
  auto made = listen_unix(path, "process");
  if (!made) {
    const ListenError& e = made.failure();
    Reject reason = e.errno_value == ENAMETOOLONG ? Reject::kInvalidValue : Reject::kApplyFailed;
    return Error{e.errno_value > 0 ? e.errno_value : EIO, e.message, reason};
  }
  return std::unique_ptr<Server>(new Server(path, *made, std::move(get), std::move(set)));
}

Server::Server(std::string path, UnixListener listener, GetFn get, SetFn set)
    : path_(std::move(path)), listener_(listener), get_(std::move(get)), set_(std::move(set)) {}

Server::~Server() {
  for (auto& c : clients_) {
    wipe_string(c->in);
    wipe_string(c->out);
    ::close(c->fd);
  }
  remove_if_present(path_, listener_);
  ::close(listener_.fd);
}

bool Server::socket_file_present() const {
  return still_present(path_, listener_);
}

void Server::append_pollfds(std::vector<pollfd>& fds) const {
  fds.push_back(pollfd{listener_.fd, POLLIN, 0});
  for (const auto& c : clients_) {
    short events = 0;
    if (!c->closing && c->backlog() < kMaxBacklog) events |= POLLIN;
    if (c->backlog() > 0) events |= POLLOUT;
    fds.push_back(pollfd{c->fd, events, 0});
  }
}

void Server::handle() {
  std::vector<pollfd> fds;
  append_pollfds(fds);
  if (::poll(fds.data(), fds.size(), 0) < 0) return;  // EINTR: the next call retries
  handle(fds);
}

void Server::handle(std::span<const pollfd> fds) {
  // fds[0] is the listener, fds[1 + i] client i as append_pollfds() listed them;
  // clients accepted below come after those and are read at once.
  size_t polled = fds.empty() ? 0 : std::min(fds.size() - 1, clients_.size());
  std::vector<bool> ready(clients_.size(), false);
  for (size_t i = 0; i < polled; ++i) ready[i] = fds[1 + i].revents != 0;
  if (!fds.empty() && (fds[0].revents & POLLIN)) accept_clients();
  ready.resize(clients_.size(), true);
  for (size_t i = 0, seen = 0; i < clients_.size(); ++seen) {
    Client& c = *clients_[i];
    bool keep = (!ready[seen] || read_client(c)) && write_client(c);
    if (keep && c.closing && c.backlog() == 0) keep = false;
    if (keep) {
      ++i;
      continue;
    }
    close_client(i);
  }
}

void Server::close_client(size_t i) {
  Client& c = *clients_[i];
  wipe_string(c.in);
  wipe_string(c.out);
  ::close(c.fd);
  clients_.erase(clients_.begin() + static_cast<std::ptrdiff_t>(i));
}

void Server::accept_clients() {
  for (int n = 0; n < kMaxAcceptsPerCall; ++n) {
    int fd = ::accept4(listener_.fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      return;  // EAGAIN, or EMFILE and friends: try again on the next call
    }
    if (clients_.size() >= kMaxClients) {
      ++counters_.rejected[static_cast<size_t>(Reject::kTooManyClients)];
      log::warn("UAPI {}: connection refused ({}): {} clients already connected", path_,
                to_string(Reject::kTooManyClients), kMaxClients);
      ::close(fd);
      continue;
    }
    ++counters_.connections;
    auto c = std::make_unique<Client>();
    c->fd = fd;
    clients_.push_back(std::move(c));
  }
}

bool Server::read_client(Client& c) {
  char buf[kReadChunk];
  // Bounded per call so one busy client cannot starve the others.
  for (size_t budget = 4 * kMaxRequestBytes; budget > 0;) {
    if (c.closing || c.backlog() >= kMaxBacklog) return true;
    ssize_t n = ::recv(c.fd, buf, sizeof(buf), MSG_DONTWAIT);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return true;
      if (!c.in.empty()) ++counters_.aborted_requests;
      return false;
    }
    if (n == 0) {  // peer closed its side: answer what is complete, then close
      if (!c.in.empty()) ++counters_.aborted_requests;
      wipe_string(c.in);
      c.closing = true;
      return true;
    }
    c.in.append(buf, static_cast<size_t>(n));
    crypto::wipe(buf, static_cast<size_t>(n));
    budget -= std::min(budget, static_cast<size_t>(n));
    process_requests(c);
  }
  return true;
}

void Server::process_requests(Client& c) {
  while (!c.closing && !c.in.empty()) {
    // The operation line decides early, so junk is refused without buffering 1 MiB.
    auto first_nl = c.in.find('\n');
    if (first_nl != std::string::npos) {
      std::string_view op(c.in.data(), first_nl);
      if (op != "get=1" && op != "set=1") {
        reject(c, Error{EINVAL, "invalid operation " + quote(op), Reject::kUnknownOperation});
        c.closing = true;  // the stream cannot be resynchronised
        wipe_string(c.in);
        return;
      }
    }
    size_t from = c.scanned > 0 ? c.scanned - 1 : 0;
    size_t end = c.in.find("\n\n", from);
    if (end == std::string::npos || end + 2 > kMaxRequestBytes) {
      if (c.in.size() >= kMaxRequestBytes) {
        reject(c, Error{EMSGSIZE, "request larger than " + std::to_string(kMaxRequestBytes),
                        Reject::kTooLarge});
        c.closing = true;
        wipe_string(c.in);
      } else {
        c.scanned = c.in.size();
      }
      return;
    }
    answer(c, std::string_view(c.in.data(), end + 1));  // without the blank line
    crypto::wipe(c.in.data(), end + 2);
    c.in.erase(0, end + 2);
    c.scanned = 0;
  }
}

void Server::answer(Client& c, std::string_view request) {
  auto nl = request.find('\n');  // present: request ends in '\n'
  std::string_view op = request.substr(0, nl), body = request.substr(nl + 1);
  if (op == "get=1") {
    if (!body.empty()) {
      reject(c, Error{EINVAL, "get=1 takes no arguments", Reject::kUnknownOperation});
      return;
    }
    c.out += format_get(get_());
    ++counters_.get_requests;
    return;
  }
  auto parsed = parse_set(body);
  if (!parsed) {
    reject(c, parsed.failure());
    return;
  }
  auto& req = *parsed;
  Result<void, Error> applied = set_(req);
  wipe_request(req);
  if (!applied) {
    Error err = applied.failure();
    err.reason = Reject::kApplyFailed;
    reject(c, err);
    return;
  }
  c.out += errno_reply(0);
  ++counters_.set_requests;
}

void Server::reject(Client& c, const Error& e) {
  ++counters_.rejected[static_cast<size_t>(e.reason)];
  c.out += errno_reply(e.errno_value > 0 ? e.errno_value : EINVAL);
  log::warn("UAPI {}: request rejected ({}): {}", path_, to_string(e.reason), e.message);
  last_rejection_ = e;
}

bool Server::write_client(Client& c) {
  while (c.backlog() > 0) {
    ssize_t n = ::send(c.fd, c.out.data() + c.out_sent, c.backlog(), MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno == EAGAIN || errno == EWOULDBLOCK;
    }
    c.out_sent += static_cast<size_t>(n);
  }
  wipe_string(c.out);  // may hold a private key
  c.out_sent = 0;
  return true;
}

}  // namespace faraday::control::uapi
