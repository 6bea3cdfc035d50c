// tun_offload_test.cpp: a TUN opened with TSO offloads hands the port real
// kernel super-packets, and read_burst splits them into valid segments (root).
//
//   TCP socket --connect--> 10.215.x.2:5201 (routed into the TUN)
//        kernel TCP  ==TSO super-packets==>  TunPort (vnet)  -> segments checked
//        kernel TCP  <==SYN-ACK written by this test==  TunPort
//
// The test plays the peer by hand: it reads the SYN, writes a SYN-ACK with an MSS
// of 1380, then lets the socket send 64 KiB; the kernel's first flight (ten
// segments) leaves as one or a few GSO TCPV4 super-packets.

#include <arpa/inet.h>
#include <fcntl.h>
#include <net/if.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "dataplane/packet.h"
#include "dataplane/tun_port.h"

namespace faraday::dataplane {
namespace {

uint16_t be16(const uint8_t* p) {
  return static_cast<uint16_t>(p[0] << 8 | p[1]);
}
uint32_t be32(const uint8_t* p) {
  return uint32_t(be16(p)) << 16 | be16(p + 2);
}
void put16(uint8_t* p, uint32_t v) {
  p[0] = static_cast<uint8_t>(v >> 8);
  p[1] = static_cast<uint8_t>(v);
}
void put32(uint8_t* p, uint32_t v) {
  put16(p, v >> 16);
  put16(p + 2, v);
}

// RFC 1071, one big-endian word at a time; returns the folded sum (not inverted).
uint16_t fold_sum(const uint8_t* p, size_t n, uint32_t sum = 0) {
  for (size_t i = 0; i + 1 < n; i += 2) sum += be16(p + i);
  if (n % 2) sum += uint32_t(p[n - 1]) << 8;
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<uint16_t>(sum);
}
uint32_t pseudo4(const uint8_t* ip, size_t l4_length) {
  return fold_sum(ip + 12, 8) + 6u + static_cast<uint32_t>(l4_length);
}
bool tcp4_ok(const uint8_t* ip, size_t length) {
  return fold_sum(ip, 20) == 0xffff &&
         fold_sum(ip + 20, length - 20, pseudo4(ip, length - 20)) == 0xffff;
}

bool ioctl_ifr(unsigned long req, ifreq& ifr) {
  int s = ::socket(AF_INET, SOCK_DGRAM, 0);
  bool ok = ::ioctl(s, req, &ifr) == 0;
  ::close(s);
  return ok;
}

bool set_addr(const std::string& name, unsigned long req, const std::string& addr) {
  ifreq a{};
  std::strncpy(a.ifr_name, name.c_str(), IFNAMSIZ - 1);
  auto* sin = reinterpret_cast<sockaddr_in*>(&a.ifr_addr);
  sin->sin_family = AF_INET;
  ::inet_pton(AF_INET, addr.c_str(), &sin->sin_addr);
  return ioctl_ifr(req, a);
}

// Reads until pred(packet) holds for a packet or about two seconds passed.
template <typename Pred>
bool read_until(TunPort& tun, PacketArena& arena, Pred pred) {
  for (int i = 0; i < 200; ++i) {
    pollfd p{tun.fd(), POLLIN, 0};
    if (!tun.pending()) ::poll(&p, 1, 10);
    size_t n = tun.read_burst(arena.packets());
    for (size_t k = 0; k < n; ++k)
      if (pred(arena.packets()[k])) return true;
  }
  return false;
}

// A SYN-ACK from the peer answering syn (an IPv4 TCP packet): MSS 1380, window
// scale 7, ISN 7777.
void make_syn_ack(const Packet& syn, Packet& out) {
  const uint8_t* s = syn.data();
  out.reset();
  out.length = 20 + 28;
  uint8_t* ip = out.data();
  std::memset(ip, 0, out.length);
  ip[0] = 0x45;
  put16(ip + 2, out.length);
  ip[6] = 0x40;
  ip[8] = 64;
  ip[9] = 6;
  std::memcpy(ip + 12, s + 16, 4);  // from the SYN's destination
  std::memcpy(ip + 16, s + 12, 4);
  put16(ip + 10, static_cast<uint16_t>(~fold_sum(ip, 20)));
  uint8_t* th = ip + 20;
  std::memcpy(th, s + 22, 2);  // ports swapped
  std::memcpy(th + 2, s + 20, 2);
  put32(th + 4, 7777);
  put32(th + 8, be32(s + 24) + 1);
  th[12] = 7 << 4;
  th[13] = 0x12;  // SYN | ACK
  put16(th + 14, 65535);
  const uint8_t options[8] = {2, 4, 1380 >> 8, 1380 & 0xff, 1, 3, 3, 7};
  std::memcpy(th + 20, options, sizeof(options));
  put16(th + 16, static_cast<uint16_t>(~fold_sum(th, 28, pseudo4(ip, 28))));
}

TEST(TunPortOffload, KernelTcpSuperPacketsAreSplit) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root";
  if (::access("/dev/net/tun", R_OK | W_OK) != 0) GTEST_SKIP() << "no /dev/net/tun";
  std::string name = "ftso" + std::to_string(::getpid() % 100000);
  auto r = TunPort::open(name, 1420);
  ASSERT_TRUE(r.ok()) << r.error();
  TunPort tun = std::move(*r);
  if (!tun.vnet_hdr()) GTEST_SKIP() << "no TUN offloads here: " << tun.offloads();

