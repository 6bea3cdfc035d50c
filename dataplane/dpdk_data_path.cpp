// dpdk_data_path.cpp: see dpdk_data_path.h.
#include "dataplane/dpdk_data_path.h"

#include <fmt/format.h>
#include <net/if.h>
#include <pthread.h>
#include <rte_ethdev.h>
#include <rte_lcore.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "dataplane/rcu.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <string_view>
#include <system_error>

namespace faraday::dataplane::dpdk {

namespace {

// " frame_not_for_us=3 ..." for the reasons that are not zero, each name
// after `prefix`; their sum in *total.
std::string drops_text(const std::array<Counter, static_cast<size_t>(FrameDrop::kCount)>& drops,
                       std::string_view prefix, uint64_t* total) {
  std::string text;
  *total = 0;
  for (size_t r = 0; r < drops.size(); ++r) {
    *total += drops[r];
    if (drops[r] != 0)
      text += fmt::format(" {}{}={}", prefix, frame_drop_name(static_cast<FrameDrop>(r)), drops[r]);
  }
  return text;
}

// The kernel interface's MAC address (zero if it cannot be read).
MacAddress kernel_mac(const std::string& ifname) {
  MacAddress mac{};
  ifreq ifr{};
  std::strncpy(ifr.ifr_name, ifname.c_str(), IFNAMSIZ - 1);
  const int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd >= 0 && ioctl(fd, SIOCGIFHWADDR, &ifr) == 0)
    std::memcpy(mac.data(), ifr.ifr_hwaddr.sa_data, mac.size());
  if (fd >= 0) close(fd);
  return mac;
}

const char* inner_name(InnerKind kind) {
  switch (kind) {
    case InnerKind::kTap:
      return "tap";
    case InnerKind::kTun:
      return "tun";
    case InnerKind::kVhost:
      return "vhost-user";
  }
  return "?";
}

}  // namespace

Result<std::unique_ptr<DpdkDataPath>> DpdkDataPath::open(DataPathOptions options) {
  std::unique_ptr<DpdkDataPath> dp(new DpdkDataPath(std::move(options)));
  if (dp->inbox_.fd() < 0)
    return Error{fmt::format("eventfd: {}", std::strerror(dp->inbox_.error()))};
  if (Result<void> opened = dp->open_parts(); !opened) return opened.failure();
  return dp;
}

DpdkDataPath::~DpdkDataPath() {
  services_.clear();
  vhost_queues_.reset();  // its rings' mbufs go back while their pools are there
  if (underlay_) underlay_->close();
  if (inner_) inner_->close();
  lcores_.clear();
  dev_.reset();  // its workers' AEAD backends go after it
}

