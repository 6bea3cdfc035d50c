// workers_test.cpp: one Device's data path on several worker threads at once,
// while its control thread reconfigures it (device.h, worker.h, rcu.h). Built
// into the TSan and ASan passes of scripts/test.sh: these tests exist to find
// races and use-after-free, so they run real threads against real churn.
//
// The two sides: `a` is a plain one-thread Device (the test thread drives it)
// that makes traffic; `b` runs its data path on kWorkers threads, each with its
// own Worker, RcuReader and AEAD (the AEADs share kWorkers - 1 helper threads),
// fed datagrams through its own queue, while the test thread is b's control
// thread: it adds and removes other peers, rotates the session with a, removes
// and re-adds a itself, and calls service().
#include <gtest/gtest.h>

#include <atomic>
#include <boost/lockfree/spsc_queue.hpp>
#include <chrono>
#include <map>
#include <random>
#include <set>
#include <thread>

#include "crypto/aead_parallel.h"
#include "dataplane/rcu.h"
#include "tests/dataplane/harness.h"

namespace faraday::dataplane {
namespace {

using namespace testing;  // the two-device harness (harness.h)

// A clock the test thread moves while workers read it.
class SharedClock final : public Clock {
 public:
  Nanos monotonic() const override { return mono_.load(std::memory_order_relaxed); }
  Nanos wall() const override { return wall_.load(std::memory_order_relaxed); }
  void advance(Nanos d) {
    mono_.fetch_add(d, std::memory_order_relaxed);
    wall_.fetch_add(d, std::memory_order_relaxed);
  }

