// farad_client.cpp: see farad_client.h.
#include "control/farad_client.h"

#include <array>

#include "common/names.h"

#include <fmt/core.h>
#include <google/protobuf/arena.h>

#include <vector>

#include "common/log.h"
#include "proto/node_info.h"

namespace faraday::control {

using proto::TlsChannel;

namespace {

// Removes the entries of a repeated field for which bad() holds; returns how many.
template <typename Repeated, typename Bad>
uint64_t drop_if(Repeated& entries, Bad bad) {
  uint64_t dropped = 0;
  for (int i = 0; i < entries.size();) {
    if (bad(entries.Get(i))) {
      entries.DeleteSubrange(i, 1);
      ++dropped;
    } else {
      ++i;
    }
  }
  return dropped;
}

constexpr std::chrono::milliseconds kDefaultHeartbeat = 10s;

// Messages from farad are parsed into an arena that is reset after each one:
// a push of hundreds of members costs bump allocations, not mallocs.
// The arena's first block is a buffer reused across resets, so a typical
// message costs no malloc at all.
google::protobuf::Arena& parse_arena() {
  static thread_local std::vector<char> block(256 * 1024);
  static thread_local google::protobuf::Arena arena([] {
    google::protobuf::ArenaOptions o;
    o.initial_block = block.data();
    o.initial_block_size = block.size();
    return o;
  }());
  return arena;
}

}  // namespace

const char* client_state_name(FaradClient::State s) {
  static constexpr std::array<const char*, 5> kNames = {"stopped", "waiting", "connecting",
                                                        "joining", "ready"};
  return names::name_of(kNames, s);
}

FaradClient::FaradClient(boost::asio::io_context& io, proto::SslCtxPtr ctx,
                         FaradClientOptions options, Callbacks callbacks)
    : io_(io),
      ctx_(std::move(ctx)),
      opt_(std::move(options)),
      cb_(std::move(callbacks)),
      socket_(io),
      resolver_(io),
      timer_(io),
      heartbeat_timer_(io),
      want_join_(opt_.join),
      backoff_(opt_.backoff_min),
      rng_(std::random_device{}()) {
  if (opt_.cert) X509_up_ref(opt_.cert);
  if (opt_.key) EVP_PKEY_up_ref(opt_.key);
}

FaradClient::~FaradClient() {
  stop();
  if (opt_.cert) X509_free(opt_.cert);
  if (opt_.key) EVP_PKEY_free(opt_.key);
}

void FaradClient::start() {
  if (state_ != State::kStopped) return;
  want_join_ = opt_.join;
  backoff_ = opt_.backoff_min;
  connect();
}

void FaradClient::stop() {
  ++generation_;
  state_ = State::kStopped;
  joined_ = false;
  if (ch_) {
    ch_->detach();
    ch_.reset();
  }
  boost::system::error_code ec;
  socket_.close(ec);
  resolver_.cancel();
  timer_.cancel();
  heartbeat_timer_.cancel();
  fail_pending("client stopped");
}

void FaradClient::connect() {
  uint64_t gen = ++generation_;
  state_ = State::kConnecting;
  ++stats_.connects;
  socket_ = boost::asio::ip::tcp::socket(io_);
  std::weak_ptr<int> alive = alive_;
  timer_.expires_after(opt_.connect_timeout);
  timer_.async_wait([this, gen, alive](const boost::system::error_code& ec) {
    if (ec || alive.expired() || gen != generation_) return;
    if (state_ == State::kConnecting || state_ == State::kJoining) {
      disconnect(fmt::format("no answer from {}:{} within {}ms", opt_.host, opt_.port,
                             opt_.connect_timeout.count()));
    }
  });
  auto on_connect = [this, gen, alive](const boost::system::error_code& ec) {
    if (alive.expired() || gen != generation_) return;
    if (ec) {
      disconnect(fmt::format("connect to {}:{}: {}", opt_.host, opt_.port, ec.message()));
      return;
    }
    connected_tcp();
  };
  boost::system::error_code ec;
  auto addr = boost::asio::ip::make_address(opt_.host, ec);
  if (!ec) {
    socket_.async_connect({addr, opt_.port}, on_connect);
    return;
  }
  resolver_.async_resolve(
      opt_.host, std::to_string(opt_.port),
      [this, gen, alive, on_connect](const boost::system::error_code& rec,
                                     boost::asio::ip::tcp::resolver::results_type results) {
        if (alive.expired() || gen != generation_) return;
        if (rec || results.empty()) {
          disconnect(fmt::format("resolve {}: {}", opt_.host, rec ? rec.message() : "no address"));
          return;
        }
        socket_.async_connect(results.begin()->endpoint(), on_connect);
      });
}

void FaradClient::connected_tcp() {
  decoder_ = proto::FrameDecoder();
  ch_ = TlsChannel::create(std::move(socket_), ctx_.get(), TlsChannel::Role::kClient, this);
  socket_ = boost::asio::ip::tcp::socket(io_);
  if (!ch_->set_client_params(opt_.server_name, opt_.cert, opt_.key)) {
    disconnect("cannot set the TLS server name or client certificate");
    return;
  }
  ch_->start();
}

void FaradClient::on_established(TlsChannel&) {
  ++stats_.established;
  last_sent_ = Clock::now();
  if (want_join_) {
    state_ = State::kJoining;
    send_join();
  } else {
    state_ = State::kReady;
    timer_.cancel();
    backoff_ = opt_.backoff_min;
    heartbeat_interval_ = opt_.heartbeat.count() ? opt_.heartbeat : kDefaultHeartbeat;
    schedule_heartbeat();
  }
}

void FaradClient::send_join() {
  proto::NodeMessage msg;
  auto* j = msg.mutable_join();
  *j->mutable_node() = opt_.node;
  j->set_epoch(epoch_);
  j->set_cursor(cursor_);
  join_sent_at_ = Clock::now();
  join_id_ = send(msg, {});
}

uint64_t FaradClient::send(proto::NodeMessage& msg, Done done) {
  if (!ch_ || !connected()) {
    if (done) done({false, proto::STATE_UNSPECIFIED, "not connected to farad", {}});
    return 0;
  }
  uint64_t id = next_id_++;
  msg.set_version(proto::kProtocolVersion);
  msg.set_request_id(id);
  if (done) pending_.emplace(id, std::move(done));
  std::string frame;
  proto::append_frame(msg, frame);
  last_sent_ = Clock::now();
  ch_->send(frame);
  return id;
}

void FaradClient::update(const proto::NodeInfo& node, Done done) {
  opt_.node = node;
  if (!joined()) {
    if (done) done({true, proto::STATE_UNSPECIFIED, {}, {}});
    return;
  }
  proto::NodeMessage msg;
  *msg.mutable_update()->mutable_node() = node;
  send(msg, std::move(done));
}

void FaradClient::query(const std::string& name, Done done) {
  proto::NodeMessage msg;
  msg.mutable_query()->set_name(name);
  send(msg, std::move(done));
}

void FaradClient::leave(Done done) {
  want_join_ = false;
  joined_ = false;
  proto::NodeMessage msg;
  msg.mutable_leave();
  send(msg, std::move(done));
}

void FaradClient::heartbeat(Done done) {
  proto::NodeMessage msg;
  msg.mutable_heartbeat();
  ++stats_.heartbeats;
  send(msg, std::move(done));
}

void FaradClient::schedule_heartbeat() {
  if (heartbeat_interval_.count() <= 0) return;
  uint64_t gen = generation_;
  heartbeat_timer_.expires_at(last_sent_ + heartbeat_interval_);
  heartbeat_timer_.async_wait(
      [this, gen, alive = std::weak_ptr<int>(alive_)](const boost::system::error_code& ec) {
        if (ec || alive.expired() || gen != generation_ || !connected()) return;
        if (Clock::now() - last_sent_ >= heartbeat_interval_) heartbeat();
        schedule_heartbeat();
      });
}

void FaradClient::on_data(TlsChannel&, std::span<const uint8_t> data) {
  uint64_t gen = generation_;
  auto err = decoder_.feed(data, [&](std::span<const uint8_t> payload) {
    auto& arena = parse_arena();
    auto* msg = google::protobuf::Arena::CreateMessage<proto::FaradMessage>(&arena);
    auto ferr = proto::decode(payload, *msg);
    bool go = true;
    if (ferr != proto::FrameError::kNone) {
      ++stats_.bad_frames;
      go = false;
      arena.Reset();
      disconnect(fmt::format("bad frame from farad: {}", proto::frame_error_name(ferr)));
    } else {
      go = handle(*msg);
      arena.Reset();
    }
    return go && gen == generation_;
  });
  if (err != proto::FrameError::kNone && gen == generation_) {
    ++stats_.bad_frames;
    disconnect(fmt::format("bad frame from farad: {}", proto::frame_error_name(err)));
  }
}

bool FaradClient::handle(const proto::FaradMessage& msg) {
  uint64_t gen = generation_;
  switch (msg.body_case()) {
    case proto::FaradMessage::kJoined:
      handle_joined(msg.joined());
      break;
    case proto::FaradMessage::kPush:
      handle_push(msg.push());
      break;
    default:
      handle_reply(msg);
      break;
  }
  return gen == generation_;
}

void FaradClient::handle_joined(const proto::Joined& j) {
  if (j.snapshot() || j.epoch() != epoch_) cursor_ = 0;
  epoch_ = j.epoch();
  name_ = j.name();
  joined_ = true;
  state_ = State::kReady;
  ++stats_.joins;
  if (j.snapshot()) ++stats_.snapshots;
  timer_.cancel();
  backoff_ = opt_.backoff_min;
  heartbeat_interval_ =
      opt_.heartbeat.count() ? opt_.heartbeat : std::chrono::milliseconds(j.heartbeat_ms());
  if (heartbeat_interval_.count() <= 0) heartbeat_interval_ = kDefaultHeartbeat;
  schedule_heartbeat();
  if (cb_.on_joined) cb_.on_joined(j);
}

void FaradClient::handle_push(const proto::Push& p) {
  if (p.epoch() != epoch_) {
    ++stats_.bad_frames;
    return;  // not for the epoch we joined; ignore
  }
  auto& mutable_push = const_cast<proto::Push&>(p);
  auto* members = mutable_push.mutable_members();
  stats_.invalid_members += drop_if(*members, [](const proto::Member& m) {
    return !proto::valid_node_name(m.node().name()) || !proto::check_node_info(m.node()).ok();
  });
  auto* removed = mutable_push.mutable_removed();
  stats_.invalid_members +=
      drop_if(*removed, [](const proto::Removal& r) { return !proto::valid_node_name(r.name()); });
  cursor_ = p.cursor();
  ++stats_.pushes;
  stats_.members += static_cast<uint64_t>(members->size());
  stats_.removals += static_cast<uint64_t>(removed->size());
  if (cb_.on_push) cb_.on_push(p);
}

void FaradClient::handle_reply(const proto::FaradMessage& msg) {
  uint64_t id = msg.request_id();
  Reply reply;
  switch (msg.body_case()) {
    case proto::FaradMessage::kAck:
      reply.ok = true;
      break;
    case proto::FaradMessage::kQueryResult:
      reply.ok = true;
      reply.state = msg.query_result().state();
      break;
    case proto::FaradMessage::kError:
      reply.ok = false;
      reply.code = msg.error().code();
      reply.error =
          fmt::format("{}: {}", proto::Error::Code_Name(msg.error().code()), msg.error().detail());
      break;
    default:
      return;
  }
  auto it = id ? pending_.find(id) : pending_.end();
  if (it != pending_.end()) {
    Done done = std::move(it->second);
    pending_.erase(it);
    done(reply);
    return;
  }
  if (msg.body_case() == proto::FaradMessage::kError) {
    last_error_ = reply.error;
    if (id && id == join_id_) {
      log::warn("farad refused our join: {}", reply.error);
    }
    if (msg.error().code() == proto::Error::NOT_MEMBER && want_join_ && connected()) {
      // We expired (farad heard nothing for its window): join again.
      joined_ = false;
      send_join();
    }
    if (cb_.on_error) cb_.on_error(msg.error());
  }
}

void FaradClient::on_closed(TlsChannel&, const TlsChannel::CloseInfo& info) {
  disconnect(info.reason.empty() ? "connection closed" : info.reason);
}

void FaradClient::fail_pending(const std::string& reason) {
  auto pending = std::move(pending_);
  pending_.clear();
  for (auto& [id, done] : pending) done({false, proto::STATE_UNSPECIFIED, reason, {}});
}

void FaradClient::disconnect(const std::string& reason) {
  if (state_ == State::kStopped) return;
  ++generation_;
  if (ch_) {
    ch_->detach();
    ch_.reset();
  }
  boost::system::error_code ec;
  socket_.close(ec);
  timer_.cancel();
  heartbeat_timer_.cancel();
  joined_ = false;
  state_ = State::kWaiting;
  last_error_ = reason;
  fail_pending(reason);
  if (cb_.on_disconnected) cb_.on_disconnected(reason);
  if (state_ == State::kWaiting) schedule_reconnect();
}

void FaradClient::schedule_reconnect() {
  auto hi = backoff_.count();
  std::uniform_int_distribution<long> pick(hi / 2, hi);
  auto delay = std::chrono::milliseconds(pick(rng_));
  backoff_ = std::min(backoff_ * 2, opt_.backoff_max);
  uint64_t gen = generation_;
  timer_.expires_after(delay);
  timer_.async_wait(
      [this, gen, alive = std::weak_ptr<int>(alive_)](const boost::system::error_code& ec) {
        if (ec || alive.expired() || gen != generation_ || state_ != State::kWaiting) return;
        connect();
      });
}

}  // namespace faraday::control
