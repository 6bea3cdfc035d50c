// bench_workers.cpp: see bench_workers.h.
#include "bench/bench_workers.h"

#include <algorithm>
#include <array>
#include <barrier>
#include <chrono>
#include <cstring>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <thread>

#include "crypto/aead_parallel.h"
#include "dataplane/queue_worker.h"
#include "dataplane/rcu.h"
#include "dataplane/turns.h"

namespace faraday::bench {
namespace {

using Seconds = std::chrono::duration<double>;

constexpr size_t kManyPeers = 16;
// Bursts per round: 4096 packets, 8 MiB of buffers. Fewer than the replay
// window's 8128, so however far one queue worker runs ahead of the other within a
// round, none of the other's packets falls behind the window.
constexpr size_t kBursts = 64;
constexpr size_t kPackets = kBursts * kBurstSize;

uint32_t hub_addr() {
  return 0x0a000001;  // 10.0.0.1
}
uint32_t spoke_addr(size_t i) {
  return 0x0a010001 | static_cast<uint32_t>(i << 8);  // 10.1.i.1
}

// The second thread of every two-thread figure, alive for the whole bench as a
// faradayd worker lives as long as the daemon. A round is 1-3 ms; a thread
// started for each one began on its starter's core and cost up to a tenth of
// the round before the scheduler moved it (1.6x where the raw pair, started
// the same way, gave 1.85x, 2026-12-05).
class Partner {
 public:
  Partner() : thread_([this] { serve(); }) {}
  ~Partner() {
    stop_ = true;
    round_.fetch_add(1, std::memory_order_release);
    round_.notify_one();
    thread_.join();
  }
  Partner(const Partner&) = delete;
  Partner& operator=(const Partner&) = delete;

  // job(1) on the partner and job(0) on this thread; returns once both are done.
  void both(const std::function<void(size_t)>& job) {
    job_ = &job;
    const uint64_t round = round_.fetch_add(1, std::memory_order_release) + 1;
    round_.notify_one();
    job(0);
    wait_for(done_, round);
  }

 private:
  // Spins a little, then sleeps until the counter moves: a partner left
  // runnable between rounds (yielding) took CPU from the one-thread figures,
  // on a vCPU that may be the other's hyperthread.
  static void wait_for(std::atomic<uint64_t>& counter, uint64_t value) {
    for (int spins = 0; spins < 1000; ++spins) {
      if (counter.load(std::memory_order_acquire) >= value) return;
      dataplane::Turns::relax();
    }
    for (uint64_t seen; (seen = counter.load(std::memory_order_acquire)) < value;)
      counter.wait(seen, std::memory_order_acquire);
  }

  void serve() {
    for (uint64_t round = 1;; ++round) {
      wait_for(round_, round);
      if (stop_) return;
      (*job_)(1);
      done_.store(round, std::memory_order_release);
      done_.notify_one();
    }
  }

