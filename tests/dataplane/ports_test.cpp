// ports_test.cpp: the kernel ports under the pipeline: UdpPort on loopback;
// TunPort when running as root.

#include <arpa/inet.h>
#include <fcntl.h>
#include <net/if.h>
#include <netinet/ip.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "dataplane/packet.h"
#include "dataplane/tun_port.h"
#include "dataplane/udp_port.h"

namespace faraday::dataplane {
namespace {

UdpPort open_udp() {
  auto r = UdpPort::open(0);
  if (!r) {
    ADD_FAILURE() << r.error();
    std::abort();
  }
  return std::move(*r);
}

// Receives until want packets arrived or a second passed.
size_t recv_all(UdpPort& port, std::span<Packet> pkts, size_t want) {
  size_t got = 0;
  for (int i = 0; i < 100 && got < want; ++i) {
    pollfd p{port.fd(), POLLIN, 0};
    ::poll(&p, 1, 10);
    got += port.recv_burst(pkts.subspan(got));
  }
  return got;
}

void fill(Packet& p, const Endpoint& to, uint32_t i) {
  p.reset();
  p.length = 100 + i;
  std::memset(p.data(), static_cast<int>(i), p.length);
  p.endpoint = to;
}

void loopback_burst(const char* dst_addr, sa_family_t family) {
  UdpPort a = open_udp();
  UdpPort b = open_udp();
  ASSERT_NE(a.port(), 0);
  Endpoint to = *Endpoint::parse(std::string(dst_addr) + ":" + std::to_string(b.port()));
  constexpr size_t kCount = 16;
  PacketArena tx(kCount), rx(kBurstSize);
  for (uint32_t i = 0; i < kCount; ++i) fill(tx.packets()[i], to, i);
  ASSERT_EQ(a.send_burst(tx.packets()), kCount);
  EXPECT_EQ(a.counters().tx_packets, kCount);

  ASSERT_EQ(recv_all(b, rx.packets(), kCount), kCount);
  for (uint32_t i = 0; i < kCount; ++i) {
    const Packet& p = rx.packets()[i];
    EXPECT_EQ(p.offset, kHeadroom);
    ASSERT_EQ(p.length, 100 + i);
    EXPECT_EQ(p.data()[0], i);
    EXPECT_EQ(p.data()[p.length - 1], i);
    EXPECT_EQ(p.endpoint.family, family);
    EXPECT_EQ(p.endpoint.port, a.port());
    Endpoint expected_src =
        *Endpoint::parse(std::string(dst_addr) + ":" + std::to_string(a.port()));
    EXPECT_EQ(p.endpoint, expected_src);
  }
  EXPECT_EQ(b.recv_burst(rx.packets()), 0u);  // drained, does not block
  EXPECT_EQ(b.counters().rx_packets, kCount);
}

TEST(UdpPort, LoopbackBurstV4) {
  loopback_burst("127.0.0.1", AF_INET);
}

TEST(UdpPort, LoopbackBurstV6) {
  UdpPort probe = open_udp();
  if (!probe.dual_stack()) GTEST_SKIP() << "no IPv6 on this host";
  int s = ::socket(AF_INET6, SOCK_DGRAM, 0);
  sockaddr_in6 lo{};
  lo.sin6_family = AF_INET6;
  lo.sin6_addr = in6addr_loopback;
  bool has_lo6 = ::bind(s, reinterpret_cast<sockaddr*>(&lo), sizeof(lo)) == 0;
  ::close(s);
  if (!has_lo6) GTEST_SKIP() << "no ::1";
  loopback_burst("[::1]", AF_INET6);
}

TEST(UdpPort, InvalidEndpointsAreSkippedAndCounted) {
  UdpPort a = open_udp();
  UdpPort b = open_udp();
  Endpoint to = *Endpoint::parse("127.0.0.1:" + std::to_string(b.port()));
  PacketArena tx(4), rx(8);
  for (uint32_t i = 0; i < 4; ++i) fill(tx.packets()[i], to, i);
  tx.packets()[1].endpoint = {};              // unset
  tx.packets()[3].endpoint.port = 0;          // port 0
  EXPECT_EQ(a.send_burst(tx.packets()), 4u);  // all consumed
  EXPECT_EQ(a.counters().tx_invalid_endpoint, 2u);
  EXPECT_EQ(a.counters().tx_packets, 2u);
  ASSERT_EQ(recv_all(b, rx.packets(), 2), 2u);
  EXPECT_EQ(rx.packets()[0].length, 100u);
  EXPECT_EQ(rx.packets()[1].length, 102u);
}

// Slots are sized to the interface's packets (packet.h): a datagram larger
// than its slot is dropped and counted, never passed on cut short.
TEST(UdpPort, DatagramLargerThanTheSlotIsDroppedAndCounted) {
  UdpPort a = open_udp();
  UdpPort b = open_udp();
  Endpoint to = *Endpoint::parse("127.0.0.1:" + std::to_string(b.port()));
  constexpr uint32_t kSlot = slot_size(1420);
  static_assert(kSlot >= kHeadroom + kJumboMtu + kTransportOverhead + kTailroom);
  static_assert(kSlot < 10 * 1024 && kSlot % 64 == 0);
  PacketArena tx(3), rx(8, kSlot);
  for (uint32_t i = 0; i < 3; ++i) fill(tx.packets()[i], to, i);
  tx.packets()[1].length = rx.packets()[0].max_payload() + 1;
  ASSERT_EQ(a.send_burst(tx.packets()), 3u);
  ASSERT_EQ(recv_all(b, rx.packets(), 2), 2u);
  EXPECT_EQ(rx.packets()[0].length, 100u);
  EXPECT_EQ(rx.packets()[1].length, 102u);
  EXPECT_EQ(b.counters().rx_truncated, 1u);
  EXPECT_EQ(b.counters().rx_packets, 2u);
}

TEST(UdpPort, PortInUseIsAnError) {
  UdpPort a = open_udp();
  auto r = UdpPort::open(a.port());
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().find("bind"), std::string::npos);
}

TEST(UdpPort, MoveKeepsTheSocket) {
  UdpPort a = open_udp();
  int fd = a.fd();
  UdpPort b = std::move(a);
  EXPECT_EQ(b.fd(), fd);
  EXPECT_EQ(a.fd(), -1);  // NOLINT(bugprone-use-after-move): moved-from state is defined
}

TEST(TunPort, NameTooLong) {
  auto r = TunPort::open("a-name-longer-than-15");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().find("too long"), std::string::npos);
}

