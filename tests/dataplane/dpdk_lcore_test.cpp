// dpdk_lcore_test: two WireGuard cores, each with its own dpdk::Lcore, on ports
// made from rings (rte_eth_from_rings): an underlay "wire" (a's TX ring is b's
// RX ring and back) and, per node, an inner port whose RX ring the test fills
// as the kernel would write to a TUN device and whose TX ring it reads. Nothing
// is set up in advance: the first packet resolves b's MAC over the wire, makes
// the handshake and arrives, all through the lcores' poll(). Then the same with
// a's inner port a TAP (an InnerLink): the host's ARP is answered on it, its
// frames lose their Ethernet header on the way in and get one on the way out.
// Part of dpdk_port_test's program (one EAL per process).
#include "dataplane/dpdk_lcore.h"

#include <gtest/gtest.h>
#include <rte_eth_ring.h>
#include <rte_mbuf.h>
#include <rte_ring.h>

#include <cstring>
#include <string>
#include <vector>

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

}  // namespace
}  // namespace faraday::dataplane::dpdk