  std::atomic<uint64_t> round_{0};
  std::atomic<uint64_t> done_{0};
  const std::function<void(size_t)>* job_ = nullptr;  // written before round_ moves
  bool stop_ = false;                                 // likewise
  std::thread thread_;
};

// A hub with `peers` spokes, every handshake done. On the way out, packet j of a
// burst belongs to spoke j % peers, so every burst mixes all of them; on the
// way in, each queue's bursts mix its half of them (see decrypt).
class Mesh {
 public:
  // helpers: the queue workers' shared AEAD helper (the pipeline's, with 2 workers).
  Mesh(crypto::AeadBackend& hub_aead, crypto::AeadBackend& spoke_aead, size_t peers,
       const crypto::AeadFactory& make, const std::shared_ptr<crypto::AeadHelpers>& helpers,
       Partner& partner)
      : partner_(partner),
        hub_(clock_, hub_aead, "10.99.0.1:51820"),
        buffers_(kPackets),
        scratch_(kPackets) {
    for (int t = 0; t < 2; ++t) {
      std::unique_ptr<crypto::AeadBackend> own = make();
      if (!own) fail("cannot make a queue worker's AEAD");
      queue_aead_[t] = std::make_unique<crypto::ParallelAead>(std::move(own), helpers);
      queue_aead_[t]->set_idle(true);  // as a worker's poll() while it has nothing to do
      queue_[t] = &hub_.dev.add_worker(*queue_aead_[t]);
    }
    solo_ = &hub_.dev.add_worker(hub_aead);
    for (size_t i = 0; i < peers; ++i) {
      const std::string ep = "10.99.1." + std::to_string(i + 1) + ":51820";
      spokes_.push_back(std::make_unique<Node>(clock_, spoke_aead, ep.c_str()));
      Node& s = *spokes_.back();
      Peer* at_hub = hub_.dev.add_peer(s.dev.identity().public_key);
      Peer* at_spoke = s.dev.add_peer(hub_.dev.identity().public_key);
      hub_.dev.add_allowed_ip(*at_hub, *Prefix::parse("10.1." + std::to_string(i) + ".0/24"));
      s.dev.add_allowed_ip(*at_spoke, *Prefix::parse("10.0.0.0/8"));
      hub_.dev.set_endpoint(*at_hub, s.endpoint);
      s.dev.set_endpoint(*at_spoke, hub_.endpoint);
      s.dev.set_persistent_keepalive(*at_spoke, 25);  // stages a keepalive: initiates
      deliver(s, hub_);
      deliver(hub_, s);
      deliver(s, hub_);
      if (!at_hub->current) fail("mesh handshake did not complete");
    }
  }

  // Times the hub encrypting one round of mixed bursts (queues: on queue workers,
  // see timed_queues).
  void encrypt(size_t size, Figures& into, bool queues = false) {
    const size_t peers = spokes_.size();
    for (size_t j = 0; j < kPackets; ++j)
      fill(buffers_.pkts[j], size, hub_addr(), spoke_addr(j % peers));
    if (queues)
      timed_queues(true, into, "encrypt: packet not passed");
    else
      timed(&Device::send_burst, into, "encrypt: packet not passed");
  }

  // The spokes encrypt (untimed), then the hub's decryption of the mixed bursts
  // is timed. The bursts mix the peers as the hub's sockets see them: each
  // peer's datagrams come from one endpoint, and the kernel hashes that to one
  // socket of the SO_REUSEPORT group (dataplane/udp_port.h), so with two
  // queues, even peers are on the first and odd on the second. Every burst on
  // queue q (every other one) mixes the peers of q; the other worker sees a
  // peer only when it takes turns. (Inner flows are hashed to TUN queues
  // instead, so on the way out every peer is on both: see encrypt.)
  void decrypt(size_t size, Figures& into, bool queues = false) {
    const size_t peers = spokes_.size();
    static_assert(kManyPeers % 2 == 0 && kBurstSize % (kManyPeers / 2) == 0,
                  "each queue's bursts hold its half of the peers evenly");
    auto spoke_of = [peers](size_t j) {
      if (peers == 1) return size_t{0};
      const size_t half = peers / 2;
      return j % kBurstSize % half * 2 + j / kBurstSize % 2;
    };
    for (size_t s = 0; s < peers; ++s) {
      size_t n = 0;
      for (size_t j = 0; j < kPackets; ++j) {
        if (spoke_of(j) != s) continue;
        fill(buffers_.pkts[j], size, spoke_addr(s), hub_addr());
        scratch_[n++] = buffers_.pkts[j];
      }
      for (size_t i = 0; i < n; i += kBurstSize) {
        const size_t len = std::min(kBurstSize, n - i);
        spokes_[s]->dev.send_burst({&scratch_[i], len}, std::span(verdicts_).first(len));
      }
      n = 0;
      for (size_t j = 0; j < kPackets; ++j) {
        if (spoke_of(j) != s) continue;
        buffers_.pkts[j] = scratch_[n++];
        buffers_.pkts[j].endpoint = spokes_[s]->endpoint;
      }
    }
    if (queues)
      timed_queues(false, into, "decrypt: packet not passed");
    else
      timed(&Device::receive_burst, into, "decrypt: packet not passed");
  }

