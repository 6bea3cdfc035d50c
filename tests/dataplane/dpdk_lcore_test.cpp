// dpdk_lcore_test: two WireGuard cores, each with its own dpdk::Lcore, on ports
// made from rings (rte_eth_from_rings): an underlay "wire" (a's TX ring is b's
// RX ring and back) and, per node, an inner port whose RX ring the test fills
// as the kernel would write to a TUN device and whose TX ring it reads. Nothing
// is set up in advance: the first packet resolves b's MAC over the wire, makes
// the handshake and arrives, all through the lcores' poll(). Then the same with
// a's inner port a TAP (an InnerLink): the host's ARP is answered on it, its
// frames lose their Ethernet header on the way in and get one on the way out.
// Then a on two lcores (the second a Device worker on a thread of its own),
// with ARP answers landing on the queue of the lcore that did not ask.
// Part of dpdk_port_test's program (one EAL per process).
#include "dataplane/dpdk_lcore.h"

#include <gtest/gtest.h>
#include <rte_eth_ring.h>
#include <rte_mbuf.h>
#include <rte_ring.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "dataplane/rcu.h"

#include "tests/dataplane/dpdk_helpers.h"
#include "tests/dataplane/harness.h"

namespace faraday::dataplane::dpdk {
namespace {

using testing::Bytes;
using testing::make_ring;
using testing::Network;
using testing::ring_port;
using testing::underlay;

// One node's side: its inner port's rings, its ports, link and lcore.
struct Side {
  Side(const std::string& tag, Network& net, testing::Node& node, rte_ring* wire_in,
       rte_ring* wire_out, const MacAddress& mac)
      : to_tunnel(make_ring("in-" + tag)),
        from_tunnel(make_ring("out-" + tag)),
        inner(ring_port("in_" + tag + "0", to_tunnel, from_tunnel)),
        wire(ring_port("wire_" + tag + "0", wire_in, wire_out)),
        link(underlay(mac, node.source)),
        lcore(node.device, net.clock, *inner, *wire, link) {}

  // Puts an inner packet where the inner port reads (the kernel's write to TUN).
  void write(const Bytes& packet) {
    rte_mbuf* m = testing::mbuf_with(inner->pool(), packet);
    ASSERT_NE(m, nullptr);
    ASSERT_EQ(rte_ring_enqueue(to_tunnel, m), 0);
  }
  // What the lcore wrote to the inner port (the kernel's read from TUN).
  std::vector<Bytes> read() { return testing::take_all(from_tunnel); }

