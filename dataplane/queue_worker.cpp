// queue_worker.cpp: see queue_worker.h.
#include "dataplane/queue_worker.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "dataplane/clock.h"
#include "dataplane/rcu.h"

namespace faraday::dataplane {

namespace {

// How long a full socket or TUN queue may hold a loop before the rest of a
// burst is dropped (counted by the port).
constexpr int kBackpressureWaitMs = 5;
constexpr int kBackpressureTries = 20;

}  // namespace

void send_all(UdpPort& udp, std::span<Packet> pkts) {
  size_t done = 0;
  for (int tries = 0; done < pkts.size(); ++tries) {
    done += udp.send_burst(pkts.subspan(done));
    if (done == pkts.size() || tries == kBackpressureTries) break;
    pollfd p{udp.fd(), POLLOUT, 0};
    poll(&p, 1, kBackpressureWaitMs);
  }
}

void write_all(TunPort& tun, std::span<Packet> pkts) {
  size_t done = 0;
  for (int tries = 0; done < pkts.size(); ++tries) {
    done += tun.write_burst(pkts.subspan(done));
    if (done == pkts.size() || tries == kBackpressureTries) break;
    pollfd p{tun.fd(), POLLOUT, 0};
    poll(&p, 1, kBackpressureWaitMs);
  }
}

QueueWorker::QueueWorker(Device& dev, std::unique_ptr<crypto::ParallelAead> aead, TunPort tun,
                         UdpPort udp, uint32_t mtu)
    : dev_(dev),
      aead_(std::move(aead)),
      worker_(dev.add_worker(*aead_)),
      tun_(std::move(tun)),
      udp_(std::move(udp)),
      tun_rx_(kBurstSize, slot_size(mtu)),
      stop_fd_(eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) {
  aead_->set_idle(true);  // until its thread runs: other workers may use this core
}

QueueWorker::~QueueWorker() {
  stop();
  if (stop_fd_ >= 0) close(stop_fd_);
}

void QueueWorker::start() {
  stop_.store(false, std::memory_order_release);
  thread_ = std::thread([this] { run(); });
}

void QueueWorker::stop() {
  if (!thread_.joinable()) return;
  stop_.store(true, std::memory_order_release);
  uint64_t one = 1;
  (void)!write(stop_fd_, &one, sizeof(one));
  thread_.join();
  uint64_t n;
  (void)!read(stop_fd_, &n, sizeof(n));
  publish_counters();
}

void QueueWorker::replace_udp(UdpPort udp) {
  udp_ = std::move(udp);
}

std::pair<TunPortCounters, UdpPortCounters> QueueWorker::counters() const {
  std::lock_guard lock(counters_mu_);
  return snapshot_;
}

void QueueWorker::publish_counters() {
  std::lock_guard lock(counters_mu_);
  snapshot_ = {tun_.counters(), udp_.counters()};
}

void QueueWorker::on_tun() {
  for (int round = 0; round < 8; ++round) {
    auto pkts = tun_rx_.packets();
    size_t n = tun_.read_burst(pkts);
    if (n == 0) break;
    dev_.send_burst(worker_, pkts.first(n), verdicts_);
    size_t out = 0;
    for (size_t i = 0; i < n; ++i)
      if (verdicts_[i] == Verdict::kPass) out_[out++] = pkts[i];
    // Nothing from the peer table is held past here; a full socket may make
    // send_all wait, and no grace period waits for it.
    rcu_->offline();
    send_all(udp_, {out_.data(), out});
    rcu_->online();
    if (n < pkts.size()) break;
  }
}

void QueueWorker::on_udp() {
  for (int round = 0; round < 8; ++round) {
    auto pkts = udp_rx_.packets();
    size_t n = udp_.recv_burst(pkts);
    if (n == 0) break;
    dev_.receive_burst(worker_, pkts.first(n), verdicts_);
    size_t out = 0;
    for (size_t i = 0; i < n; ++i)
      if (verdicts_[i] == Verdict::kPass) out_[out++] = pkts[i];
    rcu_->offline();  // as in on_tun
    write_all(tun_, {out_.data(), out});
    rcu_->online();
    if (n < pkts.size()) break;
  }
}

void QueueWorker::run() {
  RcuReader rcu;
  rcu_ = &rcu;
  SystemClock clock;
  Nanos last_publish = clock.monotonic();
  bool unpublished = false;
  while (!stop_.load(std::memory_order_acquire)) {
    // Datagrams or segments a port already holds do not make its fd readable.
    bool held = udp_.pending() || tun_.pending();
    pollfd fds[3] = {{tun_.fd(), POLLIN, 0}, {udp_.fd(), POLLIN, 0}, {stop_fd_, POLLIN, 0}};
    if (!held && unpublished) {  // before sleeping, so the snapshot is never stale
      publish_counters();
      unpublished = false;
    }
    rcu.offline();
    aead_->set_idle(!held);
    int ready = poll(fds, 3, held ? 0 : -1);
    aead_->set_idle(false);
    rcu.online();
    if (ready < 0 && errno != EINTR) break;
    if ((fds[1].revents & POLLIN) || udp_.pending()) on_udp();
    if ((fds[0].revents & POLLIN) || tun_.pending()) on_tun();
    rcu.quiescent();
    // The interface is gone: the pipeline's thread sees it too and stops us.
    if (fds[0].revents & (POLLERR | POLLHUP)) {
      rcu.offline();
      poll(&fds[2], 1, -1);
      rcu.online();
    }
    unpublished = true;
    Nanos now = clock.monotonic();
    if (now - last_publish >= kSecond / 4) {
      last_publish = now;
      publish_counters();
      unpublished = false;
    }
  }
  aead_->set_idle(true);
}

}  // namespace faraday::dataplane