bool ioctl_ifr(unsigned long req, ifreq& ifr) {
  int s = ::socket(AF_INET, SOCK_DGRAM, 0);
  bool ok = ::ioctl(s, req, &ifr) == 0;
  ::close(s);
  return ok;
}

TEST(TunPort, CreateReadWriteDelete) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root";
  if (::access("/dev/net/tun", R_OK | W_OK) != 0) GTEST_SKIP() << "no /dev/net/tun";
  std::string name = "ftst" + std::to_string(::getpid() % 100000);
  auto r = TunPort::open(name, 1380);
  ASSERT_TRUE(r.ok()) << r.error();
  TunPort tun = std::move(*r);
  EXPECT_EQ(tun.name(), name);
  EXPECT_TRUE(tun.exists());

  ifreq ifr{};
  std::strncpy(ifr.ifr_name, name.c_str(), IFNAMSIZ - 1);
  ASSERT_TRUE(ioctl_ifr(SIOCGIFMTU, ifr));
  EXPECT_EQ(ifr.ifr_mtu, 1380);

  PacketArena pkts(4);
  EXPECT_EQ(tun.read_burst(pkts.packets()), 0u);  // nothing yet, does not block

  // Give it 10.213.<x>.1/24 and bring it up, then send to a neighbour in that
  // subnet: the kernel routes the datagram into the TUN, where we read it.
  uint8_t x = static_cast<uint8_t>(::getpid() % 250);
  auto set_addr = [&](unsigned long req, const char* addr) {
    ifreq a{};
    std::strncpy(a.ifr_name, name.c_str(), IFNAMSIZ - 1);
    auto* sin = reinterpret_cast<sockaddr_in*>(&a.ifr_addr);
    sin->sin_family = AF_INET;
    ::inet_pton(AF_INET, addr, &sin->sin_addr);
    return ioctl_ifr(req, a);
  };
  std::string self = "10.213." + std::to_string(x) + ".1";
  std::string peer = "10.213." + std::to_string(x) + ".2";
  ASSERT_TRUE(set_addr(SIOCSIFADDR, self.c_str()));
  ASSERT_TRUE(set_addr(SIOCSIFNETMASK, "255.255.255.0"));
  ASSERT_TRUE(ioctl_ifr(SIOCGIFFLAGS, ifr));
  ifr.ifr_flags |= IFF_UP;
  ASSERT_TRUE(ioctl_ifr(SIOCSIFFLAGS, ifr));

  int s = ::socket(AF_INET, SOCK_DGRAM, 0);
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(9);
  ::inet_pton(AF_INET, peer.c_str(), &to.sin_addr);
  ASSERT_EQ(::sendto(s, "ping", 4, 0, reinterpret_cast<sockaddr*>(&to), sizeof(to)), 4);
  ::close(s);

  size_t got = 0;
  bool found = false;
  for (int i = 0; i < 100 && !found; ++i) {
    pollfd p{tun.fd(), POLLIN, 0};
    ::poll(&p, 1, 10);
    got = tun.read_burst(pkts.packets());
    for (size_t k = 0; k < got; ++k) {
      const Packet& pk = pkts.packets()[k];
      EXPECT_EQ(pk.offset, kHeadroom);
      if (pk.length == 20 + 8 + 4 && (pk.data()[0] >> 4) == 4 &&
          std::memcmp(pk.data() + 28, "ping", 4) == 0)
        found = true;
    }
  }
  EXPECT_TRUE(found);

  // Write the packet back (as if decrypted from a peer): the kernel accepts it.
  Packet& back = pkts.packets()[0];
  back.reset();
  uint8_t ip[28] = {0x45, 0, 0, 28, 0, 0, 0, 0, 64, 17, 0, 0};
  ::inet_pton(AF_INET, peer.c_str(), ip + 12);
  ::inet_pton(AF_INET, self.c_str(), ip + 16);
  std::memcpy(back.data(), ip, sizeof(ip));
  back.length = sizeof(ip);
  EXPECT_EQ(tun.write_burst(std::span<Packet>(&back, 1)), 1u);
  EXPECT_EQ(tun.counters().tx_packets + tun.counters().tx_errors, 1u);

  ASSERT_EQ(std::system(("ip link delete " + name + " 2>/dev/null").c_str()), 0);
  EXPECT_FALSE(tun.exists());
}

}  // namespace
}  // namespace faraday::dataplane
