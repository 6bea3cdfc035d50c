// links.cpp: see links.h.
#include "control/links.h"

#include <array>

#include "common/names.h"

#include <openssl/x509.h>

#include <boost/asio/ip/v6_only.hpp>
#include <boost/asio/post.hpp>
#include <random>

#include "common/log.h"
#include "proto/frame.h"

namespace faraday::control {

namespace {

uint64_t steady_ns() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                   std::chrono::steady_clock::now().time_since_epoch())
                                   .count());
}

std::string endpoint_text(const boost::asio::ip::tcp::endpoint& ep) {
  if (ep.address().is_v6()) return fmt::format("[{}]:{}", ep.address().to_string(), ep.port());
  return fmt::format("{}:{}", ep.address().to_string(), ep.port());
}

// An established link that has heard nothing for this many ping intervals is
// closed and dialed again: after a network cut heals, a fresh connection
// recovers faster than a TCP connection deep in retransmission backoff.
constexpr int kDeadIntervals = 4;

}  // namespace

const char* link_state_name(Links::State s) {
  static constexpr std::array<const char*, 3> kNames = {"down", "connecting", "up"};
  return names::name_of(kNames, s);
}

struct Links::Conn final : proto::TlsChannel::Handler, std::enable_shared_from_this<Conn> {
  Conn(Links& o, boost::asio::io_context& io, std::string n, bool d)
      : owner(o), socket(io), timer(io), name(std::move(n)), dialed(d) {}

  void on_established(proto::TlsChannel&) override { owner.on_established(*this); }
  void on_data(proto::TlsChannel&, std::span<const uint8_t> data) override {
    auto err = decoder.feed(data, [&](std::span<const uint8_t> payload) {
      owner.on_message(*this, payload);
      return !closing;
    });
    if (err != proto::FrameError::kNone && !closing) {
      ++owner.counters_.bad_frames;
      log::warn("link {} ({}): bad frame ({}); closing", name.empty() ? "?" : name, ch->peer(),
                proto::frame_error_name(err));
      close("bad frame");
    }
  }
  void on_drained(proto::TlsChannel&) override {}
  void on_closed(proto::TlsChannel&, const proto::TlsChannel::CloseInfo& info) override {
    // A certificate refusal can arrive after our side of the handshake is done
    // (TLS 1.3: the acceptor checks the dialer's certificate last).
    bool certificate = info.failure == proto::TlsFailure::kUntrusted ||
                       info.failure == proto::TlsFailure::kExpired ||
                       info.failure == proto::TlsFailure::kRevoked ||
                       info.failure == proto::TlsFailure::kNoCertificate;
    bool handshake = info.in_handshake && info.failure != proto::TlsFailure::kIo &&
                     info.failure != proto::TlsFailure::kNone;
    owner.on_closed(*this, info.reason, certificate || handshake);
  }
  void close(const std::string& why) {
    if (closing) return;
    closing = true;
    if (ch) {
      ch->close_after_flush(why);
      // A peer that stopped reading could hold the flush for as long as TCP
      // retries; the link gives it a connect timeout, then drops it.
      timer.expires_after(owner.opt_.connect_timeout);
      timer.async_wait([this, weak = weak_from_this(), why](const boost::system::error_code& e) {
        auto self = weak.lock();
        if (e || !self || done) return;
        ch->detach();
        owner.on_closed(*this, why + " (the peer did not take the rest in time)", false);
      });
    } else {
      // Still connecting: the connect handler sees operation_aborted and ends it.
      boost::system::error_code ignored;
      socket.close(ignored);
    }
  }

  Links& owner;
  boost::asio::ip::tcp::socket socket;  // until the channel takes it
  boost::asio::steady_timer timer;      // connect + handshake deadline
  std::shared_ptr<proto::TlsChannel> ch;
  proto::FrameDecoder decoder;
  std::string name;               // the member; for accepted links, known once established
  int64_t not_after = INT64_MAX;  // the peer certificate's expiry, seconds since the epoch
  bool dialed;
  bool closing = false;
  bool done = false;  // on_closed ran
};

