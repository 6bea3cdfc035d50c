// underlay_test.cpp: the frames of an owned NIC (underlay.h). Two nodes, a and b,
// on one link: what one builds the other classifies (ARP, ND, UDP in IPv4 and
// IPv6), against known answers where a symmetric bug could hide (an IPv4 header
// checksum from RFC 1071's worked example style, a captured ARP request); every
// damaged field is dropped for its own reason; the neighbour table ages.
#include "dataplane/underlay.h"

#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "dataplane/inet.h"
#include "dataplane/underlay_link.h"

namespace faraday::dataplane {
namespace {

using Bytes = std::vector<uint8_t>;

std::array<uint8_t, 4> v4(uint8_t a, uint8_t b, uint8_t c, uint8_t d) {
  return {a, b, c, d};
}

std::array<uint8_t, 16> v6(uint8_t last) {
  return {0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, last};
}

UnderlayAddress node(uint8_t n) {
  UnderlayAddress a;
  a.mac = {0x02, 0, 0, 0, 0, n};
  a.port = 51820;
  a.v4 = UnderlayAddress::V4{v4(10, 0, 0, n), 24, v4(10, 0, 0, 254)};
  a.v6 = UnderlayAddress::V6{v6(n), 64, std::nullopt};
  return a;
}

Endpoint endpoint_of(const UnderlayAddress& a, bool ipv6) {
  Endpoint e;
  e.family = ipv6 ? AF_INET6 : AF_INET;
  e.port = a.port;
  if (ipv6)
    e.addr = a.v6->addr;
  else
    std::memcpy(e.addr.data(), a.v4->addr.data(), 4);
  return e;
}

const UnderlayAddress kA = node(1);
const UnderlayAddress kB = node(2);

// A datagram a -> b as a frame: the payload is "wireguard" bytes.
Bytes datagram_frame(bool ipv6, size_t length = 148, bool ip_offload = false,
                     bool l4_offload = false) {
  Bytes buf(kUnderlayHeadroom + length);
  for (size_t i = 0; i < length; ++i) buf[kUnderlayHeadroom + i] = static_cast<uint8_t>(i * 7);
  uint8_t* start = encapsulate(buf.data() + kUnderlayHeadroom, length, kA, kB.mac,
                               endpoint_of(kB, ipv6), ip_offload, l4_offload);
  EXPECT_NE(start, nullptr);
  return Bytes(start, buf.data() + buf.size());
}

FrameDrop drop_of(const Bytes& frame, const UnderlayAddress& self = kB, RxChecked checked = {}) {
  auto r = classify_frame(frame, self, checked);
  EXPECT_FALSE(r.ok());
  return r.ok() ? FrameDrop::kCount : r.failure();
}

TEST(Underlay, MacAddresses) {
  EXPECT_EQ(parse_mac("02:00:5e:10:AB:ff"), (MacAddress{2, 0, 0x5e, 0x10, 0xab, 0xff}));
  EXPECT_EQ(mac_to_string({2, 0, 0x5e, 0x10, 0xab, 0xff}), "02:00:5e:10:ab:ff");
  for (const char* bad : {"", "02:00:5e:10:ab", "02:00:5e:10:ab:f", "02-00-5e-10-ab-ff",
                          "02:00:5e:10:ab:fg", "02:00:5e:10:ab:ff:"})
    EXPECT_FALSE(parse_mac(bad)) << bad;
}

// Known answer: 192.168.0.1 -> 192.168.0.199, total length 0x73, DF, TTL 64,
// UDP: the header checksum is 0xb861.
TEST(Underlay, Ipv4HeaderChecksumKnownAnswer) {
  UnderlayAddress self = kA;
  self.v4->addr = v4(192, 168, 0, 1);
  Endpoint to = endpoint_of(kB, false);
  std::memcpy(to.addr.data(), v4(192, 168, 0, 199).data(), 4);
  Bytes buf(kUnderlayHeadroom + 87);
  uint8_t* frame = encapsulate(buf.data() + kUnderlayHeadroom, 87, self, kB.mac, to);
  ASSERT_NE(frame, nullptr);
  const uint8_t expected[20] = {0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11,
                                0xb8, 0x61, 0xc0, 0xa8, 0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7};
  EXPECT_EQ(0, std::memcmp(frame + kEthernetHeader, expected, 20));
}

// inet::sum against RFC 1071 done the plain way, 16 bits at a time in network
// order with end-around carry: every length to past two of the sum's 16-byte
// steps and past four of its 32-byte ones (where a CPU has AVX2), every starting
// seed class, bytes that carry often (mostly 0xff).
TEST(Underlay, ChecksumMatchesTheSixteenBitSum) {
  auto reference = [](const uint8_t* p, size_t n, uint32_t seed) {
    uint32_t acc = seed;
    for (size_t i = 0; i < n; i += 2) {
      acc += static_cast<uint32_t>(p[i] << 8 | (i + 1 < n ? p[i + 1] : 0));
      acc = (acc & 0xffff) + (acc >> 16);
    }
    return static_cast<uint16_t>(acc);
  };
  Bytes data(1500);
  uint32_t x = 12345;
  for (uint8_t& b : data) {
    x = x * 1103515245 + 12345;
    b = (x >> 16) % 5 ? 0xff : static_cast<uint8_t>(x >> 24);
  }
  std::vector<size_t> lengths;
  for (size_t n = 0; n <= 136; ++n) lengths.push_back(n);
  lengths.insert(lengths.end(), {1450, 1497});
  auto host_order = [](uint16_t in_memory) {
    uint8_t b[2];
    std::memcpy(b, &in_memory, 2);
    return static_cast<uint16_t>(b[0] << 8 | b[1]);
  };
  for (size_t offset : {0, 1, 3})
    for (size_t n : lengths) {
      const uint8_t* p = data.data() + offset;
      for (uint16_t seed : {0, 1, 0x8000, 0xfffe}) {
        const uint16_t want = reference(p, n, seed);
        // sum() works in memory order: a host-order seed joins it through field().
        const uint16_t got = host_order(inet::fold(inet::sum(p, n, inet::field(seed))));
        // 0 and 0xffff are the same one's-complement value.
        EXPECT_TRUE(got == want || (got % 0xffff == 0 && want % 0xffff == 0))
            << "offset " << offset << " length " << n << " seed " << seed << ": " << got << " vs "
            << want;
      }
      // A running sum near 2^64: the steps' total joins it with its carry.
      // 2^64 - 1 is 0 modulo 0xffff, so this is the sum from nothing.
      const uint16_t from_zero = inet::fold(inet::sum(p, n));
      const uint16_t from_top = inet::fold(inet::sum(p, n, ~uint64_t{0}));
      EXPECT_EQ(from_zero % 0xffff, from_top % 0xffff) << "offset " << offset << " length " << n;
    }
}

TEST(Underlay, DatagramsRoundTrip) {
  for (bool ipv6 : {false, true}) {
    SCOPED_TRACE(ipv6 ? "IPv6" : "IPv4");
    Bytes frame = datagram_frame(ipv6);
    EXPECT_EQ(frame.size(), kEthernetHeader + (ipv6 ? 40 : 20) + 8 + 148);
    auto r = classify_frame(frame, kB);
    ASSERT_TRUE(r.ok()) << frame_drop_name(r.failure());
    EXPECT_EQ(r->kind, Frame::Kind::kDatagram);
    EXPECT_EQ(r->source, endpoint_of(kA, ipv6));
    EXPECT_EQ(r->source_mac, kA.mac);
    ASSERT_EQ(r->payload_length, 148u);
    for (size_t i = 0; i < 148; ++i)
      ASSERT_EQ(frame[r->payload_offset + i], static_cast<uint8_t>(i * 7));
    // Ethernet padding after the IP packet is not payload.
    frame.resize(frame.size() + 20, 0);
    auto padded = classify_frame(frame, kB);
    ASSERT_TRUE(padded.ok());
    EXPECT_EQ(padded->payload_length, 148u);
  }
}

// encapsulate() sums its headers from the values it writes; the same sums read
// back from its bytes, as a receiver checks them, must agree: both families,
// every pair of offloads, payloads either side of sum()'s 32-byte steps and of
// odd length, addresses and ports whose sums carry.
TEST(Underlay, EncapsulatedChecksumsMatchTheirBytes) {
  UnderlayAddress self = kA;
  self.port = 0xfffe;
  self.v4->addr = v4(255, 255, 255, 254);
  self.v6->addr.fill(0xff);
  self.v6->addr[15] = 0xfe;
  for (bool ipv6 : {false, true})
    for (bool ip_off : {false, true})
      for (bool l4_off : {false, true})
        for (size_t length : {0, 1, 31, 63, 64, 65, 95, 96, 97, 148, 1421}) {
          SCOPED_TRACE(testing::Message() << (ipv6 ? "IPv6" : "IPv4") << " offloads " << ip_off
                                          << l4_off << " length " << length);
          Endpoint to = endpoint_of(kB, ipv6);
          // Near all ones but not 0xffff, which is 0 to a one's-complement sum
          // and would hide a field left out.
          to.port = 0xfffd;
          to.addr.fill(0xff);
          to.addr[ipv6 ? 15 : 3] = 0xfd;
          Bytes buf(kUnderlayHeadroom + length, 0xff);
          const uint8_t* f =
              encapsulate(buf.data() + kUnderlayHeadroom, length, self, kB.mac, to, ip_off, l4_off);
          ASSERT_NE(f, nullptr);
          const uint8_t* ip = f + kEthernetHeader;
          const uint8_t* u = ip + (ipv6 ? 40 : 20);
          const auto udp_length = static_cast<uint32_t>(8 + length);
          const uint64_t pseudo = inet::pseudo_header(ip, ipv6, inet::kProtoUdp, udp_length);
          if (!ipv6) {
            if (ip_off)
              EXPECT_EQ(inet::load_be16(ip + 10), 0);
            else
              EXPECT_TRUE(inet::verifies(inet::sum(ip, 20)));
          }
          if (l4_off) {
            uint8_t seed[2];
            inet::store_folded(seed, pseudo);
            EXPECT_EQ(0, std::memcmp(u + 6, seed, 2));
          } else {
            EXPECT_TRUE(inet::verifies(inet::sum(u, udp_length, pseudo)));
          }
        }
}

// A port that completes checksums gets the pseudo-header sum in the UDP field
// (and nothing in the IPv4 one); completing them as hardware would gives a frame
// that verifies.
TEST(Underlay, ChecksumOffloadSeeds) {
  for (bool ipv6 : {false, true}) {
    Bytes frame = datagram_frame(ipv6, 100, true, true);
    const size_t ip = kEthernetHeader, udp = ip + (ipv6 ? 40 : 20);
    EXPECT_EQ(drop_of(frame), ipv6 ? FrameDrop::kBadUdp : FrameDrop::kBadIpHeader);
    if (!ipv6) inet::store_checksum(&frame[ip + 10], inet::sum(&frame[ip], 20));
    inet::store_checksum(&frame[udp + 6], inet::sum(&frame[udp], 108));
    EXPECT_TRUE(classify_frame(frame, kB).ok()) << (ipv6 ? "IPv6" : "IPv4");
  }
}

TEST(Underlay, DamagedDatagramsAreDroppedForTheirReason) {
  const size_t ip = kEthernetHeader;
  for (bool ipv6 : {false, true}) {
    SCOPED_TRACE(ipv6 ? "IPv6" : "IPv4");
    const size_t udp = ip + (ipv6 ? 40 : 20);
    const Bytes good = datagram_frame(ipv6);
    Bytes f = good;
    f.back() ^= 1;  // payload
    EXPECT_EQ(drop_of(f), FrameDrop::kBadUdp);
    EXPECT_TRUE(classify_frame(f, kB, {true, true}).ok());  // the NIC said it verified
    f = good;
    f[udp + 3] ^= 1;  // destination port
    EXPECT_EQ(drop_of(f), FrameDrop::kNotForUs);
    f = good;
    f[udp + 5] += 1;  // UDP length past the IP payload
    EXPECT_EQ(drop_of(f), FrameDrop::kBadUdp);
    f = good;
    f[udp + 6] = f[udp + 7] = 0;  // no checksum: allowed in IPv4 only
    if (ipv6)
      EXPECT_EQ(drop_of(f), FrameDrop::kBadUdp);
    else
      EXPECT_TRUE(classify_frame(f, kB).ok());
    f = good;
    f[0] ^= 1;  // another MAC
    EXPECT_EQ(drop_of(f), FrameDrop::kNotForUs);
    f = good;
    f[ip + (ipv6 ? 39 : 19)] ^= 1;  // another IP address
    EXPECT_EQ(drop_of(f), ipv6 ? FrameDrop::kNotForUs : FrameDrop::kBadIpHeader);
    f = good;
    f.resize(f.size() - 1);  // shorter than the IP length
    EXPECT_EQ(drop_of(f), FrameDrop::kTruncated);
    f = good;
    f[ip] = ipv6 ? 0x40 : 0x65;  // wrong version
    EXPECT_EQ(drop_of(f), FrameDrop::kBadIpHeader);
    f = good;
    f[12] = 0x81, f[13] = 0x00;  // a VLAN tag
    EXPECT_EQ(drop_of(f), FrameDrop::kUnsupported);
    EXPECT_EQ(drop_of(Bytes(good.begin(), good.begin() + 13)), FrameDrop::kTruncated);
    EXPECT_EQ(drop_of(Bytes(good.begin(), good.begin() + udp + 4)), FrameDrop::kTruncated);
  }
  Bytes f = datagram_frame(false);
  f[ip + 8] -= 1;  // TTL: the header checksum no longer holds
  EXPECT_EQ(drop_of(f), FrameDrop::kBadIpHeader);
  EXPECT_TRUE(classify_frame(f, kB, {true, false}).ok());
  f = datagram_frame(false);
  f[ip + 6] |= 0x20;  // more fragments
  inet::store_be16(&f[ip + 10], 0);
  inet::store_checksum(&f[ip + 10], inet::sum(&f[ip], 20));
  EXPECT_EQ(drop_of(f), FrameDrop::kFragment);
  f = datagram_frame(false);
  f[ip + 9] = inet::kProtoTcp;
  inet::store_be16(&f[ip + 10], 0);
  inet::store_checksum(&f[ip + 10], inet::sum(&f[ip], 20));
  EXPECT_EQ(drop_of(f), FrameDrop::kUnsupported);
  f = datagram_frame(true);
  f[ip + 6] = 44;  // an IPv6 fragment header
  EXPECT_EQ(drop_of(f), FrameDrop::kFragment);
}

TEST(Underlay, ArpRequestAndReply) {
  Bytes req(60);
  ASSERT_EQ(build_arp_request(req, kA, kB.v4->addr), 60u);
  // Known answer: the fields of a request, as a capture shows them.
  const uint8_t expected[42] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 2, 0, 0, 0, 0,  1, 0x08, 0x06,
                                0,    1,    0x08, 0,    6,    4,    0, 1, 2, 0, 0,  0, 0,    1,
                                10,   0,    0,    1,    0,    0,    0, 0, 0, 0, 10, 0, 0,    2};
  EXPECT_EQ(0, std::memcmp(req.data(), expected, sizeof expected));
  auto at_b = classify_frame(req, kB);
  ASSERT_TRUE(at_b.ok()) << frame_drop_name(at_b.failure());
  EXPECT_EQ(at_b->kind, Frame::Kind::kArpRequest);
  EXPECT_EQ(at_b->neighbor_family, AF_INET);
  EXPECT_EQ(0, std::memcmp(at_b->neighbor_ip.data(), kA.v4->addr.data(), 4));
  EXPECT_EQ(at_b->neighbor_mac, kA.mac);
  EXPECT_EQ(drop_of(req, node(3)), FrameDrop::kNotForUs);  // asks for b, not 3

