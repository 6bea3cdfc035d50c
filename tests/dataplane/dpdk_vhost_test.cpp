// dpdk_vhost_test: the inner side as a vhost-user socket (DPDK's net_vhost), the
// way a DPDK application in a container reaches the mesh: it attaches with
// virtio-user (net_virtio_user) to the socket, both in this process here,
// speaking the real vhost-user protocol over a real unix socket. The
// application's ARP for a mesh address is answered by a's InnerLink, its
// packets reach b through the tunnel, and b's come back to it in frames. Part
// of dpdk_port_test's program (one EAL per process).
#include <gtest/gtest.h>
#include <rte_dev.h>
#include <rte_ethdev.h>
#include <rte_mbuf.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "dataplane/dpdk_lcore.h"
#include "tests/dataplane/dpdk_helpers.h"
#include "tests/dataplane/harness.h"

namespace faraday::dataplane::dpdk {
namespace {

using testing::Bytes;

TEST(DpdkVhost, AnApplicationOnVirtioUserReachesTheMeshThroughTheSocket) {
  const testing::SocketPath socket("vhost-test");
  const std::string& path = socket.path;
  ASSERT_EQ(rte_dev_probe(("net_vhost3,iface=" + path + ",queues=1").c_str()), 0);
  Result<std::unique_ptr<Port>> vhost = Port::open({.device = "net_vhost3"});
  ASSERT_TRUE(vhost) << vhost.error();
  ASSERT_EQ(rte_dev_probe(("net_virtio_user3,path=" + path + ",queues=1").c_str()), 0);
  Result<std::unique_ptr<Port>> virtio = Port::open({.device = "net_virtio_user3"});
  ASSERT_TRUE(virtio) << virtio.error();
  testing::VirtioApp app{**virtio};
  const MacAddress app_mac = app.port.mac();

  testing::Network net;
  rte_ring* a_to_b = testing::make_ring("wire-vh-ab");
  rte_ring* b_to_a = testing::make_ring("wire-vh-ba");
  rte_ring* b_in = testing::make_ring("in-vh-b");
  rte_ring* b_out = testing::make_ring("out-vh-b");
  auto wire_a = testing::ring_port("wire_vha0", b_to_a, a_to_b);
  auto wire_b = testing::ring_port("wire_vhb0", a_to_b, b_to_a);
  auto inner_b = testing::ring_port("in_vhb0", b_in, b_out);
  UnderlayLink link_a(testing::underlay(*parse_mac("02:00:00:00:02:0a"), net.a.source));
  UnderlayLink link_b(testing::underlay(*parse_mac("02:00:00:00:02:0b"), net.b.source));
  Lcore lcore_a(net.a.device, net.clock, **vhost, *wire_a, link_a);
  Lcore lcore_b(net.b.device, net.clock, *inner_b, *wire_b, link_b);
  const MacAddress ours = *parse_mac("02:fa:00:00:00:03");
  InnerLink inner_link(ours, MacAddress{});  // the application's MAC: learnt from its frames
  lcore_a.set_inner_link(&inner_link);

  // Until the application's driver has set the rings up, nothing moves; the
  // ARP is sent again until it is answered.
  UnderlayAddress asker;
  asker.mac = app_mac;
  asker.v4 = UnderlayAddress::V4{{192, 168, 0, 1}, 24, std::nullopt};
  Bytes arp(128);
  arp.resize(build_arp_request(arp, asker, {192, 168, 0, 2}));
  std::vector<Bytes> answers;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (answers.empty() && std::chrono::steady_clock::now() < deadline) {
    app.send(arp);
    for (int i = 0; i < 100 && answers.empty(); ++i) {
      lcore_a.poll();
      answers = app.receive();
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_EQ(answers.size(), 1u) << "no ARP answer through the vhost-user socket in 5 s";
  Result<Frame, FrameDrop> reply = classify_frame(answers[0], asker);
  ASSERT_TRUE(reply) << frame_drop_name(reply.failure());
  EXPECT_EQ(reply->kind, Frame::Kind::kArpReply);
  EXPECT_EQ(reply->neighbor_mac, ours);

  // A packet from the application reaches b; b's answer reaches the application.
  const Bytes ab = testing::ipv4_packet(testing::kTunA4, testing::kTunB4, 600, 1);
  const Bytes ba = testing::ipv4_packet(testing::kTunB4, testing::kTunA4, 1420, 2);
  app.send(testing::ethernet_frame(ours, app_mac, kEtherIpv4, ab));
  std::vector<Bytes> at_b, at_app;
  for (int round = 0; round < 200 && at_b.empty(); ++round) {
    lcore_a.poll();
    lcore_b.poll();
    at_b = testing::take_all(b_out);
  }
  EXPECT_EQ(at_b, std::vector<Bytes>{ab});
  rte_mbuf* m = testing::mbuf_with(inner_b->pool(), ba);
  ASSERT_NE(m, nullptr);
  ASSERT_EQ(rte_ring_enqueue(b_in, m), 0);
  for (int round = 0; round < 200 && at_app.empty(); ++round) {
    lcore_b.poll();
    lcore_a.poll();
    at_app = app.receive();
  }
  EXPECT_EQ(at_app, std::vector<Bytes>{testing::ethernet_frame(app_mac, ours, kEtherIpv4, ba)});
  EXPECT_EQ(net.a.counters().dropped_total(), 0u);

  virtio->get()->close();
  vhost->get()->close();
  EXPECT_NE(access(path.c_str(), F_OK), 0) << "the vhost-user socket outlived its port";
}

}  // namespace
}  // namespace faraday::dataplane::dpdk
