// dpdk_pair.cpp: see dpdk_pair.h.
#include "bench/dpdk_pair.h"

#include <rte_eth_ring.h>
#include <rte_launch.h>
#include <rte_mbuf.h>
#include <rte_ring.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <memory>
#include <vector>

#include "bench/bench_common.h"
#include "dataplane/dpdk_lcore.h"

namespace faraday::bench {
namespace {

using namespace faraday::dataplane;
using Steady = std::chrono::steady_clock;
using Seconds = std::chrono::duration<double>;

rte_ring* make_ring(const std::string& name) {
  rte_ring* r = rte_ring_create(name.c_str(), 1024, SOCKET_ID_ANY, RING_F_SP_ENQ | RING_F_SC_DEQ);
  if (!r) fail(("ring " + name + ": cannot create").c_str());
  return r;
}

std::unique_ptr<dpdk::Port> ring_port(const std::string& name, rte_ring* rx, rte_ring* tx) {
  if (rte_eth_from_rings(name.c_str(), &rx, 1, &tx, 1, SOCKET_ID_ANY) < 0)
    fail(("port " + name + ": rte_eth_from_rings failed").c_str());
  Result<std::unique_ptr<dpdk::Port>> port = dpdk::Port::open({.device = "net_ring_" + name});
  if (!port) fail(port.error().c_str());
  return std::move(*port);
}

// One data path: its Device, inner port (two rings), underlay port, link, lcore.
struct Side {
  Side(const std::string& tag, const Clock& clock, std::unique_ptr<crypto::AeadBackend> backend,
       const char* endpoint, const char* mac, rte_ring* wire_in, rte_ring* wire_out)
      : aead(std::move(backend)),
        node(clock, *aead, endpoint),
        to_tunnel(make_ring(tag + "-in")),
        from_tunnel(make_ring(tag + "-out")),
        inner(ring_port("in_" + tag, to_tunnel, from_tunnel)),
        wire(ring_port("wire_" + tag, wire_in, wire_out)),
        link(underlay(*parse_mac(mac), node.endpoint)),
        lcore(node.dev, clock, *inner, *wire, link) {}

  std::unique_ptr<crypto::AeadBackend> aead;
  Node node;
  rte_ring* to_tunnel;
  rte_ring* from_tunnel;
  std::unique_ptr<dpdk::Port> inner, wire;
  UnderlayLink link;
  dpdk::Lcore lcore;
};

struct Sink {
  Side* side;
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> packets{0};
};

// Lcore 1: b's data path, and what it delivers is counted and freed.
int run_b(void* arg) {
  Sink& sink = *static_cast<Sink*>(arg);
  void* got[kBurstSize];
  while (!sink.stop.load(std::memory_order_relaxed)) {
    sink.side->lcore.poll();
    const unsigned n = rte_ring_dequeue_burst(sink.side->from_tunnel, got, kBurstSize, nullptr);
    if (n == 0) continue;
    rte_pktmbuf_free_bulk(reinterpret_cast<rte_mbuf**>(got), n);
    sink.packets.fetch_add(n, std::memory_order_relaxed);
  }
  return 0;
}

// The main lcore: keeps a's inner port fed with `size`-byte packets, runs a's lcore.
void run_a(Side& a, size_t size, Steady::time_point until) {
  std::vector<uint8_t> inner(size);
  write_inner(inner.data(), size);
  rte_mbuf* burst[kBurstSize];
  while (Steady::now() < until) {
    if (rte_ring_free_count(a.to_tunnel) >= kBurstSize &&
        rte_pktmbuf_alloc_bulk(a.inner->pool(), burst, kBurstSize) == 0) {
      for (rte_mbuf* m : burst) {
        std::memcpy(rte_pktmbuf_mtod(m, uint8_t*), inner.data(), size);
        m->data_len = static_cast<uint16_t>(size);
        m->pkt_len = static_cast<uint32_t>(size);
      }
      rte_ring_enqueue_bulk(a.to_tunnel, reinterpret_cast<void**>(burst), kBurstSize, nullptr);
    }
    a.lcore.poll();
  }
}

}  // namespace

UnderlayAddress underlay(const MacAddress& mac, const Endpoint& ep) {
  UnderlayAddress a;
  a.mac = mac;
  a.port = ep.port;
  UnderlayAddress::V4 v4;
  std::memcpy(v4.addr.data(), ep.addr.data(), 4);
  v4.prefix = 24;
  a.v4 = v4;
  return a;
}

void bench_pair(const std::string& backend, const crypto::AeadFactory& make, double seconds) {
  static int instance = 0;  // ring and port names are unique per process
  const std::string tag = std::to_string(instance++);
  FixedClock clock;
  rte_ring* ab = make_ring("wire-ab" + tag);
  rte_ring* ba = make_ring("wire-ba" + tag);
  // Port names end in digits (net_ring_in_a0): dpdk::device_argument's rule.
  Side a("a" + tag, clock, make(), "10.99.0.1:51820", "02:00:00:00:00:0a", ba, ab);
  Side b("b" + tag, clock, make(), "10.99.0.2:51820", "02:00:00:00:00:0b", ab, ba);
  pair_up(a.node, b.node, false);  // b learns a's endpoint from a's initiation

  std::printf("\nbackend %s: two data paths, lcore 0 -> lcore 1, over a ring wire\n",
              backend.c_str());
  for (size_t size : {size_t{64}, size_t{1420}}) {
    Sink sink{&b};
    if (rte_eal_remote_launch(run_b, &sink, 1) != 0) fail("cannot launch on lcore 1");
    // Warm-up: ARP, the handshake, the rings filled.
    run_a(a, size, Steady::now() + std::chrono::milliseconds(300));
    const uint64_t start = sink.packets.load();
    const uint64_t lost_before = a.wire->tx_full() + b.inner->tx_full();
    const auto t0 = Steady::now();
    run_a(a, size, t0 + std::chrono::duration_cast<Steady::duration>(Seconds(seconds)));
    const double elapsed = Seconds(Steady::now() - t0).count();
    const uint64_t delivered = sink.packets.load() - start;
    sink.stop = true;
    rte_eal_wait_lcore(1);
    const double mpps = delivered / elapsed / 1e6;
    const uint64_t lost = a.wire->tx_full() + b.inner->tx_full() - lost_before;
    std::printf("%5zu B  delivered %7.3f Mpps  %6.2f Gbit/s   (rings full: %lu dropped)\n", size,
                mpps, mpps * size * 8 / 1e3, static_cast<unsigned long>(lost));
    if (delivered == 0) fail("nothing delivered: the handshake or ARP did not complete");
  }
}

}  // namespace faraday::bench