struct Links::Link {
  Link(boost::asio::io_context& io, std::string n) : name(std::move(n)), redial(io) {}
  std::string name;
  std::optional<boost::asio::ip::tcp::endpoint> control;
  View view;
  std::shared_ptr<Conn> conn;  // the connection serving this link (connecting or up)
  boost::asio::steady_timer redial;
  bool redial_armed = false;
  std::chrono::milliseconds backoff{0};
};

Links::Links(boost::asio::io_context& io, proto::SslCtxPtr server_ctx, proto::SslCtxPtr client_ctx,
             std::string self, LinkOptions options)
    : io_(io),
      server_ctx_(std::move(server_ctx)),
      client_ctx_(std::move(client_ctx)),
      self_(std::move(self)),
      opt_(options),
      acceptor_(io),
      accept_retry_(io),
      ping_timer_(io) {}

Links::~Links() {
  stop();
}

Status Links::listen(const boost::asio::ip::tcp::endpoint& requested) {
  boost::system::error_code ec;
  boost::asio::ip::tcp::endpoint at = requested;
  acceptor_.open(at.protocol(), ec);
  bool any_v6 = at.address().is_v6() && at.address().is_unspecified();
  if (ec == boost::asio::error::address_family_not_supported && any_v6) {
    // A host without IPv6: [::] means "every address", so take IPv4's.
    at = {boost::asio::ip::address_v4::any(), at.port()};
    log::info("no IPv6 on this host; links on {}", endpoint_text(at));
    ec = {};
    acceptor_.open(at.protocol(), ec);
  } else if (!ec && any_v6) {
    acceptor_.set_option(boost::asio::ip::v6_only(false), ec);  // IPv4 peers too
  }
  if (!ec) acceptor_.set_option(boost::asio::ip::tcp::acceptor::reuse_address(true), ec);
  if (!ec) acceptor_.bind(at, ec);
  if (!ec) acceptor_.listen(128, ec);
  if (ec) {
    return Error{fmt::format("cannot listen for links on {}: {}", endpoint_text(at), ec.message())};
  }
  accept();
  tick();
  return {};
}

boost::asio::ip::tcp::endpoint Links::local_endpoint() const {
  boost::system::error_code ec;
  return acceptor_.local_endpoint(ec);
}

void Links::accept() {
  acceptor_.async_accept([this, alive = std::weak_ptr<int>(alive_)](
                             const boost::system::error_code& ec,
                             boost::asio::ip::tcp::socket socket) {
    if (alive.expired() || stopped_) return;
    if (!ec) {
      ++counters_.accepted;
      auto conn = std::make_shared<Conn>(*this, io_, "", false);
      conns_[conn.get()] = conn;
      conn->ch = proto::TlsChannel::create(std::move(socket), server_ctx_.get(),
                                           proto::TlsChannel::Role::kServer, conn.get());
      conn->timer.expires_after(opt_.connect_timeout);
      conn->timer.async_wait([c = std::weak_ptr<Conn>(conn)](const boost::system::error_code& e) {
        auto conn = c.lock();
        if (e || !conn || conn->ch->established() || conn->done) return;
        conn->close("TLS handshake timed out");
        conn->ch->detach();
        conn->owner.on_closed(*conn, "TLS handshake timed out", false);
      });
      conn->ch->start();
    } else if (ec == boost::asio::error::operation_aborted) {
      return;
    } else {
      // Out of file descriptors or buffers: the listener stays readable, so
      // wait a little instead of spinning, and say it once per reason.
      if (ec.message() != accept_error_) log::warn("accepting a link: {}", ec.message());
      accept_error_ = ec.message();
      accept_retry_.expires_after(std::chrono::milliseconds(100));
      accept_retry_.async_wait([this, alive](const boost::system::error_code& e) {
        if (!e && !alive.expired() && !stopped_) accept();
      });
      return;
    }
    accept_error_.clear();
    accept();
  });
}

void Links::add(const std::string& name, std::optional<boost::asio::ip::tcp::endpoint> control) {
  auto [it, inserted] = links_.try_emplace(name, nullptr);
  if (inserted) it->second = std::make_unique<Link>(io_, name);
  Link& link = *it->second;
  if (!inserted && link.control == control) return;
  link.control = control;
  if (auto parked = parked_.find(name); parked != parked_.end()) {
    std::shared_ptr<Conn> conn = parked->second;
    parked_.erase(parked);
    conn->timer.cancel();
    if (!dials(name) && !conn->closing) attach(link, conn);
  }
  if (link.conn && link.conn->dialed) link.conn->close("control endpoint changed");
  if (!link.conn) dial(link);
}