 private:
  static void fill(Packet& p, size_t size, uint32_t src, uint32_t dst) {
    p.reset();
    write_inner(p.data(), size, src, dst);
    p.length = static_cast<uint32_t>(size);
  }

  // One worker (or its AEAD over 2 lanes): the Worker path, as the queue
  // workers below run it, on this thread.
  void timed(void (Device::*burst)(Worker&, std::span<Packet>, std::span<Verdict>), Figures& into,
             const char* failure) {
    dataplane::RcuReader rcu;
    auto t0 = std::chrono::steady_clock::now();
    for (size_t i = 0; i < kPackets; i += kBurstSize) {
      (hub_.dev.*burst)(*solo_, {&buffers_.pkts[i], kBurstSize}, verdicts_);
      if (verdicts_[0] != Verdict::kPass || verdicts_[kBurstSize - 1] != Verdict::kPass)
        fail(failure);
    }
    into.seconds += Seconds(std::chrono::steady_clock::now() - t0).count();
    into.packets += kPackets;
  }

  // Queue workers, each with its own Worker and AEAD over the shared helper,
  // as the kernel path runs them (dataplane/queue_worker.h). Many peers: the
  // kernel spreads flows over two TUN queues (and peers over two sockets), so
  // every other burst of the round is on the second queue. One peer, one flow:
  // the kernel keeps the flow on one queue, so every burst is on the first. A
  // worker runs the bursts of its own queue and, when it has none, takes turns
  // on the other's (dataplane/turns.h: it reads the next burst, works on it at
  // the same time as the worker that read the one before, and "sends" it once
  // that one has gone), while the machine has a core for every runnable thread
  // (crypto::AeadHelpers::machine_uncrowded); otherwise it sleeps as its poll()
  // would, and the helper may take pieces of the other's bursts. Each worker
  // first copies every burst into its own buffers, as a TUN read or recvmmsg on
  // its own core would, so it does not stream another core's writes; then they
  // start together and only what follows is timed (not the thread start, not
  // the copy).
  void timed_queues(bool encrypt, Figures& into, const char* failure) {
    const size_t queues = spokes_.size() == 1 ? 1 : 2;
    std::array<dataplane::QueueTurns, 2> turns;
    std::array<size_t, 2> next{0, kBurstSize};  // each queue's next burst
    std::atomic<bool> failed{false};
    std::atomic<uint64_t> taken{0};
    std::atomic<uint64_t> crowded{0};
    std::barrier start(2);
    std::chrono::steady_clock::time_point t0;
    auto run = [&](size_t t) {
      dataplane::RcuReader rcu;
      Buffers& own = own_[t];
      for (size_t j = 0; j < kPackets; ++j) {
        const Packet& from = buffers_.pkts[j];
        Packet& to = own.pkts[j];
        to.reset();
        to.offset = from.offset;
        to.length = from.length;
        to.endpoint = from.endpoint;
        std::memcpy(to.data(), from.data(), from.length);
      }
      std::array<Verdict, kBurstSize> verdicts{};
      queue_aead_[t]->set_idle(false);
      start.arrive_and_wait();
      if (t == 0) t0 = std::chrono::steady_clock::now();
      // A read of queue q under its turn: the first packet of its next burst.
      // busy: the other worker was reading it (poll() would say it is readable).
      auto read = [&](size_t q, size_t& at, bool& busy) {
        dataplane::Turns& turn = turns[q].inner;
        if (!turn.try_read()) {
          busy = true;
          return std::optional<uint64_t>();
        }
        if (next[q] >= kPackets) {
          turn.read_none();
          return std::optional<uint64_t>();
        }
        at = next[q];
        next[q] += queues * kBurstSize;
        return std::optional<uint64_t>(turn.read_done());
      };
      // A crowded machine: the worker's poll() sleeps this long (QueueBursts).
      int recheck = dataplane::kTurnsRecheckMinMs;
      // Many flows: queue t is this worker's own; one flow: worker 0's.
      const bool has_own = t < queues;
      const size_t other = queues == 1 ? 0 : 1 - t;
      // Up to two bursts in flight, as QueueBursts keeps them: read, worked on,
      // not yet sent; all on one queue, the oldest first.
      std::array<uint64_t, 2> flight{};
      size_t flying = 0;
      size_t flying_on = 0;
      auto land_oldest = [&] {
        dataplane::Turns& turn = turns[flying_on].inner;
        rcu.offline();
        turn.await(flight[0]);
        turn.sent(flight[0]);
        rcu.online();
        flight[0] = flight[1];
        --flying;
      };
      auto land_all = [&] {
        while (flying) land_oldest();
      };
      // A read of queue q, with nothing in flight on another queue.
      auto read_on = [&](size_t q, size_t& at, bool& busy) {
        if (flying && flying_on != q) land_all();
        return read(q, at, busy);
      };
      for (;;) {
        if (flying == flight.size()) land_oldest();  // its buffers are needed again
        size_t at = 0;
        size_t q = t;
        bool busy = false;
        std::optional<uint64_t> ticket;
        if (has_own) ticket = read_on(q, at, busy);
        const bool turns_now = !ticket && !busy && queue_aead_[0]->helpers()->machine_uncrowded();
        if (turns_now) {
          recheck = dataplane::kTurnsRecheckMinMs;
          q = other;
          ticket = read_on(q, at, busy);
          if (ticket) taken.fetch_add(1, std::memory_order_relaxed);
        }
        if (!ticket) {
          land_all();          // as QueueBursts does before it polls again
          if (busy) continue;  // poll() would say the queue is readable
          bool done = true;
          for (size_t k = 0; k < queues; ++k) done = done && read_all(turns[k].inner, next[k]);
          if (done) break;
          if (turns_now) continue;
          // No turns while the machine is crowded: as its poll() would, the
          // worker sleeps (idle, so the helper may take pieces of the other
          // worker's bursts).
          crowded.fetch_add(1, std::memory_order_relaxed);
          queue_aead_[t]->set_idle(true);
          std::this_thread::sleep_for(std::chrono::milliseconds(recheck));
          recheck = std::min(recheck * 2, dataplane::kTurnsRecheckMaxMs);
          queue_aead_[t]->set_idle(false);
          continue;
        }
        std::span<Packet> burst{&own.pkts[at], kBurstSize};
        if (encrypt)
          hub_.dev.send_burst(*queue_[t], burst, verdicts);
        else
          hub_.dev.receive_burst(*queue_[t], burst, verdicts);
        if (verdicts[0] != Verdict::kPass || verdicts[kBurstSize - 1] != Verdict::kPass)
          failed = true;
        flight[flying++] = *ticket;
        flying_on = q;
        // What may go now goes; a burst whose turn has not come waits while
        // the next one is read and worked on.
        while (flying && turns[q].inner.ready(flight[0])) land_oldest();
        rcu.quiescent();
      }
      queue_aead_[t]->set_idle(true);
    };
    partner_.both(run);
    into.seconds += Seconds(std::chrono::steady_clock::now() - t0).count();
    into.packets += kPackets;
    into.turns += taken.load();
    into.crowded += crowded.load();
    if (failed) fail(failure);
  }

