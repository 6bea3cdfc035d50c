// dpdk_bench: encapsulation on one lcore with a DPDK underlay (dataplane/dpdk_port.h),
// beside the in-memory pipeline and the raw AEAD of the same run, per AEAD backend.
//
// The EAL starts without hugepages on lcore 0 with a net_null0 port (it frees what
// it is given, as a NIC that never fills up). Two Devices complete a handshake in
// memory and a's UnderlayLink learns b's MAC from b's answer to its ARP request.
// Then, for 64, 512 and 1420-byte inner packets, in short rounds that take turns so
// all three see the same weather on a shared machine:
//   raw       the backend's seal_burst alone on in-cache buffers;
//   pipeline  send_burst on in-cache buffers, as dataplane_bench measures it (the
//             inner packets are written untimed);
//   dpdk      what an lcore does per burst: take 64 mbufs from the pool, copy the
//             inner packets in (what the inner port's RX does), send_burst in the
//             mbufs, frame them in their headroom (dpdk::Transmit: Ethernet, IPv4,
//             UDP with its checksum; net_null offers no offloads) and tx_burst.
//   2 lcores  the same with one tunnel's bursts on one queue taken in turns
//             (dataplane/turns.h), as faradayd's lcores do when RSS puts one
//             peer's traffic on one queue: a second lcore on CPU 1, its own
//             queues empty, reads the next burst while the first works on
//             its own, seals it with a Worker of its own and sends it once
//             the burst before has gone. Only where CPUs 0 and 1 are allowed.
// It prints Mpps and Gbit/s (inner bytes) of each, dpdk/pipeline, 2 lcores/1, and
// the lcores one direction would need for 100 Gbit/s of 1420-byte packets at the
// measured rate.
//
//   build/bench/dpdk_bench [SECONDS_PER_FIGURE]      (default 2; run as root)
#include <pthread.h>
#include <rte_mbuf.h>
#include <sched.h>
#include <sodium.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "bench/bench_common.h"
#include "bench/dpdk_pair.h"
#include "dataplane/dpdk_port.h"
#include "dataplane/rcu.h"
#include "dataplane/turns.h"
#include "dataplane/underlay_link.h"

