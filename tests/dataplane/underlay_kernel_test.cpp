// underlay_kernel_test.cpp: UnderlayLink (underlay_link.h) against the Linux
// stack, which plays the peer on the link. As root, in a network namespace of
// its own: a veth pair, the kernel's end with 10.77.0.1/24 and fd77::1/64, our
// end with no address, read and written raw (AF_PACKET) as a DPDK port would.
// The kernel sends UDP to our address (10.77.0.2, fd77::2): it must resolve us
// through our ARP reply or neighbour advertisement, and its datagram must reach
// us whole. Our answer must reach its socket (the kernel checks our IP and UDP
// checksums). A link that knows nothing must resolve the kernel itself.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <linux/ethtool.h>
#include <linux/if_packet.h>
#include <linux/sockios.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <poll.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "dataplane/underlay_link.h"
#include "tests/dataplane/kernel_helpers.h"

namespace faraday::dataplane {
namespace {

using Clock = std::chrono::steady_clock;
using testing::now_ns;
using testing::receive_text;
using testing::run;
using testing::set_tx_checksumming;

// Our end of the veth pair, raw.
struct RawPort {
  int fd = -1;
  int ifindex = 0;
  ~RawPort() {
    if (fd >= 0) ::close(fd);
  }
  bool open(const char* ifname) {
    ifindex = static_cast<int>(::if_nametoindex(ifname));
    fd = ::socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, htons(ETH_P_ALL));
    if (fd < 0 || ifindex == 0) return false;
    sockaddr_ll sll{};
    sll.sll_family = AF_PACKET;
    sll.sll_protocol = htons(ETH_P_ALL);
    sll.sll_ifindex = ifindex;
    return ::bind(fd, reinterpret_cast<sockaddr*>(&sll), sizeof sll) == 0;
  }
  bool send(const uint8_t* frame, size_t n) const {
    return ::send(fd, frame, n, 0) == static_cast<ssize_t>(n);
  }
  // One frame that arrived (not one we sent), or an empty vector after `ms`.
  std::vector<uint8_t> receive(int ms) const {
    pollfd p{fd, POLLIN, 0};
    std::vector<uint8_t> buf(2048);
    while (::poll(&p, 1, ms) == 1) {
      sockaddr_ll from{};
      socklen_t len = sizeof from;
      ssize_t n =
          ::recvfrom(fd, buf.data(), buf.size(), 0, reinterpret_cast<sockaddr*>(&from), &len);
      if (n <= 0) break;
      if (from.sll_pkttype == PACKET_OUTGOING) continue;
      buf.resize(static_cast<size_t>(n));
      return buf;
    }
    return {};
  }
};

// Reads frames into the link until a datagram arrives (returns its payload and
// source) or `ms` passes; sends every answer the link writes.
bool pump(UnderlayLink& link, const RawPort& port, int ms, std::string* payload = nullptr,
          Endpoint* source = nullptr) {
  const auto deadline = Clock::now() + std::chrono::milliseconds(ms);
  while (Clock::now() < deadline) {
    std::vector<uint8_t> f = port.receive(50);
    if (f.empty()) continue;
    Frame frame;
    std::array<uint8_t, UnderlayLink::kControlFrameSize> answer;
    size_t answer_length = 0;
    switch (link.receive(f, now_ns(), frame, answer, answer_length)) {
      case UnderlayLink::Rx::kAnswer:
        EXPECT_TRUE(port.send(answer.data(), answer_length));
        break;
      case UnderlayLink::Rx::kDatagram:
        if (!payload) break;
        payload->assign(reinterpret_cast<const char*>(f.data() + frame.payload_offset),
                        frame.payload_length);
        *source = frame.source;
        return true;
      default:
        break;
    }
  }
  return false;
}

// Sends `text` to `to` through the link, resolving the next hop first if it
// must (sending the link's requests, taking the answers), for up to 3 s.
bool deliver(UnderlayLink& link, const RawPort& port, const std::string& text, const Endpoint& to) {
  const auto deadline = Clock::now() + std::chrono::seconds(3);
  while (Clock::now() < deadline) {
    std::vector<uint8_t> buf(kUnderlayHeadroom + text.size());
    std::memcpy(buf.data() + kUnderlayHeadroom, text.data(), text.size());
    std::array<uint8_t, UnderlayLink::kControlFrameSize> request;
    UnderlayLink::Tx tx =
        link.send(buf.data() + kUnderlayHeadroom, text.size(), to, now_ns(), request);
    if (tx.request_length) {
      EXPECT_TRUE(port.send(request.data(), tx.request_length));
    }
    if (tx.frame) return port.send(tx.frame, tx.frame_length);
    pump(link, port, 100);  // the answer to our request
  }
  return false;
}

MacAddress mac_of(const char* ifname) {
  int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  ifreq ifr{};
  std::strncpy(ifr.ifr_name, ifname, IFNAMSIZ - 1);
  MacAddress mac{};
  if (::ioctl(fd, SIOCGIFHWADDR, &ifr) == 0) std::memcpy(mac.data(), ifr.ifr_hwaddr.sa_data, 6);
  ::close(fd);
  return mac;
}

void talk_with_the_kernel(bool v6) {
  ASSERT_TRUE(run("ip link add vk type veth peer name vo") && run("ip link set lo up") &&
              run("ip link set vk up") && run("ip link set vo up") &&
              run("ip addr add 10.77.0.1/24 dev vk") &&
              run("ip -6 addr add fd77::1/64 dev vk nodad"))
      << "cannot set up the veth pair (iproute2)";
  std::ofstream("/proc/sys/net/ipv6/conf/vo/disable_ipv6") << "1\n";  // no chatter of its own
  // The kernel's frames then carry whole checksums, as a NIC's would.
  set_tx_checksumming("vk", false);
  RawPort port;
  ASSERT_TRUE(port.open("vo")) << std::strerror(errno);

  UnderlayAddress self;
  self.mac = mac_of("vo");
  self.port = 51820;
  self.v4 = UnderlayAddress::V4{{10, 77, 0, 2}, 24, std::nullopt};
  self.v6 = UnderlayAddress::V6{{0xfd, 0x77, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2}, 64, {}};
  UnderlayLink link(self);

  // The kernel's socket, and a datagram from it to us.
  const int family = v6 ? AF_INET6 : AF_INET;
  int sock = ::socket(family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(sock, 0);
  const Endpoint kernel = *Endpoint::parse(v6 ? "[fd77::1]:5000" : "10.77.0.1:5000");
  const Endpoint us = *Endpoint::parse(v6 ? "[fd77::2]:51820" : "10.77.0.2:51820");
  sockaddr_storage local{}, ours{};
  const socklen_t len = kernel.to_sockaddr(local, v6);
  us.to_sockaddr(ours, v6);
  ASSERT_EQ(::bind(sock, reinterpret_cast<sockaddr*>(&local), len), 0) << std::strerror(errno);
  const std::string hello = v6 ? "hello over IPv6" : "hello over IPv4";
  ASSERT_EQ(::sendto(sock, hello.data(), hello.size(), 0, reinterpret_cast<sockaddr*>(&ours), len),
            static_cast<ssize_t>(hello.size()));

  // The kernel asks for us, we answer, its datagram arrives.
  std::string got;
  Endpoint from;
  ASSERT_TRUE(pump(link, port, 3000, &got, &from)) << "no datagram from the kernel";
  EXPECT_EQ(got, hello);
  EXPECT_EQ(from, Endpoint::from_sockaddr(reinterpret_cast<sockaddr*>(&local)));
  EXPECT_GE(link.counters().answers, 1u);

  // Our answer reaches its socket: our headers and checksums hold for Linux.
  ASSERT_TRUE(deliver(link, port, "pong", from));
  sockaddr_storage sender{};
  EXPECT_EQ(receive_text(sock, 2000, sender), "pong");
  EXPECT_EQ(Endpoint::from_sockaddr(reinterpret_cast<sockaddr*>(&sender)),
            Endpoint::from_sockaddr(reinterpret_cast<sockaddr*>(&ours)));

  // A link that knows nobody resolves the kernel itself (ARP request or NS,
  // and the kernel's reply).
  UnderlayLink fresh(self);
  ASSERT_TRUE(deliver(fresh, port, "resolved", from));
  EXPECT_EQ(receive_text(sock, 2000, sender), "resolved");
  EXPECT_GE(fresh.counters().requests, 1u);
  EXPECT_GE(fresh.counters().learnt, 1u);
  EXPECT_GE(fresh.counters().tx_unresolved, 1u);
  ::close(sock);
}

void in_own_namespace(bool v6) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root (a network namespace)";
  std::thread t([v6] {
    if (::unshare(CLONE_NEWNET) != 0) {
      ADD_FAILURE() << "unshare(CLONE_NEWNET): " << std::strerror(errno);
      return;
    }
    talk_with_the_kernel(v6);
  });
  t.join();
}

TEST(UnderlayKernel, Ipv4WithArp) {
  in_own_namespace(false);
}

TEST(UnderlayKernel, Ipv6WithNeighbourDiscovery) {
  in_own_namespace(true);
}

}  // namespace
}  // namespace faraday::dataplane
