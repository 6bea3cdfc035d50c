// pipeline.cpp: see pipeline.h.
#include "dataplane/pipeline.h"

#include <sched.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace faraday::dataplane {

namespace {

// options.workers, with 0 meaning every CPU this process may run on.
unsigned resolve_workers(unsigned workers) {
  if (workers != 0) return workers;
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(set), &set) != 0) return 1;
  return std::clamp<unsigned>(static_cast<unsigned>(CPU_COUNT(&set)), 1, crypto::kMaxLanes);
}

}  // namespace

Result<std::unique_ptr<Pipeline>> Pipeline::open(const PipelineOptions& options) {
  std::unique_ptr<Pipeline> dp(new Pipeline(options));
  if (Status s = dp->setup(); !s) return s.failure();
  return dp;
}

Pipeline::~Pipeline() {
  queue_workers_.clear();  // joined before the Device they run goes
  services_.clear();
  dev_.reset();
}

Status Pipeline::setup() {
  auto aead = crypto::select_aead_backend(options_.aead_backend);
  if (!aead) return Error{"AEAD backend: " + aead.error()};
  const unsigned workers = resolve_workers(options_.workers);
  if (workers > crypto::kMaxLanes)
    return Error{fmt::format("workers {}: want 0..{}", workers, crypto::kMaxLanes)};
  if (inbox_.fd() < 0) return Error{fmt::format("eventfd: {}", std::strerror(inbox_.error()))};
  if (Status s = open_ports(workers, *aead); !s) return s;
  aead_choice_ = std::move(aead->reason);
  dev_->set_wake(CommandInbox::wake, &inbox_);
  return {};
}

// The TUN queues first: their number decides how many queue workers there are.
// Then the AEAD instances and helpers, the Device, and one UDP socket per queue.
Status Pipeline::open_ports(unsigned workers, crypto::AeadChoice& aead) {
  auto tuns = TunPort::open_queues(options_.ifname, options_.mtu, true, workers);
  if (!tuns) {
    return Error{fmt::format("cannot create interface {}: {}", options_.ifname, tuns.error())};
  }
  const size_t queues = tuns->size();
  if (workers > 1 && queues == 1)
    log(LogLevel::kWarn,
        "TUN multi-queue unavailable ({}); one queue, its bursts' crypto shared with {} AEAD "
        "helper{} while a core is spare",
        tuns->front().multi_queue_refused(), workers - 1, workers == 2 ? "" : "s");
  // The chosen instance is the pipeline thread's own; each queue worker and each
  // helper thread gets another of the same type. With workers - 1 helpers, a burst
  // can have every core while the other workers sleep (one flow on one queue).
  const unsigned instances = workers + (queues > 1 ? workers - 1 : 0);
  std::vector<std::unique_ptr<crypto::AeadBackend>> helpers;
  std::vector<std::unique_ptr<crypto::AeadBackend>> more;
  for (unsigned made = 1; made < instances; ++made) {
    auto& into = helpers.size() + 1 < workers ? helpers : more;
    into.push_back(aead.make());
    if (!into.back())
      return Error{fmt::format("AEAD backend: cannot make instance {} of {}", made + 1, instances)};
  }
  auto shared = std::make_shared<crypto::AeadHelpers>(std::move(helpers));
  aead_ = std::make_unique<crypto::ParallelAead>(std::move(aead.backend), shared);
  DeviceOptions dev_options;
  dev_options.mtu = options_.mtu;
  dev_ = std::make_unique<Device>(clock_, *aead_, dev_options);

  auto udp = UdpPortGroup::open(options_.listen_port, queues);
  if (!udp) {
    return Error{fmt::format("cannot open UDP port {}: {}", options_.listen_port, udp.error())};
  }
  tun_.emplace(std::move((*tuns)[0]));
  udp_.emplace(std::move((*udp)[0]));
  for (size_t i = 1; i < queues; ++i)
    queue_workers_.push_back(std::make_unique<QueueWorker>(
        *dev_, std::make_unique<crypto::ParallelAead>(std::move(more[i - 1]), shared),
        std::move((*tuns)[i]), std::move((*udp)[i]), options_.mtu));
  // Every thread may take a turn on every queue (queue_worker.h).
  turns_ = std::vector<QueueTurns>(queues);
  queues_.push_back({&*tun_, &*udp_, nullptr});
  for (auto& w : queue_workers_) queues_.push_back(w->queue());
  for (size_t i = 0; i < queues; ++i) queues_[i].turns = &turns_[i];
  bursts_.emplace(*dev_, nullptr, options_.mtu, shared.get());
  containers_.emplace(options_.mtu);
  bursts_->set_queues(queues_, 0);
  bursts_->set_containers(containers_->table());
  for (size_t i = 1; i < queues; ++i) {
    queue_workers_[i - 1]->set_queues(queues_, i);
    queue_workers_[i - 1]->set_containers(containers_->table());
  }
  return {};
}

