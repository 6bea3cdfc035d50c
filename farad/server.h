// server.h: farad's network side. Accepts mutual-TLS connections (tls.h),
// reads NodeMessage frames, applies them to the Membership, answers, and pushes
// membership changes to every joined connection.
//
// Pushes: each connection remembers the cursor it has been sent up to. Frames
// are cut from the shared change log (changelog.h) only when a connection's
// output is empty, so a connection holds at most one frame, a slow reader never
// makes farad buffer more, and every change made while a frame was in flight is
// coalesced into the next one. Connections that are idle get new changes in
// "rounds": push_delay after a change, one round visits every connection; after
// a round farad waits twice as long as the round took (at most a second)
// before the next, so under a storm of joins the frames grow instead of
// multiplying and handshakes and requests keep most of farad's time.
//
// Refusals, each logged with the peer's address (and name when known) and
// counted by reason: TLS failures (wrong CA, expired, revoked, no certificate,
// plaintext, not TLS 1.3), a handshake not finished within handshake_timeout,
// a certificate CN that is not a valid node name, framing/parse/version errors,
// a connection that does not read its output for write_timeout, a connection
// silent for idle_timeout, a newer connection with the same identity, a
// certificate no longer valid after a TLS reload, the connection limit.
//
// Threads: everything runs on the io_context's thread; one thread.
#pragma once

#include <array>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "farad/membership.h"
#include "proto/frame.h"
#include "proto/tls.h"
#include "result.h"

namespace faraday::farad {

using namespace std::chrono_literals;

struct ServerOptions {
  std::string address = "0.0.0.0";
  uint16_t port = proto::kFaradPort;  // 0: any free port (see Server::port())
  proto::TlsFiles tls;
  Duration expiry = 30s;
  Duration disconnect_grace = 10s;  // capped at the expiry window
  Duration idle_timeout = 0s;       // 0: the expiry window
  Duration handshake_timeout = 10s;
  Duration write_timeout = 30s;
  Duration push_delay = 20ms;
  size_t max_connections = 16384;
  uint64_t epoch = 0;  // 0: draw a random one (tests set it)
};

enum class CloseReason : uint8_t {
  kHandshakeTimeout,
  kBadIdentity,
  kProtocolError,
  kNotReading,
  kIdle,
  kReplaced,
  kCertificateInvalidated,
  kConnectionLimit,
  kNameInUse,
  kCount,
};
const char* close_reason_name(CloseReason r);

struct Counters {
  uint64_t accepted = 0;
  uint64_t established = 0;
  std::array<uint64_t, static_cast<size_t>(proto::TlsFailure::kCount)> tls_refused{};
  std::array<uint64_t, static_cast<size_t>(CloseReason::kCount)> closed{};
  std::array<uint64_t, static_cast<size_t>(proto::FrameError::kCount)> frame_errors{};
  std::array<uint64_t, 16> request_errors{};  // by proto::Error::Code
  uint64_t requests = 0;
  uint64_t push_frames = 0;
  uint64_t push_entries = 0;
  uint64_t push_bytes = 0;
  uint64_t push_rounds = 0;
  uint64_t joins = 0, updates = 0, leaves = 0, expired = 0, disconnected = 0, revoked = 0;
  uint64_t name_conflicts = 0;  // Joins refused with NAME_IN_USE

  uint64_t tls(proto::TlsFailure f) const { return tls_refused[static_cast<size_t>(f)]; }
  uint64_t close(CloseReason r) const { return closed[static_cast<size_t>(r)]; }
  uint64_t frame(proto::FrameError e) const { return frame_errors[static_cast<size_t>(e)]; }
};

class Server final : private Membership::Listener {
 public:
  Server(boost::asio::io_context& io, ServerOptions options);
  ~Server() override;
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Loads the TLS files, binds and listens; an error if it cannot.
  Status start();
  // Closes the listener and every connection.
  void stop();
  // The bound port (useful with port 0).
  uint16_t port() const { return port_; }
  // Re-reads CA, certificate, key and CRL (SIGHUP). On success new handshakes
  // use them and every connection whose certificate no longer verifies is
  // closed; on failure (logged here too) nothing changes.
  Status reload_tls();

  const Counters& counters() const { return counters_; }
  std::string counters_text() const;
  Membership& membership() { return membership_; }
  size_t connection_count() const;
  // Bytes farad holds queued for all connections right now.
  size_t queued_bytes() const;

  struct Conn;

 private:
  void on_member_change(ChangeKind kind, const MemberRecord& m, Time now) override;

  void accept();
  void on_accept(boost::asio::ip::tcp::socket socket);
  void schedule_sweep();
  void sweep();
  void schedule_round();
  void run_round();
  void schedule_reap();
  void reap();

  friend struct Conn;
  void established(Conn& c);
  void data(Conn& c, std::span<const uint8_t> bytes);
  bool frame(Conn& c, std::span<const uint8_t> payload);
  void drained(Conn& c);
  void closed(Conn& c, const proto::TlsChannel::CloseInfo& info);

  void handle_join(Conn& c, const proto::Join& join, uint64_t request_id);
  // The connection `c`'s name is held by (joined on), or nullptr.
  bool is_holder(const Conn& c) const;
  // Refuses a Join that would take a live holder's name with another key.
  bool refuse_name_taken(Conn& c, const proto::Join& join, uint64_t request_id);
  // Removes a member no longer trusted, closing its holder connection.
  void revoke(const std::string& name, proto::Removal::Reason reason, const std::string& why);
  // Members whose certificate no longer verifies now (reload) or has expired.
  void check_member_certificates(bool full_verify);
  void pump(Conn& c);
  void reply(Conn& c, proto::FaradMessage& msg);
  void send_ack(Conn& c, uint64_t request_id);
  void send_error(Conn& c, uint64_t request_id, proto::Error::Code code, const std::string& detail,
                  bool fatal);
  // Ends a connection on purpose: logs, counts, sends `error` if given, flushes.
  void close_conn(Conn& c, CloseReason reason, const std::string& why,
                  proto::Error::Code error = proto::Error::CODE_UNSPECIFIED);
  // Drops a connection now, without flushing.
  void drop(Conn& c);
  std::string who(const Conn& c) const;

  boost::asio::io_context& io_;
  ServerOptions opt_;
  Duration idle_timeout_;
  proto::SslCtxPtr ctx_;
  boost::asio::ip::tcp::acceptor acceptor_;
  boost::asio::steady_timer sweep_timer_;
  boost::asio::steady_timer round_timer_;
  uint16_t port_ = 0;
  Membership membership_;
  std::vector<std::unique_ptr<Conn>> conns_;
  std::unordered_map<std::string, Conn*> by_name_;  // holders: the connection joined on
  struct MemberCert {
    std::shared_ptr<X509> cert;
    int64_t not_after = 0;  // seconds since the epoch
  };
  std::unordered_map<std::string, MemberCert> member_certs_;
  size_t open_conns_ = 0;  // conns_ not yet closed
  bool round_scheduled_ = false;
  Duration round_cost_{};
  Time round_end_{};
  bool reap_scheduled_ = false;
  bool stopped_ = false;
  std::string frame_buf_;
  proto::NodeMessage in_;
  proto::FaradMessage out_;
  Counters counters_;
  std::shared_ptr<int> alive_ = std::make_shared<int>(0);  // guards posted handlers
};

}  // namespace faraday::farad