  Bytes reply(60);
  ASSERT_EQ(build_arp_reply(reply, kB, *at_b), 60u);
  EXPECT_EQ(0, std::memcmp(reply.data(), kA.mac.data(), 6));  // unicast back
  auto at_a = classify_frame(reply, kA);
  ASSERT_TRUE(at_a.ok()) << frame_drop_name(at_a.failure());
  EXPECT_EQ(at_a->kind, Frame::Kind::kArpReply);
  EXPECT_EQ(0, std::memcmp(at_a->neighbor_ip.data(), kB.v4->addr.data(), 4));
  EXPECT_EQ(at_a->neighbor_mac, kB.mac);

  Bytes bad = req;
  bad[15] = 6;  // hardware type 6
  EXPECT_EQ(drop_of(bad), FrameDrop::kBadArp);
  bad = req;
  bad[21] = 3;  // operation 3
  EXPECT_EQ(drop_of(bad), FrameDrop::kBadArp);
  EXPECT_EQ(drop_of(Bytes(req.begin(), req.begin() + 41)), FrameDrop::kTruncated);
  UnderlayAddress no_v4 = kB;
  no_v4.v4.reset();
  EXPECT_EQ(drop_of(req, no_v4), FrameDrop::kNotForUs);
  EXPECT_EQ(build_arp_request(req, no_v4, kA.v4->addr), 0u);
  Bytes small(59);
  EXPECT_EQ(build_arp_request(small, kA, kB.v4->addr), 0u);
}

TEST(Underlay, NeighborSolicitationAndAdvertisement) {
  Bytes ns(86);
  ASSERT_EQ(build_neighbor_solicit(ns, kA, kB.v6->addr), 86u);
  // To the solicited-node group: 33:33:ff:00:00:02, ff02::1:ff00:2.
  const uint8_t group_mac[6] = {0x33, 0x33, 0xff, 0, 0, 2};
  EXPECT_EQ(0, std::memcmp(ns.data(), group_mac, 6));
  auto at_b = classify_frame(ns, kB);
  ASSERT_TRUE(at_b.ok()) << frame_drop_name(at_b.failure());
  EXPECT_EQ(at_b->kind, Frame::Kind::kSolicitation);
  EXPECT_EQ(at_b->neighbor_family, AF_INET6);
  EXPECT_EQ(at_b->neighbor_ip, kA.v6->addr);
  EXPECT_EQ(at_b->neighbor_mac, kA.mac);
  EXPECT_EQ(drop_of(ns, node(3)), FrameDrop::kNotForUs);

  Bytes na(86);
  ASSERT_EQ(build_neighbor_advert(na, kB, *at_b), 86u);
  auto at_a = classify_frame(na, kA);
  ASSERT_TRUE(at_a.ok()) << frame_drop_name(at_a.failure());
  EXPECT_EQ(at_a->kind, Frame::Kind::kAdvertisement);
  EXPECT_EQ(at_a->neighbor_ip, kB.v6->addr);
  EXPECT_EQ(at_a->neighbor_mac, kB.mac);

  const size_t ip = kEthernetHeader, icmp = ip + 40;
  Bytes bad = ns;
  bad[ip + 7] = 64;  // hop limit: not from the link
  EXPECT_EQ(drop_of(bad), FrameDrop::kBadNd);
  bad = ns;
  bad[icmp + 20] ^= 1;  // checksum no longer holds
  EXPECT_EQ(drop_of(bad), FrameDrop::kBadNd);
  bad = ns;
  bad[icmp + 25] = 0;  // an option of length 0
  inet::store_be16(&bad[icmp + 2], 0);
  inet::store_checksum(
      &bad[icmp + 2],
      inet::sum(&bad[icmp], 32, inet::pseudo_header(&bad[ip], true, inet::kProtoIcmpv6, 32)));
  EXPECT_EQ(drop_of(bad), FrameDrop::kBadNd);
  bad = ns;
  bad[icmp] = 128;  // an echo request
  EXPECT_EQ(drop_of(bad), FrameDrop::kUnsupported);
  UnderlayAddress no_v6 = kA;
  no_v6.v6.reset();
  EXPECT_EQ(build_neighbor_solicit(ns, no_v6, kB.v6->addr), 0u);

  // An advertisement to all nodes must not say Solicited (RFC 4861 7.1.2).
  bad = na;
  const uint8_t all_nodes[16] = {0xff, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
  std::memcpy(&bad[ip + 24], all_nodes, 16);
  auto resum = [&](Bytes& f) {
    inet::store_be16(&f[icmp + 2], 0);
    inet::store_checksum(
        &f[icmp + 2],
        inet::sum(&f[icmp], 32, inet::pseudo_header(&f[ip], true, inet::kProtoIcmpv6, 32)));
  };
  resum(bad);
  EXPECT_EQ(drop_of(bad, kA), FrameDrop::kBadNd);
  bad[icmp + 4] = 0x20;  // Override only: an unsolicited announcement
  resum(bad);
  auto announced = classify_frame(bad, kA);
  ASSERT_TRUE(announced.ok()) << frame_drop_name(announced.failure());
  EXPECT_TRUE(announced->neighbor_override);
  bad[icmp + 4] = 0;  // neither: keeps a known MAC
  resum(bad);
  EXPECT_FALSE(classify_frame(bad, kA)->neighbor_override);
}

TEST(Underlay, NextHop) {
  Endpoint on_link = endpoint_of(kB, false);
  EXPECT_EQ(next_hop(kA, on_link)->addr, on_link.addr);
  Endpoint far = on_link;
  far.addr[0] = 192;
  auto via = next_hop(kA, far);
  ASSERT_TRUE(via);
  EXPECT_EQ(0, std::memcmp(via->addr.data(), kA.v4->gateway->data(), 4));
  Endpoint far6 = endpoint_of(kB, true);
  far6.addr[1] = 1;  // off fd00::/64, and no IPv6 gateway
  EXPECT_FALSE(next_hop(kA, far6));
  EXPECT_EQ(next_hop(kA, endpoint_of(kB, true))->addr, kB.v6->addr);
  // A prefix length past the address's width means the whole address.
  UnderlayAddress wide = kA;
  wide.v4->prefix = 200;
  EXPECT_EQ(0, std::memcmp(next_hop(wide, on_link)->addr.data(), kA.v4->gateway->data(), 4));
  wide.v4->prefix = 32;
  Endpoint self4 = endpoint_of(kA, false);
  EXPECT_EQ(next_hop(wide, self4)->addr, self4.addr);
}

TEST(Underlay, NeighborTableAges) {
  NeighborTable t;
  Endpoint b = endpoint_of(kB, false);
  b.port = 0;
  Nanos now = 1000 * kSecond;
  auto first = t.lookup(b, now);
  EXPECT_FALSE(first.mac);
  EXPECT_TRUE(first.ask);
  EXPECT_FALSE(t.lookup(b, now + kSecond / 2).ask);  // one request a second
  EXPECT_TRUE(t.lookup(b, now + kSecond).ask);
  ASSERT_TRUE(t.learn(AF_INET, b.addr, kB.mac, now + kSecond));
  now += kSecond;
  auto known = t.lookup(b, now);
  EXPECT_EQ(known.mac, kB.mac);
  EXPECT_FALSE(known.ask);
  auto stale = t.lookup(b, now + NeighborTable::kReachable);
  EXPECT_EQ(stale.mac, kB.mac);  // still used while asked again
  EXPECT_TRUE(stale.ask);
  t.expire(now + NeighborTable::kForget - 1);
  EXPECT_EQ(t.size(), 1u);
  t.expire(now + NeighborTable::kForget);
  EXPECT_EQ(t.size(), 0u);
}

TEST(Underlay, NeighborTableIsBounded) {
  NeighborTable t;
  Endpoint e;
  e.family = AF_INET6;
  for (size_t i = 0; i < NeighborTable::kMaxEntries; ++i) {
    e.addr[14] = static_cast<uint8_t>(i >> 8);
    e.addr[15] = static_cast<uint8_t>(i);
    EXPECT_TRUE(t.learn(AF_INET6, e.addr, kA.mac, 0));
  }
  e.addr[0] = 1;
  EXPECT_FALSE(t.learn(AF_INET6, e.addr, kA.mac, 0));  // an asker: no room
  // Someone we send to always gets an entry: the one confirmed longest ago goes.
  EXPECT_TRUE(t.lookup(e, 5).ask);
  EXPECT_EQ(t.size(), NeighborTable::kMaxEntries);
  EXPECT_TRUE(t.learn(AF_INET6, e.addr, kB.mac, 6, /*create=*/false));
  EXPECT_EQ(t.lookup(e, 7).mac, kB.mac);
}

// Answers update only the entries of neighbours we asked for, and an NA
// without the Override flag keeps a MAC address already known.
TEST(Underlay, NeighborTableTakesAnswersOnlyForWhatItAsked) {
  NeighborTable t;
  Endpoint b = endpoint_of(kB, true);
  b.port = 0;
  EXPECT_FALSE(t.learn(AF_INET6, b.addr, kB.mac, 1, /*create=*/false));
  EXPECT_EQ(t.size(), 0u);
  EXPECT_TRUE(t.lookup(b, 1).ask);
  EXPECT_TRUE(t.learn(AF_INET6, b.addr, kB.mac, 2, false));
  EXPECT_FALSE(t.learn(AF_INET6, b.addr, kA.mac, 3, false, /*override=*/false));
  EXPECT_EQ(t.lookup(b, 4).mac, kB.mac);
  EXPECT_TRUE(t.learn(AF_INET6, b.addr, kA.mac, 5, false, /*override=*/true));
  EXPECT_EQ(t.lookup(b, 6).mac, kA.mac);
}

TEST(Underlay, OnLink) {
  std::array<uint8_t, 16> ip{};
  EXPECT_FALSE(on_link(kA, AF_INET, ip));  // 0.0.0.0: a probe, not a neighbour
  ip[0] = 10, ip[3] = 9;
  EXPECT_TRUE(on_link(kA, AF_INET, ip));
  ip[2] = 1;
  EXPECT_FALSE(on_link(kA, AF_INET, ip));
  EXPECT_TRUE(on_link(kA, AF_INET6, kB.v6->addr));
  std::array<uint8_t, 16> ll = {0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 7};
  EXPECT_TRUE(on_link(kA, AF_INET6, ll));
  ll[0] = 0x20;
  EXPECT_FALSE(on_link(kA, AF_INET6, ll));
  EXPECT_FALSE(on_link(kA, AF_INET6, {}));
}

// An ARP request from off our subnet is answered, but its sender gets no entry.
TEST(Underlay, LinkLearnsOnlyOnLinkAskers) {
  UnderlayLink link(kB);
  UnderlayAddress stranger = kA;
  stranger.v4->addr = v4(192, 0, 2, 1);
  Bytes req(60);
  ASSERT_EQ(build_arp_request(req, stranger, kB.v4->addr), 60u);
  Frame f;
  std::array<uint8_t, UnderlayLink::kControlFrameSize> answer;
  size_t n = 0;
  EXPECT_EQ(link.receive(req, 1, f, answer, n), UnderlayLink::Rx::kAnswer);
  EXPECT_GT(n, 0u);
  EXPECT_EQ(link.neighbors(), 0u);
  EXPECT_EQ(link.counters().not_learnt, 1u);
  ASSERT_EQ(build_arp_request(req, kA, kB.v4->addr), 60u);
  EXPECT_EQ(link.receive(req, 2, f, answer, n), UnderlayLink::Rx::kAnswer);
  EXPECT_EQ(link.neighbors(), 1u);
  // An unsolicited reply from someone else: not recorded.
  Bytes reply(60);
  Frame asked = f;
  asked.neighbor_mac = kB.mac;
  std::memcpy(asked.neighbor_ip.data(), kB.v4->addr.data(), 4);
  UnderlayAddress c = node(3);
  ASSERT_EQ(build_arp_reply(reply, c, asked), 60u);
  EXPECT_EQ(link.receive(reply, 3, f, answer, n), UnderlayLink::Rx::kLearnt);
  EXPECT_EQ(link.neighbors(), 1u);
}

// send() keeps the table's last answer for one destination at one time (a
// burst's datagrams): the burst costs one request, and an answer learnt in
// between, at that same time, is used by the very next datagram.
TEST(Underlay, LinkSendsABurstWithOneRequestAndUsesAnAnswerAtOnce) {
  UnderlayLink a(kA);
  UnderlayLink b(kB);
  const Endpoint to = endpoint_of(kB, false);
  std::array<uint8_t, UnderlayLink::kControlFrameSize> request, answer;
  Bytes buf(kUnderlayHeadroom + 32);
  size_t requests = 0;
  for (int i = 0; i < 5; ++i) {
    const UnderlayLink::Tx tx = a.send(buf.data() + kUnderlayHeadroom, 32, to, 7, request);
    EXPECT_EQ(tx.frame, nullptr);
    requests += tx.request_length > 0;
  }
  EXPECT_EQ(requests, 1u);
  EXPECT_EQ(a.counters().tx_unresolved, 5u);
  const UnderlayLink::Tx asked = a.send(buf.data() + kUnderlayHeadroom, 32, to, 8, request);
  EXPECT_EQ(asked.request_length, 0u);  // asked within the last second
  Frame f;
  size_t n = 0;
  ASSERT_EQ(a.send(buf.data() + kUnderlayHeadroom, 32, to, 8, request).frame, nullptr);
  // b answers the request a sent at 7; a learns it at 8 and sends at 8.
  ASSERT_EQ(build_arp_request(request, kA, kB.v4->addr), 60u);
  ASSERT_EQ(b.receive({request.data(), 60}, 8, f, answer, n), UnderlayLink::Rx::kAnswer);
  ASSERT_EQ(a.receive({answer.data(), n}, 8, f, request, n), UnderlayLink::Rx::kLearnt);
  const UnderlayLink::Tx sent = a.send(buf.data() + kUnderlayHeadroom, 32, to, 8, request);
  ASSERT_NE(sent.frame, nullptr);
  EXPECT_EQ(0, std::memcmp(sent.frame, kB.mac.data(), 6));
  // Neighbours forgotten at the time of the last send are asked for again at
  // that very time.
  const Nanos later = 8 + NeighborTable::kForget;
  EXPECT_EQ(a.send(buf.data() + kUnderlayHeadroom, 32, to, later, request).request_length, 60u);
  ASSERT_EQ(build_arp_request(request, kA, kB.v4->addr), 60u);
  ASSERT_EQ(b.receive({request.data(), 60}, later, f, answer, n), UnderlayLink::Rx::kAnswer);
  ASSERT_EQ(a.receive({answer.data(), n}, later, f, request, n), UnderlayLink::Rx::kLearnt);
  ASSERT_NE(a.send(buf.data() + kUnderlayHeadroom, 32, to, later, request).frame, nullptr);
  // Unconfirmed for kForget: still used (and asked for) until the table
  // forgets it; forgotten at the time of that send, it is not used at that time.
  const Nanos stale = later + NeighborTable::kForget;
  const UnderlayLink::Tx used = a.send(buf.data() + kUnderlayHeadroom, 32, to, stale, request);
  EXPECT_NE(used.frame, nullptr);
  EXPECT_EQ(used.request_length, 60u);
  a.expire(stale);
  const UnderlayLink::Tx again = a.send(buf.data() + kUnderlayHeadroom, 32, to, stale, request);
  EXPECT_EQ(again.frame, nullptr);
  EXPECT_EQ(again.request_length, 60u);
}

// Two lcores on one port, a link each: lcore 1 asks for b, b's answer lands on
// lcore 0's queue, and lcore 1 learns it from lcore 0's news. An answer nobody
// asked for is news too, but no table takes it. Lcore 1's request is news as
// well: once lcore 0 has heard it, lcore 0 takes the answer too.
TEST(Underlay, LinksOfSeveralLcoresShareWhatTheyHear) {
  UnderlayLink lcore0(kA), lcore1(kA), b(kB);
  lcore0.share_news();
  lcore1.share_news();
  const Endpoint to = endpoint_of(kB, false);
  std::array<uint8_t, UnderlayLink::kControlFrameSize> request, answer;
  Bytes buf(kUnderlayHeadroom + 32);
  const UnderlayLink::Tx asked = lcore1.send(buf.data() + kUnderlayHeadroom, 32, to, 5, request);
  ASSERT_EQ(asked.frame, nullptr);
  ASSERT_EQ(asked.request_length, 60u);
  ASSERT_EQ(lcore1.news().size(), 1u);
  const UnderlayLink::News asking = lcore1.news()[0];
  EXPECT_TRUE(asking.asked);
  lcore1.clear_news();
  Frame f;
  size_t answer_length = 0, n = 0;
  ASSERT_EQ(b.receive({request.data(), 60}, 5, f, answer, answer_length),
            UnderlayLink::Rx::kAnswer);
  // The answer lands on lcore 0 before lcore 1's news of the request does.
  ASSERT_EQ(lcore0.receive({answer.data(), answer_length}, 5, f, request, n),
            UnderlayLink::Rx::kLearnt);
  EXPECT_EQ(lcore0.counters().not_learnt, 1u);  // lcore 0 did not ask
  ASSERT_EQ(lcore0.news().size(), 1u);
  EXPECT_TRUE(lcore1.news().empty());
  lcore1.hear(lcore0.news()[0], 6);
  lcore0.clear_news();
  EXPECT_EQ(lcore1.counters().heard, 1u);
  const UnderlayLink::Tx sent = lcore1.send(buf.data() + kUnderlayHeadroom, 32, to, 6, request);
  ASSERT_NE(sent.frame, nullptr);
  EXPECT_EQ(0, std::memcmp(sent.frame, kB.mac.data(), 6));
  // Lcore 0 hears of the request after the answer: needing b's MAC, it asks
  // itself. An answer after the news is taken on lcore 0 too, which then
  // sends to b.
  lcore0.hear(asking, 6);
  EXPECT_EQ(lcore0.counters().heard, 0u);  // an expected answer, nothing learnt yet
  EXPECT_TRUE(lcore0.news().empty());      // and not news again
  const UnderlayLink::Tx own = lcore0.send(buf.data() + kUnderlayHeadroom, 32, to, 6, request);
  EXPECT_EQ(own.frame, nullptr);
  EXPECT_EQ(own.request_length, 60u);
  lcore0.clear_news();
  ASSERT_EQ(lcore0.receive({answer.data(), answer_length}, 6, f, request, n),
            UnderlayLink::Rx::kLearnt);
  EXPECT_EQ(lcore0.counters().learnt, 1u);
  lcore0.clear_news();
  const UnderlayLink::Tx from0 = lcore0.send(buf.data() + kUnderlayHeadroom, 32, to, 6, request);
  ASSERT_NE(from0.frame, nullptr);
  EXPECT_EQ(from0.request_length, 0u);
  EXPECT_EQ(0, std::memcmp(from0.frame, kB.mac.data(), 6));

  // b's ARP request for us: any lcore answers it, and the others may take
  // the asker (on-link) too.
  UnderlayLink lcore2(kA);
  ASSERT_EQ(build_arp_request(request, kB, kA.v4->addr), 60u);
  ASSERT_EQ(lcore0.receive({request.data(), 60}, 7, f, answer, n), UnderlayLink::Rx::kAnswer);
  ASSERT_EQ(lcore0.news().size(), 1u);
  EXPECT_TRUE(lcore0.news()[0].create);
  lcore2.hear(lcore0.news()[0], 7);
  EXPECT_EQ(lcore2.neighbors(), 1u);
  lcore0.clear_news();

  // An unasked answer (from a node nobody asked for) reaches no table.
  UnderlayLink c(node(3));
  ASSERT_EQ(build_arp_request(request, kA, node(3).v4->addr), 60u);
  ASSERT_EQ(c.receive({request.data(), 60}, 8, f, answer, n), UnderlayLink::Rx::kAnswer);
  const size_t length = n;
  UnderlayLink lcore3(kA);
  lcore3.share_news();
  ASSERT_EQ(lcore3.receive({answer.data(), length}, 8, f, request, n), UnderlayLink::Rx::kLearnt);
  ASSERT_EQ(lcore3.news().size(), 1u);
  const uint64_t heard = lcore1.counters().heard;
  lcore1.hear(lcore3.news()[0], 8);
  EXPECT_EQ(lcore1.counters().heard, heard);
  EXPECT_EQ(lcore1.neighbors(), 1u);  // b only

  // More than kMaxNews between two clear_news(): counted, not kept.
  for (size_t i = 0; i <= UnderlayLink::kMaxNews; ++i)
    (void)lcore3.receive({answer.data(), length}, 9, f, request, n);
  EXPECT_EQ(lcore3.news().size(), UnderlayLink::kMaxNews);
  EXPECT_EQ(lcore3.counters().news_lost, 2u);
}

// A UDP length shorter than the IP payload: the checksum covers the UDP
// length (its pseudo-header says so) and the rest is not payload.
TEST(Underlay, UdpShorterThanItsIpPayload) {
  for (bool ipv6 : {false, true}) {
    Bytes frame = datagram_frame(ipv6, 100);
    const size_t ip = kEthernetHeader, udp = ip + (ipv6 ? 40 : 20);
    inet::store_be16(&frame[udp + 4], 8 + 90);  // the last 10 bytes are not UDP
    inet::store_be16(&frame[udp + 6], 0);
    inet::store_udp_checksum(
        &frame[udp + 6],
        inet::sum(&frame[udp], 98, inet::pseudo_header(&frame[ip], ipv6, inet::kProtoUdp, 98)));
    auto r = classify_frame(frame, kB);
    ASSERT_TRUE(r.ok()) << frame_drop_name(r.failure());
    EXPECT_EQ(r->payload_length, 90u);
  }
}

}  // namespace
}  // namespace faraday::dataplane