namespace {

using namespace faraday;
using namespace faraday::bench;
using namespace faraday::dataplane;
using Seconds = std::chrono::duration<double>;
using Clock = std::chrono::steady_clock;

constexpr size_t kBursts = 4;  // per round; in cache, as in dataplane_bench
constexpr size_t kPackets = kBursts * kBurstSize;

struct Row {
  Figures raw, pipeline, dpdk, shared;
};

// The lcore step of the "dpdk" figure, on one thread: a burst of 64 mbufs
// from the pool with the inner packets copied in (the inner port's RX),
// send_burst in them (on `worker`, or the Device's own context), then framed
// and sent by `tx` once `turns` (when given) says the bursts before have gone.
struct Step {
  Device& dev;
  Worker* worker;
  dpdk::Port& port;
  dpdk::Transmit& tx;
  RcuReader* rcu = nullptr;  // a worker's thread: it waits for its turn offline, as an lcore does
  // One burst; returns the frames sent.
  size_t run(const uint8_t* inner, size_t size, Nanos now, Turns* turns = nullptr,
             uint64_t ticket = 0) {
    rte_mbuf* mbufs[kBurstSize];
    Packet pkts[kBurstSize];
    Verdict verdicts[kBurstSize];
    if (rte_pktmbuf_alloc_bulk(port.pool(), mbufs, kBurstSize) != 0) fail("mbuf pool empty");
    for (size_t i = 0; i < kBurstSize; ++i) {
      std::memcpy(rte_pktmbuf_mtod(mbufs[i], uint8_t*), inner, size);
      mbufs[i]->data_len = static_cast<uint16_t>(size);
      mbufs[i]->pkt_len = static_cast<uint32_t>(size);
      pkts[i] = dpdk::packet_of(mbufs[i]);
    }
    if (worker)
      dev.send_burst(*worker, pkts, verdicts);
    else
      dev.send_burst(pkts, verdicts);
    if (turns && !turns->ready(ticket)) {
      if (rcu) rcu->offline();
      turns->await(ticket);
      if (rcu) rcu->online();
    }
    const size_t framed = tx.send(mbufs, pkts, verdicts, now);
    if (turns) turns->sent(ticket);
    return framed;
  }
};

// One tunnel's queue in the "2 lcores" figure: a round puts kBursts bursts on
// it, and the first lcore (the timing thread) and a second one on a thread
// pinned to `cpu` read them in turns, work on them at once, and send them in
// order. The second one polls the queue while that figure is timed and sleeps
// otherwise, so the other figures are one lcore's alone.
class TurnsQueue {
 public:
  TurnsQueue(Step& first, Step& second, int cpu) : first_(first) {
    thread_ = std::thread([this, &second, cpu] {
      cpu_set_t one;
      CPU_ZERO(&one);
      CPU_SET(cpu, &one);
      if (pthread_setaffinity_np(pthread_self(), sizeof(one), &one) != 0)
        fail("cannot pin the second lcore's thread");
      RcuReader rcu;  // its Worker reads the Device's published tables
      second.rcu = &rcu;
      while (!stop_.load(std::memory_order_relaxed)) {
        const bool lend = lend_.load(std::memory_order_acquire);
        lending_.store(lend, std::memory_order_release);
        if (lend)
          take_turn(second);
        else
          std::this_thread::sleep_for(std::chrono::microseconds(100));
        rcu.quiescent();
      }
    });
  }
  ~TurnsQueue() {
    stop_.store(true);
    thread_.join();
  }
  // Times one round of kBursts bursts of `size` on both lcores.
  void round(const uint8_t* inner, size_t size, Figures& into) {
    lend(true);
    inner_ = inner;
    size_ = size;
    now_ = static_cast<Nanos>(into.packets);
    while (!turns_.try_read()) {
    }
    left_ = kBursts;  // the queue fills; the second lcore sees it after read_none
    turns_.read_none();
    const auto t0 = Clock::now();
    while (take_turn(first_)) {
    }
    turns_.await(end_ += kBursts);  // the second lcore's last burst went too
    into.seconds += Seconds(Clock::now() - t0).count();
    into.packets += kPackets;
    lend(false);
    if (framed_.exchange(0) != kPackets) fail("dpdk, 2 lcores: not every packet left as a frame");
  }

 private:
  // A burst off the queue, if there is one and no other lcore is reading it;
  // false once the queue is empty.
  bool take_turn(Step& step) {
    if (!turns_.try_read()) return true;
    if (left_ == 0) {
      turns_.read_none();
      return false;
    }
    --left_;
    const uint8_t* inner = inner_;
    const size_t size = size_;
    const Nanos now = now_ + static_cast<Nanos>(kBursts - left_);  // a clock read per burst
    const uint64_t ticket = turns_.read_done();
    framed_ += step.run(inner, size, now, &turns_, ticket);
    return true;
  }
  void lend(bool on) {
    lend_.store(on, std::memory_order_release);
    while (lending_.load(std::memory_order_acquire) != on) std::this_thread::yield();
  }