  std::string x = std::to_string(::getpid() % 250);
  std::string self = "10.215." + x + ".1", peer = "10.215." + x + ".2";
  ASSERT_TRUE(set_addr(name, SIOCSIFADDR, self));
  ASSERT_TRUE(set_addr(name, SIOCSIFNETMASK, "255.255.255.0"));
  ifreq ifr{};
  std::strncpy(ifr.ifr_name, name.c_str(), IFNAMSIZ - 1);
  ASSERT_TRUE(ioctl_ifr(SIOCGIFFLAGS, ifr));
  ifr.ifr_flags |= IFF_UP;
  ASSERT_TRUE(ioctl_ifr(SIOCSIFFLAGS, ifr));

  int sock = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(5201);
  ::inet_pton(AF_INET, peer.c_str(), &to.sin_addr);
  ASSERT_NE(::connect(sock, reinterpret_cast<sockaddr*>(&to), sizeof(to)), 0);
  ASSERT_EQ(errno, EINPROGRESS);

  PacketArena arena(kBurstSize, slot_size(1420));
  Packet syn_ack{};
  std::vector<uint8_t> syn_ack_buf(slot_size(1420));
  syn_ack.base = syn_ack_buf.data();
  syn_ack.capacity = slot_size(1420);
  bool got_syn = read_until(tun, arena, [&](const Packet& p) {
    if (p.length < 40 || p.data()[9] != 6 || p.data()[33] != 0x02) return false;  // SYN
    make_syn_ack(p, syn_ack);
    return true;
  });
  ASSERT_TRUE(got_syn);
  ASSERT_EQ(tun.write_burst(std::span<Packet>(&syn_ack, 1)), 1u);
  pollfd pw{sock, POLLOUT, 0};
  ASSERT_EQ(::poll(&pw, 1, 2000), 1);
  int err = -1;
  socklen_t len = sizeof(err);
  ::getsockopt(sock, SOL_SOCKET, SO_ERROR, &err, &len);
  ASSERT_EQ(err, 0) << std::strerror(err);

  std::vector<uint8_t> data(64 * 1024, 0x5a);
  ASSERT_GT(::send(sock, data.data(), data.size(), 0), 0);

  // Collect data segments until the first flight (ten segments) has arrived.
  uint32_t next_seq = 0;
  size_t segments = 0, bad = 0;
  read_until(tun, arena, [&](const Packet& p) {
    const uint8_t* ip = p.data();
    if (p.length <= 40 || ip[9] != 6) return false;
    size_t payload = p.length - 20 - (ip[32] >> 4) * 4u;
    if (payload == 0) return false;
    uint32_t seq = be32(ip + 24);
    if (segments == 0) next_seq = seq;
    if (!tcp4_ok(ip, p.length) || p.length > 1420 || seq != next_seq || ip[40] != 0x5a) ++bad;
    next_seq = seq + static_cast<uint32_t>(payload);
    return ++segments >= 10;
  });
  EXPECT_GE(segments, 10u);
  EXPECT_EQ(bad, 0u);
  EXPECT_GE(tun.counters().rx_super, 1u) << "the kernel sent no super-packet";
  EXPECT_GE(tun.counters().rx_segments, 2u);
  EXPECT_EQ(tun.counters().rx_bad_offload, 0u);
  ::close(sock);
  EXPECT_EQ(std::system(("ip link delete " + name + " 2>/dev/null").c_str()), 0);
}

}  // namespace
}  // namespace faraday::dataplane
