// server.cpp: see server.h.
#include "farad/server.h"

#include <fmt/core.h>
#include <openssl/rand.h>

#include <boost/asio/post.hpp>

#include "common/log.h"
#include "common/names.h"
#include "proto/node_info.h"

namespace faraday::farad {

using proto::TlsChannel;

namespace {

constexpr size_t kPushEntryBytes = 16 * 1024 - 64;  // one TLS record per push frame
constexpr size_t kPauseReadingAbove = 64 * 1024;    // queued replies before we stop reading
constexpr int kRoundGap = 2;           // idle time after a round, in multiples of its cost
constexpr Duration kMaxRoundGap = 1s;  // but never more than this
// A fixed kernel send buffer per connection (Linux doubles it): bounds the
// kernel memory a reader that never reads can pin, and lets farad notice it.
// Ample for control traffic; autotuning could grow each one to megabytes.
constexpr int kSocketSendBuffer = 128 * 1024;

uint64_t random_epoch() {
  uint64_t e = 0;
  while (e == 0) {
    if (RAND_bytes(reinterpret_cast<unsigned char*>(&e), sizeof(e)) != 1) {
      e = static_cast<uint64_t>(Clock::now().time_since_epoch().count()) | 1;
    }
  }
  return e;
}

uint32_t to_ms(Duration d) {
  return static_cast<uint32_t>(std::chrono::duration_cast<std::chrono::milliseconds>(d).count());
}

double to_s(Duration d) {
  return std::chrono::duration<double>(d).count();
}

int64_t wall_now() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string public_key_text(const proto::NodeInfo& info) {
  std::string text = proto::node_info_text(info);
  return text.substr(0, text.find(' '));
}

}  // namespace

const char* close_reason_name(CloseReason r) {
  static constexpr std::array<const char*, 9> kNames = {"handshake_timeout",
                                                        "bad_identity",
                                                        "protocol_error",
                                                        "not_reading",
                                                        "idle",
                                                        "replaced",
                                                        "certificate_invalidated",
                                                        "connection_limit",
                                                        "name_in_use"};
  return names::name_of(kNames, r);
}

// One accepted connection. Owned by Server::conns_; destroyed only by reap(),
// after its channel is detached, so callbacks never see a dead Conn.
struct Server::Conn final : TlsChannel::Handler {
  Server* server;
  std::shared_ptr<TlsChannel> ch;
  std::string name;               // the certificate's identity, once established
  int64_t not_after = INT64_MAX;  // the certificate's expiry, seconds since the epoch
  Time accepted_at;
  Time last_message{};
  Time closing_since{};
  proto::FrameDecoder decoder;
  uint64_t sent_cursor = 0;     // pushes sent up to here
  uint64_t removals_after = 0;  // Removals at or before this cursor are not sent
  bool subscribed = false;      // joined on this connection: gets pushes
  bool closing = false;         // close_conn() called; waiting for the flush
  bool closed = false;          // detached; reap() frees it
  bool paused = false;          // reading paused for backpressure