void Pipeline::start_workers() {
  if (workers_running_) return;
  for (auto& w : queue_workers_) w->start();
  workers_running_ = true;
}

void Pipeline::stop_workers() {
  for (auto& w : queue_workers_) w->stop();
  workers_running_ = false;
}

std::string Pipeline::summary() const {
  const unsigned n = workers();
  return fmt::format(
      "mtu {}, UDP port {}{}, {}, TUN offloads {}, AEAD {}, {} worker{}{}", options_.mtu,
      udp_->port(), udp_->dual_stack() ? " (IPv4+IPv6)" : " (IPv4 only)", udp_->offloads(),
      tun_->offloads(), aead_->name(), n, n == 1 ? "" : "s",
      n == 1                   ? " (crypto on the pipeline's thread)"
      : queue_workers_.empty() ? " (one queue; AEAD helpers share its bursts while a core is spare)"
                               : " (a TUN queue and a UDP socket each, and turns on the others' "
                                 "bursts while their own are quiet; AEAD helpers take pieces of a "
                                 "busy worker's bursts while a core is spare)");
}

void Pipeline::watch(int fd, std::function<bool()> on_ready) {
  watched_.emplace_back(fd, std::move(on_ready));
}

void Pipeline::attach(std::unique_ptr<PollService> service) {
  services_.push_back(std::move(service));
}

bool Pipeline::post(Command command) {
  return inbox_.post(std::move(command));
}

void Pipeline::stop() {
  inbox_.stop();
}

void Pipeline::on_wake() {
  inbox_.run(*this);
  flush_outbox();
}

DeviceState Pipeline::state() const {
  return device_state(*dev_, udp_->port(), fwmark_);
}

void Pipeline::apply_fwmark() {
  std::vector<int> fds{udp_->fd()};
  for (const auto& w : queue_workers_) fds.push_back(w->udp_fd());
  for (int fd : fds)
    if (setsockopt(fd, SOL_SOCKET, SO_MARK, &fwmark_, sizeof(fwmark_)) != 0) {
      log(LogLevel::kWarn, "cannot set fwmark {}: {}", fwmark_, std::strerror(errno));
      return;
    }
}

Result<void, ApplyError> Pipeline::apply(const ConfigUpdate& req, bool log_peers) {
  apply_private_key(*dev_, req, options_.log);
  if (req.listen_port && *req.listen_port != udp_->port()) {
    auto udp = UdpPortGroup::open(*req.listen_port, queue_workers_.size() + 1);
    if (!udp) {
      return ApplyError{EADDRINUSE,
                        "listen port " + std::to_string(*req.listen_port) + ": " + udp.error()};
    }
    // Every socket moves at once, with the workers quiet.
    bool running = workers_running_;
    stop_workers();
    udp_.emplace(std::move((*udp)[0]));
    for (size_t i = 0; i < queue_workers_.size(); ++i)
      queue_workers_[i]->replace_udp(std::move((*udp)[i + 1]));
    if (running) start_workers();
    if (fwmark_ != 0) apply_fwmark();
    log(LogLevel::kInfo, "listening on UDP port {}", udp_->port());
  }
  if (req.fwmark && *req.fwmark != fwmark_) {
    fwmark_ = *req.fwmark;
    apply_fwmark();
  }
  // Workers see the new peers at its commit(); removed ones are freed.
  apply_peers(*dev_, req, log_peers, options_.log);
  flush_outbox();
  return {};
}

