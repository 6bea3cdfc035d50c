// ports_test.cpp: the kernel ports under the pipeline: UdpPort on loopback;
// TunPort when running as root.

#include <arpa/inet.h>
#include <fcntl.h>
#include <net/if.h>
#include <netinet/ip.h>
#include <netinet/udp.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
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

UdpPort open_udp(bool offload = true) {
  auto r = UdpPort::open(0, offload);
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

void loopback_burst(const char* dst_addr, sa_family_t family, bool offload = true) {
  UdpPort a = open_udp(offload);
  UdpPort b = open_udp(offload);
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

TEST(UdpPort, LoopbackBurstV4WithoutOffloads) {
  loopback_burst("127.0.0.1", AF_INET, false);
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
// than its slot is dropped and counted, never passed on cut short. With GSO the
// too-large datagram and the shorter one after it travel as one message, and with
// GRO they arrive as one super-datagram: the short one must still come through.
void larger_than_the_slot(bool offload) {
  UdpPort a = open_udp(offload);
  UdpPort b = open_udp(offload);
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

TEST(UdpPort, DatagramLargerThanTheSlotIsDroppedAndCounted) {
  larger_than_the_slot(true);
}

TEST(UdpPort, DatagramLargerThanTheSlotIsDroppedAndCountedWithoutOffloads) {
  larger_than_the_slot(false);
}

// --- UDP GSO (send) and GRO (receive) ---

// A datagram that names itself: its index in the first 4 bytes, then index bytes.
void fill_indexed(Packet& p, const Endpoint& to, uint32_t index, uint32_t length) {
  p.reset();
  p.length = length;
  std::memset(p.data(), static_cast<int>(index & 0xff), length);
  std::memcpy(p.data(), &index, std::min<uint32_t>(length, sizeof(index)));
  p.endpoint = to;
}

struct Expected {
  uint32_t index;
  uint32_t length;
  Endpoint from;
};

// Checks what `port` received against `want`, in order, byte for byte.
void expect_received(std::span<const Packet> got, const std::vector<Expected>& want) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < want.size(); ++i) {
    const Packet& p = got[i];
    SCOPED_TRACE(i);
    EXPECT_EQ(p.offset, kHeadroom);
    ASSERT_EQ(p.length, want[i].length);
    EXPECT_EQ(p.endpoint, want[i].from);
    uint32_t index = 0;
    std::memcpy(&index, p.data(), std::min<uint32_t>(p.length, sizeof(index)));
    if (p.length >= sizeof(index)) {
      EXPECT_EQ(index, want[i].index);
    }
    if (p.length > sizeof(index)) {
      EXPECT_EQ(p.data()[p.length - 1], want[i].index & 0xff);
    }
  }
}

Endpoint loopback(uint16_t port) {
  return *Endpoint::parse("127.0.0.1:" + std::to_string(port));
}

// 40 equal datagrams + 1 shorter to B, 3 to C, 5 more to B: one send_burst.
void gso_gro_two_endpoints(bool offload) {
  UdpPort a = open_udp(offload);
  UdpPort b = open_udp(offload);
  UdpPort c = open_udp(offload);
  EXPECT_EQ(a.gso(), offload);
  EXPECT_EQ(b.gro(), offload);
  PacketArena tx(kBurstSize), rx_b(kBurstSize), rx_c(8);
  std::vector<Expected> to_b, to_c;
  uint32_t n = 0;
  auto add = [&](UdpPort& dst, std::vector<Expected>& list, uint32_t length) {
    fill_indexed(tx.packets()[n], loopback(dst.port()), n, length);
    list.push_back({n++, length, loopback(a.port())});
  };
  for (int i = 0; i < 40; ++i) add(b, to_b, 1200);
  add(b, to_b, 700);
  for (int i = 0; i < 3; ++i) add(c, to_c, 300);
  for (int i = 0; i < 5; ++i) add(b, to_b, 1000);
  auto sent = tx.packets().first(n);
  ASSERT_EQ(a.send_burst(sent), n);
  EXPECT_EQ(a.counters().tx_packets, n);
  EXPECT_EQ(a.counters().tx_errors, 0u);
  if (offload) {
    EXPECT_LT(a.counters().tx_gso_messages, n);
    EXPECT_EQ(a.counters().tx_gso_messages, 3u);  // 41 to B, 3 to C, 5 to B
    EXPECT_EQ(a.counters().tx_gso_segments, n);
  } else {
    EXPECT_EQ(a.counters().tx_gso_messages, 0u);
  }

  ASSERT_EQ(recv_all(b, rx_b.packets(), to_b.size()), to_b.size());
  expect_received(rx_b.packets().first(to_b.size()), to_b);
  ASSERT_EQ(recv_all(c, rx_c.packets(), to_c.size()), to_c.size());
  expect_received(rx_c.packets().first(to_c.size()), to_c);
  EXPECT_EQ(b.recv_burst(rx_b.packets()), 0u);
  EXPECT_FALSE(b.pending());
  EXPECT_EQ(b.counters().rx_packets, to_b.size());
  if (offload) {  // loopback hands GSO messages to a GRO socket whole
    EXPECT_EQ(b.counters().rx_gro_super, 2u);
    EXPECT_EQ(b.counters().rx_gro_segments, to_b.size());
  } else {
    EXPECT_EQ(b.counters().rx_gro_super, 0u);
  }
}

TEST(UdpPort, GsoAndGroKeepEveryDatagramItsOrderAndItsSource) {
  gso_gro_two_endpoints(true);
}

TEST(UdpPort, WithoutOffloadsTheSameBurstArrivesTheSame) {
  gso_gro_two_endpoints(false);
}

// 40 segments in one super-datagram, received 4 slots at a time: the rest stays
// staged and comes first in the next call; nothing is lost or reordered.
void small_span(bool offload) {
  UdpPort a = open_udp(offload);
  UdpPort b = open_udp(offload);
  PacketArena tx(40), rx(40);
  std::vector<Expected> want;
  for (uint32_t i = 0; i < 40; ++i) {
    fill_indexed(tx.packets()[i], loopback(b.port()), i, 1000);
    want.push_back({i, 1000, loopback(a.port())});
  }
  ASSERT_EQ(a.send_burst(tx.packets()), 40u);
  size_t got = 0;
  for (int i = 0; i < 200 && got < 40; ++i) {
    pollfd p{b.fd(), POLLIN, 0};
    if (!b.pending()) ::poll(&p, 1, 10);
    size_t n = b.recv_burst(rx.packets().subspan(got, std::min<size_t>(4, 40 - got)));
    EXPECT_LE(n, 4u);
    got += n;
  }
  ASSERT_EQ(got, 40u);
  expect_received(rx.packets(), want);
  EXPECT_FALSE(b.pending());
  EXPECT_EQ(b.counters().rx_packets, 40u);
  if (offload) {
    EXPECT_EQ(b.counters().rx_gro_super, 1u);
  }
}

TEST(UdpPort, ASuperDatagramLargerThanTheSpanArrivesOverSeveralCalls) {
  small_span(true);
}

TEST(UdpPort, SmallSpansWithoutOffloads) {
  small_span(false);
}

// Lengths that may not share a message (longer after shorter, a short one in the
// middle, zero-length) arrive exactly as sent.
TEST(UdpPort, MixedLengthsNeverCoalesceWrongly) {
  UdpPort a = open_udp();
  UdpPort b = open_udp();
  const std::vector<uint32_t> lengths = {100, 100, 200,  200,  200,  50,   200, 60, 60, 61, 1,
                                         1,   2,   1400, 1400, 1399, 1400, 5,   5,  5,  5};
  PacketArena tx(lengths.size()), rx(kBurstSize);
  std::vector<Expected> want;
  for (uint32_t i = 0; i < lengths.size(); ++i) {
    fill_indexed(tx.packets()[i], loopback(b.port()), i, lengths[i]);
    want.push_back({i, lengths[i], loopback(a.port())});
  }
  ASSERT_EQ(a.send_burst(tx.packets()), lengths.size());
  EXPECT_LT(a.counters().tx_gso_messages, lengths.size());
  ASSERT_EQ(recv_all(b, rx.packets(), want.size()), want.size());
  expect_received(rx.packets().first(want.size()), want);
  EXPECT_EQ(b.counters().rx_packets, want.size());
}

// A run is cut at 64 segments (the kernel's limit) and at one IP packet's bytes.
TEST(UdpPort, GsoRunsRespectTheKernelLimits) {
  UdpPort a = open_udp();
  UdpPort b = open_udp();
  PacketArena tx(2 * kBurstSize), rx(2 * kBurstSize);
  std::vector<Expected> want;
  uint32_t n = 0;
  for (; n < 100; ++n) {  // 100 x 100 B: 64 + 36
    fill_indexed(tx.packets()[n], loopback(b.port()), n, 100);
    want.push_back({n, 100, loopback(a.port())});
  }
  for (; n < 120; ++n) {  // 20 x 8000 B: 8 per message (64000 B) + 8 + 4
    fill_indexed(tx.packets()[n], loopback(b.port()), n, 8000);
    want.push_back({n, 8000, loopback(a.port())});
  }
  ASSERT_EQ(a.send_burst(tx.packets().first(64)), 64u);
  ASSERT_EQ(a.send_burst(tx.packets().subspan(64, n - 64)), n - 64);
  EXPECT_EQ(a.counters().tx_errors, 0u);
  EXPECT_EQ(a.counters().tx_gso_messages, 5u);  // 64 | 36 | 8, 8, 4
  ASSERT_EQ(recv_all(b, rx.packets(), n), n);
  expect_received(rx.packets().first(n), want);
}

TEST(UdpPort, OffloadsSayWhatIsOn) {
  UdpPort off = open_udp(false);
  EXPECT_EQ(off.offloads(), "UDP GSO off: not requested; GRO off: not requested");
  EXPECT_FALSE(off.gso());
  EXPECT_FALSE(off.gro());
  UdpPort on = open_udp(true);
  if (on.gso() && on.gro()) {
    EXPECT_EQ(on.offloads(), "UDP GSO+GRO");
  }
  UdpPort moved = std::move(on);
  EXPECT_EQ(moved.offloads(), open_udp(true).offloads());
}

// The UDP_GRO cmsg is parsed defensively: only a gso_size in (0, len) splits.
TEST(UdpPort, GroSegmentSizeParsesTheCmsgDefensively) {
  struct Case {
    const char* what;
    int level;
    int type;
    size_t data_len;
    int gso;
    uint32_t len;
    uint32_t want;
  };
  const Case cases[] = {
      {"valid", SOL_UDP, UDP_GRO, sizeof(int), 1000, 4500, 1000},
      {"zero", SOL_UDP, UDP_GRO, sizeof(int), 0, 4500, 4500},
      {"negative", SOL_UDP, UDP_GRO, sizeof(int), -5, 4500, 4500},
      {"larger than the datagram", SOL_UDP, UDP_GRO, sizeof(int), 9000, 4500, 4500},
      {"equal to the datagram", SOL_UDP, UDP_GRO, sizeof(int), 4500, 4500, 4500},
      {"short cmsg", SOL_UDP, UDP_GRO, 2, 1000, 4500, 4500},
      {"other level", SOL_SOCKET, UDP_GRO, sizeof(int), 1000, 4500, 4500},
      {"other type", SOL_UDP, UDP_SEGMENT, sizeof(int), 1000, 4500, 4500},
      {"empty datagram", SOL_UDP, UDP_GRO, sizeof(int), 1000, 0, 0},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.what);
    alignas(cmsghdr) uint8_t control[CMSG_SPACE(sizeof(int))] = {};
    msghdr h{};
    h.msg_control = control;
    h.msg_controllen = sizeof(control);
    cmsghdr* cm = CMSG_FIRSTHDR(&h);
    cm->cmsg_level = c.level;
    cm->cmsg_type = c.type;
    cm->cmsg_len = CMSG_LEN(c.data_len);
    std::memcpy(CMSG_DATA(cm), &c.gso, std::min(c.data_len, sizeof(int)));
    EXPECT_EQ(UdpPort::gro_segment_size(h, c.len), c.want);
  }
  msghdr none{};
  EXPECT_EQ(UdpPort::gro_segment_size(none, 1500), 1500u);
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

// Plain mode (offload false) or vnet mode with offloads (true).
void create_read_write_delete(bool offload) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root";
  if (::access("/dev/net/tun", R_OK | W_OK) != 0) GTEST_SKIP() << "no /dev/net/tun";
  std::string name = "ftst" + std::to_string(::getpid() % 100000);
  auto r = TunPort::open(name, 1380, offload);
  ASSERT_TRUE(r.ok()) << r.error();
  TunPort tun = std::move(*r);
  EXPECT_EQ(tun.name(), name);
  EXPECT_TRUE(tun.exists());
  EXPECT_EQ(tun.vnet_hdr(), offload) << tun.offloads();
  if (offload) {
    EXPECT_EQ(tun.offloads().rfind("TSO4/6", 0), 0u) << tun.offloads();
  } else {
    EXPECT_EQ(tun.offloads(), "none (disabled)");
  }

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
  EXPECT_EQ(tun.counters().rx_bad_offload, 0u);
  EXPECT_EQ(tun.counters().rx_super, 0u);
  EXPECT_FALSE(tun.pending());

  // Write the packet back (as if decrypted from a peer): the kernel accepts it.
  Packet& back = pkts.packets()[0];
  back.reset();
  uint8_t ip[28] = {0x45, 0, 0, 28, 0, 0, 0, 0, 64, 17, 0, 0};
  ::inet_pton(AF_INET, peer.c_str(), ip + 12);
  ::inet_pton(AF_INET, self.c_str(), ip + 16);
  std::memcpy(back.data(), ip, sizeof(ip));
  back.length = sizeof(ip);
  EXPECT_EQ(tun.write_burst(std::span<Packet>(&back, 1)), 1u);
  EXPECT_EQ(tun.counters().tx_packets, 1u);
  EXPECT_EQ(tun.counters().tx_errors, 0u);

  ASSERT_EQ(std::system(("ip link delete " + name + " 2>/dev/null").c_str()), 0);
  EXPECT_FALSE(tun.exists());
}

TEST(TunPort, CreateReadWriteDeletePlain) {
  create_read_write_delete(false);
}
TEST(TunPort, CreateReadWriteDeleteWithOffloads) {
  create_read_write_delete(true);
}

}  // namespace
}  // namespace faraday::dataplane