  Conn(Server* s, Time now) : server(s), accepted_at(now) {}
  void on_established(TlsChannel&) override { server->established(*this); }
  void on_data(TlsChannel&, std::span<const uint8_t> d) override { server->data(*this, d); }
  void on_drained(TlsChannel&) override { server->drained(*this); }
  void on_closed(TlsChannel&, const TlsChannel::CloseInfo& i) override { server->closed(*this, i); }
};

Server::Server(boost::asio::io_context& io, ServerOptions options)
    : io_(io),
      opt_(std::move(options)),
      idle_timeout_(opt_.idle_timeout > Duration::zero() ? opt_.idle_timeout : opt_.expiry),
      acceptor_(io),
      sweep_timer_(io),
      round_timer_(io),
      membership_(opt_.epoch ? opt_.epoch : random_epoch(), Clock::now(), opt_.expiry, this,
                  opt_.disconnect_grace) {}

Server::~Server() {
  stop();
}

Status Server::start() {
  auto ctx = proto::make_server_context(opt_.tls);
  if (!ctx) return ctx.failure();
  ctx_ = std::move(*ctx);
  boost::system::error_code ec;
  auto addr = boost::asio::ip::make_address(opt_.address, ec);
  if (ec) {
    return Error{fmt::format("listen address {:?}: {}", opt_.address, ec.message())};
  }
  boost::asio::ip::tcp::endpoint ep(addr, opt_.port);
  acceptor_.open(ep.protocol(), ec);
  if (!ec) acceptor_.set_option(boost::asio::socket_base::reuse_address(true), ec);
  if (!ec) acceptor_.bind(ep, ec);
  if (!ec) acceptor_.listen(boost::asio::socket_base::max_listen_connections, ec);
  if (ec) {
    return Error{fmt::format("listen on {}:{}: {}", opt_.address, opt_.port, ec.message())};
  }
  port_ = acceptor_.local_endpoint(ec).port();
  log::info("farad listening on {}:{} epoch={} expiry={}s grace={}s", opt_.address, port_,
            membership_.epoch(), to_s(opt_.expiry), to_s(membership_.grace()));
  accept();
  schedule_sweep();
  return {};
}

void Server::stop() {
  if (stopped_) return;
  stopped_ = true;
  boost::system::error_code ec;
  acceptor_.close(ec);
  sweep_timer_.cancel();
  round_timer_.cancel();
  for (auto& c : conns_) {
    if (c->ch) c->ch->detach();
  }
  conns_.clear();
  by_name_.clear();
  open_conns_ = 0;
}

size_t Server::connection_count() const {
  return open_conns_;
}

size_t Server::queued_bytes() const {
  size_t n = 0;
  for (const auto& c : conns_) n += c->closed ? 0 : c->ch->queued();
  return n;
}

std::string Server::who(const Conn& c) const {
  if (!c.name.empty()) return fmt::format("{} node={}", c.ch->peer(), c.name);
  if (!c.ch->rejected_subject().empty()) {
    return fmt::format("{} cn={}", c.ch->peer(), c.ch->rejected_subject());
  }
  return c.ch->peer();
}

// ---- accepting ----

void Server::accept() {
  acceptor_.async_accept(
      [this, alive = std::weak_ptr<int>(alive_)](const boost::system::error_code& ec,
                                                 boost::asio::ip::tcp::socket socket) {
        if (alive.expired() || stopped_) return;
        if (!ec) {
          on_accept(std::move(socket));
        } else if (ec != boost::asio::error::operation_aborted) {
          // EMFILE and friends: log and keep accepting after a pause.
          log::warn("accept: {}", ec.message());
        }
        if (ec == boost::asio::error::operation_aborted) return;
        accept();
      });
}

void Server::on_accept(boost::asio::ip::tcp::socket socket) {
  ++counters_.accepted;
  if (connection_count() >= opt_.max_connections) {
    ++counters_.closed[static_cast<size_t>(CloseReason::kConnectionLimit)];
    boost::system::error_code ec;
    auto ep = socket.remote_endpoint(ec);
    log::warn("refused {}:{}: connection limit ({}) reached", ep.address().to_string(), ep.port(),
              opt_.max_connections);
    socket.close(ec);
    return;
  }
  boost::system::error_code ec;
  socket.set_option(boost::asio::socket_base::send_buffer_size(kSocketSendBuffer), ec);
  auto c = std::make_unique<Conn>(this, Clock::now());
  c->ch = TlsChannel::create(std::move(socket), ctx_.get(), TlsChannel::Role::kServer, c.get());
  Conn& ref = *c;
  conns_.push_back(std::move(c));
  ++open_conns_;
  ref.ch->start();
}

void Server::established(Conn& c) {
  auto name = proto::certificate_name(SSL_get0_peer_certificate(c.ch->ssl()));
  if (!name) {
    close_conn(c, CloseReason::kBadIdentity, name.error(), proto::Error::IDENTITY_MISMATCH);
    return;
  }
  ++counters_.established;
  c.name = *name;
  c.last_message = Clock::now();
  if (auto t = proto::certificate_not_after(SSL_get0_peer_certificate(c.ch->ssl()))) {
    c.not_after = *t;
  }
  // The connection holds the name only once it joins (handle_join).
  log::debug("connected {}", who(c));
}

bool Server::is_holder(const Conn& c) const {
  auto it = by_name_.find(c.name);
  return it != by_name_.end() && it->second == &c;
}

// ---- reading ----

void Server::data(Conn& c, std::span<const uint8_t> bytes) {
  if (c.closing || c.closed) return;
  auto err =
      c.decoder.feed(bytes, [&](std::span<const uint8_t> payload) { return frame(c, payload); });
  if (err != proto::FrameError::kNone && !c.closing && !c.closed) {
    ++counters_.frame_errors[static_cast<size_t>(err)];
    std::string why(proto::frame_error_name(err));
    if (err == proto::FrameError::kTooLarge) {
      why = fmt::format("frame too large ({} bytes, at most {})", c.decoder.pending_frame_size(),
                        proto::kMaxFrameBytes);
    }
    close_conn(c, CloseReason::kProtocolError, why, proto::Error::BAD_FRAME);
    return;
  }
  if (!c.closing && !c.closed && c.ch->queued() > kPauseReadingAbove && !c.paused) {
    c.paused = true;
    c.ch->pause_reading(true);
  }
}

bool Server::frame(Conn& c, std::span<const uint8_t> payload) {
  if (c.closing || c.closed) return false;
  auto err = proto::decode(payload, in_);
  if (err != proto::FrameError::kNone) {
    ++counters_.frame_errors[static_cast<size_t>(err)];
    std::string why(proto::frame_error_name(err));
    if (err == proto::FrameError::kBadVersion) {
      why = fmt::format("unsupported protocol version {} (farad speaks {})", in_.version(),
                        proto::kProtocolVersion);
    }
    close_conn(c, CloseReason::kProtocolError, why, proto::Error::BAD_FRAME);
    return false;
  }
  ++counters_.requests;
  Time now = Clock::now();
  c.last_message = now;
  bool holder = is_holder(c);
  if (holder) membership_.heard_from(c.name, now);
  uint64_t id = in_.request_id();
  switch (in_.body_case()) {
    case proto::NodeMessage::kJoin:
      handle_join(c, in_.join(), id);
      break;
    case proto::NodeMessage::kUpdate:
      if (!holder) {
        send_error(c, id, proto::Error::NOT_MEMBER,
                   fmt::format("this connection has not joined as {}; join first", c.name), false);
      } else if (auto r = membership_.update(c.name, in_.update().node(), now); !r.ok) {
        send_error(c, id, r.code, r.detail, false);
      } else {
        send_ack(c, id);
      }
      break;
    case proto::NodeMessage::kHeartbeat:
      if (c.subscribed && !membership_.find(c.name)) {
        // Joined on this connection but expired since: tell it to join again.
        c.subscribed = false;
        send_error(c, id, proto::Error::NOT_MEMBER, fmt::format("{} expired; join again", c.name),
                   false);
      } else {
        send_ack(c, id);
      }
      break;
    case proto::NodeMessage::kQuery: {
      const std::string& name = in_.query().name();
      if (!proto::valid_node_name(name)) {
        send_error(c, id, proto::Error::BAD_QUERY, "not a valid node name", false);
        break;
      }
      out_.Clear();
      out_.set_request_id(id);
      auto* q = out_.mutable_query_result();
      q->set_name(name);
      q->set_state(membership_.query(name, now));
      reply(c, out_);
      break;
    }
    case proto::NodeMessage::kLeave:
      c.subscribed = false;
      if (holder) {
        membership_.leave(c.name, now);
        by_name_.erase(c.name);
      }
      send_ack(c, id);
      break;
    case proto::NodeMessage::BODY_NOT_SET:
      break;  // decode() refuses these
  }
  return !c.closing && !c.closed;
}

bool Server::refuse_name_taken(Conn& c, const proto::Join& join, uint64_t request_id) {
  auto it = by_name_.find(c.name);
  if (it == by_name_.end() || it->second == &c) return false;
  Conn& holder = *it->second;
  const MemberRecord* m = membership_.find(c.name);
  if (holder.closing || holder.closed || !m || m->info.public_key() == join.node().public_key()) {
    return false;  // no live holder, or the same node again: it takes over
  }
  ++counters_.name_conflicts;
  std::string why = fmt::format(
      "{} is held by a live connection from {} with another WireGuard key (holder {}, this "
      "connection announced {})",
      c.name, holder.ch->peer(), public_key_text(m->info), public_key_text(join.node()));
  log::warn("security: refused a second connection for node {} from {}: {}", c.name, c.ch->peer(),
            why);
  send_error(c, request_id, proto::Error::NAME_IN_USE, why, true);
  close_conn(c, CloseReason::kNameInUse, why);
  return true;
}

void Server::handle_join(Conn& c, const proto::Join& join, uint64_t request_id) {
  Time now = Clock::now();
  if (refuse_name_taken(c, join, request_id)) return;
  auto r = membership_.join(c.name, join.node(), now);
  if (!r.ok) {
    send_error(c, request_id, r.code, r.detail, false);
    return;
  }
  if (auto old = by_name_.find(c.name); old != by_name_.end() && old->second != &c) {
    close_conn(*old->second, CloseReason::kReplaced,
               fmt::format("replaced by a newer connection from {}", c.ch->peer()),
               proto::Error::REPLACED);
  }
  by_name_[c.name] = &c;
  X509* leaf = SSL_get0_peer_certificate(c.ch->ssl());
  if (leaf && X509_up_ref(leaf) == 1) {
    member_certs_[c.name] = MemberCert{std::shared_ptr<X509>(leaf, X509_free), c.not_after};
  }
  bool resume = join.epoch() == membership_.epoch() && join.cursor() <= membership_.cursor();
  c.subscribed = true;
  c.sent_cursor = resume ? join.cursor() : 0;
  // A snapshot is only the current members: Removals before it are not news.
  c.removals_after = resume ? 0 : membership_.cursor();
  out_.Clear();
  out_.set_request_id(request_id);
  auto* j = out_.mutable_joined();
  j->set_epoch(membership_.epoch());
  j->set_cursor(membership_.cursor());
  j->set_snapshot(!resume);
  j->set_name(c.name);
  j->set_expiry_ms(to_ms(opt_.expiry));
  j->set_heartbeat_ms(to_ms(opt_.expiry) / 3);
  reply(c, out_);
  pump(c);
}

void Server::reply(Conn& c, proto::FaradMessage& msg) {
  msg.set_version(proto::kProtocolVersion);
  frame_buf_.clear();
  proto::append_frame(msg, frame_buf_);
  c.ch->send(frame_buf_);
}

void Server::send_ack(Conn& c, uint64_t request_id) {
  out_.Clear();
  out_.set_request_id(request_id);
  out_.mutable_ack();
  reply(c, out_);
}

void Server::send_error(Conn& c, uint64_t request_id, proto::Error::Code code,
                        const std::string& detail, bool fatal) {
  if (code >= 0 && static_cast<size_t>(code) < counters_.request_errors.size()) {
    ++counters_.request_errors[static_cast<size_t>(code)];
  }
  if (!fatal) {
    log::info("refused request from {}: {}: {}", who(c), proto::Error::Code_Name(code), detail);
  }
  out_.Clear();
  out_.set_request_id(request_id);
  auto* e = out_.mutable_error();
  e->set_code(code);
  e->set_detail(detail);
  e->set_fatal(fatal);
  reply(c, out_);
}

// ---- writing ----

void Server::drained(Conn& c) {
  if (c.paused) {
    c.paused = false;
    c.ch->pause_reading(false);
  }
  pump(c);
}

void Server::pump(Conn& c) {
  if (!c.subscribed || c.closing || c.closed || !c.ch->established()) return;
  if (c.ch->queued() > 0 || c.sent_cursor >= membership_.cursor()) return;
  const MemberRecord* self = membership_.find(c.name);
  ChangeLog::Batch batch;
  c.ch->send_with([&](std::string& out) {
    batch = membership_.log().append_push_frame(out, membership_.epoch(), c.sent_cursor, self,
                                                kPushEntryBytes, c.removals_after);
    c.sent_cursor = batch.cursor;
  });
  ++counters_.push_frames;
  counters_.push_entries += batch.entries;
  counters_.push_bytes += batch.frame_bytes;
}

void Server::schedule_round() {
  if (round_scheduled_ || stopped_) return;
  round_scheduled_ = true;
  // Under a storm of changes a round visiting every connection costs real
  // time; leaving twice that between the end of one round and the start of
  // the next keeps rounds under a third of farad's time, leaves the rest for
  // handshakes and requests, and makes each round's frames larger instead of
  // more numerous. The gap is capped at a second, so a change right after a
  // storm waits at most that long; after a quiet spell only push_delay applies.
  Time earliest = round_end_ + std::min<Duration>(kRoundGap * round_cost_, kMaxRoundGap);
  Duration wait = std::max<Duration>(opt_.push_delay, earliest - Clock::now());
  round_timer_.expires_after(wait);
  round_timer_.async_wait(
      [this, alive = std::weak_ptr<int>(alive_)](const boost::system::error_code& ec) {
        if (alive.expired() || ec) return;
        run_round();
      });
}

void Server::run_round() {
  round_scheduled_ = false;
  Time t0 = Clock::now();
  ++counters_.push_rounds;
  // pump() never adds or removes connections (closes are reaped later), so
  // indexing is safe even if a write fails.
  for (size_t i = 0; i < conns_.size(); ++i) pump(*conns_[i]);
  round_end_ = Clock::now();
  round_cost_ = round_end_ - t0;
}

// ---- closing ----

void Server::close_conn(Conn& c, CloseReason reason, const std::string& why,
                        proto::Error::Code error) {
  if (c.closing || c.closed) return;
  ++counters_.closed[static_cast<size_t>(reason)];
  log::warn("{} {}: {}", c.name.empty() ? "refused" : "disconnected", who(c), why);
  if (error != proto::Error::CODE_UNSPECIFIED && c.ch->established()) {
    send_error(c, 0, error, why, true);
  }
  c.closing = true;
  c.subscribed = false;
  c.closing_since = Clock::now();
  c.ch->close_after_flush(why);
}

void Server::drop(Conn& c) {
  if (c.closed) return;
  c.closed = true;
  c.subscribed = false;
  --open_conns_;
  c.ch->detach();
  auto it = by_name_.find(c.name);
  if (it != by_name_.end() && it->second == &c) {
    by_name_.erase(it);
    // Closed without Leave (a crash, a cut, a close of ours): the member goes
    // after the disconnect grace unless it comes back.
    membership_.disconnected(c.name, Clock::now());
  }
  schedule_reap();
}

void Server::closed(Conn& c, const TlsChannel::CloseInfo& info) {
  if (!c.closing) {
    if (info.in_handshake) {
      ++counters_.tls_refused[static_cast<size_t>(info.failure)];
      log::warn("refused {}: {}", who(c), info.reason);
    } else if (info.failure != proto::TlsFailure::kNone) {
      log::warn("disconnected {}: {}", who(c), info.reason);
    } else {
      log::info("disconnected {}: {}", who(c), info.reason);
    }
  }
  drop(c);
}

void Server::schedule_reap() {
  if (reap_scheduled_) return;
  reap_scheduled_ = true;
  boost::asio::post(io_, [this, alive = std::weak_ptr<int>(alive_)] {
    if (alive.expired()) return;
    reap();
  });
}

void Server::reap() {
  reap_scheduled_ = false;
  std::erase_if(conns_, [](const std::unique_ptr<Conn>& c) { return c->closed; });
}

// ---- time ----

void Server::schedule_sweep() {
  auto period = std::min<Duration>(
      {Duration(1s), opt_.expiry / 4, opt_.handshake_timeout / 2, opt_.write_timeout / 2});
  sweep_timer_.expires_after(std::max<Duration>(period, 10ms));
  sweep_timer_.async_wait(
      [this, alive = std::weak_ptr<int>(alive_)](const boost::system::error_code& ec) {
        if (alive.expired() || ec) return;
        sweep();
        schedule_sweep();
      });
}

void Server::sweep() {
  Time now = Clock::now();
  membership_.expire(now);
  check_member_certificates(false);
  int64_t wall = wall_now();
  for (size_t i = 0; i < conns_.size(); ++i) {
    Conn& c = *conns_[i];
    if (c.closed) continue;
    if (!c.closing && c.ch->established() && wall > c.not_after) {
      if (is_holder(c)) {
        revoke(c.name, proto::Removal::EXPIRED, "certificate expired while connected");
      } else {
        close_conn(c, CloseReason::kCertificateInvalidated, "certificate expired while connected",
                   proto::Error::CERTIFICATE_EXPIRED);
      }
      continue;
    }
    if (!c.ch->established()) {
      if (now - c.accepted_at > opt_.handshake_timeout) {
        ++counters_.closed[static_cast<size_t>(CloseReason::kHandshakeTimeout)];
        log::warn("refused {}: TLS handshake not finished within {}s", who(c),
                  to_s(opt_.handshake_timeout));
        drop(c);
      }
      continue;
    }
    if (c.closing) {
      if (now - c.closing_since > opt_.write_timeout) drop(c);
      continue;
    }
    auto stalled = c.ch->stalled_since();
    if (stalled && now - *stalled > opt_.write_timeout) {
      ++counters_.closed[static_cast<size_t>(CloseReason::kNotReading)];
      log::warn("disconnected {}: not reading ({} bytes unsent for {:.1f}s)", who(c),
                c.ch->queued(), to_s(now - *stalled));
      drop(c);
      continue;
    }
    if (now - c.last_message > idle_timeout_) {
      close_conn(c, CloseReason::kIdle,
                 fmt::format("no message for {:.1f}s", to_s(now - c.last_message)));
    }
  }
}

// ---- membership changes ----

void Server::on_member_change(ChangeKind kind, const MemberRecord& m, Time now) {
  switch (kind) {
    case ChangeKind::kJoin:
    case ChangeKind::kUpdate:
      ++(kind == ChangeKind::kJoin ? counters_.joins : counters_.updates);
      log::info("membership event={} node={} epoch={} cursor={} members={} {}",
                change_kind_name(kind), m.name, membership_.epoch(), m.cursor, membership_.size(),
                proto::node_info_text(m.info));
      schedule_round();
      break;
    case ChangeKind::kLeave:
    case ChangeKind::kExpire:
    case ChangeKind::kDisconnect:
    case ChangeKind::kRevoke:
      ++(kind == ChangeKind::kLeave    ? counters_.leaves
         : kind == ChangeKind::kExpire ? counters_.expired
         : kind == ChangeKind::kRevoke ? counters_.revoked
                                       : counters_.disconnected);
      member_certs_.erase(m.name);
      log::info("membership event={} node={} epoch={} members={} silent_for={:.1f}s",
                change_kind_name(kind), m.name, membership_.epoch(), membership_.size(),
                to_s(now - m.last_heard));
      if (kind == ChangeKind::kRevoke) schedule_round();
      break;
    case ChangeKind::kCount:
      break;
  }
}

// ---- TLS reload ----

Status Server::reload_tls() {
  auto ctx = proto::make_server_context(opt_.tls);
  if (!ctx) {
    log::error("TLS reload failed, keeping the previous configuration: {}", ctx.error());
    return ctx.failure();
  }
  ctx_ = std::move(*ctx);
  size_t closed = 0;
  size_t revoked_before = counters_.revoked;
  for (size_t i = 0; i < conns_.size(); ++i) {
    Conn& c = *conns_[i];
    if (c.closed || c.closing || !c.ch->established()) continue;
    auto verified = proto::reverify_peer(ctx_.get(), c.ch->ssl(), proto::PeerRole::kClient);
    if (verified) continue;
    ++closed;
    const proto::CertificateRefusal& refusal = verified.failure();
    std::string why =
        fmt::format("certificate no longer valid after TLS reload: {}", refusal.message);
    if (is_holder(c)) {
      revoke(c.name,
             refusal.failure == proto::TlsFailure::kExpired ? proto::Removal::EXPIRED
                                                            : proto::Removal::REVOKED,
             why);
    } else {
      close_conn(c, CloseReason::kCertificateInvalidated, why, proto::Error::REVOKED);
    }
  }
  check_member_certificates(true);
  log::info(
      "TLS configuration reloaded (CA {}, certificate {}, CRL {}): {} connection(s) closed, {} "
      "member(s) revoked",
      opt_.tls.ca, opt_.tls.cert, opt_.tls.crl.empty() ? "none" : opt_.tls.crl, closed,
      counters_.revoked - revoked_before);
  return {};
}

void Server::revoke(const std::string& name, proto::Removal::Reason reason,
                    const std::string& why) {
  auto it = by_name_.find(name);
  if (it != by_name_.end()) {
    Conn& c = *it->second;
    by_name_.erase(it);  // no disconnect grace: it is removed now
    close_conn(c, CloseReason::kCertificateInvalidated, why,
               reason == proto::Removal::EXPIRED ? proto::Error::CERTIFICATE_EXPIRED
                                                 : proto::Error::REVOKED);
  }
  if (membership_.revoke(name, reason, why, Clock::now())) {
    log::warn("revoked member {}: {}; every node is told to drop it", name, why);
  }
}

void Server::check_member_certificates(bool full_verify) {
  // Members whose holder is connected are checked through their connection
  // (reload_tls, sweep); these are the ones farad still lists without one.
  int64_t wall = wall_now();
  std::vector<std::pair<std::string, proto::CertificateRefusal>> untrusted;
  for (const auto& [name, mc] : member_certs_) {
    if (by_name_.count(name)) continue;
    if (wall > mc.not_after) {
      untrusted.emplace_back(
          name, proto::CertificateRefusal{proto::TlsFailure::kExpired, "certificate has expired"});
    } else if (full_verify) {
      auto verified =
          proto::verify_certificate(ctx_.get(), mc.cert.get(), nullptr, proto::PeerRole::kClient);
      if (!verified) untrusted.emplace_back(name, verified.failure());
    }
  }
  for (const auto& [name, refusal] : untrusted) {
    revoke(name,
           refusal.failure == proto::TlsFailure::kExpired ? proto::Removal::EXPIRED
                                                          : proto::Removal::REVOKED,
           fmt::format("certificate no longer valid: {}", refusal.message));
  }
}

std::string Server::counters_text() const {
  const Counters& k = counters_;
  std::string s = fmt::format(
      "counters connections={} members={} accepted={} established={} requests={} "
      "joins={} updates={} leaves={} expired={} disconnected={} revoked={} name_conflicts={} "
      "push_rounds={} push_frames={} push_entries={} push_bytes={}",
      connection_count(), membership_.size(), k.accepted, k.established, k.requests, k.joins,
      k.updates, k.leaves, k.expired, k.disconnected, k.revoked, k.name_conflicts, k.push_rounds,
      k.push_frames, k.push_entries, k.push_bytes);
  for (size_t i = 1; i < k.tls_refused.size(); ++i) {
    s += fmt::format(" tls_refused.{}={}",
                     proto::tls_failure_name(static_cast<proto::TlsFailure>(i)), k.tls_refused[i]);
  }
  for (size_t i = 0; i < k.closed.size(); ++i) {
    s += fmt::format(" closed.{}={}", close_reason_name(static_cast<CloseReason>(i)), k.closed[i]);
  }
  for (size_t i = 1; i < k.frame_errors.size(); ++i) {
    s += fmt::format(" frame_error.{}={}",
                     proto::frame_error_name(static_cast<proto::FrameError>(i)), k.frame_errors[i]);
  }
  for (size_t i = 1; i < k.request_errors.size(); ++i) {
    if (!proto::Error::Code_IsValid(static_cast<int>(i))) continue;
    s += fmt::format(" request_error.{}={}",
                     proto::Error::Code_Name(static_cast<proto::Error::Code>(i)),
                     k.request_errors[i]);
  }
  return s;
}

}  // namespace faraday::farad