// The ports (a queue pair per lcore), the core and the lcores.
Result<void> DpdkDataPath::open_parts() {
  const DataPathOptions& o = options_;
  unsigned id = 0;
  RTE_LCORE_FOREACH_WORKER(id) {
    worker_ids_.push_back(id);
  }
  const auto lcores = static_cast<uint16_t>(worker_ids_.size() + 1);
  const std::string hint =
      lcores > 1 ? " (a queue pair per --dpdk-lcores CPU; net_af_packet takes qpairs=N)" : "";
  auto underlay = Port::open({.device = o.underlay_device, .queues = lcores});
  if (!underlay) return Error{underlay.error() + hint};
  underlay_ = std::move(*underlay);
  auto inner = Port::open({.device = o.inner_device, .queues = lcores});
  if (!inner) return Error{inner.error() + hint};
  inner_ = std::move(*inner);
  if (o.inner == InnerKind::kVhost && lcores > 1) {
    auto queues = VhostQueues::watch(inner_->id(), lcores);
    if (!queues) return queues.failure();
    vhost_queues_ = std::move(*queues);
  }
  if (o.inner != InnerKind::kVhost) {  // a vhost-user application sets its own
    if (int rc = rte_eth_dev_set_mtu(inner_->id(), static_cast<uint16_t>(o.mtu)); rc != 0)
      log(LogLevel::kWarn, "interface {}: cannot set MTU {}: {}", o.ifname, o.mtu,
          std::strerror(-rc));
  }
  uint16_t underlay_mtu = 0;
  if (rte_eth_dev_get_mtu(underlay_->id(), &underlay_mtu) == 0 &&
      o.mtu + kUnderlayOverhead > underlay_mtu)
    log(LogLevel::kWarn,
        "mtu {} needs an underlay MTU of {}; {} has {}: larger packets will not arrive", o.mtu,
        o.mtu + kUnderlayOverhead, underlay_->name(), underlay_mtu);
  auto aead = crypto::select_aead_backend(o.aead_backend);
  if (!aead) return Error{"AEAD: " + aead.error()};
  aead_ = std::move(*aead);
  for (uint16_t q = 0; q < lcores; ++q) {
    std::unique_ptr<crypto::AeadBackend> own = aead_.make();
    if (!own)
      return Error{fmt::format("AEAD: cannot make a {} backend for lcore {}", aead_.backend->name(),
                               q == 0 ? rte_get_main_lcore() : worker_ids_[q - 1])};
    lcore_aeads_.push_back(std::move(own));
  }
  dev_ = std::make_unique<Device>(clock_, *lcore_aeads_[0], DeviceOptions{.mtu = o.mtu});
  UnderlayAddress self = o.self;
  self.mac = underlay_->mac();
  if (lcores > 1) {
    board_ = std::make_unique<NewsBoard>(lcores);
    // An lcore with nothing of its own takes turns on the others' queues:
    // one tunnel's bursts, which the ports keep on one queue, then use every
    // lcore that is free (dpdk_lcore.h).
    turns_ = std::make_unique<QueueTurns[]>(lcores);
    underlay_->share_tx();
    inner_->share_tx();
  }
  containers_ = std::make_unique<ContainerPorts>(o.mtu);
  for (uint16_t q = 0; q < lcores; ++q) {
    Worker* worker = q > 0 ? &dev_->add_worker(*lcore_aeads_[q]) : nullptr;
    links_.push_back(std::make_unique<UnderlayLink>(self));
    lcores_.push_back(
        std::make_unique<Lcore>(*dev_, clock_, *inner_, *underlay_, *links_.back(), q, worker));
    if (board_) lcores_.back()->set_news(board_.get(), q);
    if (turns_) lcores_.back()->set_turns({turns_.get(), lcores});
    if (vhost_queues_) lcores_.back()->set_vhost_queues(vhost_queues_.get());
    lcores_.back()->set_containers(containers_->table());
  }
  if (lcores > 1) lcores_[0]->serve_workers();
  if (lcores > 1 && o.idle_sleep_us != 0) {
    // What a worker hands over wakes the first lcore from an idle wait.
    dev_->set_wake(CommandInbox::wake, &inbox_);
  }
  if (o.inner != InnerKind::kTun) attach_inner_links();
  return {};
}

// The L2 side of a TAP or a vhost-user socket: faradayd's MAC address on it is
// the port's, unless that is the kernel interface's own (then one next to it,
// locally administered). A TAP hands over every frame the host sends, whatever
// its destination, and so does net_vhost. A vhost-user application's MAC is
// learnt from its first frame.
void DpdkDataPath::attach_inner_links() {
  const bool vhost = options_.inner == InnerKind::kVhost;
  const MacAddress host = vhost ? MacAddress{} : kernel_mac(options_.ifname);
  MacAddress ours = inner_->mac();
  if (ours == host) {
    ours[0] = static_cast<uint8_t>((ours[0] | 0x02) & ~0x01);
    ours[5] ^= 0x01;
  }
  for (auto& lcore : lcores_) {
    inner_links_.push_back(std::make_unique<InnerLink>(ours, host));
    if (lcores_.size() > 1) inner_links_.back()->share_host(&inner_host_);
    lcore->set_inner_link(inner_links_.back().get());
  }
  if (vhost)
    log(LogLevel::kInfo,
        "interface {}: a vhost-user socket with {} queue pair{}; faradayd answers ARP and ND on "
        "it as {}{}",
        options_.ifname, lcores_.size(), lcores_.size() == 1 ? "" : "s", mac_to_string(ours),
        vhost_queues_ ? "; an application that enables fewer gets the other lcores' packets "
                        "through the ones it receives on"
                      : "");
  else
    log(LogLevel::kInfo,
        "interface {}: a TAP; faradayd answers ARP and ND on it as {} (the host is {})",
        options_.ifname, mac_to_string(ours), mac_to_string(host));
}

