// cluster.cpp: see cluster.h.
#include "control/cluster.h"

#include <sys/stat.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <deque>
#include <map>
#include <nlohmann/json.hpp>
#include <thread>

#include "common/log.h"
#include "control/announcement.h"
#include "control/containers.h"
#include "control/ctl_server.h"
#include "control/dpdk_standalone.h"
#include "control/farad_client.h"
#include "control/interface.h"
#include "control/keyfile.h"
#include "control/links.h"
#include "control/netlink.h"
#include "control/peer_health.h"
#include "control/uapi.h"
#include "crypto/x25519.h"
#include "proto/node_info.h"

namespace faraday::control {

namespace {

using Clock = std::chrono::steady_clock;
using json = nlohmann::json;

// How long shutdown waits for farad to acknowledge Leave.
constexpr auto kLeaveTimeout = std::chrono::seconds(2);
// How long the node whose name sorts second waits before its first handshake
// with a new peer (see upsert).
constexpr auto kSecondHandshakeDelay = std::chrono::milliseconds(1000);

double seconds_since(Clock::time_point t, Clock::time_point now) {
  return std::chrono::duration<double>(now - t).count();
}

// PRESENT, ABSENT, UNKNOWN; "" before farad answered.
const char* state_name(proto::State s) {
  if (s == proto::STATE_UNSPECIFIED || !proto::State_IsValid(s)) return "";
  return proto::State_Name(s).c_str();
}

struct TlsContexts {
  proto::SslCtxPtr server, client;
};

// The node's TLS contexts, both from the same files (links serve and dial,
// the farad client dials).
Result<TlsContexts> tls_contexts(const proto::TlsFiles& files) {
  auto server = proto::make_server_context(files);
  if (!server) return server.failure();
  auto client = proto::make_client_context(files);
  if (!client) return client.failure();
  return TlsContexts{std::move(*server), std::move(*client)};
}

std::optional<dataplane::Endpoint> to_endpoint(const proto::Endpoint& ep) {
  return dataplane::Endpoint::parse(proto::endpoint_text(ep));
}

boost::asio::ip::tcp::endpoint tcp_endpoint(const proto::Endpoint& ep) {
  const std::string& ip = ep.ip();  // 4 or 16 bytes: checked by check_node_info
  auto port = static_cast<uint16_t>(ep.port());
  if (ip.size() == 4) {
    boost::asio::ip::address_v4::bytes_type b{};
    std::copy(ip.begin(), ip.end(), b.begin());
    return {boost::asio::ip::address_v4(b), port};
  }
  boost::asio::ip::address_v6::bytes_type b{};
  std::copy(ip.begin(), ip.end(), b.begin());
  return {boost::asio::ip::address_v6(b), port};
}

class Cluster {
 public:
  explicit Cluster(const ClusterOptions& options)
      : opt_(options), signals_(io_), tick_(io_), health_(options.silence, options.ping_interval) {}
  int run();

 private:
  struct Member {
    proto::NodeInfo info;
    crypto::Key key{};
    std::vector<dataplane::Prefix> prefixes;
  };

  bool setup();
  bool load_key();
  bool open_data_path();
  bool setup_interface();
  bool setup_ctl();
  void make_farad_client(const proto::SslCtxPtr& client_ctx);
  void on_joined(const proto::Joined& j);
  void on_farad_lost(const std::string& reason);
  void on_push(const proto::Push& push);
  void reload_tls();
  void upsert(const proto::NodeInfo& info);
  void program_peer(const std::string& name, const crypto::Key& key,
                    const std::optional<dataplane::Endpoint>& endpoint,
                    const std::vector<dataplane::Prefix>& prefixes, uint64_t generation);
  void remove_member(const std::string& name);
  void remove_peer(const crypto::Key& key);
  void note_heard(const std::string& name);
  void check_silence();
  void ask_farad(const PeerHealth::Query& query);
  void on_answer(const PeerHealth::Query& query, const FaradClient::Reply& reply);
  void program(dataplane::DataPath::Command command);
  void flush_backlog();
  void on_status(const CtlRequest& req, CtlServer::Reply reply);
  void on_query(const CtlRequest& req, CtlServer::Reply reply);
  void setup_containers();
  json status_json(const uapi::DeviceState& device) const;
  void log_counters();
  void shutdown(const std::string& why);
  void finish_shutdown();