Status Pipeline::set_containers(std::optional<Prefix> prefix,
                                std::vector<std::shared_ptr<ContainerTap>> taps) {
  containers_->set(prefix, std::move(taps), !queue_workers_.empty());
  return {};
}

void Pipeline::container_to_mesh(std::span<Packet> pkts) {
  dev_->send_burst(pkts, std::span(tap_verdicts_).first(pkts.size()));
  size_t passed = 0;
  for (size_t i = 0; i < pkts.size(); ++i)
    if (tap_verdicts_[i] == Verdict::kPass) tap_out_[passed++] = pkts[i];
  bursts_->send_outbox(std::span(tap_out_).first(passed));
}

void Pipeline::flush_outbox() {
  bursts_->send_outbox();
}

void Pipeline::log_stats(bool force) {
  const Counters& c = dev_->counters();
  Nanos now = clock_.monotonic();
  bool changed = c.drops != logged_.drops || c.handshakes_completed != logged_.handshakes_completed;
  bool due = force || (changed && now - last_stats_ >= Nanos{options_.stats_interval_s} * kSecond);
  if (due) {
    log(LogLevel::kInfo, "stats: {}", stats_text(c));
    logged_ = c;
    last_stats_ = now;
  }
  if (force) {
    UdpPortCounters u = udp_->counters();
    TunPortCounters t = tun_->counters();
    uint64_t turns = bursts_->turns_taken();
    for (const auto& w : queue_workers_) {
      auto [wt, wu] = w->counters();
      t += wt;
      u += wu;
      turns += w->turns_taken();
    }
    log(LogLevel::kInfo,
        "ports: udp rx={} rx_bytes={} rx_truncated={} rx_errors={} rx_gro_super={} "
        "rx_gro_segments={} tx={} tx_bytes={} tx_invalid_endpoint={} tx_errors={} tx_full={} "
        "tx_gso_messages={} tx_gso_segments={} tx_gso_fallbacks={} ({}); tun rx={} rx_bytes={} "
        "rx_truncated={} rx_errors={} rx_super={} rx_segments={} rx_bad_offload={}{} "
        "tx={} tx_bytes={} tx_errors={} tx_full={} tx_super={} tx_coalesced={}; turns={}",
        u.rx_packets, u.rx_bytes, u.rx_truncated, u.rx_errors, u.rx_gro_super, u.rx_gro_segments,
        u.tx_packets, u.tx_bytes, u.tx_invalid_endpoint, u.tx_errors, u.tx_full, u.tx_gso_messages,
        u.tx_gso_segments, u.tx_gso_fallbacks, udp_->offloads(), t.rx_packets, t.rx_bytes,
        t.rx_truncated, t.rx_errors, t.rx_super, t.rx_segments, t.rx_bad_offload,
        bad_offload_reasons(t), t.tx_packets, t.tx_bytes, t.tx_errors, t.tx_full, t.tx_super,
        t.tx_coalesced, turns);
  }
  for (auto& s : services_) s->log_stats(force);
}

// Once a second (or on a TUN error): is the interface, and every service,
// still there? Logs the periodic stats.
bool Pipeline::check_alive(Exit& exit) {
  if (!tun_->exists()) {
    log(LogLevel::kInfo, "interface {} was deleted, shutting down", tun_->name());
    exit = Exit::kInterfaceGone;
    return false;
  }
  for (auto& s : services_) {
    if (!s->still_present()) {
      exit = Exit::kSocketGone;
      return false;
    }
  }
  log_stats(false);
  return true;
}

