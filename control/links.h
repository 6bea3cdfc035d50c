// links.h: faradayd's node-to-node links (farad.proto, "node <-> node links"):
// one mutual-TLS connection per pair of members, pinged at a fixed interval, so
// the control thread knows when it last heard from each peer and the round
// trip time. The member whose name sorts first dials; the other accepts.
//
// Links knows members by name and control endpoint only (the cluster tells it
// who they are); it never decides that a peer is gone. A link that fails is
// dialed again with exponential backoff. An accepted connection whose
// certificate names no known member waits a connect timeout for that member to
// be added (farad's push may reach us after the dialer's), then is closed and
// counted; one from a member we should dial is closed at once.
//
// Trust: reload() swaps in new TLS contexts (a SIGHUP with a new CRL) and
// closes every link whose peer certificate no longer verifies against them
// (revoked, expired, another CA); new handshakes use them, so such a peer is
// refused from then on. A link whose peer certificate expires while it is up
// is closed at the next ping tick.
//
// Threads: everything on the thread running the io_context (the control
// thread).
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "proto/tls.h"
#include "result.h"

namespace faraday::control {

using namespace std::chrono_literals;

struct LinkOptions {
  std::chrono::milliseconds ping_interval = 1s;
  std::chrono::milliseconds connect_timeout = 5s;  // TCP connect + TLS handshake
  std::chrono::milliseconds backoff_min = 100ms;
  std::chrono::milliseconds backoff_max = 5s;
};

class Links {
 public:
  using Clock = std::chrono::steady_clock;
  enum class State { kDown, kConnecting, kUp, kCount };

  // What the cluster reads about one member's link.
  struct View {
    State state = State::kDown;
    // Last valid message, or the link coming up (accepted: the TLS handshake;
    // dialed: the peer's first message, which proves it accepted us).
    std::optional<Clock::time_point> last_heard;
    std::optional<std::chrono::nanoseconds> rtt;  // of the latest Pong
    std::string last_error;                       // why it last went down
  };

  struct Counters {
    uint64_t accepted = 0;
    uint64_t dials = 0;
    uint64_t established = 0;
    uint64_t refused_unknown = 0;   // accepted, but the name stayed no member of ours
    uint64_t refused_tls = 0;       // the TLS handshake failed (untrusted, revoked, ...)
    uint64_t bad_frames = 0;        // framing or message errors; the link is closed
    uint64_t closed_untrusted = 0;  // up, then its certificate stopped verifying
    uint64_t pings_sent = 0;
    uint64_t pongs_received = 0;
  };

  Links(boost::asio::io_context& io, proto::SslCtxPtr server_ctx, proto::SslCtxPtr client_ctx,
        std::string self, LinkOptions options);
  ~Links();
  Links(const Links&) = delete;
  Links& operator=(const Links&) = delete;

  // Accepts links on `at`. [::] takes IPv4 peers too, and falls back to
  // 0.0.0.0 on a host without IPv6. An error if it cannot bind.
  Status listen(const boost::asio::ip::tcp::endpoint& at);
  // The bound endpoint (port 0 in listen() picks one).
  boost::asio::ip::tcp::endpoint local_endpoint() const;

  // Adds a member, or changes its control endpoint (nullopt: it serves none;
  // we keep no link to it). A changed endpoint redials.
  void add(const std::string& name, std::optional<boost::asio::ip::tcp::endpoint> control);
  // Forgets a member and closes its link.
  void remove(const std::string& name);
  // Closes every link and the listener; nothing is dialed afterwards.
  void stop();
  // Uses these contexts from now on and closes every connection whose peer
  // certificate no longer verifies against them; returns how many it closed.
  size_t reload(proto::SslCtxPtr server_ctx, proto::SslCtxPtr client_ctx);

  // nullopt if `name` is not a member here.
  std::optional<View> view(const std::string& name) const;
  const Counters& counters() const { return counters_; }
  bool dials(const std::string& name) const { return self_ < name; }

 private:
  struct Conn;
  struct Link;

  void accept();
  void dial(Link& link);
  void schedule_redial(Link& link);
  void attach(Link& link, const std::shared_ptr<Conn>& conn);
  void mark_up(Link& link);
  void on_established(Conn& conn);
  void on_message(Conn& conn, std::span<const uint8_t> payload);
  void on_closed(Conn& conn, const std::string& reason, bool tls_failure);
  void release(Conn& conn);
  void tick();
  void send_ping(Conn& conn);
  // Closes conn if its peer certificate no longer verifies (ctx: the context
  // to check against; nullptr: only its expiry). True if it was closed.
  bool close_if_untrusted(Conn& conn, SSL_CTX* ctx);

  boost::asio::io_context& io_;
  proto::SslCtxPtr server_ctx_;
  proto::SslCtxPtr client_ctx_;
  std::string self_;
  LinkOptions opt_;
  boost::asio::ip::tcp::acceptor acceptor_;
  boost::asio::steady_timer accept_retry_;
  std::string accept_error_;  // the last accept failure, logged once
  boost::asio::steady_timer ping_timer_;
  std::map<std::string, std::unique_ptr<Link>> links_;
  std::map<Conn*, std::shared_ptr<Conn>> conns_;  // every open connection
  // Accepted links from names that are not members yet (their push may still be
  // on its way): attached by add(), closed after connect_timeout.
  std::map<std::string, std::shared_ptr<Conn>> parked_;
  uint64_t seq_ = 0;
  bool stopped_ = false;
  Counters counters_;
  std::shared_ptr<int> alive_ = std::make_shared<int>(0);
};

const char* link_state_name(Links::State s);

}  // namespace faraday::control
