// dpdk_port_test: the DPDK underlay on a real EAL (no hugepages) with real
// virtual devices: net_ring0, whose TX ring is its own RX ring, so a frame sent
// comes back as a wire would bring it, and net_null0. Two WireGuard cores from
// the harness share the loopback port, each behind its own UnderlayLink (its own
// MAC and address), so the test sees ARP resolve, a sealed datagram leave as a
// frame with its checksums and come back to the other core, which opens it.
//
// The EAL starts once per process, so this is a test program of its own.
#include "dataplane/dpdk_port.h"

#include <gtest/gtest.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>

#include <cstring>
#include <vector>

#include "dataplane/underlay_link.h"
#include "tests/dataplane/dpdk_helpers.h"
#include "tests/dataplane/harness.h"

namespace faraday::dataplane::dpdk {
namespace {

using testing::Bytes;
using testing::Network;

class Eal : public ::testing::Environment {
 public:
  void SetUp() override {
    ASSERT_EQ(sched_getaffinity(0, sizeof(cpu_set_t), &testing::cpus_given()), 0);
    EalSettings s;
    s.devices = {"net_ring0", "net_null0"};
    Result<void> r = init_eal(s);
    ASSERT_TRUE(r) << r.error();
  }
};
const auto* const eal = ::testing::AddGlobalTestEnvironment(new Eal);

bool contains(const std::vector<std::string>& v, const std::string& s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}

TEST(DpdkSettings, DefaultsNeedNoHugepagesAndNoPci) {
  Result<std::vector<std::string>> args = eal_arguments(EalSettings{});
  ASSERT_TRUE(args) << args.error();
  EXPECT_TRUE(contains(*args, "--no-huge"));
  EXPECT_TRUE(contains(*args, "--no-shconf"));  // two processes side by side
  EXPECT_TRUE(contains(*args, "--no-pci"));
  EXPECT_FALSE(contains(*args, "--in-memory"));  // the EAL refuses it with --no-huge
}

TEST(DpdkSettings, APciDeviceIsAllowedAndOthersAreNotProbed) {
  EalSettings s;
  s.hugepages = true;
  s.devices = {"0000:3b:00.0"};
  Result<std::vector<std::string>> args = eal_arguments(s);
  ASSERT_TRUE(args) << args.error();
  EXPECT_TRUE(contains(*args, "--allow=0000:3b:00.0"));
  EXPECT_TRUE(contains(*args, "--in-memory"));
  EXPECT_FALSE(contains(*args, "--no-pci"));
}

TEST(DpdkSettings, BadSettingsAreRefusedWithTheReason) {
  EalSettings s;
  s.lcores = "0-";
  EXPECT_NE(eal_arguments(s).error().find("lcores"), std::string::npos);
  s = {};
  s.memory_mb = 8;
  EXPECT_NE(eal_arguments(s).error().find("memory"), std::string::npos);
  for (const char* bad : {"", "eth0", "net_tap", "net_tap0 --no-huge", "--vdev=net_null0",
                          "0000:3b:00.9", "net_null0\n"}) {
    s = {};
    s.devices = {bad};
    EXPECT_FALSE(eal_arguments(s)) << bad;
  }
}

// The lcore list: how many distinct CPUs it names, every malformed or
// out-of-range form refused (numbers of any length, lists of any length).
TEST(DpdkSettings, CpuLists) {
  EXPECT_EQ(*cpu_list_count("0"), 1u);
  EXPECT_EQ(*cpu_list_count("0-3"), 4u);
  EXPECT_EQ(*cpu_list_count("2,4"), 2u);
  EXPECT_EQ(*cpu_list_count("0-3,2,7"), 5u);  // 2 counted once
  EXPECT_EQ(*cpu_list_count("1023"), 1u);
  const std::vector<std::string> bad_lists = {"",
                                              "-",
                                              "0-",
                                              "-3",
                                              "3-1",
                                              "0,",
                                              ",0",
                                              "0,,1",
                                              "a",
                                              "0-1-2",
                                              "1024",
                                              "0-1024",
                                              "99999999999",
                                              "0-99999999999",
                                              "0 ",
                                              std::string(300, '1'),
                                              "0" + std::string(400, ',')};
  for (const std::string& bad : bad_lists) {
    Result<unsigned> refused = cpu_list_count(bad);
    ASSERT_FALSE(refused) << bad;
    EXPECT_NE(refused.error().find("want a CPU list"), std::string::npos) << bad;
  }
  std::string long_list = "0";
  for (int i = 1; i < 60; ++i) long_list += "," + std::to_string(i);
  EXPECT_EQ(*cpu_list_count(long_list), 60u);
  EalSettings s;
  s.devices = {"net_null0," + std::string(2000, 'x')};
  EXPECT_FALSE(eal_arguments(s));
}

TEST(DpdkSettings, DeviceNames) {
  EXPECT_EQ(device_argument("net_af_xdp0,iface=eth1,start_queue=0")->port, "net_af_xdp0");
  EXPECT_EQ(device_argument("net_af_xdp0,iface=eth1")->argument, "--vdev=net_af_xdp0,iface=eth1");
  EXPECT_EQ(device_argument("0000:3b:00.0")->argument, "--allow=0000:3b:00.0");
  // DPDK knows a PCI port only by its full lower-case address.
  for (const char* partial : {"3b:00.0", "0000:3B:00.0"}) {
    Result<DeviceName> d = device_argument(partial);
    ASSERT_FALSE(d) << partial;
    EXPECT_NE(d.error().find("in full"), std::string::npos) << d.error();
  }
}

TEST(DpdkEal, StartsOnce) {
  Result<void> again = init_eal(EalSettings{});
  ASSERT_FALSE(again);
  EXPECT_NE(again.error().find("already"), std::string::npos);
}

TEST(DpdkPort, UnknownDeviceNamesTheOnesThereAre) {
  Result<std::unique_ptr<Port>> port = Port::open({.device = "net_pcap7"});
  ASSERT_FALSE(port);
  EXPECT_NE(port.error().find("no such device"), std::string::npos);
  EXPECT_NE(port.error().find("net_ring0"), std::string::npos) << port.error();
}

TEST(DpdkPort, MoreQueuesThanTheDeviceHasIsAnError) {
  Result<std::unique_ptr<Port>> port = Port::open({.device = "net_ring0", .queues = 1000});
  ASSERT_FALSE(port);
  EXPECT_NE(port.error().find("queue"), std::string::npos) << port.error();
}

// An mbuf holding `inner` at the default headroom.
rte_mbuf* mbuf_with(Port& port, const Bytes& inner) {
  rte_mbuf* m = rte_pktmbuf_alloc(port.pool());
  EXPECT_NE(m, nullptr);
  std::memcpy(rte_pktmbuf_mtod(m, uint8_t*), inner.data(), inner.size());
  m->data_len = static_cast<uint16_t>(inner.size());
  m->pkt_len = static_cast<uint32_t>(inner.size());
  return m;
}

UnderlayAddress address(MacAddress mac, const char* ip, uint16_t port) {
  return testing::underlay(mac, *Endpoint::parse(std::string(ip) + ":" + std::to_string(port)));
}

TEST(DpdkPort, ResolvesTheNextHopThenSendsFramesTheOtherSideOpens) {
  Result<std::unique_ptr<Port>> opened = Port::open({.device = "net_ring0"});
  ASSERT_TRUE(opened) << opened.error();
  Port& port = **opened;
  EXPECT_EQ(port.driver(), "net_ring");
  const unsigned pool_free = rte_mempool_avail_count(port.pool());

  Network net;
  net.establish();
  UnderlayLink link_a(address(port.mac(), "10.0.0.1", 1001));
  UnderlayLink link_b(address(*parse_mac("02:00:00:00:00:02"), "10.0.0.2", 1002));
  Transmit tx(port, 0, link_a);
  const Nanos now = net.clock.monotonic();

  // a's packets for b in mbufs, through send_burst and the transmit step.
  auto send = [&](const std::vector<Bytes>& inner) {
    std::vector<rte_mbuf*> mbufs;
    std::vector<Packet> pkts;
    for (const Bytes& b : inner) {
      mbufs.push_back(mbuf_with(port, b));
      pkts.push_back(packet_of(mbufs.back()));
    }
    std::vector<Verdict> verdicts(inner.size());
    net.a.device.send_burst(pkts, verdicts);
    for (Verdict v : verdicts) EXPECT_EQ(v, Verdict::kPass);
    return tx.send(mbufs, pkts, verdicts, now);
  };
  const Bytes first = testing::ipv4_packet(testing::kTunA4, testing::kTunB4, 100, 1);

  Receive rx_a(port, 0, link_a), rx_b(port, 0, link_b);
  rte_mbuf* got[kBurstSize];
  Packet datagrams[kBurstSize];

  // b's MAC is unknown: the datagram is held and an ARP request leaves; b's
  // receive step answers it on the wire, and a's learns from that. Then the
  // held datagram goes, and b opens it.
  EXPECT_EQ(send({first}), 1u);
  EXPECT_EQ(link_a.counters().tx_unresolved, 1u);
  EXPECT_EQ(tx.held(), 1u);
  EXPECT_EQ(tx.retry(now), 0u);  // nothing learnt yet
  EXPECT_EQ(rx_b.poll(got, datagrams, now), 0u);
  EXPECT_EQ(rx_b.counters().answers, 1u);
  EXPECT_EQ(rx_a.poll(got, datagrams, now), 0u);
  EXPECT_EQ(link_a.counters().learnt, 1u);
  EXPECT_EQ(tx.retry(now), 1u);
  EXPECT_EQ(tx.held(), 0u);
  ASSERT_EQ(rx_b.poll(got, datagrams, now), 1u);
  Verdict verdict;
  net.b.device.receive_burst({datagrams, 1}, {&verdict, 1});
  EXPECT_EQ(verdict, Verdict::kPass);
  EXPECT_EQ(Bytes(datagrams[0].data(), datagrams[0].data() + datagrams[0].length), first);
  rte_pktmbuf_free(got[0]);

  // Now a burst leaves as frames b's link takes (checksums checked in software:
  // net_ring offers no offloads) and b's core opens in place, in order.
  std::vector<Bytes> inner;
  for (uint8_t i = 0; i < 8; ++i)
    inner.push_back(testing::ipv4_packet(testing::kTunA4, testing::kTunB4, 64 + 100 * i, i));
  EXPECT_EQ(send(inner), inner.size());
  EXPECT_EQ(tx.counters().frames, 1u + inner.size());
  const size_t k = rx_b.poll(got, datagrams, now);
  ASSERT_EQ(k, inner.size());
  std::vector<Verdict> verdicts(k);
  for (size_t i = 0; i < k; ++i) EXPECT_EQ(datagrams[i].endpoint, net.a.source);
  net.b.device.receive_burst({datagrams, k}, verdicts);
  for (size_t i = 0; i < k; ++i) {
    EXPECT_EQ(verdicts[i], Verdict::kPass);
    // The mbuf now holds the inner packet, ready for the inner port.
    take_packet(got[i], datagrams[i]);
    const uint8_t* d = rte_pktmbuf_mtod(got[i], const uint8_t*);
    EXPECT_EQ(Bytes(d, d + rte_pktmbuf_pkt_len(got[i])), inner[i]);
    rte_pktmbuf_free(got[i]);
  }
  // A frame for someone else is dropped by the link and its mbuf freed.
  rte_mbuf* stray = mbuf_with(port, Bytes(60, 0xee));
  ASSERT_EQ(port.tx(0, &stray, 1), 1);
  EXPECT_EQ(rx_b.poll(got, datagrams, now), 0u);
  EXPECT_EQ(rx_b.counters().frames, 2u + inner.size() + 1u);
  // Every mbuf went back to the pool: sent ones by the driver, dropped ones by us.
  EXPECT_EQ(rte_mempool_avail_count(port.pool()), pool_free);
}

TEST(DpdkPort, ARefusedPacketsMbufIsFreed) {
  Result<std::unique_ptr<Port>> opened = Port::open({.device = "net_null0"});
  ASSERT_TRUE(opened) << opened.error();
  Port& port = **opened;
  const unsigned pool_free = rte_mempool_avail_count(port.pool());
  UnderlayLink link(address(port.mac(), "10.0.0.1", 1001));
  Transmit tx(port, 0, link);
  rte_mbuf* m[3] = {mbuf_with(port, Bytes(60, 1)), mbuf_with(port, Bytes(60, 2)),
                    mbuf_with(port, Bytes(60, 3))};
  Packet pkts[3] = {packet_of(m[0]), packet_of(m[1]), packet_of(m[2])};
  const Verdict verdicts[3] = {Verdict::kDrop, Verdict::kConsumed, Verdict::kDrop};
  EXPECT_EQ(tx.send(m, pkts, verdicts, 0), 0u);
  // Passed, but for an IPv6 peer on an IPv4-only link, or without room for the
  // headers in front of it: counted and freed.
  rte_mbuf* more[2] = {mbuf_with(port, Bytes(60, 4)), mbuf_with(port, Bytes(60, 5))};
  Packet passed[2] = {packet_of(more[0]), packet_of(more[1])};
  passed[0].endpoint = *Endpoint::parse("[fd00::2]:1002");
  passed[1].endpoint = *Endpoint::parse("10.0.0.2:1002");
  passed[1].offset = kUnderlayHeadroom - 1;
  const Verdict pass[2] = {Verdict::kPass, Verdict::kPass};
  EXPECT_EQ(tx.send(more, passed, pass, 0), 0u);
  EXPECT_EQ(tx.counters().not_framed, 2u);
  EXPECT_EQ(link.counters().tx_no_route, 1u);
  // Held for a next hop that never answers: the newest kHeld wait, older ones
  // make room, and after kHoldFor every one is freed.
  std::vector<rte_mbuf*> waiting;
  std::vector<Packet> waiting_pkts;
  for (size_t i = 0; i < Transmit::kHeld + 3; ++i) {
    waiting.push_back(mbuf_with(port, Bytes(60, 6)));
    waiting_pkts.push_back(packet_of(waiting.back()));
    waiting_pkts.back().endpoint = *Endpoint::parse("10.0.0.2:1002");
  }
  const std::vector<Verdict> all_pass(waiting.size(), Verdict::kPass);
  EXPECT_EQ(tx.send(waiting, waiting_pkts, all_pass, 5), 1u);  // the ARP request
  EXPECT_EQ(tx.held(), Transmit::kHeld);
  EXPECT_EQ(tx.counters().held_lost, 3u);
  EXPECT_EQ(tx.retry(5 + Transmit::kHoldFor), 1u);  // the request again, a second on
  EXPECT_EQ(tx.held(), Transmit::kHeld);
  EXPECT_EQ(tx.retry(6 + Transmit::kHoldFor), 0u);
  EXPECT_EQ(tx.held(), 0u);
  EXPECT_EQ(tx.counters().held_lost, 3u + Transmit::kHeld);
  EXPECT_EQ(rte_mempool_avail_count(port.pool()), pool_free);
}

}  // namespace
}  // namespace faraday::dataplane::dpdk
