// queue_worker.cpp: see queue_worker.h.
#include "dataplane/queue_worker.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cassert>

#include "dataplane/rcu.h"

namespace faraday::dataplane {

namespace {

// How long a full socket or TUN queue may hold a loop before the rest of a
// burst is dropped (counted by the port).
constexpr int kBackpressureWaitMs = 5;
constexpr int kBackpressureTries = 20;

// Spins of a wait for a turn before the thread yields its core instead.
constexpr int kSpinsBeforeYield = 2000;

// One step of a wait for another data-path thread. It may have lost its core
// to another process (the kernel path shares the machine), so after a short
// spin the waiting thread yields its core.
void relax_or_yield(int& spins) {
  if (spins++ < kSpinsBeforeYield)
    Turns::relax();
  else
    std::this_thread::yield();
}

// Returns once the bursts read before `ticket` have been sent.
void await_turn(const Turns& turns, uint64_t ticket) {
  for (int spins = 0; !turns.ready(ticket);) relax_or_yield(spins);
}

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

QueueBursts::QueueBursts(Device& dev, Worker* worker, uint32_t mtu, crypto::AeadHelpers* machine)
    : dev_(dev),
      worker_(worker),
      machine_(machine),
      seal_{Flight(kBurstSize, slot_size(mtu)), Flight(kBurstSize, slot_size(mtu))},
      open_{Flight(kBurstSize, kBufferSize), Flight(kBurstSize, kBufferSize)} {}

void QueueBursts::set_queues(std::span<const KernelQueue> queues, size_t own) {
  queues_ = queues;
  own_ = own;
  left_.assign(queues.size(), 0);
}

void QueueBursts::send_outbox_on(UdpPort& udp) {
  auto box = dev_.outbox();
  if (!box.empty()) send_all(udp, box);
  dev_.clear_outbox();
}

void QueueBursts::send_outbox(std::span<Packet> more) {
  if (dev_.outbox().empty() && more.empty()) return;
  // A ticket after one this thread holds would wait for itself.
  assert(!seal_[0].busy && !seal_[1].busy);
  Turns& turns = queues_[own_].turns->inner;
  // A ticket for messages that were not read from the queue: the next one, as
  // soon as no other thread reads the queue.
  for (int spins = 0; !turns.try_read();) relax_or_yield(spins);
  const uint64_t ticket = turns.read_done();
  await_turn(turns, ticket);
  send_outbox_on(*queues_[own_].udp);
  if (!more.empty()) send_all(*queues_[own_].udp, more);
  turns.sent(ticket);
}

size_t QueueBursts::move(size_t q, Way way) {
  const KernelQueue& k = queues_[q];
  Turns& turns = way == Way::kSeal ? k.turns->inner : k.turns->underlay;
  std::array<Flight, 2>& flights = way == Way::kSeal ? seal_ : open_;
  size_t moved = 0;
  size_t at = 0;  // the flight this round reads into; the other is older
  for (int round = 0; round < kRounds; ++round) {
    Flight& f = flights[at];
    Flight& older = flights[at ^ 1];
    if (f.busy) land(k, way, turns, f);  // its buffers are needed again
    if (!turns.try_read()) break;
    auto pkts = f.rx.packets();
    const size_t n = way == Way::kSeal ? k.tun->read_burst(pkts) : k.udp->recv_burst(pkts);
    if (n == 0) {
      turns.read_none();
      break;
    }
    f.ticket = turns.read_done();
    f.busy = true;
    if (q != own_) ++turns_taken_;
    moved += n;
    const auto burst = pkts.first(n);
    if (way == Way::kSeal) {
      if (worker_)
        dev_.send_burst(*worker_, burst, verdicts_);
      else
        dev_.send_burst(burst, verdicts_);
    } else {
      if (worker_)
        dev_.receive_burst(*worker_, burst, verdicts_);
      else
        dev_.receive_burst(burst, verdicts_);
    }
    f.passed = 0;
    for (size_t i = 0; i < n; ++i)
      if (verdicts_[i] == Verdict::kPass) f.out[f.passed++] = burst[i];
    // What may go now goes, the older burst first; a burst whose turn has not
    // come waits while the next one is read and worked on.
    if (older.busy && turns.ready(older.ticket)) land(k, way, turns, older);
    if (!older.busy && turns.ready(f.ticket)) land(k, way, turns, f);
    // The other flight's buffers only while this one waits: a thread alone
    // keeps to one set, warm in its cache.
    if (f.busy) at ^= 1;
    if (n < pkts.size()) break;
  }
  Flight* first = &flights[0];
  Flight* second = &flights[1];
  if (first->busy && second->busy && second->ticket < first->ticket) std::swap(first, second);
  for (Flight* f : {first, second})
    if (f->busy) land(k, way, turns, *f);
  // The port may hold packets poll() does not show (a short burst leaves the
  // rest of a TSO super-packet, GRO segments). Its owner may be asleep
  // already: they are this thread's to move, turns or not. A queue another
  // thread reads now is that thread's to look at, after its read.
  if (q != own_) {
    const uint8_t bit = way == Way::kSeal ? kLeftTun : kLeftUdp;
    left_[q] = static_cast<uint8_t>(holds(k, way) ? left_[q] | bit : left_[q] & ~bit);
  }
  return moved;
}

bool QueueBursts::holds(const KernelQueue& k, Way way) {
  Turns& turns = way == Way::kSeal ? k.turns->inner : k.turns->underlay;
  if (!turns.try_read()) return false;
  const bool pending = way == Way::kSeal ? k.tun->pending() : k.udp->pending();
  turns.read_none();
  return pending;
}

void QueueBursts::land(const KernelQueue& k, Way way, Turns& turns, Flight& f) {
  // Nothing from the peer table is held past the burst's work: the wait for
  // the turn and for room in a full socket need not hold up a grace period.
  if (rcu_) rcu_->offline();
  await_turn(turns, f.ticket);
  if (way == Way::kSeal) {
    if (!worker_) send_outbox_on(*k.udp);
    send_all(*k.udp, {f.out.data(), f.passed});
  } else {
    // Containers' packets go under the turn too, so a flow to a container
    // keeps its order; the table is read online (it is freed after a grace
    // period), the TUN written offline.
    if (containers_ && containers_->load(std::memory_order_relaxed) != nullptr) {
      if (rcu_) rcu_->online();
      divert_to_containers(f);
      if (rcu_) rcu_->offline();
    }
    write_all(*k.tun, {f.out.data(), f.passed});
  }
  turns.sent(f.ticket);
  f.busy = false;
  if (rcu_) rcu_->online();
  if (!worker_ && way == Way::kOpen) send_outbox();
}

void QueueBursts::divert_to_containers(Flight& f) {
  const ContainerTable* table = containers_->load(std::memory_order_acquire);
  if (table != nullptr) f.passed = table->divert({f.out.data(), f.passed}, container_unknown_);
}

void QueueBursts::append_others(std::vector<pollfd>& fds) const {
  if (!turns_) return;
  for (size_t q = 0; q < queues_.size(); ++q) {
    if (q == own_) continue;
    fds.push_back({queues_[q].tun->fd(), POLLIN, 0});
    fds.push_back({queues_[q].udp->fd(), POLLIN, 0});
  }
}

size_t QueueBursts::take_turns(std::span<const pollfd> others, bool held) {
  size_t moved = 0;
  size_t at = 0;
  for (size_t q = 0; q < queues_.size(); ++q) {
    if (q == own_) continue;
    bool tun = (left_[q] & kLeftTun) != 0;
    bool udp = (left_[q] & kLeftUdp) != 0;
    if (turns_) {
      tun = tun || held || (others[at].revents & POLLIN);
      udp = udp || held || (others[at + 1].revents & POLLIN);
      at += 2;
    }
    if (udp) moved += udp_to_tun(q);
    if (tun) moved += tun_to_udp(q);
  }
  return moved;
}

int QueueBursts::sleep_limit_ms() {
  if (queues_.size() < 2) return -1;
  if (turns_) {
    recheck_ms_ = kTurnsRecheckMinMs;
    return -1;
  }
  const int limit = recheck_ms_;
  recheck_ms_ = std::min(recheck_ms_ * 2, kTurnsRecheckMaxMs);
  return limit;
}

bool QueueBursts::held() {
  turns_ = queues_.size() > 1 && (!machine_ || machine_->machine_uncrowded());
  bool any = false;
  for (size_t q = 0; q < queues_.size(); ++q) {
    if (q != own_ && !turns_ && left_[q] == 0) continue;
    any = any || holds(queues_[q], Way::kSeal) || holds(queues_[q], Way::kOpen);
  }
  return any;
}

QueueWorker::QueueWorker(Device& dev, std::unique_ptr<crypto::ParallelAead> aead, TunPort tun,
                         UdpPort udp, uint32_t mtu)
    : aead_(std::move(aead)),
      tun_(std::move(tun)),
      udp_(std::move(udp)),
      bursts_(dev, &dev.add_worker(*aead_), mtu, aead_->helpers().get()),
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
}

void QueueWorker::replace_udp(UdpPort udp) {
  udp_ = std::move(udp);
}

void QueueWorker::run() {
  RcuReader rcu;
  bursts_.set_rcu(&rcu);
  const KernelQueue& own = bursts_.own();
  std::vector<pollfd> fds;
  while (!stop_.load(std::memory_order_acquire)) {
    // Datagrams or segments a port already holds do not make its fd readable.
    const bool held = bursts_.held();
    fds.clear();
    fds.push_back({own.tun->fd(), POLLIN, 0});
    fds.push_back({own.udp->fd(), POLLIN, 0});
    fds.push_back({stop_fd_, POLLIN, 0});
    bursts_.append_others(fds);
    rcu.offline();
    aead_->set_idle(!held);
    const int limit = bursts_.sleep_limit_ms();
    const int timeout = held ? 0 : limit;
    const int ready = poll(fds.data(), fds.size(), timeout);
    aead_->set_idle(false);
    rcu.online();
    if (ready < 0 && errno != EINTR) break;
    const size_t q = bursts_.own_index();
    size_t moved = 0;
    if ((fds[1].revents & POLLIN) || held) moved += bursts_.udp_to_tun(q);
    if ((fds[0].revents & POLLIN) || held) moved += bursts_.tun_to_udp(q);
    // Nothing came on this worker's queue: a turn on the others'.
    if (moved == 0) bursts_.take_turns(std::span(fds).subspan(3), held);
    rcu.quiescent();
    // The interface is gone: the pipeline's thread sees it too and stops us.
    if (fds[0].revents & (POLLERR | POLLHUP)) {
      rcu.offline();
      poll(&fds[2], 1, -1);
      rcu.online();
    }
  }
  aead_->set_idle(true);
  bursts_.set_rcu(nullptr);
}

}  // namespace faraday::dataplane
