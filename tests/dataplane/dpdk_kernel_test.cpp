// dpdk_kernel_test: the DPDK underlay against the Linux stack on a real link. As
// root, in a network namespace of its own: a veth pair, the kernel's end with
// 10.77.0.1/24, our end driven by DPDK's net_af_packet PMD (plugged in at run
// time) through a Port, a Receive and a Transmit, with 10.77.0.2 as our address.
// The kernel must resolve us through the ARP reply Receive sends, and its UDP
// datagram must come out of Receive whole; our answer, framed by Transmit with
// our checksums, must reach its socket, which the kernel checks. Part of
// dpdk_port_test's program (one EAL per process).
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <net/if.h>
#include <rte_dev.h>
#include <rte_mbuf.h>
#include <sched.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <fstream>
#include <string>
#include <thread>

#include "dataplane/dpdk_port.h"
#include "tests/dataplane/kernel_helpers.h"

namespace faraday::dataplane::dpdk {
namespace {

using Steady = std::chrono::steady_clock;
using testing::now_ns;
using testing::receive_text;
using testing::run;
using testing::set_tx_checksumming;

void talk_with_the_kernel() {
  ASSERT_TRUE(run("ip link add vk type veth peer name vo") && run("ip link set lo up") &&
              run("ip link set vk up") && run("ip link set vo up") &&
              run("ip addr add 10.77.0.1/24 dev vk"))
      << "cannot set up the veth pair (iproute2)";
  std::ofstream("/proc/sys/net/ipv6/conf/vo/disable_ipv6") << "1\n";  // no chatter of its own
  set_tx_checksumming("vk", false);
  // The PMD's socket is made now, in this thread's namespace.
  ASSERT_EQ(rte_dev_probe("net_af_packet7,iface=vo"), 0);
  Result<std::unique_ptr<Port>> opened = Port::open({.device = "net_af_packet7,iface=vo"});
  ASSERT_TRUE(opened) << opened.error();
  Port& port = **opened;
  EXPECT_EQ(port.driver(), "net_af_packet");

  UnderlayAddress self;
  self.mac = port.mac();
  self.port = 51820;
  self.v4 = UnderlayAddress::V4{{10, 77, 0, 2}, 24, std::nullopt};
  UnderlayLink link(self);
  Receive rx(port, 0, link);
  Transmit tx(port, 0, link);

  int sock = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(sock, 0);
  const Endpoint kernel = *Endpoint::parse("10.77.0.1:5000");
  sockaddr_storage local{}, ours{};
  const socklen_t len = kernel.to_sockaddr(local, false);
  Endpoint::parse("10.77.0.2:51820")->to_sockaddr(ours, false);
  ASSERT_EQ(::bind(sock, reinterpret_cast<sockaddr*>(&local), len), 0) << std::strerror(errno);
  ASSERT_EQ(::sendto(sock, "hello", 5, 0, reinterpret_cast<sockaddr*>(&ours), len), 5);

  // The kernel asks for us, Receive answers, the kernel's datagram arrives.
  rte_mbuf* got[kBurstSize];
  Packet pkts[kBurstSize];
  size_t k = 0;
  for (auto until = Steady::now() + std::chrono::seconds(3); k == 0 && Steady::now() < until;)
    k = rx.poll(got, pkts, now_ns());
  ASSERT_EQ(k, 1u) << "no datagram from the kernel";
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(pkts[0].data()), pkts[0].length), "hello");
  EXPECT_EQ(pkts[0].endpoint, kernel);
  EXPECT_GE(rx.counters().answers, 1u);

  // Our answer, in the same mbuf, framed by Transmit: the kernel's MAC was learnt
  // from its request, and its socket takes our headers and checksums.
  std::memcpy(pkts[0].data(), "pong", 4);
  pkts[0].length = 4;
  const Verdict pass = Verdict::kPass;
  EXPECT_EQ(tx.send({got, 1}, {pkts, 1}, {&pass, 1}, now_ns()), 1u);
  sockaddr_storage sender{};
  EXPECT_EQ(receive_text(sock, 2000, sender), "pong");
  EXPECT_EQ(link.counters().requests, 0u);
  ::close(sock);
}

TEST(DpdkKernel, ArpAndUdpWithTheLinuxStackOverAfPacket) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root (a network namespace, AF_PACKET)";
  std::thread t([] {
    if (::unshare(CLONE_NEWNET) != 0) {
      ADD_FAILURE() << "unshare(CLONE_NEWNET): " << std::strerror(errno);
      return;
    }
    talk_with_the_kernel();
  });
  t.join();
}

}  // namespace
}  // namespace faraday::dataplane::dpdk