void Links::remove(const std::string& name) {
  auto it = links_.find(name);
  if (it == links_.end()) return;
  std::unique_ptr<Link> link = std::move(it->second);
  links_.erase(it);
  link->redial.cancel();
  if (link->conn) link->conn->close("member removed");
}

void Links::stop() {
  if (stopped_) return;
  stopped_ = true;
  boost::system::error_code ec;
  acceptor_.close(ec);
  accept_retry_.cancel();
  ping_timer_.cancel();
  for (auto& [name, link] : links_) link->redial.cancel();
  links_.clear();
  parked_.clear();
  for (auto& [ptr, conn] : conns_) {
    conn->timer.cancel();
    if (conn->ch) conn->ch->detach();
    conn->socket.close(ec);
  }
  conns_.clear();
}

std::optional<Links::View> Links::view(const std::string& name) const {
  auto it = links_.find(name);
  if (it == links_.end()) return std::nullopt;
  return it->second->view;
}

void Links::dial(Link& link) {
  if (stopped_ || !link.control || !dials(link.name) || link.conn || link.redial_armed) return;
  ++counters_.dials;
  link.view.state = State::kConnecting;
  auto conn = std::make_shared<Conn>(*this, io_, link.name, true);
  conns_[conn.get()] = conn;
  link.conn = conn;
  std::weak_ptr<Conn> weak = conn;
  conn->timer.expires_after(opt_.connect_timeout);
  // Covers the TCP connect, the TLS handshake and the peer's first message.
  conn->timer.async_wait([this, weak](const boost::system::error_code& e) {
    auto conn = weak.lock();
    if (e || !conn || conn->done) return;
    auto it = links_.find(conn->name);
    if (it != links_.end() && it->second->conn == conn && it->second->view.state == State::kUp)
      return;
    boost::system::error_code ignored;
    conn->socket.close(ignored);
    if (conn->ch) conn->ch->detach();
    conn->owner.on_closed(*conn, "no answer within the connect timeout", false);
  });
  conn->socket.async_connect(*link.control, [this, weak](const boost::system::error_code& ec) {
    auto conn = weak.lock();
    if (!conn || conn->done || stopped_) return;
    if (ec) {
      on_closed(*conn, "connect: " + ec.message(), false);
      return;
    }
    conn->ch = proto::TlsChannel::create(std::move(conn->socket), client_ctx_.get(),
                                         proto::TlsChannel::Role::kClient, conn.get());
    if (!conn->ch->set_client_params(conn->name, nullptr, nullptr)) {
      conn->ch->detach();
      on_closed(*conn, "TLS client parameters refused", false);
      return;
    }
    conn->ch->start();
  });
}

void Links::schedule_redial(Link& link) {
  if (stopped_ || !link.control || !dials(link.name) || link.redial_armed) return;
  link.backoff =
      link.backoff.count() == 0 ? opt_.backoff_min : std::min(link.backoff * 2, opt_.backoff_max);
  static thread_local std::minstd_rand rng{std::random_device{}()};
  auto half = link.backoff / 2;
  auto wait = half + std::chrono::milliseconds(
                         std::uniform_int_distribution<int64_t>(0, half.count())(rng));
  link.redial_armed = true;
  link.redial.expires_after(wait);
  std::string name = link.name;
  link.redial.async_wait(
      [this, name, alive = std::weak_ptr<int>(alive_)](const boost::system::error_code& ec) {
        if (ec || alive.expired() || stopped_) return;
        auto it = links_.find(name);
        if (it == links_.end()) return;
        it->second->redial_armed = false;
        dial(*it->second);
      });
}

void Links::attach(Link& link, const std::shared_ptr<Conn>& conn) {
  if (link.conn && link.conn != conn) {
    // The peer dialed again (it restarted, or its old connection is dead to it).
    link.conn->close("replaced by a newer connection");
  }
  link.conn = conn;
  // Under TLS 1.3 a dialer's handshake completes before the acceptor has
  // verified the dialer's certificate, so a dialed link is up only once the
  // peer says something (mark_up from on_message); otherwise a peer that
  // refuses us would look alive and be redialed at backoff_min forever. An
  // accepted link is up at once: the dialer verified us before finishing.
  if (!conn->dialed) mark_up(link);
  send_ping(*conn);
}