  ClusterOptions opt_;
  boost::asio::io_context io_{1};
  boost::asio::signal_set signals_;
  boost::asio::steady_timer tick_;
  std::unique_ptr<boost::asio::steady_timer> leave_timer_;
  std::unique_ptr<boost::asio::steady_timer> backlog_timer_;
  std::string name_;
  crypto::Key private_key_{};
  crypto::Key public_key_{};
  proto::NodeInfo self_;
  std::unique_ptr<dataplane::DataPath> dp_;
  std::thread dp_thread_;
  std::optional<netlink::Socket> nl_;
  std::unique_ptr<FaradClient> farad_;
  std::unique_ptr<Links> links_;
  std::unique_ptr<Containers> containers_;  // with a container prefix; else containers_off_
  std::string containers_off_;              // says why
  std::unique_ptr<CtlServer> ctl_;          // its handlers use containers_
  std::map<std::string, Member> members_;
  PeerHealth health_;  // when a member goes; in step with members_
  std::deque<dataplane::DataPath::Command> backlog_;
  bool farad_was_up_ = false;
  std::string farad_failure_;  // why the last attempt failed, logged once per reason
  uint32_t farad_heartbeat_ms_ = 0;
  uint32_t farad_expiry_ms_ = 0;
  bool stopping_ = false;
  bool finished_ = false;
  int exit_code_ = 0;
  std::shared_ptr<int> alive_ = std::make_shared<int>(0);
};

bool Cluster::setup() {
  auto name = certificate_file_name(opt_.tls.cert);
  if (!name) {
    log::error("node certificate: {}", name.error());
    return false;
  }
  name_ = *name;
  if (!load_key()) return false;
  auto self = build_announcement(opt_, public_key_);
  if (!self) {
    log::error("{}", self.error());
    return false;
  }
  self_ = std::move(*self);
  if (!setup_interface()) return false;

  auto tls = tls_contexts(opt_.tls);
  if (!tls) {
    log::error("TLS: {}", tls.error());
    return false;
  }
  LinkOptions link_options;
  link_options.ping_interval = opt_.ping_interval;
  link_options.backoff_max = std::max<std::chrono::milliseconds>(opt_.ping_interval * 2, 1s);
  links_ = std::make_unique<Links>(io_, tls->server, tls->client, name_, link_options);
  if (Status listening = links_->listen(opt_.control_listen); !listening) {
    log::error("{}", listening.error());
    return false;
  }
  setup_containers();
  if (!setup_ctl()) return false;
  make_farad_client(tls->client);
  return true;
}

// The WireGuard key: created once, kept across restarts.
bool Cluster::load_key() {
  std::string dir = opt_.private_key.substr(0, opt_.private_key.rfind('/'));
  if (!dir.empty() && opt_.private_key.find('/') != std::string::npos &&
      mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) {
    log::error("cannot create {} for the private key: {}", dir, std::strerror(errno));
    return false;
  }
  bool created = false;
  auto key = load_or_create_private_key(opt_.private_key, &created);
  if (!key) {
    log::error("{}", key.error());
    return false;
  }
  private_key_ = *key;
  public_key_ = crypto::x25519_public(private_key_);
  if (created) log::info("new WireGuard private key written to {}", opt_.private_key);
  return true;
}

bool Cluster::setup_ctl() {
  CtlServer::Commands commands;
  commands["status"] = [this](const CtlRequest& req, CtlServer::Reply reply) {
    on_status(req, std::move(reply));
  };
  commands["query"] = [this](const CtlRequest& req, CtlServer::Reply reply) {
    on_query(req, std::move(reply));
  };
  add_cni_commands(commands, containers_.get(), containers_off_);
  auto ctl = CtlServer::listen(io_, opt_.control_socket, std::move(commands));
  if (!ctl) {
    log::error("control socket: {}", ctl.error());
    return false;
  }
  ctl_ = std::move(*ctl);
  return true;
}

// The containers' interfaces, when this node has a container prefix. A state
// file that cannot be read leaves the node in the mesh without containers.
void Cluster::setup_containers() {
  auto opened =
      opt_.container_prefix
          ? Containers::open({opt_.ifname, *opt_.container_prefix, opt_.mtu, opt_.container_state},
                             [this](auto c) { program(std::move(c)); })
          : Error{"it has no container-prefix"};
  if (opened) containers_ = std::move(*opened);
  if (opened) return;
  containers_off_ =
      fmt::format("faradayd on {} takes no containers: {}", opt_.ifname, opened.error());
  if (opt_.container_prefix) log::error("containers: {}", opened.error());
}

void Cluster::make_farad_client(const proto::SslCtxPtr& client_ctx) {
  farad_ = std::make_unique<FaradClient>(
      io_, client_ctx,
      FaradClientOptions{.host = opt_.farad_host,
                         .port = opt_.farad_port,
                         .server_name = opt_.farad_name,
                         .node = self_,
                         .join = true,
                         .backoff_max = opt_.reconnect_max,
                         .heartbeat = opt_.heartbeat},
      FaradClient::Callbacks{
          .on_joined = [this](const proto::Joined& j) { on_joined(j); },
          .on_push = [this](const proto::Push& p) { on_push(p); },
          .on_disconnected = [this](const std::string& reason) { on_farad_lost(reason); },
          .on_error =
              [](const proto::Error& e) {
                log::warn("farad: {} {}", proto::Error::Code_Name(e.code()), e.detail());
              },
      });
}

void Cluster::on_joined(const proto::Joined& j) {
  farad_was_up_ = true;
  farad_failure_.clear();
  farad_heartbeat_ms_ = j.heartbeat_ms();
  farad_expiry_ms_ = j.expiry_ms();
  log::info("joined farad at {}:{} as {} (epoch {}, {}; heartbeat {} ms, expiry {} ms)",
            opt_.farad_host, opt_.farad_port, j.name(), j.epoch(),
            j.snapshot() ? "snapshot follows" : "resuming", j.heartbeat_ms(), j.expiry_ms());
}

void Cluster::on_farad_lost(const std::string& reason) {
  if (stopping_) return;
  if (farad_was_up_) {
    log::warn("farad connection lost: {}; reconnecting (peers are kept)", reason);
  } else if (reason != farad_failure_) {
    log::warn("cannot join farad at {}:{}: {}; retrying", opt_.farad_host, opt_.farad_port, reason);
  } else {
    log::debug("farad unreachable: {}", reason);
  }
  farad_was_up_ = false;
  farad_failure_ = reason;
}

// The data path: kernel sockets and a TUN device, or a DPDK port and a TAP.
bool Cluster::open_data_path() {
  if (opt_.dpdk) {
    if (opt_.workers != 0)
      log::warn(
          "workers = {}: ignored with dataplane = \"dpdk\", where dpdk-lcores sets the lcores",
          opt_.workers);
    StandaloneOptions o{.ifname = opt_.ifname, .mtu = opt_.mtu, .aead_backend = opt_.aead};
    int code = 0;
    dp_ = open_dpdk_interface(o, *opt_.dpdk, true, &code);
    return dp_ != nullptr;
  }
  dataplane::PipelineOptions dp_options;
  dp_options.ifname = opt_.ifname;
  dp_options.mtu = opt_.mtu;
  dp_options.listen_port = opt_.listen_port;
  dp_options.aead_backend = opt_.aead;
  dp_options.workers = opt_.workers;
  auto opened = open_interface(dp_options);
  if (!opened) {
    log::error("{}", opened.error());
    return false;
  }
  dp_ = std::move(*opened);
  return true;
}

bool Cluster::setup_interface() {
  if (!open_data_path()) return false;
  uapi::SetRequest key;
  key.private_key = private_key_;
  // Before the data path's thread starts: no race. Only a listen_port change can fail.
  (void)dp_->apply(key);

  auto nl = netlink::Socket::open();
  if (!nl) {
    log::error("{}", nl.error());
    return false;
  }
  nl_.emplace(std::move(*nl));
  for (const Status& done :
       {nl_->set_mtu(opt_.ifname, opt_.mtu), nl_->add_address(opt_.ifname, opt_.overlay),
        nl_->set_up(opt_.ifname, true)}) {
    if (!done) {
      log::error("{}", done.error());
      return false;
    }
  }
  log::info(
      "faradayd node {}: interface {} up, overlay {}, public key {}, UDP port {}, links on "
      "{}, announcing {}",
      name_, opt_.ifname, opt_.overlay.to_string(), crypto::to_base64(public_key_),
      opt_.listen_port, opt_.control_listen.port(), proto::node_info_text(self_));
  return true;
}

void Cluster::program(dataplane::DataPath::Command command) {
  if (backlog_.empty() && dp_->post(command)) return;
  backlog_.push_back(std::move(command));
  if (!backlog_timer_) {
    backlog_timer_ = std::make_unique<boost::asio::steady_timer>(io_);
    flush_backlog();
  }
}

void Cluster::flush_backlog() {
  while (!backlog_.empty() && dp_->post(backlog_.front())) backlog_.pop_front();
  if (backlog_.empty()) {
    backlog_timer_.reset();
    return;
  }
  backlog_timer_->expires_after(std::chrono::milliseconds(5));
  backlog_timer_->async_wait([this](const boost::system::error_code& ec) {
    if (!ec) flush_backlog();
  });
}

void Cluster::on_push(const proto::Push& push) {
  for (const proto::Removal& r : push.removed()) {
    if (!health_.revoke(r.name())) continue;
    log::warn("peer {} revoked by farad ({}: {}); removing it now", r.name(),
              proto::Removal::Reason_Name(r.reason()), r.detail());
    remove_member(r.name());
  }
  for (const proto::Member& m : push.members()) {
    if (m.node().name() == name_) continue;
    upsert(m.node());
  }
}

void Cluster::reload_tls() {
  auto tls = tls_contexts(opt_.tls);
  Result<std::string> name = tls ? certificate_file_name(opt_.tls.cert) : tls.failure();
  if (name && *name != name_) {
    name = Error{fmt::format("{} names {:?}, but this node is {:?}", opt_.tls.cert, *name, name_)};
  }
  if (!name) {
    log::error("TLS reload failed, keeping the previous files: {}", name.error());
    return;
  }
  size_t closed = links_->reload(tls->server, tls->client);
  farad_->set_context(tls->client);
  log::info("TLS files reloaded (CA {}, certificate {}, CRL {}): {} link(s) closed", opt_.tls.ca,
            opt_.tls.cert, opt_.tls.crl.empty() ? "none" : opt_.tls.crl, closed);
}

void Cluster::upsert(const proto::NodeInfo& info) {
  const std::string& name = info.name();
  auto it = members_.find(name);
  if (it != members_.end() && it->second.info.SerializeAsString() == info.SerializeAsString()) {
    // A re-join with the same announcement: nothing to program, but farad has
    // just heard from it, so any silence (and a query in flight about it) ends.
    health_.rejoin(name, Clock::now());
    return;
  }
  std::optional<dataplane::Endpoint> endpoint;
  if (info.underlay_size() > 0) endpoint = to_endpoint(info.underlay(0));
  std::vector<dataplane::Prefix> prefixes;
  for (const auto& p : info.allowed_ips()) {
    if (auto prefix = dataplane::Prefix::parse(proto::prefix_text(p))) prefixes.push_back(*prefix);
  }
  crypto::Key key{};
  std::copy(info.public_key().begin(), info.public_key().end(), key.begin());
  if (key == public_key_) {
    log::warn("member {} announces this node's own public key; ignored", name);
    return;
  }

  bool added = it == members_.end();
  if (added) {
    it = members_.emplace(name, Member{}).first;
  } else if (it->second.key != key) {
    remove_peer(it->second.key);
  }
  Member& m = it->second;
  std::vector<dataplane::Prefix> old_prefixes = std::move(m.prefixes);
  m.info = info;
  m.key = key;
  m.prefixes = prefixes;
  uint64_t generation = health_.add(name, Clock::now());

  program_peer(name, key, endpoint, prefixes, generation);

  for (const auto& p : old_prefixes) {
    if (std::find(prefixes.begin(), prefixes.end(), p) == prefixes.end()) {
      if (Status s = nl_->remove_route(opt_.ifname, p); !s) log::warn("{}", s.error());
    }
  }
  for (const auto& p : prefixes) {
    if (Status s = nl_->add_route(opt_.ifname, p); !s) log::warn("{}", s.error());
  }

  std::optional<boost::asio::ip::tcp::endpoint> control;
  if (info.has_control()) control = tcp_endpoint(info.control());
  links_->add(name, control);
  log::info("peer {} {}: {}", name, added ? "added" : "updated", proto::node_info_text(info));
}

// Programs the member's WireGuard peer into the data path.
void Cluster::program_peer(const std::string& name, const crypto::Key& key,
                           const std::optional<dataplane::Endpoint>& endpoint,
                           const std::vector<dataplane::Prefix>& prefixes, uint64_t generation) {
  uapi::SetRequest req;
  uapi::PeerSet ps;
  ps.public_key = key;
  ps.endpoint = endpoint;
  ps.replace_allowed_ips = true;
  ps.allowed_ips = prefixes;
  // Turning the keepalive on starts a handshake. If both nodes did that at
  // once, the two initiations would cross and each side would drop the answer
  // to its own (as every WireGuard does), costing a 5 s retry; so the node
  // whose name sorts first starts at once and the other a moment later.
  bool first = name_ < name;
  if (opt_.keepalive && first) ps.persistent_keepalive = opt_.keepalive;
  req.peers.push_back(ps);
  program([req, name](dataplane::DataPath& dp) {
    if (auto applied = dp.apply(req, false); !applied)
      log::warn("peer {}: data path refused it: {}", name, applied.error());
  });
  if (opt_.keepalive && !first) {
    auto timer = std::make_shared<boost::asio::steady_timer>(io_, kSecondHandshakeDelay);
    timer->async_wait([this, timer, name, generation, key,
                       alive = std::weak_ptr<int>(alive_)](const boost::system::error_code& ec) {
      if (ec || alive.expired() || stopping_) return;
      const PeerHealth::Peer* peer = health_.find(name);
      if (!peer || peer->generation != generation) return;
      uapi::SetRequest later;
      uapi::PeerSet keepalive;
      keepalive.public_key = key;
      keepalive.update_only = true;
      keepalive.persistent_keepalive = opt_.keepalive;
      later.peers.push_back(keepalive);
      // Peers only: cannot fail (only a listen_port change can).
      program([later](dataplane::DataPath& dp) { (void)dp.apply(later, false); });
    });
  }
}

void Cluster::remove_peer(const crypto::Key& key) {
  uapi::SetRequest req;
  uapi::PeerSet ps;
  ps.public_key = key;
  ps.remove = true;
  req.peers.push_back(ps);
  // Peers only: cannot fail (only a listen_port change can).
  program([req](dataplane::DataPath& dp) { (void)dp.apply(req, false); });
}

void Cluster::remove_member(const std::string& name) {
  auto it = members_.find(name);
  if (it == members_.end()) return;
  Member& m = it->second;
  remove_peer(m.key);
  for (const auto& p : m.prefixes) {
    if (Status s = nl_->remove_route(opt_.ifname, p); !s) log::warn("{}", s.error());
  }
  links_->remove(name);
  members_.erase(it);
  log::info("peer {} removed", name);
}

// The peer's link tells the rule when it last heard it.
void Cluster::note_heard(const std::string& name) {
  auto view = links_->view(name);
  if (view && view->last_heard) health_.heard(name, *view->last_heard);
}

void Cluster::check_silence() {
  for (const auto& entry : members_) note_heard(entry.first);
  for (const PeerHealth::Action& a : health_.tick(Clock::now())) {
    double seconds = std::chrono::duration<double>(a.silence).count();
    switch (a.kind) {
      case PeerHealth::Action::Kind::kHeardAgain:
        log::info("peer {} heard again after {:.1f} s of silence", a.name, seconds);
        break;
      case PeerHealth::Action::Kind::kAsk: {
        auto view = links_->view(a.name);
        log::info("peer {} silent for {:.1f} s (link {}{}); asking farad", a.name, seconds,
                  view ? link_state_name(view->state) : "none",
                  view && !view->last_error.empty() ? ": " + view->last_error : "");
        ask_farad(a.query);
        break;
      }
      case PeerHealth::Action::Kind::kAskAgain:
        log::debug("peer {} still silent ({:.1f} s); asking farad again", a.name, seconds);
        ask_farad(a.query);
        break;
    }
  }
}

void Cluster::ask_farad(const PeerHealth::Query& query) {
  // The answer is handled inside the client's callback, in the order farad
  // sent it: a push of the same member (a re-join) that follows it on the
  // connection finds the removal already done, never the other way round.
  farad_->query(query.name,
                [this, query, alive = std::weak_ptr<int>(alive_)](const FaradClient::Reply& reply) {
                  if (!alive.expired()) on_answer(query, reply);
                });
}

void Cluster::on_answer(const PeerHealth::Query& query, const FaradClient::Reply& reply) {
  if (stopping_) return;
  const std::string& name = query.name;
  note_heard(name);
  auto decision = health_.answer(query, {reply.ok, reply.state, reply.error}, Clock::now());
  switch (decision.outcome) {
    case PeerHealth::Outcome::kStale:
    case PeerHealth::Outcome::kCount:
      break;
    case PeerHealth::Outcome::kUnreachable:
      if (decision.changed)
        log::info("cannot ask farad about {} ({}); keeping peer {}", name, reply.error, name);
      break;
    case PeerHealth::Outcome::kKeep:
      if (decision.changed)
        log::info("farad: {} is {}; keeping peer {}", name, state_name(reply.state), name);
      break;
    case PeerHealth::Outcome::kKeepHeardOnLink:
      log::info("farad: {} is ABSENT but it was heard on its link since; keeping peer {}", name,
                name);
      break;
    case PeerHealth::Outcome::kKeepHeardAgain:
      log::info("farad: {} is ABSENT but it was heard again meanwhile; keeping peer {}", name,
                name);
      break;
    case PeerHealth::Outcome::kRemove:
      log::info("farad: {} is ABSENT; removing peer {}", name, name);
      remove_member(name);
      break;
  }
}

void Cluster::on_status(const CtlRequest& req, CtlServer::Reply reply) {
  if (!req.args.empty()) {
    reply(json{{"error", "status takes no arguments"}}.dump());
    return;
  }
  // The WireGuard side (endpoints, handshakes, bytes) comes from the data
  // path's thread; the answer is built back on this one.
  program([this, reply, alive = std::weak_ptr<int>(alive_)](dataplane::DataPath& dp) {
    uapi::DeviceState state = dp.state();
    boost::asio::post(io_, [this, reply, alive, state = std::move(state)] {
      if (!alive.expired()) reply(status_json(state).dump());
    });
  });
}

void Cluster::on_query(const CtlRequest& req, CtlServer::Reply reply) {
  if (req.args.size() != 1 || !proto::valid_node_name(req.args[0])) {
    reply(json{{"error", "usage: query NAME (a valid node name)"}}.dump());
    return;
  }
  const std::string name = req.args[0];
  farad_->query(name, [name, reply](const FaradClient::Reply& r) {
    if (!r.ok) {
      reply(json{{"error", "farad: " + r.error}}.dump());
    } else {
      reply(json{{"name", name}, {"state", state_name(r.state)}}.dump());
    }
  });
}

json Cluster::status_json(const uapi::DeviceState& device) const {
  auto now = Clock::now();
  timespec wall;
  clock_gettime(CLOCK_REALTIME, &wall);
  json j;
  j["node"] = name_;
  j["interface"] = opt_.ifname;
  j["public_key"] = crypto::to_base64(public_key_);
  j["listen_port"] = device.listen_port;
  j["overlay"] = opt_.overlay.to_string();
  j["allowed_ips"] = json::array();
  for (const auto& p : self_.allowed_ips()) j["allowed_ips"].push_back(proto::prefix_text(p));
  j["underlay"] = json::array();
  for (const auto& ep : self_.underlay()) j["underlay"].push_back(proto::endpoint_text(ep));
  j["control"] = proto::endpoint_text(self_.control());
  j["farad"] = {
      {"address", fmt::format("{}:{}", opt_.farad_host, opt_.farad_port)},
      {"state", client_state_name(farad_->state())},
      {"joined", farad_->joined()},
      {"epoch", farad_->epoch()},
      {"cursor", farad_->cursor()},
      {"last_error", farad_->last_error()},
      {"heartbeat_s", farad_heartbeat_ms_ / 1000.0},
      {"expiry_s", farad_expiry_ms_ / 1000.0},
  };
  j["peers"] = json::array();
  for (const auto& [name, m] : members_) {
    json p;
    p["name"] = name;
    p["public_key"] = crypto::to_base64(m.key);
    p["allowed_ips"] = json::array();
    for (const auto& prefix : m.prefixes) p["allowed_ips"].push_back(prefix.to_string());
    p["control"] = m.info.has_control() ? proto::endpoint_text(m.info.control()) : "";
    p["endpoint"] = nullptr;
    p["handshake_age_s"] = nullptr;
    p["rx_bytes"] = 0;
    p["tx_bytes"] = 0;
    for (const uapi::PeerState& ps : device.peers) {
      if (ps.public_key != m.key) continue;
      if (ps.endpoint) p["endpoint"] = ps.endpoint->to_string();
      if (ps.last_handshake_sec != 0 || ps.last_handshake_nsec != 0) {
        p["handshake_age_s"] = static_cast<double>(wall.tv_sec - ps.last_handshake_sec) +
                               (wall.tv_nsec - ps.last_handshake_nsec) / 1e9;
      }
      p["rx_bytes"] = ps.rx_bytes;
      p["tx_bytes"] = ps.tx_bytes;
    }
    auto view = links_->view(name);
    p["link"] = view ? link_state_name(view->state) : "down";
    p["link_error"] = view ? view->last_error : "";
    p["ping_rtt_ms"] = view && view->rtt ? json(view->rtt->count() / 1e6) : json(nullptr);
    p["last_heard_s"] =
        view && view->last_heard ? json(seconds_since(*view->last_heard, now)) : json(nullptr);
    const PeerHealth::Peer* health = health_.find(name);
    p["silent"] = health && health->silent;
    p["farad_says"] = state_name(health ? health->farad_says : proto::STATE_UNSPECIFIED);
    j["peers"].push_back(std::move(p));
  }
  return j;
}

void Cluster::shutdown(const std::string& why) {
  if (stopping_) return;
  stopping_ = true;
  log::info("{}: leaving the cluster", why);
  tick_.cancel();
  if (!farad_->joined()) {
    finish_shutdown();
    return;
  }
  leave_timer_ = std::make_unique<boost::asio::steady_timer>(io_, kLeaveTimeout);
  leave_timer_->async_wait([this](const boost::system::error_code& ec) {
    if (ec) return;
    log::warn("farad did not acknowledge leaving within {} s", kLeaveTimeout.count());
    finish_shutdown();
  });
  farad_->leave([this](const FaradClient::Reply& r) {
    if (r.ok) {
      log::info("left farad");
    } else {
      log::warn("leaving farad: {}", r.error);
    }
    boost::asio::post(io_, [this] { finish_shutdown(); });
  });
}

void Cluster::finish_shutdown() {
  if (finished_) return;
  finished_ = true;
  if (leave_timer_) leave_timer_->cancel();
  farad_->stop();
  links_->stop();
  ctl_.reset();
  signals_.cancel();
  io_.stop();
}

// SIGUSR1: every counter this node keeps, one line per component.
void Cluster::log_counters() {
  const auto& c = links_->counters();
  log::info(
      "links: accepted={} dials={} established={} refused_unknown={} refused_tls={} "
      "closed_untrusted={} bad_frames={} pings_sent={} pongs_received={}",
      c.accepted, c.dials, c.established, c.refused_unknown, c.refused_tls, c.closed_untrusted,
      c.bad_frames, c.pings_sent, c.pongs_received);
  const auto& f = farad_->stats();
  log::info(
      "farad client: connects={} established={} joins={} snapshots={} pushes={} members={} "
      "removals={} invalid_members={} heartbeats={} bad_frames={}",
      f.connects, f.established, f.joins, f.snapshots, f.pushes, f.members, f.removals,
      f.invalid_members, f.heartbeats, f.bad_frames);
  const auto& k = ctl_->counters();
  std::string rejected;
  for (size_t i = 0; i < k.rejected.size(); ++i) {
    rejected +=
        fmt::format(" rejected.{}={}", proto::to_string(static_cast<CtlReject>(i)), k.rejected[i]);
  }
  log::info("control socket: connections={} requests={}{}", k.connections, k.requests, rejected);
  program([](dataplane::DataPath& dp) { dp.log_stats(true); });
}

int Cluster::run() {
  signal(SIGPIPE, SIG_IGN);
  if (!setup()) return 1;
  signals_.add(SIGINT);
  signals_.add(SIGTERM);
  signals_.add(SIGUSR1);
  signals_.add(SIGHUP);
  std::function<void(const boost::system::error_code&, int)> on_signal =
      [&](const boost::system::error_code& ec, int sig) {
        if (ec) return;
        if (sig == SIGHUP) {
          reload_tls();
        } else if (sig == SIGUSR1) {
          log_counters();
        } else {
          shutdown(fmt::format("signal {}", strsignal(sig)));
          return;
        }
        signals_.async_wait(on_signal);
      };
  signals_.async_wait(on_signal);

  // The data path's thread; if it stops on its own (interface deleted), so do we.
  dp_thread_ = std::thread([this] {
    // Signals are the control thread's (Asio's signal_set); keep them off this one.
    sigset_t mask;
    sigemptyset(&mask);
    for (int sig : {SIGINT, SIGTERM, SIGUSR1, SIGHUP}) sigaddset(&mask, sig);
    pthread_sigmask(SIG_BLOCK, &mask, nullptr);
    dataplane::DataPath::Exit exit = dp_->run();
    if (exit != dataplane::DataPath::Exit::kStopped) {
      boost::asio::post(io_, [this, exit] {
        if (exit == dataplane::DataPath::Exit::kError) exit_code_ = 1;
        shutdown("the data path stopped");
      });
    }
  });

  farad_->start();
  std::function<void()> tick = [&] {
    check_silence();
    tick_.expires_after(std::max<std::chrono::milliseconds>(opt_.ping_interval / 2, 50ms));
    tick_.async_wait([&](const boost::system::error_code& ec) {
      if (!ec && !stopping_) tick();
    });
  };
  tick();
  io_.run();

  dp_->stop();
  dp_thread_.join();
  size_t peers = members_.size();
  dp_.reset();  // closes the TUN device: the interface, its address and routes go with it
  log::info("stopped: {} peers dropped, interface {} removed", peers, opt_.ifname);
  return exit_code_;
}

}  // namespace

int run_cluster(const ClusterOptions& options) {
  return Cluster(options).run();
}

}  // namespace faraday::control