  Step& first_;
  Turns turns_;
  // The queue, read under turns_: what a burst holds, and how many are left.
  const uint8_t* inner_ = nullptr;
  size_t size_ = 0;
  Nanos now_ = 0;
  size_t left_ = 0;
  uint64_t end_ = 0;  // tickets handed out by the end of the last round
  std::atomic<size_t> framed_{0};
  std::atomic<bool> lend_{false}, lending_{false}, stop_{false};
  std::thread thread_;
};

// a's link asks for b's MAC; b's link answers; a learns it.
void resolve(UnderlayLink& a, UnderlayLink& b, const Endpoint& to) {
  std::array<uint8_t, UnderlayLink::kControlFrameSize> request, answer;
  uint8_t payload[kUnderlayHeadroom + 64] = {};
  UnderlayLink::Tx tx = a.send(payload + kUnderlayHeadroom, 16, to, 0, request);
  Frame frame;
  size_t length = 0;
  if (tx.request_length == 0 ||
      b.receive({request.data(), tx.request_length}, 0, frame, answer, length) !=
          UnderlayLink::Rx::kAnswer ||
      a.receive({answer.data(), length}, 0, frame, request, length) != UnderlayLink::Rx::kLearnt)
    fail("ARP resolution between the two links failed");
}

void time_raw(crypto::AeadBackend& aead, Buffers& buffers, size_t size, Figures& into) {
  const crypto::Key key{};
  std::vector<crypto::AeadJob> jobs(kPackets);
  for (size_t i = 0; i < kPackets; ++i)
    jobs[i] = crypto::AeadJob{&key, i, buffers.pkts[i].base + kHeadroom,
                              static_cast<uint32_t>(size), false};
  const auto t0 = Clock::now();
  for (size_t i = 0; i < kPackets; i += kBurstSize) aead.seal_burst({&jobs[i], kBurstSize});
  into.seconds += Seconds(Clock::now() - t0).count();
  into.packets += kPackets;
}

void time_pipeline(Device& dev, Buffers& buffers, size_t size, Figures& into) {
  for (Packet& p : buffers.pkts) {
    p.reset();
    write_inner(p.data(), size);
    p.length = static_cast<uint32_t>(size);
  }
  std::vector<Verdict> verdicts(kBurstSize);
  const auto t0 = Clock::now();
  for (size_t i = 0; i < kPackets; i += kBurstSize) {
    dev.send_burst({&buffers.pkts[i], kBurstSize}, verdicts);
    if (verdicts[kBurstSize - 1] != Verdict::kPass) fail("pipeline: packet not passed");
  }
  into.seconds += Seconds(Clock::now() - t0).count();
  into.packets += kPackets;
}

void time_dpdk(Step& step, const uint8_t* inner, size_t size, Figures& into) {
  size_t framed = 0;
  const auto t0 = Clock::now();
  // A real lcore reads the clock per burst: the link's last answer then holds
  // for one burst, not the whole run.
  for (size_t b = 0; b < kBursts; ++b)
    framed += step.run(inner, size, static_cast<Nanos>(into.packets + b));
  into.seconds += Seconds(Clock::now() - t0).count();
  into.packets += kPackets;
  if (framed != kPackets) fail("dpdk: not every packet left as a frame");
}

// pair: CPUs 0 and 1 are both allowed, so the "2 lcores" figure is measured.
void run_backend(const std::string& name, const crypto::AeadFactory& make, dpdk::Port& port,
                 double seconds, bool pair) {
  std::unique_ptr<crypto::AeadBackend> aead = make(), b_aead = make(), second_aead = make();
  if (!aead || !b_aead || !second_aead) fail("cannot make the AEAD backends");
  FixedClock clock;
  Node a(clock, *aead, "10.99.0.1:51820"), b(clock, *b_aead, "10.99.0.2:51820");
  Worker& second_worker = a.dev.add_worker(*second_aead);
  shake_hands(a, b);

  UnderlayLink link_a(underlay(port.mac(), a.endpoint));
  UnderlayLink link_second(underlay(port.mac(), a.endpoint));
  UnderlayLink link_b(underlay(*parse_mac("02:00:00:00:00:02"), b.endpoint));
  resolve(link_a, link_b, b.endpoint);
  resolve(link_second, link_b, b.endpoint);
  dpdk::Transmit tx(port, 0, link_a), second_tx(port, 0, link_second);
  Step step{a.dev, nullptr, port, tx}, second_step{a.dev, &second_worker, port, second_tx};
  std::unique_ptr<TurnsQueue> turns;
  if (pair) {
    port.share_tx();  // both lcores send on its one queue
    turns = std::make_unique<TurnsQueue>(step, second_step, 1);
  }

  Buffers buffers(kPackets);
  std::vector<uint8_t> inner(kSlot);
  std::printf("\nbackend %s (%s), one lcore, bursts of %zu, port %s (%s)\n", name.c_str(),
              aead->describe().c_str(), kBurstSize, port.name().c_str(), port.driver().c_str());
  std::printf("%5s  %-26s %-26s %-26s %8s  %-26s %8s\n", "size", "raw seal_burst",
              "pipeline (in memory)", "dpdk lcore (net_null)", "dpdk/pipe",
              "dpdk, 2 lcores, 1 tunnel", "2 lc/1");
  for (size_t size : kSizes) {
    write_inner(inner.data(), size);
    Row row;
    while (row.dpdk.seconds < seconds) {
      time_raw(*aead, buffers, size, row.raw);
      time_pipeline(a.dev, buffers, size, row.pipeline);
      time_dpdk(step, inner.data(), size, row.dpdk);
      if (turns) turns->round(inner.data(), size, row.shared);
    }
    auto cell = [size](const Figures& f) {
      char s[64];
      std::snprintf(s, sizeof(s), "%7.3f Mpps %7.2f Gbit/s", f.mpps(), f.gbps(size));
      return std::string(s);
    };
    std::printf("%5zu  %-26s %-26s %-26s %8.3f  %-26s %7.2f\n", size, cell(row.raw).c_str(),
                cell(row.pipeline).c_str(), cell(row.dpdk).c_str(),
                row.dpdk.mpps() / row.pipeline.mpps(),
                turns ? cell(row.shared).c_str() : "(CPU 1 not allowed)",
                turns ? row.shared.mpps() / row.dpdk.mpps() : 0.0);
    if (size == 1420)
      std::printf(
          "       100 Gbit/s of 1420 B one way at this rate: %.0f lcores (%.1f Gbit/s each)\n",
          std::ceil(100.0 / row.dpdk.gbps(size)), row.dpdk.gbps(size));
  }
}

}  // namespace