void Links::mark_up(Link& link) {
  link.view.state = State::kUp;
  link.view.last_heard = Clock::now();
  link.view.last_error.clear();
  link.backoff = std::chrono::milliseconds(0);
  log::info("link to {} up ({} {})", link.name, link.conn->dialed ? "dialed" : "accepted from",
            link.conn->ch->peer());
}

void Links::on_established(Conn& conn) {
  if (!conn.dialed) conn.timer.cancel();  // a dialed link's timer waits for the first message
  ++counters_.established;
  if (auto t = proto::certificate_not_after(SSL_get0_peer_certificate(conn.ch->ssl()))) {
    conn.not_after = *t;
  }
  std::shared_ptr<Conn> self = conns_.at(&conn);
  if (conn.dialed) {
    auto it = links_.find(conn.name);
    if (it == links_.end() || it->second->conn.get() != &conn) {
      conn.close("member removed");
      return;
    }
    attach(*it->second, self);
    return;
  }
  auto name = proto::certificate_name(SSL_get0_peer_certificate(conn.ch->ssl()));
  if (!name) {
    ++counters_.refused_unknown;
    log::warn("link from {} refused: {}", conn.ch->peer(), name.error());
    conn.close("no node name");
    return;
  }
  conn.name = *name;
  if (dials(*name)) {
    log::debug("link from {} ({}) refused: we dial that member", *name, conn.ch->peer());
    conn.close("not expected: the member whose name sorts first dials");
    return;
  }
  auto it = links_.find(*name);
  if (it != links_.end()) {
    attach(*it->second, self);
    return;
  }
  if (auto old = parked_.find(*name); old != parked_.end()) old->second->close("replaced");
  parked_[*name] = self;
  conn.timer.expires_after(opt_.connect_timeout);
  conn.timer.async_wait(
      [this, weak = std::weak_ptr<Conn>(self)](const boost::system::error_code& e) {
        auto conn = weak.lock();
        if (e || !conn || conn->done) return;
        auto p = parked_.find(conn->name);
        if (p == parked_.end() || p->second != conn) return;
        parked_.erase(p);
        ++counters_.refused_unknown;
        log::info("link from {} ({}) closed: not a member", conn->name, conn->ch->peer());
        conn->close("not a member");
      });
}

void Links::on_message(Conn& conn, std::span<const uint8_t> payload) {
  proto::LinkMessage msg;
  auto err = proto::decode(payload, msg);
  if (err != proto::FrameError::kNone) {
    ++counters_.bad_frames;
    log::warn("link {} ({}): bad message ({}); closing", conn.name, conn.ch->peer(),
              proto::frame_error_name(err));
    conn.close("bad message");
    return;
  }
  auto it = links_.find(conn.name);
  if (it == links_.end() || it->second->conn.get() != &conn) return;
  if (it->second->view.state != State::kUp) mark_up(*it->second);
  View& view = it->second->view;
  view.last_heard = Clock::now();
  if (msg.has_ping()) {
    proto::LinkMessage reply;
    reply.set_version(proto::kProtocolVersion);
    reply.mutable_pong()->set_seq(msg.ping().seq());
    reply.mutable_pong()->set_sent_ns(msg.ping().sent_ns());
    conn.ch->send_with([&](std::string& out) { proto::append_frame(reply, out); });
  } else if (msg.has_pong()) {
    ++counters_.pongs_received;
    uint64_t now = steady_ns();
    if (msg.pong().sent_ns() <= now)
      view.rtt = std::chrono::nanoseconds(now - msg.pong().sent_ns());
  }
}