std::string DpdkDataPath::summary() const {
  const size_t n = lcores_.size();
  return fmt::format(
      "mtu {}, DPDK underlay {} ({}, MAC {}), UDP port {}, a {} inner side, AEAD {}, {} lcore{} "
      "(a queue pair each{}), {}",
      options_.mtu, underlay_->name(), underlay_->driver(), mac_to_string(underlay_->mac()),
      options_.self.port, inner_name(options_.inner), aead_.backend->describe(), n,
      n == 1 ? "" : "s", turns_ ? "; an idle lcore takes turns on the busy ones' queues" : "",
      options_.idle_sleep_us == 0
          ? std::string{"polling all the time"}
          : fmt::format("waiting up to {} us when idle", options_.idle_sleep_us));
}

void DpdkDataPath::watch(int fd, std::function<bool()> on_ready) {
  watched_.emplace_back(fd, std::move(on_ready));
}

void DpdkDataPath::attach(std::unique_ptr<PollService> service) {
  services_.push_back(std::move(service));
}

bool DpdkDataPath::post(Command command) {
  return inbox_.post(std::move(command));
}

void DpdkDataPath::stop() {
  inbox_.stop();
}

Result<void, ApplyError> DpdkDataPath::apply(const ConfigUpdate& req, bool log_peers) {
  if (req.listen_port && *req.listen_port != options_.self.port)
    return ApplyError{EINVAL,
                      fmt::format("listen-port is fixed at {} on a DPDK port", options_.self.port)};
  if (req.fwmark && *req.fwmark != 0) return ApplyError{EINVAL, "no fwmark on a DPDK port"};
  apply_to_device(*dev_, req, log_peers, options_.log);
  return {};
}

DeviceState DpdkDataPath::state() const {
  return device_state(*dev_, options_.self.port, 0);
}

void DpdkDataPath::log_stats(bool force) {
  const Counters& c = dev_->counters();
  const Nanos now = clock_.monotonic();
  const bool changed =
      c.drops != logged_.drops || c.handshakes_completed != logged_.handshakes_completed;
  if (force || (changed && now - last_stats_ >= Nanos{options_.stats_interval_s} * kSecond)) {
    log(LogLevel::kInfo, "stats: {}", stats_text(c));
    logged_ = c;
    last_stats_ = now;
  }
  if (!force) return;
  for (size_t i = 0; i < lcores_.size(); ++i) log_ports(i);
  for (auto& s : services_) s->log_stats(true);
}