 private:
  std::atomic<Nanos> mono_{1000 * kSecond};
  std::atomic<Nanos> wall_{Nanos{1'700'000'000} * kSecond};
};

constexpr size_t kWorkers = 3;
const Endpoint kEndpointA = endpoint("10.0.0.1:1001");
const Endpoint kEndpointB = endpoint("10.0.0.2:1002");

// Inner packets a -> b carry a sequence number at byte 20.
Bytes numbered(uint64_t id) {
  Bytes p = ipv4_packet(kTunA4, kTunB4, 64);
  std::memcpy(&p[20], &id, sizeof(id));
  return p;
}
uint64_t number_of(std::span<const uint8_t> inner) {
  uint64_t id;
  std::memcpy(&id, inner.data() + 20, sizeof(id));
  return id;
}

struct Delivery {
  Bytes bytes;
  Endpoint source;
};

// One of b's data-path threads: receives what its queue holds, in bursts. Its
// AEAD shares helper threads with the other workers, as a pipeline's queue
// workers do: while some sleep, a busy one's bursts are spread over the helpers.
class ReceiveWorker {
 public:
  ReceiveWorker(Device& dev, std::shared_ptr<crypto::AeadHelpers> helpers)
      : aead_(std::make_unique<crypto::ParallelAead>(crypto::make_sodium_backend(),
                                                     std::move(helpers))),
        worker_(dev.add_worker(*aead_)),
        dev_(dev) {}
  ~ReceiveWorker() {
    if (thread_.joinable()) stop();  // a failed ASSERT left it running
  }
  void start() {
    thread_ = std::thread([this] { run(); });
  }
  void stop() {
    stop_.store(true);
    thread_.join();
  }
  bool feed(Delivery d) {
    auto* item = new Delivery(std::move(d));
    if (queue_.push(item)) return true;
    delete item;
    return false;
  }
  bool idle() const { return queue_.read_available() == 0 && !busy_.load(); }
  // After stop().
  const std::vector<uint64_t>& accepted() const { return accepted_; }

 private:
  void run() {
    RcuReader reader;
    PacketArena arena(kBurstSize);
    std::array<Verdict, kBurstSize> verdicts{};
    while (!stop_.load()) {
      busy_.store(true);
      size_t n = 0;
      Delivery* item;
      while (n < kBurstSize && queue_.pop(item)) {
        Packet& p = arena.packets()[n++];
        p.reset();
        std::memcpy(p.data(), item->bytes.data(), item->bytes.size());
        p.length = static_cast<uint32_t>(item->bytes.size());
        p.endpoint = item->source;
        delete item;
      }
      if (n > 0) {
        auto pkts = arena.packets().first(n);
        dev_.receive_burst(worker_, pkts, verdicts);
        for (size_t i = 0; i < n; ++i)
          if (verdicts[i] == Verdict::kPass) accepted_.push_back(number_of(pkts[i].bytes()));
      }
      reader.quiescent();
      busy_.store(false);
      if (n == 0) {
        reader.offline();
        aead_->set_idle(true);
        std::this_thread::sleep_for(std::chrono::microseconds(50));
        aead_->set_idle(false);
        reader.online();
      }
    }
    Delivery* item;
    while (queue_.pop(item)) delete item;
  }

  std::unique_ptr<crypto::ParallelAead> aead_;
  Worker& worker_;
  Device& dev_;
  boost::lockfree::spsc_queue<Delivery*, boost::lockfree::capacity<4096>> queue_;
  std::atomic<bool> stop_{false};
  std::atomic<bool> busy_{false};
  std::vector<uint64_t> accepted_;
  std::thread thread_;
};

class WorkersStress : public ::testing::Test {
 protected:
  WorkersStress()
      : aead_a_(crypto::make_sodium_backend()),
        aead_b_(crypto::make_sodium_backend()),
        a_(clock_a_, *aead_a_),
        b_(clock_b_, *aead_b_),
        key_a_(crypto::x25519_generate_private()),
        key_b_(crypto::x25519_generate_private()) {
    a_.set_private_key(key_a_);
    b_.set_private_key(key_b_);
    Peer* pb = a_.add_peer(crypto::x25519_public(key_b_));
    a_.set_endpoint(*pb, kEndpointB);
    a_.add_allowed_ip(*pb, prefix(std::string(kTunB4) + "/32"));
    add_a_to_b();
    std::vector<std::unique_ptr<crypto::AeadBackend>> helpers;
    for (size_t i = 0; i + 1 < kWorkers; ++i) helpers.push_back(crypto::make_sodium_backend());
    // Sharing whatever the machine's load, so the helpers' path is always tried.
    auto shared = std::make_shared<crypto::AeadHelpers>(std::move(helpers),
                                                        crypto::SharingOptions{false, false});
    for (size_t i = 0; i < kWorkers; ++i)
      workers_.push_back(std::make_unique<ReceiveWorker>(b_, shared));
  }

  void add_a_to_b() {
    Peer* pa = b_.add_peer(crypto::x25519_public(key_a_));
    b_.set_endpoint(*pa, kEndpointA);
    b_.add_allowed_ip(*pa, prefix(std::string(kTunA4) + "/32"));
    b_.commit();
  }

  // a's datagrams to b: to `copies` workers each (from `first`), so several
  // workers hold the same keypair's packets, and the same packet, at once.
  void deliver(const Bytes& bytes, size_t first, size_t copies, const Endpoint& from = kEndpointA) {
    for (size_t c = 0; c < copies; ++c) {
      ReceiveWorker& w = *workers_[(first + c) % kWorkers];
      while (!w.feed({bytes, from})) b_.service();
    }
  }

  // One data packet from a, encrypted now, delivered to worker 0 from `from`.
  void send_from(const Endpoint& from) {
    PacketArena arena(1);
    Packet& p = arena.packets()[0];
    p.reset();
    Bytes inner = numbered(next_);
    std::memcpy(p.data(), inner.data(), inner.size());
    p.length = static_cast<uint32_t>(inner.size());
    Verdict verdict;
    a_.send_burst(arena.packets(), {&verdict, 1});
    ASSERT_EQ(verdict, Verdict::kPass);
    sent_.push_back(next_++);
    deliver(Bytes(p.data(), p.data() + p.length), 0, 1, from);
  }

  // a's outbox to worker 0 (handshake messages go through a worker's ring to
  // b's handshake context); b's outbox straight to a. Until both are quiet.
  void exchange() {
    for (int quiet = 0; quiet < 50;) {
      bool moved = false;
      for (Packet& p : a_.outbox()) {
        deliver(Bytes(p.data(), p.data() + p.length), 0, 1);
        moved = true;
      }
      a_.clear_outbox();
      b_.service();
      std::vector<Packet> out(b_.outbox().begin(), b_.outbox().end());
      if (!out.empty()) {
        std::vector<Verdict> verdicts(out.size());
        for (Packet& p : out) p.endpoint = kEndpointB;
        a_.receive_burst(out, verdicts);
        moved = true;
      }
      b_.clear_outbox();
      if (moved) {
        quiet = 0;
      } else {
        ++quiet;
        std::this_thread::sleep_for(std::chrono::microseconds(200));
      }
    }
  }

  // Until b has completed a handshake more than `before` (a busy machine may
  // need several rounds of exchange()).
  void await_handshake(uint64_t before) {
    for (int i = 0; i < 2000 && b_.counters().handshakes_completed == before; ++i) exchange();
    ASSERT_GT(b_.counters().handshakes_completed, before) << "a's new session never came up";
  }

  // a sends ids [next_, next_ + count) to b.
  void send(size_t count, size_t copies) {
    PacketArena arena(kBurstSize);
    std::array<Verdict, kBurstSize> verdicts{};
    for (size_t done = 0; done < count;) {
      size_t n = std::min(kBurstSize, count - done);
      for (size_t i = 0; i < n; ++i) {
        Packet& p = arena.packets()[i];
        p.reset();
        Bytes inner = numbered(next_ + i);
        std::memcpy(p.data(), inner.data(), inner.size());
        p.length = static_cast<uint32_t>(inner.size());
      }
      a_.send_burst(arena.packets().first(n), verdicts);
      for (size_t i = 0; i < n; ++i) {
        sent_.push_back(next_ + i);
        Packet& p = arena.packets()[i];
        if (verdicts[i] == Verdict::kPass)
          deliver(Bytes(p.data(), p.data() + p.length), next_ + i, copies);
      }
      next_ += n;
      done += n;
      b_.service();
      exchange();  // staged packets and handshakes a's sending set off
    }
  }

  void wait_idle() {
    for (int i = 0; i < 20000; ++i) {
      b_.service();
      if (std::all_of(workers_.begin(), workers_.end(), [](auto& w) { return w->idle(); })) {
        b_.service();  // what a worker noted after the service() above, before going idle
        return;
      }
      std::this_thread::sleep_for(std::chrono::microseconds(100));
    }
    ADD_FAILURE() << "the workers never drained their queues";
  }

  // Peers that come and go on b while its workers run.
  void churn(std::mt19937& rng) {
    for (int i = 0; i < 4; ++i) {
      crypto::Key pub = crypto::x25519_public(crypto::x25519_generate_private());
      Peer* p = b_.add_peer(pub);
      b_.set_endpoint(*p, endpoint("10.9.0.1:" + std::to_string(2000 + others_.size() % 1000)));
      b_.add_allowed_ip(*p, prefix("10.8." + std::to_string(rng() % 250) + "." +
                                   std::to_string(rng() % 250) + "/32"));
      others_.push_back(pub);
    }
    while (others_.size() > 12) {
      size_t i = rng() % others_.size();
      b_.remove_peer(others_[i]);
      others_.erase(others_.begin() + static_cast<long>(i));
    }
    b_.commit();
  }

  FakeClock clock_a_;
  SharedClock clock_b_;
  std::unique_ptr<crypto::AeadBackend> aead_a_, aead_b_;
  Device a_, b_;
  crypto::Key key_a_, key_b_;
  std::vector<std::unique_ptr<ReceiveWorker>> workers_;
  std::vector<crypto::Key> others_;
  std::vector<uint64_t> sent_;
  uint64_t next_ = 0;
};

TEST_F(WorkersStress, OneKeypairOnSeveralWorkersWhileTheControlThreadChurns) {
  for (auto& w : workers_) w->start();
  std::mt19937 rng(7);
  std::set<uint64_t> may_be_lost;
  int rotations = 0, removals = 0;
  // The first session. Until it is up, a stages what it sends, at most
  // kMaxStagedPackets, and drops the oldest beyond that: on a busy machine one
  // exchange() may end before worker 0 has passed the initiation on, and the
  // round's later bursts would push its first one out (seen twice in CI).
  const uint64_t first_handshake = b_.counters().handshakes_completed;
  send(64, 2);
  await_handshake(first_handshake);
  for (int round = 0; round < 24; ++round) {
    churn(rng);
    if (round % 6 == 5) {
      // a is removed while the workers hold its packets; its ids this round
      // may be lost (unknown index), never accepted twice.
      wait_idle();
      uint64_t from = next_;
      send(128, 2);
      b_.remove_peer(crypto::x25519_public(key_a_));
      b_.commit();
      send(64, 2);
      add_a_to_b();
      // a's session is gone on b: a new handshake on a's next send.
      clock_a_.advance(kRekeyAfterTime + kSecond);
      clock_b_.advance(kRekeyAfterTime + kSecond);
      uint64_t handshakes = b_.counters().handshakes_completed;
      send(1, 1);
      // The next round counts every packet: a's new session must be confirmed
      // on b first (the keepalive that confirms it may lag on a busy machine).
      await_handshake(handshakes);
      wait_idle();
      for (uint64_t id = from; id < next_; ++id) may_be_lost.insert(id);
      ++removals;
      continue;
    }
    if (round % 3 == 2) {
      // A new session: a rekeys on its next send as the initiator; b's
      // workers see the first data on b's unconfirmed keypair. Confirmed
      // before the round goes on, so the next rotation finds it in place.
      wait_idle();
      clock_a_.advance(kRekeyAfterTime + kSecond);
      clock_b_.advance(kRekeyAfterTime + kSecond);
      uint64_t handshakes = b_.counters().handshakes_completed;
      send(64, 2);
      await_handshake(handshakes);
      ++rotations;
      send(192, 2);
      continue;
    }
    send(256, 2);
  }
  wait_idle();
  for (auto& w : workers_) w->stop();
  b_.service();

  std::map<uint64_t, int> times;
  for (auto& w : workers_)
    for (uint64_t id : w->accepted()) ++times[id];
  size_t lost = 0;
  uint64_t first_lost = 0;
  for (uint64_t id : sent_) {
    int n = times.count(id) ? times[id] : 0;
    EXPECT_LE(n, 1) << "packet " << id << " accepted " << n << " times";
    if (n == 0 && !may_be_lost.count(id) && lost++ == 0) first_lost = id;
  }
  EXPECT_EQ(lost, 0u) << "packets sent on a live session that no worker accepted, the first "
                      << first_lost << " of " << sent_.size()
                      << "; b dropped: " << drop_changes(Counters{}, b_.counters())
                      << "; a dropped: " << drop_changes(Counters{}, a_.counters());
  Counters c = b_.counters();
  EXPECT_EQ(c.dropped(Drop::kDecryptFailed), 0u);
  EXPECT_GT(c.dropped(Drop::kReplayDuplicate), 0u);
  EXPECT_GE(c.handshakes_completed, static_cast<uint64_t>(rotations + removals));
  EXPECT_EQ(rotations, 4);
  EXPECT_EQ(removals, 4);
}

// Roaming seen by a worker is applied by the control thread; a roam back to an
// address the worker already reported once is reported again.
TEST_F(WorkersStress, RoamingBackToAnEarlierEndpointIsNotedAgain) {
  for (auto& w : workers_) w->start();
  send(1, 1);
  wait_idle();
  Peer* a_at_b = b_.find_peer(crypto::x25519_public(key_a_));
  ASSERT_NE(a_at_b, nullptr);
  const Endpoint e1 = endpoint("10.0.5.1:4000"), e2 = endpoint("10.0.5.2:4000");
  send_from(e1);
  wait_idle();
  EXPECT_EQ(a_at_b->endpoint.load(), e1);
  b_.set_endpoint(*a_at_b, e2);  // moved elsewhere (another socket saw it, or wg set)
  send_from(e1);                 // and back to where this worker saw it before
  wait_idle();
  EXPECT_EQ(a_at_b->endpoint.load(), e1);
  for (auto& w : workers_) w->stop();
}

// Several workers send on one keypair at once: every datagram gets its own
// nonce, and the other side accepts each exactly once.
TEST_F(WorkersStress, SendersShareOneKeypairWithoutReusingANonce) {
  // A session first (a initiates; b answers on its control thread).
  for (auto& w : workers_) w->start();
  send(1, 1);
  wait_idle();
  for (auto& w : workers_) w->stop();
  constexpr size_t kPerThread = 2000;
  std::vector<std::vector<Bytes>> out(kWorkers);
  std::vector<std::thread> threads;
  std::vector<std::unique_ptr<crypto::AeadBackend>> backends;
  std::vector<Worker*> senders;
  for (size_t t = 0; t < kWorkers; ++t) {
    backends.push_back(crypto::make_sodium_backend());
    senders.push_back(&b_.add_worker(*backends.back()));
  }
  for (size_t t = 0; t < kWorkers; ++t)
    threads.emplace_back([&, t] {
      RcuReader reader;
      PacketArena arena(kBurstSize);
      std::array<Verdict, kBurstSize> verdicts{};
      for (size_t done = 0; done < kPerThread; done += kBurstSize) {
        for (Packet& p : arena.packets()) {
          p.reset();
          Bytes inner = ipv4_packet(kTunB4, kTunA4, 100, static_cast<uint8_t>(t));
          std::memcpy(p.data(), inner.data(), inner.size());
          p.length = static_cast<uint32_t>(inner.size());
        }
        b_.send_burst(*senders[t], arena.packets(), verdicts);
        for (size_t i = 0; i < kBurstSize; ++i)
          if (verdicts[i] == Verdict::kPass)
            out[t].emplace_back(arena.packets()[i].bytes().begin(),
                                arena.packets()[i].bytes().end());
        reader.quiescent();
      }
    });
  for (size_t n = 0; n < 200; ++n) b_.service();  // the control thread, meanwhile
  for (auto& th : threads) th.join();
  b_.service();

  std::set<uint64_t> nonces;
  size_t total = 0;
  for (auto& v : out)
    for (const Bytes& d : v) {
      ++total;
      EXPECT_TRUE(nonces.insert(load_le64(d.data() + 8)).second) << "nonce reused";
    }
  EXPECT_GE(total, kWorkers * (kPerThread - kBurstSize));
  // a accepts every one of them.
  uint64_t before = a_.counters().rx_data;
  for (auto& v : out)
    for (const Bytes& d : v) {
      PacketArena arena(1);
      Packet& p = arena.packets()[0];
      p.reset();
      std::memcpy(p.data(), d.data(), d.size());
      p.length = static_cast<uint32_t>(d.size());
      p.endpoint = kEndpointB;
      Verdict verdict;
      a_.receive_burst(arena.packets(), {&verdict, 1});
    }
  EXPECT_EQ(a_.counters().rx_data - before, total);
}

}  // namespace
}  // namespace faraday::dataplane

namespace faraday::dataplane {
namespace {

// One worker's receive_burst on the test thread: a handshake message is handed
// to the handshake context only if its mac1 holds, so junk cannot fill the
// worker's ring and crowd out real peers.
TEST(WorkerHandoff, OnlyHandshakesWithAValidMac1ReachTheRing) {
  Network net;
  std::unique_ptr<crypto::AeadBackend> aead = crypto::make_sodium_backend();
  Worker& w = net.b.device.add_worker(*aead);
  std::vector<Datagram> held = net.send_held(net.a, ipv4_packet(kTunA4, kTunB4, 64));
  ASSERT_EQ(held.size(), 1u);
  ASSERT_TRUE(held[0].is(MessageType::kInitiation));

  auto receive_on_worker = [&](const Bytes& bytes) {
    PacketArena arena(1);
    Packet& p = arena.packets()[0];
    p.reset();
    std::memcpy(p.data(), bytes.data(), bytes.size());
    p.length = static_cast<uint32_t>(bytes.size());
    p.endpoint = net.a.source;
    std::array<Verdict, 1> v{};
    net.b.device.receive_burst(w, arena.packets().first(1), v);
    while (net.b.device.service()) net.flush(net.b);
    return v[0];
  };
  Bytes forged = held[0].bytes;
  forged[mac1_offset<MessageInitiation>()] ^= 1;
  EXPECT_EQ(receive_on_worker(forged), Verdict::kDrop);
  EXPECT_EQ(net.b.dropped(Drop::kBadMac1), 1u);
  EXPECT_EQ(net.sent(net.b, MessageType::kResponse), 0u);

  EXPECT_EQ(receive_on_worker(held[0].bytes), Verdict::kConsumed);
  EXPECT_EQ(net.b.dropped(Drop::kBadMac1), 1u);
  EXPECT_EQ(net.sent(net.b, MessageType::kResponse), 1u);

  // A flood of cookie replies (no mac1 to check) takes at most half the ring:
  // a genuine initiation after it still gets through, without servicing.
  Bytes junk(sizeof(MessageCookieReply), 0x5a);
  store_le32(junk.data(), static_cast<uint32_t>(MessageType::kCookieReply));
  PacketArena arena(kBurstSize);
  std::array<Verdict, kBurstSize> v{};
  size_t refused = 0;
  for (int round = 0; round < 8; ++round) {
    for (Packet& p : arena.packets()) {
      p.reset();
      std::memcpy(p.data(), junk.data(), junk.size());
      p.length = static_cast<uint32_t>(junk.size());
      p.endpoint = net.a.source;
    }
    net.b.device.receive_burst(w, arena.packets(), v);
    refused += static_cast<size_t>(std::count(v.begin(), v.end(), Verdict::kDrop));
  }
  EXPECT_GT(refused, 0u);
  PacketArena one(1);
  Packet& p = one.packets()[0];
  p.reset();
  std::memcpy(p.data(), held[0].bytes.data(), held[0].bytes.size());
  p.length = static_cast<uint32_t>(held[0].bytes.size());
  p.endpoint = net.a.source;
  std::array<Verdict, 1> verdict{};
  net.b.device.receive_burst(w, one.packets(), verdict);
  EXPECT_EQ(verdict[0], Verdict::kConsumed);
  while (net.b.device.service()) net.flush(net.b);

  // Without a private key nothing passes (no mac1 key is published).
  net.b.device.set_private_key(std::nullopt);
  EXPECT_EQ(receive_on_worker(held[0].bytes), Verdict::kDrop);
  EXPECT_EQ(net.b.dropped(Drop::kBadMac1), 2u);
}

}  // namespace
}  // namespace faraday::dataplane
