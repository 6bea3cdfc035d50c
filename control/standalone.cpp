#include "control/standalone.h"

#include <poll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <memory>
#include <optional>
#include <string>

#include "control/log.h"
#include "control/uapi.h"
#include "crypto/aead_batch.h"
#include "dataplane/device.h"
#include "dataplane/tun_port.h"
#include "dataplane/udp_port.h"

namespace faraday::control {

namespace {

using namespace dataplane;

// How long a full socket or TUN queue may hold the loop before the rest of a
// burst is dropped (counted by the port).
constexpr int kBackpressureWaitMs = 5;
constexpr int kBackpressureTries = 20;

class Standalone {
 public:
  explicit Standalone(const StandaloneOptions& options) : options_(options) {}
  ~Standalone() {
    if (signal_fd_ >= 0) close(signal_fd_);
  }
  int run();

 private:
  bool setup();
  void on_tun();
  void on_udp();
  void flush_outbox();
  void send_udp(std::span<Packet> pkts);
  void write_tun(std::span<Packet> pkts);
  bool on_signal();  // false: stop
  std::optional<uapi::Error> apply(const uapi::SetRequest& req);
  uapi::DeviceState state() const;
  void log_stats(bool force);
  void apply_fwmark();

  StandaloneOptions options_;
  SystemClock clock_;
  std::unique_ptr<crypto::AeadBackend> aead_;
  std::unique_ptr<Device> dev_;
  std::optional<TunPort> tun_;
  std::optional<UdpPort> udp_;
  std::unique_ptr<uapi::Server> uapi_;
  uint32_t fwmark_ = 0;
  int signal_fd_ = -1;
  PacketArena tun_rx_{kBurstSize};
  PacketArena udp_rx_{kBurstSize};
  std::array<Verdict, kBurstSize> verdicts_{};
  std::array<Packet, kBurstSize> out_{};
  Counters logged_;
  Nanos last_stats_ = 0;
};

bool Standalone::setup() {
  std::string error;
  aead_ = crypto::select_aead_backend(options_.aead_backend, &error);
  if (!aead_) {
    log::error("AEAD backend: {}", error);
    return false;
  }
  DeviceOptions dev_options;
  dev_options.mtu = options_.mtu;
  dev_ = std::make_unique<Device>(clock_, *aead_, dev_options);

  auto tun = TunPort::open(options_.ifname, options_.mtu);
  if (auto* e = std::get_if<std::string>(&tun)) {
    log::error("cannot create interface {}: {}", options_.ifname, *e);
    return false;
  }
  tun_.emplace(std::move(std::get<TunPort>(tun)));

  auto udp = UdpPort::open(0);
  if (auto* e = std::get_if<std::string>(&udp)) {
    log::error("cannot open UDP socket: {}", *e);
    return false;
  }
  udp_.emplace(std::move(std::get<UdpPort>(udp)));

  auto server = uapi::Server::listen(
      tun_->name(), [this] { return state(); },
      [this](const uapi::SetRequest& r) { return apply(r); });
  if (auto* e = std::get_if<uapi::Error>(&server)) {
    log::error("cannot serve the UAPI for {}: {}", tun_->name(), e->message);
    return false;
  }
  uapi_ = std::move(std::get<std::unique_ptr<uapi::Server>>(server));

  sigset_t mask;
  sigemptyset(&mask);
  for (int sig : {SIGTERM, SIGINT, SIGHUP, SIGUSR1}) sigaddset(&mask, sig);
  sigprocmask(SIG_BLOCK, &mask, nullptr);
  signal_fd_ = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
  if (signal_fd_ < 0) {
    log::error("signalfd: {}", std::strerror(errno));
    return false;
  }
  log::info("interface {} up: mtu {}, UDP port {}{}, AEAD {}, UAPI {}", tun_->name(), options_.mtu,
            udp_->port(), udp_->dual_stack() ? " (IPv4+IPv6)" : " (IPv4 only)", aead_->name(),
            uapi_->path());
  return true;
}

uapi::DeviceState Standalone::state() const {
  uapi::DeviceState s;
  if (dev_->identity().present) s.private_key = dev_->identity().private_key;
  s.listen_port = udp_->port();
  s.fwmark = fwmark_;
  for (const Peer* p : dev_->peers()) {
    uapi::PeerState ps;
    ps.public_key = p->public_key;
    ps.preshared_key = p->handshake.preshared_key;
    if (p->endpoint.valid()) ps.endpoint = p->endpoint;
    ps.persistent_keepalive = p->persistent_keepalive;
    ps.allowed_ips = dev_->allowed_ips(*p);
    ps.last_handshake_sec = p->last_handshake_wall / kSecond;
    ps.last_handshake_nsec = p->last_handshake_wall % kSecond;
    ps.rx_bytes = p->rx_bytes;
    ps.tx_bytes = p->tx_bytes;
    s.peers.push_back(std::move(ps));
  }
  return s;
}

void Standalone::apply_fwmark() {
  if (setsockopt(udp_->fd(), SOL_SOCKET, SO_MARK, &fwmark_, sizeof(fwmark_)) != 0)
    log::warn("cannot set fwmark {}: {}", fwmark_, std::strerror(errno));
}

std::optional<uapi::Error> Standalone::apply(const uapi::SetRequest& req) {
  if (req.private_key) {
    dev_->set_private_key(crypto::is_zero(*req.private_key) ? std::nullopt : req.private_key);
    if (dev_->identity().present)
      log::info("private key set; public key {}", crypto::to_base64(dev_->identity().public_key));
    else
      log::info("private key cleared");
  }
  if (req.listen_port && *req.listen_port != udp_->port()) {
    auto udp = UdpPort::open(*req.listen_port);
    if (auto* e = std::get_if<std::string>(&udp))
      return uapi::Error{EADDRINUSE, "listen port " + std::to_string(*req.listen_port) + ": " + *e,
                         uapi::Reject::kApplyFailed};
    udp_.emplace(std::move(std::get<UdpPort>(udp)));
    if (fwmark_ != 0) apply_fwmark();
    log::info("listening on UDP port {}", udp_->port());
  }
  if (req.fwmark && *req.fwmark != fwmark_) {
    fwmark_ = *req.fwmark;
    apply_fwmark();
  }
  if (req.replace_peers) {
    dev_->remove_all_peers();
    log::info("all peers removed");
  }
  for (const uapi::PeerSet& ps : req.peers) {
    std::string name = crypto::to_base64(ps.public_key);
    if (ps.remove) {
      if (dev_->find_peer(ps.public_key)) log::info("peer {} removed", name);
      dev_->remove_peer(ps.public_key);
      continue;
    }
    Peer* peer = dev_->find_peer(ps.public_key);
    if (!peer) {
      if (ps.update_only) continue;
      peer = dev_->add_peer(ps.public_key);
      if (!peer) {
        log::warn("peer {} ignored: it is this interface's own public key", name);
        continue;
      }
      log::info("peer {} added", name);
    }
    if (ps.preshared_key) dev_->set_preshared_key(*peer, *ps.preshared_key);
    if (ps.endpoint) dev_->set_endpoint(*peer, *ps.endpoint);
    if (ps.replace_allowed_ips) dev_->clear_allowed_ips(*peer);
    for (const Prefix& prefix : ps.allowed_ips) dev_->add_allowed_ip(*peer, prefix);
    if (ps.persistent_keepalive) dev_->set_persistent_keepalive(*peer, *ps.persistent_keepalive);
  }
  flush_outbox();
  return std::nullopt;
}

void Standalone::send_udp(std::span<Packet> pkts) {
  size_t done = 0;
  for (int tries = 0; done < pkts.size(); ++tries) {
    done += udp_->send_burst(pkts.subspan(done));
    if (done == pkts.size() || tries == kBackpressureTries) break;
    pollfd p{udp_->fd(), POLLOUT, 0};
    poll(&p, 1, kBackpressureWaitMs);
  }
}

void Standalone::write_tun(std::span<Packet> pkts) {
  size_t done = 0;
  for (int tries = 0; done < pkts.size(); ++tries) {
    done += tun_->write_burst(pkts.subspan(done));
    if (done == pkts.size() || tries == kBackpressureTries) break;
    pollfd p{tun_->fd(), POLLOUT, 0};
    poll(&p, 1, kBackpressureWaitMs);
  }
}

void Standalone::flush_outbox() {
  auto box = dev_->outbox();
  if (!box.empty()) send_udp(box);
  dev_->clear_outbox();
}

void Standalone::on_tun() {
  for (int round = 0; round < 8; ++round) {
    auto pkts = tun_rx_.packets();
    size_t n = tun_->read_burst(pkts);
    if (n == 0) break;
    dev_->send_burst(pkts.first(n), verdicts_);
    size_t out = 0;
    for (size_t i = 0; i < n; ++i)
      if (verdicts_[i] == Verdict::kPass) out_[out++] = pkts[i];
    flush_outbox();  // handshakes first: they may carry what the data waits for
    send_udp({out_.data(), out});
    if (n < pkts.size()) break;
  }
}

void Standalone::on_udp() {
  for (int round = 0; round < 8; ++round) {
    auto pkts = udp_rx_.packets();
    size_t n = udp_->recv_burst(pkts);
    if (n == 0) break;
    dev_->receive_burst(pkts.first(n), verdicts_);
    size_t out = 0;
    for (size_t i = 0; i < n; ++i)
      if (verdicts_[i] == Verdict::kPass) out_[out++] = pkts[i];
    write_tun({out_.data(), out});
    flush_outbox();
    if (n < pkts.size()) break;
  }
}

void Standalone::log_stats(bool force) {
  const Counters& c = dev_->counters();
  Nanos now = clock_.monotonic();
  bool changed = c.drops != logged_.drops || c.handshakes_completed != logged_.handshakes_completed;
  if (!force && (!changed || now - last_stats_ < Nanos{options_.stats_interval_s} * kSecond))
    return;
  std::string drops;
  for (size_t i = 0; i < c.drops.size(); ++i)
    if (c.drops[i] != 0)
      drops += fmt::format(" {}={}", drop_name(static_cast<Drop>(i)), c.drops[i]);
  log::info(
      "stats: rx_datagrams={} rx_data={} tx_data={} handshakes={} cookies_sent={} "
      "dropped={}{}",
      c.rx_datagrams, c.rx_data, c.tx_data, c.handshakes_completed, c.cookies_sent,
      c.dropped_total(), drops);
  const auto& u = udp_->counters();
  const auto& t = tun_->counters();
  if (force)
    log::info(
        "ports: udp rx={} tx={} tx_errors={} tx_full={} rx_truncated={}; tun rx={} tx={} "
        "tx_errors={}",
        u.rx_packets, u.tx_packets, u.tx_errors, u.tx_full, u.rx_truncated, t.rx_packets,
        t.tx_packets, t.tx_errors);
  logged_ = c;
  last_stats_ = now;
}

bool Standalone::on_signal() {
  signalfd_siginfo info;
  while (read(signal_fd_, &info, sizeof(info)) == sizeof(info)) {
    if (info.ssi_signo == SIGUSR1) {
      log_stats(true);
      continue;
    }
    log::info("signal {} received, shutting down", strsignal(static_cast<int>(info.ssi_signo)));
    return false;
  }
  return true;
}

int Standalone::run() {
  if (!setup()) return 1;
  std::vector<pollfd> fds;
  Nanos last_check = clock_.monotonic();
  for (;;) {
    fds.clear();
    fds.push_back({tun_->fd(), POLLIN, 0});
    fds.push_back({udp_->fd(), POLLIN, 0});
    fds.push_back({signal_fd_, POLLIN, 0});
    uapi_->append_pollfds(fds);
    Nanos now = clock_.monotonic();
    Nanos wait = std::min<Nanos>(dev_->next_deadline() - now, kSecond);
    int timeout_ms = wait <= 0 ? 0 : static_cast<int>((wait + kMillisecond - 1) / kMillisecond);
    if (poll(fds.data(), fds.size(), timeout_ms) < 0 && errno != EINTR) {
      log::error("poll: {}", std::strerror(errno));
      return 1;
    }
    if (fds[2].revents & POLLIN && !on_signal()) break;
    if (fds[1].revents & POLLIN) on_udp();
    if (fds[0].revents & POLLIN) on_tun();
    uapi_->handle();
    if (dev_->next_deadline() <= clock_.monotonic()) {
      dev_->tick();
      flush_outbox();
    }
    now = clock_.monotonic();
    if ((fds[0].revents & (POLLERR | POLLHUP)) || now - last_check >= kSecond) {
      last_check = now;
      if (!tun_->exists()) {
        log::info("interface {} was deleted, shutting down", tun_->name());
        break;
      }
      if (!uapi_->socket_file_present()) {
        log::info("UAPI socket {} was removed, shutting down", uapi_->path());
        break;
      }
      log_stats(false);
    }
  }
  log_stats(true);
  uapi_.reset();
  dev_.reset();
  log::info("stopped");
  return 0;
}

}  // namespace

int run_standalone(const StandaloneOptions& options) {
  return Standalone(options).run();
}

}  // namespace faraday::control
