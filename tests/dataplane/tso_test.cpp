// tso_test.cpp: dataplane/tso on crafted super-packets. Checksums are verified
// with the plain textbook routine below, not the one under test.

#include "dataplane/tso.h"

#include <cstring>
#include <set>
#include <vector>

#include <gtest/gtest.h>

namespace faraday::dataplane {
namespace {

using Bytes = std::vector<uint8_t>;

constexpr uint8_t kFin = 0x01, kPsh = 0x08, kAck = 0x10, kCwr = 0x80;

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

// RFC 1071, one big-endian 16-bit word at a time.
uint32_t ref_sum(const uint8_t* p, size_t n, uint32_t sum = 0) {
  for (size_t i = 0; i + 1 < n; i += 2) sum += be16(p + i);
  if (n % 2) sum += uint32_t(p[n - 1]) << 8;
  return sum;
}
uint16_t ref_fold(uint32_t sum) {
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<uint16_t>(sum);
}
// The L4 pseudo-header sum of an IP packet (v4 or v6) whose L4 header is at l4.
uint32_t ref_pseudo(const uint8_t* ip, uint8_t proto, size_t l4_length) {
  bool v6 = (ip[0] >> 4) == 6;
  uint32_t sum = v6 ? ref_sum(ip + 8, 32) : ref_sum(ip + 12, 8);
  return sum + proto + static_cast<uint32_t>(l4_length);
}
// True when the L4 checksum of this IP packet verifies.
bool l4_ok(const Packet& p) {
  const uint8_t* ip = p.data();
  bool v6 = (ip[0] >> 4) == 6;
  size_t ihl = v6 ? 40 : 20;
  uint8_t proto = v6 ? ip[6] : ip[9];
  size_t l4_length = p.length - ihl;
  return ref_fold(ref_sum(ip + ihl, l4_length, ref_pseudo(ip, proto, l4_length))) == 0xffff;
}
bool ipv4_ok(const Packet& p) {
  return ref_fold(ref_sum(p.data(), 20)) == 0xffff;
}

// An IP packet: IPv4 (id 0x1234, DF) or IPv6 header, a TCP header of tcp_header
// bytes (seq 1000, the flags given) or a UDP header, then payload bytes i & 0xff.
Bytes make_packet(bool v6, uint8_t proto, size_t payload, uint8_t flags = kAck,
                  size_t tcp_header = 20) {
  size_t ihl = v6 ? 40 : 20;
  size_t l4 = proto == 6 ? tcp_header : 8;
  Bytes b(ihl + l4 + payload);
  uint8_t* ip = b.data();
  if (v6) {
    ip[0] = 0x60;
    put16(ip + 4, static_cast<uint32_t>(l4 + payload));
    ip[6] = proto;
    ip[7] = 64;
    for (int i = 0; i < 16; ++i) ip[8 + i] = static_cast<uint8_t>(0xfd), ip[24 + i] = 0xfd;
    ip[23] = 1, ip[39] = 2;
  } else {
    ip[0] = 0x45;
    put16(ip + 2, static_cast<uint32_t>(b.size()));
    put16(ip + 4, 0x1234);
    ip[6] = 0x40;  // DF
    ip[8] = 64;
    ip[9] = proto;
    uint8_t addrs[8] = {10, 0, 0, 1, 10, 0, 0, 2};
    std::memcpy(ip + 12, addrs, 8);
  }
  uint8_t* th = ip + ihl;
  put16(th, 40000);
  put16(th + 2, 5201);
  if (proto == 6) {
    put16(th + 4, 0), put16(th + 6, 1000);  // seq
    th[12] = static_cast<uint8_t>(tcp_header / 4 << 4);
    th[13] = flags;
    put16(th + 14, 65535);
    for (size_t i = 20; i < tcp_header; ++i) th[i] = 1;  // NOP options
  } else {
    put16(th + 4, static_cast<uint32_t>(8 + payload));
  }
  for (size_t i = 0; i < payload; ++i) b[ihl + l4 + i] = static_cast<uint8_t>(i);
  return b;
}

VirtioNetHdr gso_hdr(uint8_t type, uint16_t gso_size, bool v6, uint8_t proto) {
  VirtioNetHdr h{};
  h.flags = kVirtioNetHdrFNeedsCsum;
  h.gso_type = type;
  h.gso_size = gso_size;
  h.csum_start = v6 ? 40 : 20;
  h.csum_offset = proto == 6 ? 16 : 6;
  h.hdr_len = static_cast<uint16_t>(h.csum_start + (proto == 6 ? 20 : 8));
  return h;
}

void check_tcp_split(bool v6, size_t tcp_header) {
  constexpr size_t kPayload = 3 * 1000 + 123;
  Bytes in = make_packet(v6, 6, kPayload, kAck | kPsh | kFin | kCwr, tcp_header);
  Bytes orig = in;
  auto hdr = gso_hdr(v6 ? kVirtioNetHdrGsoTcpv6 : kVirtioNetHdrGsoTcpv4, 1000, v6, 6);
  PacketArena arena(8, slot_size(1420));
  auto n = tso_split(hdr, in, arena.packets());
  ASSERT_TRUE(n.ok()) << tso_drop_name(n.failure());
  ASSERT_EQ(*n, 4u);
  size_t ihl = v6 ? 40 : 20, header = ihl + tcp_header;
  for (uint32_t i = 0; i < 4; ++i) {
    const Packet& p = arena.packets()[i];
    size_t payload = i < 3 ? 1000 : 123;
    EXPECT_EQ(p.offset, kHeadroom);
    ASSERT_EQ(p.length, header + payload) << i;
    const uint8_t* ip = p.data();
    const uint8_t* th = ip + ihl;
    if (v6) {
      EXPECT_EQ(be16(ip + 4), tcp_header + payload);
    } else {
      EXPECT_EQ(be16(ip + 2), p.length);
      EXPECT_EQ(be16(ip + 4), 0x1234 + i);
      EXPECT_TRUE(ipv4_ok(p)) << i;
    }
    EXPECT_EQ(be32(th + 4), 1000 + i * 1000);
    uint8_t want = kAck | (i == 3 ? kPsh | kFin : 0) | (i == 0 ? kCwr : 0);
    EXPECT_EQ(th[13], want) << i;
    EXPECT_EQ(std::memcmp(th + 20, orig.data() + ihl + 20, tcp_header - 20), 0);  // options
    EXPECT_EQ(std::memcmp(ip + header, orig.data() + header + i * 1000, payload), 0) << i;
    EXPECT_TRUE(l4_ok(p)) << i;
  }
}

TEST(Tso, TcpV4SuperPacketOddLastSegment) {
  check_tcp_split(false, 20);
}
TEST(Tso, TcpV6SuperPacketOddLastSegment) {
  check_tcp_split(true, 20);
}
TEST(Tso, TcpV4WithOptions) {
  check_tcp_split(false, 32);
}

TEST(Tso, EcnFlagInGsoTypeIsAccepted) {
  Bytes in = make_packet(false, 6, 2000);
  auto hdr = gso_hdr(kVirtioNetHdrGsoTcpv4 | kVirtioNetHdrGsoEcn, 1000, false, 6);
  PacketArena arena(4, slot_size(1420));
  auto n = tso_split(hdr, in, arena.packets());
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(*n, 2u);
}

void check_udp_split(bool v6) {
  Bytes in = make_packet(v6, 17, 2500);
  Bytes orig = in;
  auto hdr = gso_hdr(kVirtioNetHdrGsoUdpL4, 1200, v6, 17);
  PacketArena arena(4, slot_size(1420));
  auto n = tso_split(hdr, in, arena.packets());
  ASSERT_TRUE(n.ok()) << tso_drop_name(n.failure());
  ASSERT_EQ(*n, 3u);
  size_t header = (v6 ? 40 : 20) + 8;
  for (uint32_t i = 0; i < 3; ++i) {
    const Packet& p = arena.packets()[i];
    size_t payload = i < 2 ? 1200 : 100;
    ASSERT_EQ(p.length, header + payload);
    EXPECT_EQ(be16(p.data() + header - 4), 8 + payload);  // UDP length
    if (!v6) {
      EXPECT_EQ(be16(p.data() + 4), 0x1234 + i);
      EXPECT_TRUE(ipv4_ok(p));
    }
    EXPECT_EQ(std::memcmp(p.data() + header, orig.data() + header + i * 1200, payload), 0);
    EXPECT_TRUE(l4_ok(p)) << i;
  }
}

TEST(Tso, UdpV4Uso) {
  check_udp_split(false);
}
TEST(Tso, UdpV6Uso) {
  check_udp_split(true);
}

// Addresses of all-ones bytes take the 64-bit sum to the edge of a carry out
// (found by fuzz_tso).
TEST(Tso, ChecksumsCarryWithAllOnesAddresses) {
  for (bool v6 : {false, true}) {
    for (uint8_t proto : {uint8_t{6}, uint8_t{17}}) {
      Bytes in = make_packet(v6, proto, 2500);
      if (v6) std::memset(in.data() + 8, 0xff, 32);
      if (!v6) std::memset(in.data() + 12, 0xff, 8);
      uint8_t type = proto == 17 ? kVirtioNetHdrGsoUdpL4
                                 : (v6 ? kVirtioNetHdrGsoTcpv6 : kVirtioNetHdrGsoTcpv4);
      PacketArena arena(4, slot_size(1420));
      auto n = tso_split(gso_hdr(type, 1000, v6, proto), in, arena.packets());
      ASSERT_TRUE(n.ok());
      ASSERT_EQ(*n, 3u);
      for (size_t i = 0; i < 3; ++i) EXPECT_TRUE(l4_ok(arena.packets()[i])) << v6 << proto << i;
    }
  }
}

TEST(Tso, NeedsCsumWithoutGsoIsCompleted) {
  for (bool v6 : {false, true}) {
    Bytes in = make_packet(v6, 17, 301);  // odd length
    size_t ihl = v6 ? 40 : 20;
    // As the kernel leaves it: the folded pseudo-header sum in the field.
    put16(in.data() + ihl + 6, ref_fold(ref_pseudo(in.data(), 17, in.size() - ihl)));
    VirtioNetHdr hdr{};
    hdr.flags = kVirtioNetHdrFNeedsCsum;
    hdr.csum_start = static_cast<uint16_t>(ihl);
    hdr.csum_offset = 6;
    PacketArena arena(1, slot_size(1420));
    auto n = tso_split(hdr, in, arena.packets());
    ASSERT_TRUE(n.ok());
    ASSERT_EQ(*n, 1u);
    const Packet& p = arena.packets()[0];
    ASSERT_EQ(p.length, in.size());
    EXPECT_TRUE(l4_ok(p)) << v6;
  }
}

TEST(Tso, PlainPacketPassesUnchanged) {
  Bytes in = make_packet(false, 6, 500);
  Bytes orig = in;
  PacketArena arena(1, slot_size(1420));
  auto n = tso_split(VirtioNetHdr{}, in, arena.packets());
  ASSERT_TRUE(n.ok());
  ASSERT_EQ(*n, 1u);
  const Packet& p = arena.packets()[0];
  ASSERT_EQ(p.length, orig.size());
  EXPECT_EQ(std::memcmp(p.data(), orig.data(), orig.size()), 0);
}

TEST(Tso, SegmentFromTheMiddle) {
  Bytes in = make_packet(false, 6, 5000);
  auto hdr = gso_hdr(kVirtioNetHdrGsoTcpv4, 1000, false, 6);
  auto plan = tso_parse(hdr, in);
  ASSERT_TRUE(plan.ok());
  EXPECT_EQ(plan->segments, 5u);
  PacketArena arena(2, slot_size(1420));
  auto n = tso_segment(*plan, in, 3, arena.packets());
  ASSERT_TRUE(n.ok());
  ASSERT_EQ(*n, 2u);
  EXPECT_EQ(be32(arena.packets()[0].data() + 24), 1000u + 3000);
  EXPECT_EQ(be32(arena.packets()[1].data() + 24), 1000u + 4000);
  EXPECT_TRUE(l4_ok(arena.packets()[1]));
}

struct Hostile {
  const char* name;
  TsoDrop want;
  bool v6;
  uint8_t proto;
  uint8_t gso_type;
  void (*mangle)(Bytes& pkt, VirtioNetHdr& hdr);
  uint32_t slot = slot_size(1420);
  size_t slots = 8;
};

const Hostile kHostile[] = {
    {"ufo type", TsoDrop::kBadGsoType, false, 17, 3, [](Bytes&, VirtioNetHdr&) {}},
    {"unknown type", TsoDrop::kBadGsoType, false, 6, 0x42, [](Bytes&, VirtioNetHdr&) {}},
    {"gso_size 0", TsoDrop::kGsoSizeZero, false, 6, kVirtioNetHdrGsoTcpv4,
     [](Bytes&, VirtioNetHdr& h) { h.gso_size = 0; }},
    {"hdr_len past data", TsoDrop::kHdrLen, false, 6, kVirtioNetHdrGsoTcpv4,
     [](Bytes& b, VirtioNetHdr& h) { h.hdr_len = static_cast<uint16_t>(b.size() + 1); }},
    {"hdr_len past data, no gso", TsoDrop::kHdrLen, false, 6, kVirtioNetHdrGsoNone,
     [](Bytes& b, VirtioNetHdr& h) { h.hdr_len = static_cast<uint16_t>(b.size() + 1); }},
    {"csum_start not L4", TsoDrop::kCsumStart, false, 6, kVirtioNetHdrGsoTcpv4,
     [](Bytes&, VirtioNetHdr& h) { h.csum_start = 24; }},
    {"csum_offset not TCP's", TsoDrop::kCsumStart, true, 6, kVirtioNetHdrGsoTcpv6,
     [](Bytes&, VirtioNetHdr& h) { h.csum_offset = 6; }},
    {"csum past data, no gso", TsoDrop::kCsumStart, false, 17, kVirtioNetHdrGsoNone,
     [](Bytes& b, VirtioNetHdr& h) {
       h.csum_start = static_cast<uint16_t>(b.size() - 1);
       h.csum_offset = 0;
     }},
    {"csum offset overflow, no gso", TsoDrop::kCsumStart, false, 17, kVirtioNetHdrGsoNone,
     [](Bytes&, VirtioNetHdr& h) { h.csum_start = h.csum_offset = 0xffff; }},
    {"tcpv4 on ipv6", TsoDrop::kIpVersion, true, 6, kVirtioNetHdrGsoTcpv4,
     [](Bytes&, VirtioNetHdr&) {}},
    {"tcpv6 on ipv4", TsoDrop::kIpVersion, false, 6, kVirtioNetHdrGsoTcpv6,
     [](Bytes&, VirtioNetHdr&) {}},
    {"version 5", TsoDrop::kIpVersion, false, 6, kVirtioNetHdrGsoTcpv4,
     [](Bytes& b, VirtioNetHdr&) { b[0] = 0x55; }},
    {"total length", TsoDrop::kIpHeader, false, 6, kVirtioNetHdrGsoTcpv4,
     [](Bytes& b, VirtioNetHdr&) { put16(b.data() + 2, static_cast<uint32_t>(b.size() + 4)); }},
    {"ipv6 payload length", TsoDrop::kIpHeader, true, 17, kVirtioNetHdrGsoUdpL4,
     [](Bytes& b, VirtioNetHdr&) { put16(b.data() + 4, 0); }},
    {"ihl below 5", TsoDrop::kIpHeader, false, 6, kVirtioNetHdrGsoTcpv4,
     [](Bytes& b, VirtioNetHdr&) { b[0] = 0x44; }},
    {"truncated ip header", TsoDrop::kIpHeader, false, 6, kVirtioNetHdrGsoTcpv4,
     [](Bytes& b, VirtioNetHdr& h) {
       b.resize(12);
       h.hdr_len = 0;
     }},
    {"empty", TsoDrop::kIpHeader, false, 6, kVirtioNetHdrGsoNone,
     [](Bytes& b, VirtioNetHdr& h) {
       b.clear();
       h = {};
     }},
    {"ipv4 options", TsoDrop::kIpOptions, false, 6, kVirtioNetHdrGsoTcpv4,
     [](Bytes& b, VirtioNetHdr&) { b[0] = 0x46; }},
    {"fragment", TsoDrop::kIpFragment, false, 6, kVirtioNetHdrGsoTcpv4,
     [](Bytes& b, VirtioNetHdr&) { b[6] |= 0x20; }},
    {"ipv6 hop-by-hop", TsoDrop::kIpv6NextHeader, true, 6, kVirtioNetHdrGsoTcpv6,
     [](Bytes& b, VirtioNetHdr&) { b[6] = 0; }},
    {"tcp gso on udp", TsoDrop::kL4Protocol, false, 17, kVirtioNetHdrGsoTcpv4,
     [](Bytes&, VirtioNetHdr& h) { h.flags = 0; }},
    {"uso on tcp", TsoDrop::kL4Protocol, true, 6, kVirtioNetHdrGsoUdpL4,
     [](Bytes&, VirtioNetHdr& h) { h.flags = 0; }},
    {"tcp data offset 4", TsoDrop::kL4Header, false, 6, kVirtioNetHdrGsoTcpv4,
     [](Bytes& b, VirtioNetHdr&) { b[32] = 0x40; }},
    {"tcp header past data", TsoDrop::kL4Header, false, 6, kVirtioNetHdrGsoTcpv4,
     [](Bytes& b, VirtioNetHdr& h) {
       b.resize(50);
       put16(b.data() + 2, 50);
       b[32] = 0xf0;
       h.hdr_len = 40;
     }},
    {"too many segments", TsoDrop::kTooManySegments, false, 6, kVirtioNetHdrGsoTcpv4,
     [](Bytes&, VirtioNetHdr& h) { h.gso_size = 1; }},
    {"segment larger than the slot", TsoDrop::kSegmentTooLarge, false, 6, kVirtioNetHdrGsoTcpv4,
     [](Bytes&, VirtioNetHdr& h) { h.gso_size = 1500; }, 1024},
    {"more segments than slots", TsoDrop::kSegmentTooLarge, true, 17, kVirtioNetHdrGsoUdpL4,
     [](Bytes&, VirtioNetHdr&) {}, slot_size(1420), 2},
};

TEST(Tso, HostileHeadersAreDroppedByReason) {
  std::set<TsoDrop> seen;
  for (const Hostile& c : kHostile) {
    Bytes in = make_packet(c.v6, c.proto, 4000);
    auto hdr = gso_hdr(c.gso_type, 1000, c.v6, c.proto);
    c.mangle(in, hdr);
    PacketArena arena(c.slots, c.slot);
    auto n = tso_split(hdr, in, arena.packets());
    ASSERT_FALSE(n.ok()) << c.name;
    EXPECT_EQ(n.failure(), c.want) << c.name << ": " << tso_drop_name(n.failure());
    seen.insert(c.want);
  }
  EXPECT_EQ(seen.size(), kTsoDropCount) << "a TsoDrop reason without a case";
  for (size_t i = 0; i < kTsoDropCount; ++i)
    EXPECT_STRNE(tso_drop_name(static_cast<TsoDrop>(i)), "unknown");
}

}  // namespace
}  // namespace faraday::dataplane