// An lcore's share of the ports' and the links' counters, after the "stats:"
// line on SIGUSR1 and at exit: the first lcore's line has the device's own
// (frames its RX ring had no room for) and its table's neighbours; the
// others' say "lcore N". With several lcores, each says how many bursts it
// read from the others' queues on its turns, and what its queue of each port
// received (whichever lcore read it).
void DpdkDataPath::log_ports(size_t i) const {
  const Lcore& lcore = *lcores_[i];
  const UnderlayLink::Counters& l = links_[i]->counters();
  uint64_t dropped = 0;
  const std::string drops = drops_text(l.drops, "", &dropped);
  const Receive::Counters& rx = lcore.receive().counters();
  const Transmit::Counters& tx = lcore.transmit().counters();
  const Lcore::Counters& c = lcore.counters();
  std::string tap_text;
  if (!inner_links_.empty()) {
    const InnerLink& tap = *inner_links_[i];
    uint64_t tap_dropped = 0;
    const std::string tap_drops = drops_text(tap.counters().drops, "inner_", &tap_dropped);
    tap_text = fmt::format(
        " inner_packets={} inner_answers={} inner_answers_lost={} inner_ignored={} "
        "inner_chained={} inner_frames_dropped={}{}",
        tap.counters().packets, tap.counters().answers, c.inner_answers_lost,
        tap.counters().ignored, c.inner_chained, tap_dropped, tap_drops);
  }
  if (vhost_queues_)
    tap_text += fmt::format(" inner_handed={} inner_handed_lost={} inner_receiving={:#x}",
                            c.inner_handed, c.inner_handed_lost, vhost_queues_->receiving());
  std::string head;
  if (i == 0) {
    rte_eth_stats device{};
    rte_eth_stats_get(underlay_->id(), &device);
    head = fmt::format("rx_missed={} ", device.imissed);
  }
  std::string shared =
      board_ ? fmt::format("heard={} news_lost={} ", l.heard, l.news_lost + board_->lost(i)) : "";
  if (turns_) {
    // Which lcore took a queue's packets says little with turns: what each
    // queue received, from the ports' own counts, says how the flows spread.
    rte_eth_stats u{}, in{};
    const bool counted = i < RTE_ETHDEV_QUEUE_STAT_CNTRS &&
                         rte_eth_stats_get(underlay_->id(), &u) == 0 &&
                         rte_eth_stats_get(inner_->id(), &in) == 0;
    shared += fmt::format("turns_taken={} queue_rx={} inner_queue_rx={} ", c.turns_taken,
                          counted ? u.q_ipackets[i] : 0, counted ? in.q_ipackets[i] : 0);
  }
  log(LogLevel::kInfo,
      "ports: dpdk {}underlay rx={} {}datagrams={} rx_chained={} rx_no_mbuf={} "
      "answers={} requests={} learnt={} not_learnt={} {}{}tx={} tx_no_mbuf={} "
      "tx_not_framed={} tx_unresolved={} tx_no_route={} tx_full={} held={} held_lost={} "
      "frames_dropped={}{} ; inner inner_rx={} inner_tx={} inner_tx_full={}{}",
      i == 0 ? "" : fmt::format("lcore {} ", i), rx.frames, head, rx.datagrams, rx.chained,
      rx.no_mbuf, l.answers, l.requests, l.learnt, l.not_learnt, shared,
      i == 0 ? fmt::format("neighbours={} ", links_[0]->neighbors()) : "", tx.frames, tx.no_mbuf,
      tx.not_framed, l.tx_unresolved, l.tx_no_route, underlay_->tx_full(static_cast<uint16_t>(i)),
      tx.held, tx.held_lost, dropped, drops, c.inner_rx, c.inner_tx,
      inner_->tx_full(static_cast<uint16_t>(i)), tap_text);
}

Status DpdkDataPath::set_containers(std::optional<Prefix> prefix,
                                    std::vector<std::shared_ptr<ContainerTap>> taps) {
  containers_->set(prefix, std::move(taps), lcores_.size() > 1);
  return {};
}

bool DpdkDataPath::poll_fds(const timespec& timeout, Exit& exit) {
  fds_.assign(1, pollfd{inbox_.fd(), POLLIN, 0});
  for (const auto& w : watched_) fds_.push_back({w.first, POLLIN, 0});
  std::vector<size_t> service_at;
  for (const auto& s : services_) {
    service_at.push_back(fds_.size());
    s->append_pollfds(fds_);
  }
  const size_t taps_at = fds_.size();
  containers_->append_pollfds(fds_);
  if (::ppoll(fds_.data(), fds_.size(), &timeout, nullptr) <= 0) return true;
  // A container's packets for the mesh: sealed here (the handshake context)
  // and sent as copies on the first lcore's queue, as its outbox is.
  containers_->serve(
      std::span(fds_).subspan(taps_at),
      [this](std::span<Packet> pkts) {
        dev_->send_burst(pkts, std::span(tap_verdicts_).first(pkts.size()));
        size_t passed = 0;
        for (size_t i = 0; i < pkts.size(); ++i)
          if (tap_verdicts_[i] == Verdict::kPass) tap_out_[passed++] = pkts[i];
        lcores_[0]->send_copies(std::span(tap_out_).first(passed));
      },
      options_.log);
  if (fds_[0].revents & POLLIN) inbox_.run(*this);
  for (size_t i = 0; i < watched_.size(); ++i)
    if ((fds_[1 + i].revents & POLLIN) && !watched_[i].second()) {
      exit = Exit::kStopped;
      return false;
    }
  for (size_t i = 0; i < services_.size(); ++i) {
    const size_t end = i + 1 < services_.size() ? service_at[i + 1] : taps_at;
    services_[i]->handle(std::span<const pollfd>(fds_).subspan(service_at[i], end - service_at[i]));
  }
  return true;
}