  // Whether every burst of a queue has been read: under its turn, so its
  // cursor is not read while another thread moves it.
  static bool read_all(dataplane::Turns& turn, const size_t& next) {
    if (!turn.try_read()) return false;
    const bool all = next >= kPackets;
    turn.read_none();
    return all;
  }

  Partner& partner_;
  FixedClock clock_;
  Node hub_;
  std::unique_ptr<crypto::ParallelAead> queue_aead_[2];
  Worker* queue_[2] = {};
  Worker* solo_ = nullptr;  // on the hub's own AEAD (1 worker, or 2 lanes)
  std::vector<std::unique_ptr<Node>> spokes_;
  Buffers buffers_;
  Buffers own_[2] = {Buffers(kPackets), Buffers(kPackets)};  // each queue worker's
  std::vector<Packet> scratch_;
  std::array<Verdict, kBurstSize> verdicts_{};
};

// The machine's own ceiling for two workers: the raw AEAD (seal_burst alone, in
// place on 64 messages of its own, as in bench_backend) on one thread, then on two
// threads at once, each with its own backend instance and buffers. Nothing is
// shared, so what two threads fall short of 2x is the machine's (on this 2-vCPU
// machine one vCPU runs the AEAD slower than the other, and slower again while the
// other is busy).
class RawPair {
 public:
  RawPair(const crypto::AeadFactory& make, Partner& partner) : partner_(partner) {
    for (auto& lane : lanes_) {
      lane.aead = make();
      if (!lane.aead) fail("cannot make the raw AEAD pair");
    }
  }