  rte_ring* to_tunnel;
  rte_ring* from_tunnel;
  std::unique_ptr<Port> inner, wire;
  UnderlayLink link;
  Lcore lcore;
};

// Two nodes joined by a wire of two rings; `tag` keeps ring and port names apart.
struct Pair {
  explicit Pair(const std::string& tag, uint8_t n)
      : a_to_b(make_ring("wire-" + tag + "ab")),
        b_to_a(make_ring("wire-" + tag + "ba")),
        a(tag + "a", net, net.a, b_to_a, a_to_b, MacAddress{0x02, 0, 0, 0, n, 0x0a}),
        b(tag + "b", net, net.b, a_to_b, b_to_a, MacAddress{0x02, 0, 0, 0, n, 0x0b}) {}
  // Rounds of both lcores, enough for ARP, a handshake and a burst to cross.
  void run() {
    for (int round = 0; round < 16; ++round) {
      a.lcore.poll();
      b.lcore.poll();
    }
  }
  Network net;
  rte_ring* a_to_b;
  rte_ring* b_to_a;
  Side a, b;
};

TEST(DpdkLcore, FirstPacketResolvesShakesHandsAndArrivesThenTrafficFlowsBothWays) {
  Pair pair("", 0);
  Network& net = pair.net;
  Side& a = pair.a;
  Side& b = pair.b;
  // Every mbuf in flight ends where it started: freed by whoever took it last.
  auto free_mbufs = [&] {
    return std::vector<unsigned>{
        rte_mempool_avail_count(a.inner->pool()), rte_mempool_avail_count(a.wire->pool()),
        rte_mempool_avail_count(b.inner->pool()), rte_mempool_avail_count(b.wire->pool())};
  };
  const std::vector<unsigned> free_at_start = free_mbufs();
  auto run = [&] { pair.run(); };

  const Bytes first = testing::ipv4_packet(testing::kTunA4, testing::kTunB4, 200, 1);
  a.write(first);
  run();
  EXPECT_EQ(b.read(), std::vector<Bytes>{first});
  EXPECT_EQ(net.b.counters().handshakes_completed, 1u);
  EXPECT_EQ(a.link.counters().requests, 1u);  // one ARP exchange; b learnt a from it
  EXPECT_EQ(b.link.counters().requests, 0u);
  EXPECT_EQ(a.lcore.transmit().counters().held, 1u);  // the initiation, until b answered

  // A burst each way, in order, every size from tiny to the MTU.
  std::vector<Bytes> ab, ba;
  for (uint8_t i = 0; i < 40; ++i) {
    ab.push_back(testing::ipv4_packet(testing::kTunA4, testing::kTunB4, 20 + i * 35, i));
    ba.push_back(testing::ipv4_packet(testing::kTunB4, testing::kTunA4, 1420 - i * 30, i));
  }
  for (const Bytes& p : ab) a.write(p);
  for (const Bytes& p : ba) b.write(p);
  run();
  EXPECT_EQ(b.read(), ab);
  EXPECT_EQ(a.read(), ba);
  EXPECT_EQ(net.a.counters().dropped_total(), 0u);
  EXPECT_EQ(net.b.counters().dropped_total(), 0u);
  EXPECT_EQ(a.lcore.counters().inner_rx, 1u + ab.size());
  EXPECT_EQ(a.lcore.counters().inner_tx, ba.size());

  // A packet for nobody's allowed IPs is dropped by the core, its mbuf freed.
  a.write(testing::ipv4_packet(testing::kTunA4, "192.168.9.9", 100));
  run();
  EXPECT_EQ(net.a.dropped(Drop::kNoRoute), 1u);
  EXPECT_EQ(a.lcore.transmit().held(), 0u);
  EXPECT_EQ(free_mbufs(), free_at_start);
}

TEST(DpdkLcore, OnATapTheHostsArpIsAnsweredAndPacketsCrossInFrames) {
  Pair pair("t", 1);
  Network& net = pair.net;
  Side& a = pair.a;
  Side& b = pair.b;
  const MacAddress ours = *parse_mac("02:fa:00:00:00:01");
  const MacAddress host = *parse_mac("02:11:00:00:00:01");
  InnerLink tap(ours, host);
  a.lcore.set_inner_link(&tap);
  const unsigned a_inner_free = rte_mempool_avail_count(a.inner->pool());
  auto run = [&] { pair.run(); };

  // The host asks for b's overlay address: the answer comes back on the TAP.
  UnderlayAddress asker;
  asker.mac = host;
  asker.v4 = UnderlayAddress::V4{{192, 168, 0, 1}, 24, std::nullopt};
  Bytes arp(128);
  arp.resize(build_arp_request(arp, asker, {192, 168, 0, 2}));
  a.write(arp);
  run();
  std::vector<Bytes> answers = a.read();
  ASSERT_EQ(answers.size(), 1u);
  Result<Frame, FrameDrop> reply = classify_frame(answers[0], asker);
  ASSERT_TRUE(reply) << frame_drop_name(reply.failure());
  EXPECT_EQ(reply->kind, Frame::Kind::kArpReply);
  EXPECT_EQ(reply->neighbor_mac, ours);
  EXPECT_EQ(tap.counters().answers, 1u);

  // Packets in frames to our MAC reach b as bare IP packets; b's come back to
  // the host in frames; frames to another MAC go nowhere.
  const Bytes ab = testing::ipv4_packet(testing::kTunA4, testing::kTunB4, 300, 1);
  const Bytes ba = testing::ipv4_packet(testing::kTunB4, testing::kTunA4, 1420, 2);
  a.write(testing::ethernet_frame(ours, host, kEtherIpv4, ab));
  a.write(testing::ethernet_frame(host, host, kEtherIpv4, ab));
  run();
  EXPECT_EQ(b.read(), std::vector<Bytes>{ab});
  b.write(ba);
  run();
  EXPECT_EQ(a.read(), std::vector<Bytes>{testing::ethernet_frame(host, ours, kEtherIpv4, ba)});
  EXPECT_EQ(tap.counters().packets, 1u);
  EXPECT_EQ(tap.counters().dropped(FrameDrop::kNotForUs), 1u);
  EXPECT_EQ(a.lcore.counters().inner_answers_lost, 0u);
  EXPECT_EQ(net.a.counters().dropped_total(), 0u);
  EXPECT_EQ(rte_mempool_avail_count(a.inner->pool()), a_inner_free);
}

// a runs two lcores, a queue pair each on its inner port and its wire; the
// second is one of the Device's workers, polled on a thread of its own (with
// an RcuReader) while the test thread polls the first lcore and b. The test
// carries b's frames to a: datagrams to queue 1, ARP answers to each queue in
// turn starting with 1, so each lcore's answer lands on the other's queue and
// arrives as news (NewsBoard). The tunnel's packets all go through lcore 1.
TEST(DpdkLcore, TwoLcoresShareOneDeviceAndEachHearsTheOthersArpAnswers) {
  Network net;
  rte_ring* in[2] = {make_ring("2in0"), make_ring("2in1")};
  rte_ring* out[2] = {make_ring("2out0"), make_ring("2out1")};
  rte_ring* to_a[2] = {make_ring("2ba0"), make_ring("2ba1")};
  // Both of a's lcores send on the wire: a ring with two producers.
  rte_ring* a_to_b = rte_ring_create("2ab", 1024, SOCKET_ID_ANY, 0);
  ASSERT_NE(a_to_b, nullptr);
  rte_ring* from_b = make_ring("2bout");
  auto two_queues = [](const std::string& name, rte_ring** rx, rte_ring** tx, unsigned ntx) {
    EXPECT_GE(rte_eth_from_rings(name.c_str(), rx, 2, tx, ntx, SOCKET_ID_ANY), 0) << name;
    Result<std::unique_ptr<Port>> port = Port::open({.device = "net_ring_" + name, .queues = 2});
    EXPECT_TRUE(port) << port.error();
    return port ? std::move(*port) : nullptr;
  };
  rte_ring* wire_tx[2] = {a_to_b, a_to_b};
  std::unique_ptr<Port> a_inner = two_queues("twoai0", in, out, 2);
  std::unique_ptr<Port> a_wire = two_queues("twoaw0", to_a, wire_tx, 2);
  ASSERT_TRUE(a_inner && a_wire);
  rte_ring* b_in = make_ring("2bin");
  rte_ring* b_out = make_ring("2bto");
  std::unique_ptr<Port> b_inner = ring_port("twobi0", b_in, b_out);
  std::unique_ptr<Port> b_wire = ring_port("twobw0", a_to_b, from_b);

  const MacAddress a_mac{0x02, 0, 0, 0, 2, 0x0a}, b_mac{0x02, 0, 0, 0, 2, 0x0b};
  UnderlayLink link0(underlay(a_mac, net.a.source)), link1(underlay(a_mac, net.a.source));
  UnderlayLink b_link(underlay(b_mac, net.b.source));
  std::unique_ptr<crypto::AeadBackend> aead = crypto::make_sodium_backend();
  Worker& worker = net.a.device.add_worker(*aead);
  Lcore first(net.a.device, net.clock, *a_inner, *a_wire, link0, 0);
  Lcore second(net.a.device, net.clock, *a_inner, *a_wire, link1, 1, &worker);
  Lcore b(net.b.device, net.clock, *b_inner, *b_wire, b_link);
  NewsBoard board(2);
  first.set_news(&board, 0);
  second.set_news(&board, 1);
  first.serve_workers();

  std::atomic<bool> stop{false};
  std::thread lcore1([&] {
    RcuReader rcu;
    while (!stop.load()) {
      second.poll();
      rcu.quiescent();
    }
  });
  unsigned arp_answers = 0;
  auto carry_b_to_a = [&] {
    void* m;
    while (rte_ring_dequeue(from_b, &m) == 0) {
      auto* mbuf = static_cast<rte_mbuf*>(m);
      const uint8_t* d = rte_pktmbuf_mtod(mbuf, const uint8_t*);
      const bool arp = (d[12] << 8 | d[13]) == kEtherArp;
      rte_ring* queue = arp && arp_answers++ % 2 == 1 ? to_a[0] : to_a[1];
      ASSERT_EQ(rte_ring_enqueue(queue, mbuf), 0);
    }
  };
  std::vector<Bytes> at_b, at_a;
  // Polls until `done` or 5 s, collecting what each side's tunnel delivered.
  auto run_until = [&](auto done) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (!done() && std::chrono::steady_clock::now() < deadline) {
      first.poll();
      b.poll();
      carry_b_to_a();
      for (Bytes& p : testing::take_all(b_out)) at_b.push_back(std::move(p));
      for (Bytes& p : testing::take_all(out[1])) at_a.push_back(std::move(p));
      std::this_thread::yield();
    }
  };
  auto write = [](rte_ring* ring, rte_mempool* pool, const Bytes& packet) {
    rte_mbuf* m = testing::mbuf_with(pool, packet);
    ASSERT_NE(m, nullptr);
    ASSERT_EQ(rte_ring_enqueue(ring, m), 0);
  };

