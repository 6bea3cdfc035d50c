// Endpoint and Prefix: parse/format round trips, rejects, masking, and socket
// address conversion including v4-mapped IPv6.
#include "dataplane/net.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

namespace faraday::dataplane {
namespace {

// ---- Endpoint ----

TEST(Endpoint, ParseFormatRoundTrip) {
  for (const std::string text : {
           "192.0.2.1:51820",
           "0.0.0.0:0",
           "255.255.255.255:65535",
           "[2001:db8::1]:51820",
           "[::]:1",
           "[::1]:65535",
           "[fe80::1:2:3:4]:443",
           "[2001:db8:1:2:3:4:5:6]:7",
       }) {
    auto ep = Endpoint::parse(text);
    ASSERT_TRUE(ep.has_value()) << text;
    EXPECT_TRUE(ep->valid()) << text;
    EXPECT_EQ(ep->to_string(), text);
    EXPECT_EQ(Endpoint::parse(ep->to_string()), ep) << text;
  }
}

TEST(Endpoint, ParseFields) {
  auto v4 = Endpoint::parse("192.0.2.1:51820");
  ASSERT_TRUE(v4.has_value());
  EXPECT_EQ(v4->family, AF_INET);
  EXPECT_EQ(v4->port, 51820);
  const std::array<uint8_t, 16> want4 = {192, 0, 2, 1};
  EXPECT_EQ(v4->addr, want4);  // the rest of addr is zero

  auto v6 = Endpoint::parse("[2001:db8::1]:443");
  ASSERT_TRUE(v6.has_value());
  EXPECT_EQ(v6->family, AF_INET6);
  EXPECT_EQ(v6->port, 443);
  const std::array<uint8_t, 16> want6 = {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0,
                                         0,    0,    0,    0,    0, 0, 0, 1};
  EXPECT_EQ(v6->addr, want6);
}

TEST(Endpoint, FormatIsCanonical) {
  auto ep = Endpoint::parse("[2001:0DB8:0000:0000:0000:0000:0000:0001]:80");
  ASSERT_TRUE(ep.has_value());
  EXPECT_EQ(ep->to_string(), "[2001:db8::1]:80");
}

TEST(Endpoint, ParseRejects) {
  for (const std::string text : {
           "",
           "192.0.2.1",
           "192.0.2.1:",
           ":51820",
           "192.0.2.1:65536",
           "192.0.2.1:99999999999",
           "192.0.2.1:-1",
           "192.0.2.1:+1",
           "192.0.2.1:51820x",
           "192.0.2.1: 1",
           " 192.0.2.1:1",
           "192.0.2.256:1",
           "192.0.2:1",
           "host.example:51820",
           "[192.0.2.1]:1",         // brackets are for IPv6 only
           "2001:db8::1:51820",     // IPv6 needs brackets
           "[2001:db8::1]",         // no port
           "[2001:db8::1]:",        // empty port
           "[2001:db8::1]51820",    // no colon
           "[2001:db8::1:51820",    // no closing bracket
           "[2001:db8::1]:1]",      // trailing junk
           "[[2001:db8::1]]:1",     // doubled brackets
           "[]:1",                  // empty host
           "[2001:db8::g]:1",       // bad hex
           "[2001:db8::1::2]:1",    // two "::"
           "[fe80::1%eth0]:51820",  // scope ids are not supported
       }) {
    EXPECT_FALSE(Endpoint::parse(text).has_value()) << text;
  }
}

TEST(Endpoint, Unset) {
  Endpoint ep;
  EXPECT_FALSE(ep.valid());
  EXPECT_EQ(ep.to_string(), "(none)");
  EXPECT_EQ(ep, Endpoint{});
}

// Endpoint::from_sockaddr() of a sockaddr_in holding `addr` and `port`.
Endpoint from_sockaddr_v4(const char* addr, uint16_t port) {
  sockaddr_in in{};
  in.sin_family = AF_INET;
  in.sin_port = htons(port);
  inet_pton(AF_INET, addr, &in.sin_addr);
  return Endpoint::from_sockaddr(reinterpret_cast<const sockaddr*>(&in));
}

// The same with a sockaddr_in6, as a dual-stack socket reports its peers.
Endpoint from_sockaddr_v6(const char* addr, uint16_t port) {
  sockaddr_in6 in6{};
  in6.sin6_family = AF_INET6;
  in6.sin6_port = htons(port);
  inet_pton(AF_INET6, addr, &in6.sin6_addr);
  return Endpoint::from_sockaddr(reinterpret_cast<const sockaddr*>(&in6));
}

TEST(Endpoint, FromSockaddrV4) {
  EXPECT_EQ(from_sockaddr_v4("198.51.100.7", 51820), Endpoint::parse("198.51.100.7:51820"));
}

TEST(Endpoint, FromSockaddrV6) {
  EXPECT_EQ(from_sockaddr_v6("2001:db8::42", 1234), Endpoint::parse("[2001:db8::42]:1234"));
}

// A dual-stack socket reports IPv4 peers as ::ffff:a.b.c.d; they are stored as
// AF_INET so the same peer compares equal whichever socket it arrived on.
TEST(Endpoint, FromSockaddrV4MappedIsV4) {
  Endpoint ep = from_sockaddr_v6("::ffff:192.0.2.1", 51820);
  EXPECT_EQ(ep.family, AF_INET);
  EXPECT_EQ(ep, Endpoint::parse("192.0.2.1:51820"));
  EXPECT_EQ(ep.to_string(), "192.0.2.1:51820");
}

// ::192.0.2.1 (v4-compatible, deprecated) and ::ffff:0:c000:201 (v4-translated)
// are not v4-mapped and stay IPv6.
TEST(Endpoint, FromSockaddrOtherEmbeddingsStayV6) {
  for (const char* text : {"::192.0.2.1", "::ffff:0:c000:201", "64:ff9b::c000:201"})
    EXPECT_EQ(from_sockaddr_v6(text, 0).family, AF_INET6) << text;
}

TEST(Endpoint, FromSockaddrUnknownFamily) {
  sockaddr_storage ss{};
  ss.ss_family = AF_UNIX;
  EXPECT_FALSE(Endpoint::from_sockaddr(reinterpret_cast<const sockaddr*>(&ss)).valid());
}

TEST(Endpoint, ToSockaddrV4OnV4Socket) {
  auto ep = Endpoint::parse("192.0.2.1:51820");
  ASSERT_TRUE(ep.has_value());
  sockaddr_storage ss;
  std::memset(&ss, 0xa5, sizeof(ss));
  ASSERT_EQ(ep->to_sockaddr(ss, false), sizeof(sockaddr_in));
  const auto* in = reinterpret_cast<const sockaddr_in*>(&ss);
  EXPECT_EQ(in->sin_family, AF_INET);
  EXPECT_EQ(ntohs(in->sin_port), 51820);
  char buf[INET_ADDRSTRLEN];
  EXPECT_STREQ(inet_ntop(AF_INET, &in->sin_addr, buf, sizeof(buf)), "192.0.2.1");
  const uint8_t zeros[sizeof(in->sin_zero)] = {};
  EXPECT_EQ(std::memcmp(in->sin_zero, zeros, sizeof(zeros)), 0);
}

TEST(Endpoint, ToSockaddrV4OnV6SocketIsMapped) {
  auto ep = Endpoint::parse("192.0.2.1:51820");
  ASSERT_TRUE(ep.has_value());
  sockaddr_storage ss;
  std::memset(&ss, 0xa5, sizeof(ss));
  ASSERT_EQ(ep->to_sockaddr(ss, true), sizeof(sockaddr_in6));
  const auto* in6 = reinterpret_cast<const sockaddr_in6*>(&ss);
  EXPECT_EQ(in6->sin6_family, AF_INET6);
  EXPECT_EQ(ntohs(in6->sin6_port), 51820);
  EXPECT_TRUE(IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr));
  char buf[INET6_ADDRSTRLEN];
  EXPECT_STREQ(inet_ntop(AF_INET6, &in6->sin6_addr, buf, sizeof(buf)), "::ffff:192.0.2.1");
  EXPECT_EQ(in6->sin6_flowinfo, 0u);
  EXPECT_EQ(in6->sin6_scope_id, 0u);
  // And back: the mapped form comes home as AF_INET.
  EXPECT_EQ(Endpoint::from_sockaddr(reinterpret_cast<const sockaddr*>(&ss)), *ep);
}

TEST(Endpoint, ToSockaddrV6EitherWay) {
  auto ep = Endpoint::parse("[2001:db8::9]:7");
  ASSERT_TRUE(ep.has_value());
  for (bool v6_socket : {false, true}) {
    sockaddr_storage ss;
    std::memset(&ss, 0xa5, sizeof(ss));
    ASSERT_EQ(ep->to_sockaddr(ss, v6_socket), sizeof(sockaddr_in6));
    const auto* in6 = reinterpret_cast<const sockaddr_in6*>(&ss);
    EXPECT_EQ(in6->sin6_family, AF_INET6);
    EXPECT_EQ(ntohs(in6->sin6_port), 7);
    EXPECT_EQ(in6->sin6_flowinfo, 0u);
    EXPECT_EQ(in6->sin6_scope_id, 0u);
    EXPECT_EQ(Endpoint::from_sockaddr(reinterpret_cast<const sockaddr*>(&ss)), *ep);
  }
}

TEST(Endpoint, SockaddrRoundTrip) {
  for (const char* text : {"10.0.0.1:1", "0.0.0.0:0", "[::1]:2", "[fd00::1:2]:65535"}) {
    auto ep = Endpoint::parse(text);
    ASSERT_TRUE(ep.has_value()) << text;
    for (bool v6_socket : {false, true}) {
      sockaddr_storage ss;
      ep->to_sockaddr(ss, v6_socket);
      EXPECT_EQ(Endpoint::from_sockaddr(reinterpret_cast<const sockaddr*>(&ss)), *ep)
          << text << (v6_socket ? " via v6 socket" : "");
    }
  }
}

// A v4-mapped endpoint from configuration equals the same endpoint seen on a
// received packet (from_sockaddr() folds it to AF_INET too).
TEST(Endpoint, ParseV4MappedIsV4) {
  auto ep = Endpoint::parse("[::ffff:192.0.2.1]:51820");
  ASSERT_TRUE(ep.has_value());
  EXPECT_EQ(ep->family, AF_INET);
  EXPECT_EQ(ep, Endpoint::parse("192.0.2.1:51820"));
}

// ---- Prefix ----

TEST(Prefix, ParseFormatRoundTrip) {
  for (const std::string text : {
           "10.0.0.0/8",
           "0.0.0.0/0",
           "192.0.2.1/32",
           "192.0.2.128/25",
           "fd00::/64",
           "::/0",
           "2001:db8::1/128",
           "2001:db8:8000::/33",
           "::ffff:10.0.0.0/104",
       }) {
    auto p = Prefix::parse(text);
    ASSERT_TRUE(p.has_value()) << text;
    EXPECT_EQ(p->to_string(), text);
    EXPECT_EQ(Prefix::parse(p->to_string()), p) << text;
  }
}

TEST(Prefix, BareAddressIsHostPrefix) {
  auto v4 = Prefix::parse("192.0.2.7");
  ASSERT_TRUE(v4.has_value());
  EXPECT_EQ(v4->family, AF_INET);
  EXPECT_EQ(v4->cidr, 32);
  EXPECT_EQ(v4, Prefix::parse("192.0.2.7/32"));

  auto v6 = Prefix::parse("fd00::7");
  ASSERT_TRUE(v6.has_value());
  EXPECT_EQ(v6->family, AF_INET6);
  EXPECT_EQ(v6->cidr, 128);
  EXPECT_EQ(v6, Prefix::parse("fd00::7/128"));
}

TEST(Prefix, V4MappedPrefixStaysV6) {
  // Allowed IPs keep the families apart: ::ffff:10.0.0.0/104 is an IPv6 prefix.
  auto p = Prefix::parse("::ffff:10.0.0.0/104");
  ASSERT_TRUE(p.has_value());
  EXPECT_EQ(p->family, AF_INET6);
  EXPECT_EQ(p->max_cidr(), 128);
}

struct MaskCase {
  const char* in;
  const char* out;
};

TEST(Prefix, ParseMasks) {
  for (const MaskCase& c : std::vector<MaskCase>{
           {"10.1.2.3/8", "10.0.0.0/8"},
           {"10.1.2.3/20", "10.1.0.0/20"},
           {"10.1.255.3/23", "10.1.254.0/23"},
           {"255.255.255.255/0", "0.0.0.0/0"},
           {"255.255.255.255/1", "128.0.0.0/1"},
           {"255.255.255.255/31", "255.255.255.254/31"},
           {"255.255.255.255/32", "255.255.255.255/32"},
           {"2001:db8:ffff::1/33", "2001:db8:8000::/33"},
           {"2001:db8::1/64", "2001:db8::/64"},
           {"ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/0", "::/0"},
           {"ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/65", "ffff:ffff:ffff:ffff:8000::/65"},
           {"ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/127",
            "ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe/127"},
       }) {
    auto p = Prefix::parse(c.in);
    ASSERT_TRUE(p.has_value()) << c.in;
    EXPECT_EQ(p->to_string(), c.out) << c.in;
  }
}

TEST(Prefix, MaskedClearsEveryBitPastCidr) {
  for (uint8_t cidr = 0; cidr <= 128; ++cidr) {
    Prefix p;
    p.family = AF_INET6;
    p.cidr = cidr;
    p.addr.fill(0xff);
    Prefix m = p.masked();
    EXPECT_EQ(m.cidr, cidr);
    EXPECT_EQ(m.family, AF_INET6);
    for (unsigned bit = 0; bit < 128; ++bit) {
      const bool set = (m.addr[bit / 8] >> (7 - bit % 8)) & 1;
      ASSERT_EQ(set, bit < cidr) << "cidr " << int{cidr} << " bit " << bit;
    }
  }
  for (uint8_t cidr = 0; cidr <= 32; ++cidr) {
    Prefix p;
    p.family = AF_INET;
    p.cidr = cidr;
    p.addr.fill(0xff);  // including the 12 bytes an IPv4 prefix does not use
    Prefix m = p.masked();
    for (unsigned bit = 0; bit < 128; ++bit) {
      const bool set = (m.addr[bit / 8] >> (7 - bit % 8)) & 1;
      ASSERT_EQ(set, bit < cidr) << "cidr " << int{cidr} << " bit " << bit;
    }
  }
}

TEST(Prefix, MaskedIsIdempotent) {
  auto p = Prefix::parse("10.1.2.3/12");
  ASSERT_TRUE(p.has_value());
  EXPECT_EQ(p->masked(), *p);
}

TEST(Prefix, ParseRejects) {
  for (const std::string text : {
           "",
           "/8",
           "10.0.0.0/",
           "10.0.0.0/33",
           "10.0.0.0/-1",
           "10.0.0.0/+8",
           "10.0.0.0/ 8",
           "10.0.0.0/8 ",
           "10.0.0.0/8x",
           "10.0.0.0/8/8",
           "10.0.0.0/99999999999",
           "10.0.0/8",
           "10.0.0.256/32",
           " 10.0.0.0/8",
           "fd00::/129",
           "fd00::/",
           "fd00:::/64",
           "[fd00::]/64",
           "fd00::1%eth0/128",
           "example.com/32",
       }) {
    EXPECT_FALSE(Prefix::parse(text).has_value()) << text;
  }
}

TEST(Prefix, MaxCidr) {
  Prefix v4;
  v4.family = AF_INET;
  EXPECT_EQ(v4.max_cidr(), 32);
  Prefix v6;
  v6.family = AF_INET6;
  EXPECT_EQ(v6.max_cidr(), 128);
}

TEST(Prefix, EqualityIncludesFamilyAndCidr) {
  EXPECT_NE(Prefix::parse("10.0.0.0/8"), Prefix::parse("10.0.0.0/9"));
  EXPECT_NE(Prefix::parse("0.0.0.0/0"), Prefix::parse("::/0"));
  EXPECT_EQ(Prefix::parse("10.1.2.3/8"), Prefix::parse("10.0.0.0/8"));
}

}  // namespace
}  // namespace faraday::dataplane