int main(int argc, char** argv) {
  double seconds = 2.0;
  if (argc > 1) {
    const std::string arg = argv[1];
    if (arg == "-h" || arg == "--help" || arg.starts_with("-")) {
      std::printf("usage: dpdk_bench [SECONDS_PER_FIGURE]   (default 2)\n");
      return arg.starts_with("-h") || arg == "--help" ? 0 : 2;
    }
    seconds = std::atof(argv[1]);
  }
  if (sodium_init() < 0) fail("sodium_init failed");
  dpdk::EalSettings eal;
  // Lcore 1 runs dpdk_pair's receiving side, where this process may use CPUs 0
  // and 1; elsewhere only the first part runs, on the first CPU it may use.
  cpu_set_t cpus;
  CPU_ZERO(&cpus);
  sched_getaffinity(0, sizeof(cpus), &cpus);
  const bool pair = CPU_ISSET(0, &cpus) && CPU_ISSET(1, &cpus);
  int first = 0;
  while (first < CPU_SETSIZE - 1 && !CPU_ISSET(first, &cpus)) ++first;
  eal.lcores = pair ? "0-1" : std::to_string(first);
  eal.devices = {"net_null0"};
  eal.extra = {"--log-level=lib.eal:warning"};
  if (Result<void> r = dpdk::init_eal(eal); !r) fail(r.error().c_str());
  Result<std::unique_ptr<dpdk::Port>> port = dpdk::Port::open({.device = "net_null0"});
  if (!port) fail(port.error().c_str());
  std::printf("dpdk_bench: load average %s", [] {
    static char text[128] = "?\n";
    if (FILE* f = std::fopen("/proc/loadavg", "r")) {
      if (!std::fgets(text, sizeof(text), f)) std::strcpy(text, "?\n");
      std::fclose(f);
    }
    return text;
  }());
  bool any = false;
  for (const char* name : {"sodium", "ipsec-mb"}) {
    auto chosen = crypto::select_aead_backend(name);
    if (!chosen) {
      std::printf("AEAD backend %s skipped: %s\n", name, chosen.error().c_str());
      continue;
    }
    run_backend(name, chosen->make, **port, seconds, pair);
    if (pair)
      bench_pair(name, chosen->make, seconds);
    else
      std::printf("two data paths: skipped (CPUs 0 and 1 are not both allowed here)\n");
    any = true;
  }
  return any ? 0 : 1;
}