  void round(size_t size, Figures& one, Figures& two) {
    for (Lane& lane : lanes_) lane.prepare(size);
    auto t0 = std::chrono::steady_clock::now();
    lanes_[0].run();
    one.seconds += Seconds(std::chrono::steady_clock::now() - t0).count();
    one.packets += kPackets;

    std::barrier start(2);
    auto run = [&](int t) {
      start.arrive_and_wait();
      if (t == 0) t0 = std::chrono::steady_clock::now();
      lanes_[t].run();
    };
    partner_.both(run);
    two.seconds += Seconds(std::chrono::steady_clock::now() - t0).count();
    two.packets += 2 * kPackets;
  }

 private:
  struct Lane {
    std::unique_ptr<crypto::AeadBackend> aead;
    std::vector<uint8_t> bytes;
    std::vector<crypto::AeadJob> jobs;
    crypto::Key key{};
    void prepare(size_t size) {
      bytes.assign(kBurstSize * (size + kTagSize), 0x5a);
      jobs.clear();
      for (size_t i = 0; i < kBurstSize; ++i)
        jobs.push_back(
            {&key, i, bytes.data() + i * (size + kTagSize), static_cast<uint32_t>(size), false});
    }
    void run() {
      for (size_t b = 0; b < kBursts; ++b) aead->seal_burst(jobs);
    }
  };
  Partner& partner_;
  Lane lanes_[2];
};

// The third way: 2 queue workers, for one flow taking turns on its queue.
constexpr const char* kHow[3] = {"1 worker", "2 AEAD lanes", "2 workers"};

void print_figure(const WorkerRun& r) {
  for (int w = 0; w < 3; ++w)
    std::printf(
        "  %-22s %5zu B  %-15s  enc %7.3f Mpps %7.2f Gbit/s   dec %7.3f Mpps %7.2f Gbit/s\n",
        r.scenario.c_str(), r.size, kHow[w], r.enc[w].mpps(), r.enc[w].gbps(r.size),
        r.dec[w].mpps(), r.dec[w].gbps(r.size));
  std::printf(
      "  %-22s %5zu B  2 workers: turns on the other's queue: enc %zu, dec %zu of %zu bursts; "
      "sleeps while the machine was crowded: enc %zu, dec %zu\n",
      r.scenario.c_str(), r.size, r.enc[2].turns, r.dec[2].turns, r.enc[2].packets / kBurstSize,
      r.enc[2].crowded, r.dec[2].crowded);
  std::printf(
      "  %-22s %5zu B  raw seal_burst   1 thread %7.3f Mpps, 2 threads at once %7.3f Mpps\n",
      r.scenario.c_str(), r.size, r.raw[0].mpps(), r.raw[1].mpps());
}

}  // namespace

std::vector<WorkerRun> bench_workers(const std::string& backend, const crypto::AeadFactory& make,
                                     double seconds) {
  auto one = crypto::make_parallel_aead(make, 1);
  auto two = crypto::make_parallel_aead(make, 2);
  auto helpers = std::make_shared<crypto::AeadHelpers>([&make] {
    std::vector<std::unique_ptr<crypto::AeadBackend>> one_helper;
    one_helper.push_back(make());
    if (!one_helper.back()) fail("cannot make the queue workers' AEAD helper");
    return one_helper;
  }());
  std::unique_ptr<crypto::AeadBackend> spoke_aead = make();
  if (!one || !two || !spoke_aead) fail("cannot make the AEAD lanes");
  std::printf("\nworkers: %s vs %s, bursts of %zu\n", (*one)->describe().c_str(),
              (*two)->describe().c_str(), kBurstSize);
  Partner partner;
  std::vector<WorkerRun> runs;
  for (size_t peers : {kManyPeers, size_t{1}}) {
    SwitchAead hub_aead;
    hub_aead.inner = one->get();
    Mesh mesh(hub_aead, *spoke_aead, peers, make, helpers, partner);
    RawPair raw(make, partner);
    for (size_t size : kSizes) {
      WorkerRun r;
      r.backend = backend;
      r.scenario = peers == 1 ? "one peer, one flow" : "many flows (16 peers)";
      r.peers = peers;
      r.size = size;
      // Turns of one round each: 1 worker, 2 lanes, 2 queue workers, until the
      // budget is spent.
      auto spent = [&r] {
        double total = 0;
        for (int w = 0; w < 3; ++w) total += r.enc[w].seconds + r.dec[w].seconds;
        return total;
      };
      while (spent() < seconds) {
        for (int w = 0; w < 3; ++w) {
          hub_aead.inner = w == 1 ? two->get() : one->get();
          mesh.encrypt(size, r.enc[w], w == 2);
          mesh.decrypt(size, r.dec[w], w == 2);
        }
        raw.round(size, r.raw[0], r.raw[1]);
      }
      print_figure(r);
      runs.push_back(r);
    }
  }
  return runs;
}

void print_workers(const std::vector<WorkerRun>& runs) {
  std::printf(
      "\nworkers: Mpps (Gbit/s); ratios to 1 worker: L = 2 AEAD lanes, W = 2 workers (many\n"
      "flows: a queue each; one flow: on one queue, the other worker taking turns on it);\n"
      "raw x2: seal_burst alone on 2 threads at once / on 1, the machine's ceiling for W\n");
  std::printf("%-9s %-22s %5s  %-22s %-22s %-22s %6s %6s  %-22s %-22s %-22s %6s %6s  %6s\n",
              "backend", "scenario", "size", "enc 1 worker", "enc 2 lanes", "enc 2 workers", "L",
              "W", "dec 1 worker", "dec 2 lanes", "dec 2 workers", "L", "W", "raw x2");
  for (const WorkerRun& r : runs) {
    std::printf("%-9s %-22s %5zu", r.backend.c_str(), r.scenario.c_str(), r.size);
    for (const Figures* f : {r.enc, r.dec}) {
      for (int w = 0; w < 3; ++w)
        std::printf("  %7.3f (%6.2f Gbit/s)", f[w].mpps(), f[w].gbps(r.size));
      std::printf("  %5.2fx %5.2fx", f[1].mpps() / f[0].mpps(), f[2].mpps() / f[0].mpps());
    }
    std::printf("  %5.2fx\n", r.raw[1].mpps() / r.raw[0].mpps());
  }
}

}  // namespace faraday::bench
