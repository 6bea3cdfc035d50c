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
//   2 lcores  the same with one tunnel's bursts shared (crypto/aead_parallel.h):
//             a second lcore, idle on CPU 1 (its queues empty), takes pieces
//             of each burst's AEAD, as faradayd's lcores do when RSS puts one
//             peer's traffic on one queue. Only where CPUs 0 and 1 are allowed.
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
#include "crypto/aead_parallel.h"
#include "dataplane/dpdk_port.h"
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

// The second lcore of the "2 lcores" figure: a ParallelAead over polled helpers
// on a thread pinned to `cpu`, polling for pieces (help_others) while that
// figure is timed, asleep otherwise so the other figures are one lcore's alone.
// (With it polling for nothing during the "dpdk" figure, as an lcore with empty
// queues would, ipsec-mb's 2 lcores / 1 at 1420 B was 0.85-0.90, against
// 0.86-0.87 with it asleep, bench/README.md.)
class IdleLcore {
 public:
  IdleLcore(const crypto::AeadFactory& make, int cpu)
      : helpers_(std::make_shared<crypto::AeadHelpers>(crypto::AeadHelpers::Polled{1})),
        busy_(make(), helpers_),
        idle_(make(), helpers_) {
    thread_ = std::thread([this, cpu] {
      cpu_set_t one;
      CPU_ZERO(&one);
      CPU_SET(cpu, &one);
      if (pthread_setaffinity_np(pthread_self(), sizeof(one), &one) != 0)
        fail("cannot pin the idle lcore's thread");
      idle_.set_idle(true);
      while (!stop_.load(std::memory_order_relaxed)) {
        const bool lend = lend_.load(std::memory_order_acquire);
        lending_.store(lend, std::memory_order_release);
        if (lend)
          idle_.help_others();
        else
          std::this_thread::sleep_for(std::chrono::microseconds(100));
      }
    });
  }
  ~IdleLcore() {
    stop_.store(true);
    thread_.join();
  }
  // The busy lcore's AEAD, whose bursts the idle one shares.
  crypto::ParallelAead& aead() { return busy_; }
  // Returns once the idle lcore polls (on) or sleeps (off).
  void lend(bool on) {
    lend_.store(on, std::memory_order_release);
    while (lending_.load(std::memory_order_acquire) != on) std::this_thread::yield();
  }

 private:
  std::shared_ptr<crypto::AeadHelpers> helpers_;
  crypto::ParallelAead busy_, idle_;
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

void time_dpdk(Device& dev, dpdk::Port& port, dpdk::Transmit& tx, const uint8_t* inner, size_t size,
               Figures& into) {
  rte_mbuf* mbufs[kBurstSize];
  Packet pkts[kBurstSize];
  Verdict verdicts[kBurstSize];
  size_t framed = 0;
  const auto t0 = Clock::now();
  for (size_t b = 0; b < kBursts; ++b) {
    if (rte_pktmbuf_alloc_bulk(port.pool(), mbufs, kBurstSize) != 0) fail("mbuf pool empty");
    for (size_t i = 0; i < kBurstSize; ++i) {
      std::memcpy(rte_pktmbuf_mtod(mbufs[i], uint8_t*), inner, size);
      mbufs[i]->data_len = static_cast<uint16_t>(size);
      mbufs[i]->pkt_len = static_cast<uint32_t>(size);
      pkts[i] = dpdk::packet_of(mbufs[i]);
    }
    dev.send_burst(pkts, verdicts);
    // A real lcore reads the clock per burst: the link's last answer then
    // holds for one burst, not the whole run.
    framed += tx.send(mbufs, pkts, verdicts, static_cast<Nanos>(into.packets + b));
  }
  into.seconds += Seconds(Clock::now() - t0).count();
  into.packets += kPackets;
  if (framed != kPackets) fail("dpdk: not every packet left as a frame");
}

// second: the idle lcore of the "2 lcores" figure (none: not measured).
void run_backend(const std::string& name, crypto::AeadBackend& aead, dpdk::Port& port,
                 double seconds, IdleLcore* second) {
  FixedClock clock;
  SwitchAead switched;
  switched.inner = &aead;
  Node a(clock, switched, "10.99.0.1:51820"), b(clock, aead, "10.99.0.2:51820");
  shake_hands(a, b);

  UnderlayLink link_a(underlay(port.mac(), a.endpoint));
  UnderlayLink link_b(underlay(*parse_mac("02:00:00:00:00:02"), b.endpoint));
  resolve(link_a, link_b, b.endpoint);
  dpdk::Transmit tx(port, 0, link_a);

  Buffers buffers(kPackets);
  std::vector<uint8_t> inner(kSlot);
  std::printf("\nbackend %s (%s), one lcore, bursts of %zu, port %s (%s)\n", name.c_str(),
              aead.describe().c_str(), kBurstSize, port.name().c_str(), port.driver().c_str());
  std::printf("%5s  %-26s %-26s %-26s %8s  %-26s %8s\n", "size", "raw seal_burst",
              "pipeline (in memory)", "dpdk lcore (net_null)", "dpdk/pipe",
              "dpdk, 2 lcores, 1 tunnel", "2 lc/1");
  for (size_t size : kSizes) {
    write_inner(inner.data(), size);
    Row row;
    while (row.dpdk.seconds < seconds) {
      time_raw(aead, buffers, size, row.raw);
      time_pipeline(a.dev, buffers, size, row.pipeline);
      time_dpdk(a.dev, port, tx, inner.data(), size, row.dpdk);
      if (second) {
        switched.inner = &second->aead();
        second->lend(true);
        time_dpdk(a.dev, port, tx, inner.data(), size, row.shared);
        second->lend(false);
        switched.inner = &aead;
      }
    }
    auto cell = [size](const Figures& f) {
      char s[64];
      std::snprintf(s, sizeof(s), "%7.3f Mpps %7.2f Gbit/s", f.mpps(), f.gbps(size));
      return std::string(s);
    };
    std::printf("%5zu  %-26s %-26s %-26s %7.2f  %-26s %7.2f\n", size, cell(row.raw).c_str(),
                cell(row.pipeline).c_str(), cell(row.dpdk).c_str(),
                row.dpdk.mpps() / row.pipeline.mpps(),
                second ? cell(row.shared).c_str() : "(CPU 1 not allowed)",
                second ? row.shared.mpps() / row.dpdk.mpps() : 0.0);
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
    std::unique_ptr<IdleLcore> second;
    if (pair) second = std::make_unique<IdleLcore>(chosen->make, 1);
    run_backend(name, *chosen->backend, **port, seconds, second.get());
    second.reset();
    if (pair)
      bench_pair(name, chosen->make, seconds);
    else
      std::printf("two data paths: skipped (CPUs 0 and 1 are not both allowed here)\n");
    any = true;
  }
  return any ? 0 : 1;
}