  // The first packet, on lcore 1: staged with the handshake context, whose
  // initiation waits for b's MAC, whose answer lands on lcore 1's queue.
  const Bytes hello = testing::ipv4_packet(testing::kTunA4, testing::kTunB4, 200, 1);
  write(in[1], a_inner->pool(), hello);
  run_until([&] { return !at_b.empty(); });
  EXPECT_EQ(at_b, std::vector<Bytes>{hello});
  EXPECT_EQ(net.b.counters().handshakes_completed, 1u);
  EXPECT_EQ(link0.counters().requests, 1u);
  EXPECT_EQ(link0.counters().heard, 1u);  // the answer to its request came on queue 1

  // A burst each way through lcore 1: it asks for b's MAC itself, and hears
  // the answer, which lands on queue 0.
  std::vector<Bytes> ab, ba;
  for (uint8_t i = 0; i < 40; ++i) {
    ab.push_back(testing::ipv4_packet(testing::kTunA4, testing::kTunB4, 20 + i * 35, i));
    ba.push_back(testing::ipv4_packet(testing::kTunB4, testing::kTunA4, 1420 - i * 30, i));
  }
  at_b.clear();
  for (const Bytes& p : ab) write(in[1], a_inner->pool(), p);
  for (const Bytes& p : ba) write(b_in, b_inner->pool(), p);
  run_until([&] { return at_b.size() >= ab.size() && at_a.size() >= ba.size(); });
  stop = true;
  lcore1.join();
  EXPECT_EQ(at_b, ab);
  EXPECT_EQ(at_a, ba);
  EXPECT_EQ(link1.counters().requests, 1u);
  EXPECT_EQ(link1.counters().heard, 1u);
  EXPECT_EQ(second.counters().inner_rx, 1u + ab.size());
  EXPECT_EQ(second.counters().inner_tx, ba.size());
  EXPECT_EQ(first.counters().inner_rx, 0u);
  EXPECT_EQ(board.lost(), 0u);
  EXPECT_EQ(net.a.counters().dropped_total(), 0u);
  EXPECT_EQ(net.b.counters().dropped_total(), 0u);
  for (Port* port : {a_inner.get(), a_wire.get(), b_inner.get(), b_wire.get()}) port->close();
}

}  // namespace
}  // namespace faraday::dataplane::dpdk