bool DpdkDataPath::check_alive(Exit& exit) {
  for (auto& s : services_)
    if (!s->still_present()) {
      exit = Exit::kSocketGone;
      return false;
    }
  if (options_.inner != InnerKind::kVhost && if_nametoindex(options_.ifname.c_str()) == 0) {
    log(LogLevel::kInfo, "interface {} was deleted, shutting down", options_.ifname);
    exit = Exit::kInterfaceGone;
    return false;
  }
  log_stats(false);
  return true;
}

DpdkDataPath::Exit DpdkDataPath::run() {
  // A thread of the caller's: on the main lcore's CPUs, with an lcore id of
  // its own for the mempool caches.
  const bool registered = rte_lcore_id() == LCORE_ID_ANY;
  if (registered) {
    rte_cpuset_t cpus = rte_lcore_cpuset(rte_get_main_lcore());
    if (int rc = pthread_setaffinity_np(pthread_self(), sizeof(cpus), &cpus); rc != 0)
      log(LogLevel::kWarn, "the data path's thread stays unpinned: {}", std::strerror(rc));
    if (rte_thread_register() != 0)
      log(LogLevel::kWarn, "cannot register the data path's thread with DPDK: {}",
          rte_strerror(rte_errno));
  }
  const timespec busy{0, 0};
  // With workers, the handshake context comes back within kNoteWakeInterval
  // on its own: a worker's notes wake it at most that often (worker.h).
  Nanos idle_ns = Nanos{options_.idle_sleep_us} * 1000;
  if (lcores_.size() > 1) idle_ns = std::min(idle_ns, kNoteWakeInterval);
  const timespec idle{0, static_cast<long>(idle_ns)};
  Exit exit = Exit::kStopped;
  if (Result<void> launched = launch_workers(); !launched) {
    log(LogLevel::kError, "{}", launched.error());
    inbox_.stop();
    exit = Exit::kError;
  }
  Nanos next_check = 0;
  Lcore& lcore = *lcores_[0];
  while (!inbox_.stopping()) {
    size_t moved = 0;
    for (int round = 0; round < 64; ++round) moved += lcore.poll();
    if (!poll_fds(moved == 0 ? idle : busy, exit)) break;
    const Nanos now = clock_.monotonic();
    if (now >= next_check) {
      next_check = now + kSecond;
      if (!check_alive(exit)) break;
    }
  }
  stop_workers();
  log_stats(true);
  if (registered) rte_thread_unregister();
  return exit;
}

Result<void> DpdkDataPath::launch_workers() {
  workers_stop_.store(false);
  for (size_t i = 1; i < lcores_.size(); ++i) {
    try {
      worker_threads_.emplace_back([this, i] { run_worker(i); });
    } catch (const std::system_error& e) {
      stop_workers();
      return Error{
          fmt::format("cannot start the thread of lcore {}: {}", worker_ids_[i - 1], e.what())};
    }
  }
  return {};
}

void DpdkDataPath::stop_workers() {
  workers_stop_.store(true, std::memory_order_release);
  for (std::thread& t : worker_threads_) t.join();
  worker_threads_.clear();
}

// A worker lcore: its queues, a quiescent state after every round (the peer
// table's old versions wait for it), offline while it sleeps.
void DpdkDataPath::run_worker(size_t index) {
  const unsigned lcore_id = worker_ids_[index - 1];
  rte_cpuset_t cpus = rte_lcore_cpuset(lcore_id);
  if (int rc = pthread_setaffinity_np(pthread_self(), sizeof(cpus), &cpus); rc != 0)
    log(LogLevel::kWarn, "lcore {}'s thread stays unpinned: {}", lcore_id, std::strerror(rc));
  if (rte_thread_register() != 0)
    log(LogLevel::kWarn, "cannot register lcore {}'s thread with DPDK: {}", lcore_id,
        rte_strerror(rte_errno));
  RcuReader rcu;
  Lcore& lcore = *lcores_[index];
  lcore.set_rcu(&rcu);
  const timespec idle{0, static_cast<long>(options_.idle_sleep_us) * 1000};
  while (!workers_stop_.load(std::memory_order_acquire)) {
    size_t moved = 0;
    for (int round = 0; round < 64; ++round) moved += lcore.poll();
    rcu.quiescent();
    if (moved == 0 && options_.idle_sleep_us != 0) {
      rcu.offline();
      nanosleep(&idle, nullptr);
      rcu.online();
    }
  }
  rte_thread_unregister();
}

}  // namespace faraday::dataplane::dpdk