void Links::on_closed(Conn& conn, const std::string& reason, bool tls_failure) {
  if (conn.done) return;
  conn.done = true;
  conn.timer.cancel();
  auto it = conn.name.empty() ? links_.end() : links_.find(conn.name);
  bool ours = it != links_.end() && it->second->conn.get() == &conn;
  if (tls_failure) {
    ++counters_.refused_tls;
    // A dialer refused again for the same reason says so once.
    bool again = ours && it->second->view.last_error == reason;
    if (!again) {
      log::warn("link {} ({}): TLS failed: {}", conn.name.empty() ? "?" : conn.name,
                conn.ch ? conn.ch->peer() : "", reason);
    }
  }
  if (auto p = parked_.find(conn.name); p != parked_.end() && p->second.get() == &conn) {
    parked_.erase(p);
  }
  if (ours) {
    Link& link = *it->second;
    bool was_up = link.view.state == State::kUp;
    link.conn.reset();
    link.view.state = State::kDown;
    link.view.last_error = reason;
    if (was_up)
      log::info("link to {} down: {}", link.name, reason);
    else
      log::debug("link to {} not up: {}", link.name, reason);
    schedule_redial(link);
  }
  release(conn);
}

void Links::release(Conn& conn) {
  // Not from inside the channel's callback: the channel may still be on the stack.
  boost::asio::post(io_, [this, ptr = &conn, alive = std::weak_ptr<int>(alive_)] {
    if (!alive.expired()) conns_.erase(ptr);
  });
}

void Links::send_ping(Conn& conn) {
  proto::LinkMessage msg;
  msg.set_version(proto::kProtocolVersion);
  msg.mutable_ping()->set_seq(++seq_);
  msg.mutable_ping()->set_sent_ns(steady_ns());
  conn.ch->send_with([&](std::string& out) { proto::append_frame(msg, out); });
  ++counters_.pings_sent;
}

size_t Links::reload(proto::SslCtxPtr server_ctx, proto::SslCtxPtr client_ctx) {
  server_ctx_ = std::move(server_ctx);
  client_ctx_ = std::move(client_ctx);
  size_t closed = 0;
  // close() may end a connection later, never erase it now: iterate a copy.
  auto conns = conns_;
  for (auto& [ptr, conn] : conns) {
    if (close_if_untrusted(*conn, conn->dialed ? client_ctx_.get() : server_ctx_.get())) ++closed;
  }
  return closed;
}

bool Links::close_if_untrusted(Conn& conn, SSL_CTX* ctx) {
  if (conn.closing || conn.done || !conn.ch || !conn.ch->established()) return false;
  Result<void, proto::CertificateRefusal> verified;  // success unless refused below
  if (ctx) {
    verified = proto::reverify_peer(
        ctx, conn.ch->ssl(), conn.dialed ? proto::PeerRole::kServer : proto::PeerRole::kClient);
  } else if (std::chrono::system_clock::to_time_t(std::chrono::system_clock::now()) >
             conn.not_after) {
    verified = proto::CertificateRefusal{proto::TlsFailure::kExpired, "certificate has expired"};
  }
  if (verified) return false;
  ++counters_.closed_untrusted;
  std::string why = fmt::format("certificate no longer valid: {}", verified.error());
  log::warn("link {} ({}): {}; closing", conn.name.empty() ? "?" : conn.name, conn.ch->peer(), why);
  conn.close(why);
  // The link is down now, not when the close finishes flushing.
  auto it = links_.find(conn.name);
  if (it != links_.end() && it->second->conn.get() == &conn) {
    Link& link = *it->second;
    if (link.view.state == State::kUp) log::info("link to {} down: {}", link.name, why);
    link.view.state = State::kDown;
    link.view.last_error = why;
  }
  return true;
}

void Links::tick() {
  if (stopped_) return;
  auto now = Clock::now();
  {
    auto conns = conns_;
    for (auto& [ptr, conn] : conns) close_if_untrusted(*conn, nullptr);
  }
  for (auto& [name, link] : links_) {
    if (!link->conn || link->view.state != State::kUp) continue;
    if (link->view.last_heard &&
        now - *link->view.last_heard > kDeadIntervals * opt_.ping_interval) {
      link->conn->close(fmt::format("nothing heard for {} ping intervals", kDeadIntervals));
      continue;
    }
    send_ping(*link->conn);
  }
  ping_timer_.expires_after(opt_.ping_interval);
  ping_timer_.async_wait(
      [this, alive = std::weak_ptr<int>(alive_)](const boost::system::error_code& ec) {
        if (!ec && !alive.expired()) tick();
      });
}

}  // namespace faraday::control