// One wait and what it found; false ends run() with exit.
bool Pipeline::poll_once(std::vector<pollfd>& fds, Exit& exit) {
  // Datagrams a port already holds (split from a GRO super-datagram, or the
  // rest of a TSO super-packet read from the TUN) do not make its fd readable:
  // do not sleep on them. First: it decides whether this pass takes turns.
  const bool held = bursts_->held();
  // tun, udp, wake; then the watched fds, the services', the other queues'
  constexpr size_t kFixed = 3;
  fds.clear();
  fds.push_back({tun_->fd(), POLLIN, 0});
  fds.push_back({udp_->fd(), POLLIN, 0});
  fds.push_back({inbox_.fd(), POLLIN, 0});
  for (const auto& w : watched_) fds.push_back({w.first, POLLIN, 0});
  std::vector<size_t> service_at;
  for (const auto& s : services_) {
    service_at.push_back(fds.size());
    s->append_pollfds(fds);
  }
  service_at.push_back(fds.size());
  const size_t others_at = fds.size();
  bursts_->append_others(fds);
  const size_t taps_at = fds.size();
  containers_->append_pollfds(fds);
  // While the queue workers report, take their reports at least every
  // kNoteWakeInterval; once they have been quiet for two of those, sleep until
  // they wake us (worker.h: a worker that woke us in the last interval does not
  // wake us again, and we must then come on our own).
  const bool reporting = clock_.monotonic() - last_report_ < 2 * kNoteWakeInterval;
  Nanos wait = std::min<Nanos>(dev_->next_deadline() - clock_.monotonic(),
                               reporting ? kNoteWakeInterval : kSecond);
  int timeout_ms =
      wait <= 0 || held ? 0 : static_cast<int>((wait + kMillisecond - 1) / kMillisecond);
  // Kept from turns by the crowd: ask again soon.
  if (const int limit = bursts_->sleep_limit_ms(); limit >= 0)
    timeout_ms = std::min(timeout_ms, limit);
  aead_->set_idle(timeout_ms != 0);  // a queue worker's burst may use this core meanwhile
  const int polled = poll(fds.data(), fds.size(), timeout_ms);
  aead_->set_idle(false);
  if (polled < 0 && errno != EINTR) {
    log(LogLevel::kError, "poll: {}", std::strerror(errno));
    exit = Exit::kError;
    return false;
  }
  bool stop = false;
  for (size_t i = 0; i < watched_.size(); ++i)
    if (fds[kFixed + i].revents & POLLIN && !watched_[i].second()) stop = true;
  if (stop) return false;
  if (fds[2].revents & POLLIN) on_wake();
  size_t moved = 0;
  if ((fds[1].revents & POLLIN) || held) moved += bursts_->udp_to_tun(0);
  if ((fds[0].revents & POLLIN) || held) moved += bursts_->tun_to_udp(0);
  // Nothing came on this thread's queue: a turn on the queue workers'.
  if (moved == 0) bursts_->take_turns(std::span(fds).subspan(others_at, taps_at - others_at), held);
  if (fds.size() > taps_at)
    containers_->serve(
        std::span(fds).subspan(taps_at), [this](std::span<Packet> p) { container_to_mesh(p); },
        options_.log);
  for (size_t i = 0; i < services_.size(); ++i)
    services_[i]->handle(
        std::span<const pollfd>(fds).subspan(service_at[i], service_at[i + 1] - service_at[i]));
  // What the queue workers handed over or reported; service() leaves parcels
  // in their rings when the outbox fills, so send it and go on.
  for (int round = 0; !queue_workers_.empty() && round < 64 && dev_->service(); ++round) {
    last_report_ = clock_.monotonic();
    flush_outbox();
  }
  if (dev_->next_deadline() <= clock_.monotonic()) {
    dev_->tick();
    flush_outbox();
  }
  Nanos now = clock_.monotonic();
  if ((fds[0].revents & (POLLERR | POLLHUP)) || now - last_check_ >= kSecond) {
    last_check_ = now;
    return check_alive(exit);
  }
  return true;
}

Pipeline::Exit Pipeline::run() {
  std::vector<pollfd> fds;
  last_check_ = clock_.monotonic();
  Exit exit = Exit::kStopped;
  start_workers();
  while (!inbox_.stopping())
    if (!poll_once(fds, exit)) break;
  stop_workers();
  log_stats(true);
  return exit;
}

}  // namespace faraday::dataplane
