// container_port_test.cpp: a container's TAP as faradayd serves it
// (container_port.h). The TAP is faked by a SOCK_SEQPACKET socket pair, which
// keeps frame boundaries as a TAP's descriptor does: the test writes the
// container's frames on one end, the ContainerTap reads the other. ARP is
// answered, only the container's own source is handed on, and delivered
// packets carry the container's MAC address once it was heard. The table
// sends a destination in the prefix to its container, or nowhere.
#include "dataplane/container_port.h"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "dataplane/inet.h"
#include "dataplane/underlay.h"

namespace faraday::dataplane {
namespace {

using Bytes = std::vector<uint8_t>;

const MacAddress kGateway = {0x02, 0xfa, 10, 89, 1, 2};
const MacAddress kContainer = {0x02, 0x11, 0, 0, 0, 2};

Prefix host(const char* text) {
  auto p = Prefix::parse(text);
  EXPECT_TRUE(p.has_value()) << text;
  return *p;
}

// A fake TAP: `ours` for the ContainerTap, `theirs` for the container's side.
struct FakeTap {
  FakeTap() {
    int fds[2];
    EXPECT_EQ(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds), 0);
    ours = fds[0];
    theirs = fds[1];
  }
  ~FakeTap() { ::close(theirs); }
  void send(const Bytes& frame) const {
    ASSERT_EQ(::write(theirs, frame.data(), frame.size()), static_cast<ssize_t>(frame.size()));
  }
  Bytes receive() const {
    Bytes b(2048);
    const ssize_t n = ::read(theirs, b.data(), b.size());
    b.resize(n < 0 ? 0 : static_cast<size_t>(n));
    return b;
  }
  int ours = -1;
  int theirs = -1;
};

// An IPv4 packet from `src` to `dst` in an Ethernet frame to the gateway.
// Cut to `length` IP bytes when that is less than the header.
Bytes ipv4_frame(std::array<uint8_t, 4> src, std::array<uint8_t, 4> dst, size_t length = 60) {
  Bytes f(kEthernetHeader + std::max<size_t>(length, 20), 0);
  std::memcpy(f.data(), kGateway.data(), 6);
  std::memcpy(f.data() + 6, kContainer.data(), 6);
  inet::store_be16(f.data() + 12, kEtherIpv4);
  uint8_t* ip = f.data() + kEthernetHeader;
  ip[0] = 0x45;
  inet::store_be16(ip + 2, static_cast<uint16_t>(length));
  ip[8] = 64;
  ip[9] = 17;
  std::memcpy(ip + 12, src.data(), 4);
  std::memcpy(ip + 16, dst.data(), 4);
  f.resize(kEthernetHeader + length);
  return f;
}

TEST(ContainerTap, ArpIsAnsweredAndOnlyOwnSourcePasses) {
  FakeTap fake;
  ContainerTap tap(fake.ours, "eth0", host("10.89.1.2"), kGateway);
  UnderlayAddress container;
  container.mac = kContainer;
  container.v4 = UnderlayAddress::V4{{10, 89, 1, 2}, 24, std::nullopt};
  Bytes arp(128);
  arp.resize(build_arp_request(arp, container, {10, 89, 1, 1}));
  fake.send(arp);
  fake.send(ipv4_frame({10, 89, 1, 2}, {10, 89, 2, 3}));      // its own: passes
  fake.send(ipv4_frame({10, 89, 1, 77}, {10, 89, 2, 3}));     // another's: dropped
  fake.send(ipv4_frame({10, 89, 1, 2}, {10, 89, 2, 3}, 10));  // shorter than a header

  PacketArena arena(4, slot_size(1420));
  ASSERT_EQ(tap.read_burst(arena.packets()), 1u);
  const Packet& p = arena.packets()[0];
  EXPECT_EQ(p.offset, kHeadroom);
  EXPECT_EQ(p.length, 60u);
  EXPECT_EQ(p.data()[0], 0x45);
  EXPECT_EQ(tap.dropped(ContainerTap::Drop::kNotOwnSource), 1u);
  EXPECT_EQ(tap.dropped(ContainerTap::Drop::kTruncated), 1u);
  EXPECT_EQ(tap.counters().rx_frames, 4u);
  EXPECT_EQ(tap.counters().rx_packets, 1u);

  // The ARP answer says the gateway's MAC address.
  Bytes answer = fake.receive();
  ASSERT_GE(answer.size(), kEthernetHeader + 28);
  EXPECT_EQ(inet::load_be16(answer.data() + 12), kEtherArp);
  EXPECT_EQ(0, std::memcmp(answer.data(), kContainer.data(), 6));
  EXPECT_EQ(0, std::memcmp(answer.data() + 6, kGateway.data(), 6));
  EXPECT_FALSE(tap.gone());
}

TEST(ContainerTap, DeliverWritesAFrameToTheContainersMac) {
  FakeTap fake;
  ContainerTap tap(fake.ours, "eth0", host("10.89.1.2"), kGateway);
  fake.send(ipv4_frame({10, 89, 1, 2}, {10, 89, 2, 3}));  // tells its MAC address
  PacketArena arena(2, slot_size(1420));
  ASSERT_EQ(tap.read_burst(arena.packets().first(1)), 1u);

  Packet& back = arena.packets()[1];
  back.reset();
  Bytes ip = ipv4_frame({10, 89, 2, 3}, {10, 89, 1, 2});
  std::memcpy(back.data(), ip.data() + kEthernetHeader, ip.size() - kEthernetHeader);
  back.length = static_cast<uint32_t>(ip.size() - kEthernetHeader);
  ASSERT_TRUE(tap.deliver(back));
  Bytes frame = fake.receive();
  ASSERT_EQ(frame.size(), ip.size());
  EXPECT_EQ(0, std::memcmp(frame.data(), kContainer.data(), 6));
  EXPECT_EQ(0, std::memcmp(frame.data() + 6, kGateway.data(), 6));
  EXPECT_EQ(inet::load_be16(frame.data() + 12), kEtherIpv4);
  EXPECT_EQ(0, std::memcmp(frame.data() + kEthernetHeader, ip.data() + kEthernetHeader,
                           ip.size() - kEthernetHeader));
  EXPECT_EQ(tap.counters().tx_packets, 1u);
}

TEST(ContainerTap, NothingToReadIsNoPacket) {
  FakeTap fake;
  ContainerTap tap(fake.ours, "eth0", host("10.89.1.2"), kGateway);
  PacketArena arena(2, slot_size(1420));
  EXPECT_EQ(tap.read_burst(arena.packets()), 0u);  // nothing there: EAGAIN
  EXPECT_FALSE(tap.gone());
  EXPECT_EQ(tap.dropped(ContainerTap::Drop::kReadError), 0u);
}

TEST(ContainerTable, FindsTheContainerOrNone) {
  auto a = std::make_shared<ContainerTap>(-1, "eth0", host("10.89.1.2"), kGateway);
  auto b = std::make_shared<ContainerTap>(-1, "eth0", host("10.89.1.3"), kGateway);
  ContainerTable table(host("10.89.1.0/24"), {a, b});
  PacketArena arena(1, slot_size(1420));
  Packet& p = arena.packets()[0];
  const auto dst = [&](std::array<uint8_t, 4> to) {
    Bytes f = ipv4_frame({10, 88, 0, 2}, to);
    std::memcpy(p.data(), f.data() + kEthernetHeader, f.size() - kEthernetHeader);
    p.length = static_cast<uint32_t>(f.size() - kEthernetHeader);
    ContainerTap* tap = nullptr;
    ContainerTable::Dst d = table.find(p, tap);
    return std::make_pair(d, tap);
  };
  EXPECT_EQ(dst({10, 89, 1, 3}), std::make_pair(ContainerTable::Dst::kContainer, b.get()));
  EXPECT_EQ(dst({10, 89, 1, 2}), std::make_pair(ContainerTable::Dst::kContainer, a.get()));
  EXPECT_EQ(dst({10, 89, 1, 9}).first, ContainerTable::Dst::kNone);
  EXPECT_EQ(dst({10, 89, 2, 2}).first, ContainerTable::Dst::kHost);
  EXPECT_EQ(dst({10, 88, 0, 1}).first, ContainerTable::Dst::kHost);
  p.length = 10;  // no header: the host's to judge
  ContainerTap* none = nullptr;
  EXPECT_EQ(table.find(p, none), ContainerTable::Dst::kHost);
}

TEST(ContainerTable, Ipv6PrefixOfOddLength) {
  auto a = std::make_shared<ContainerTap>(-1, "eth0", host("fd00:89:1::2"), kGateway);
  ContainerTable table(host("fd00:89:1::/61"), {a});
  PacketArena arena(1, slot_size(1420));
  Packet& p = arena.packets()[0];
  std::memset(p.data(), 0, 40);
  p.data()[0] = 0x60;
  p.length = 40;
  const auto to = [&](const char* text) {
    auto addr = host(text);
    std::memcpy(p.data() + 24, addr.addr.data(), 16);
    ContainerTap* tap = nullptr;
    return table.find(p, tap);
  };
  EXPECT_EQ(to("fd00:89:1::2"), ContainerTable::Dst::kContainer);
  EXPECT_EQ(to("fd00:89:1:7::2"), ContainerTable::Dst::kNone);  // inside the /61
  EXPECT_EQ(to("fd00:89:1:8::2"), ContainerTable::Dst::kHost);  // just outside
}

}  // namespace
}  // namespace faraday::dataplane
