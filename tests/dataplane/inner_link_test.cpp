// inner_link_test.cpp: the L2 side of a TAP faradayd keeps (inner_link.h). The
// host's frames are built with underlay.h's builders, as the host's kernel
// would send them, and the answers are classified as the host would: an ARP
// request or neighbour solicitation for any mesh address gets our MAC
// address; the host's own questions about itself (gratuitous ARP, ARP probes,
// duplicate address detection) get none; IP packets to us are handed on,
// everything else is dropped for its reason.
#include "dataplane/inner_link.h"

#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "dataplane/inet.h"

namespace faraday::dataplane {
namespace {

using Bytes = std::vector<uint8_t>;

const MacAddress kOurs = {0x02, 0xfa, 0, 0, 0, 1};
const MacAddress kHost = {0x02, 0x11, 0, 0, 0, 2};

// The host: 10.100.0.1 and fd00:100::1 on the TAP.
UnderlayAddress host(std::array<uint8_t, 4> ip4 = {10, 100, 0, 1},
                     std::array<uint8_t, 16> ip6 = {0xfd, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
                                                    1}) {
  UnderlayAddress h;
  h.mac = kHost;
  h.v4 = UnderlayAddress::V4{ip4, 24, std::nullopt};
  h.v6 = UnderlayAddress::V6{ip6, 64, std::nullopt};
  return h;
}

const std::array<uint8_t, 4> kPeer4 = {10, 100, 0, 2};
const std::array<uint8_t, 16> kPeer6 = {0xfd, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2};

struct Received {
  InnerLink::Rx rx;
  Bytes answer;
};

Received receive(InnerLink& link, const Bytes& frame) {
  std::array<uint8_t, InnerLink::kControlFrameSize> answer{};
  size_t length = 0;
  InnerLink::Rx rx = link.receive(frame, answer, length);
  return {rx, Bytes(answer.begin(), answer.begin() + static_cast<std::ptrdiff_t>(length))};
}

Bytes arp_request(const UnderlayAddress& from, const std::array<uint8_t, 4>& target) {
  Bytes out(128);
  out.resize(build_arp_request(out, from, target));
  EXPECT_FALSE(out.empty());
  return out;
}

Bytes solicitation(const UnderlayAddress& from, const std::array<uint8_t, 16>& target) {
  Bytes out(128);
  out.resize(build_neighbor_solicit(out, from, target));
  EXPECT_FALSE(out.empty());
  return out;
}

// An IP packet from the host as a frame: Ethernet to `to`, then `version` in
// the first nibble and some bytes.
Bytes ip_frame(const MacAddress& to, uint16_t type, uint8_t version, size_t length = 60) {
  Bytes f(kEthernetHeader + length, 0x5a);
  std::memcpy(f.data(), to.data(), 6);
  std::memcpy(f.data() + 6, kHost.data(), 6);
  inet::store_be16(f.data() + 12, type);
  if (length > 0) f[kEthernetHeader] = static_cast<uint8_t>(version << 4 | 5);
  return f;
}

TEST(InnerLink, ArpForAnyMeshAddressIsAnsweredWithOurMac) {
  InnerLink link(kOurs, MacAddress{});
  for (const std::array<uint8_t, 4>& target :
       {kPeer4, std::array<uint8_t, 4>{10, 100, 0, 77}, std::array<uint8_t, 4>{10, 201, 3, 4}}) {
    Received r = receive(link, arp_request(host(), target));
    ASSERT_EQ(r.rx, InnerLink::Rx::kAnswer);
    // What the host makes of the answer: a reply from `target` at our MAC.
    UnderlayAddress asker = host();
    Result<Frame, FrameDrop> f = classify_frame(r.answer, asker);
    ASSERT_TRUE(f) << frame_drop_name(f.failure());
    EXPECT_EQ(f->kind, Frame::Kind::kArpReply);
    EXPECT_EQ(f->neighbor_mac, kOurs);
    EXPECT_EQ(0, std::memcmp(f->neighbor_ip.data(), target.data(), 4));
  }
  EXPECT_EQ(link.counters().answers, 3u);
  EXPECT_EQ(link.host(), kHost);  // learnt from the requests
}

TEST(InnerLink, SolicitationForAMeshAddressIsAnsweredWithOurMac) {
  InnerLink link(kOurs, kHost);
  Received r = receive(link, solicitation(host(), kPeer6));
  ASSERT_EQ(r.rx, InnerLink::Rx::kAnswer);
  Result<Frame, FrameDrop> f = classify_frame(r.answer, host());
  ASSERT_TRUE(f) << frame_drop_name(f.failure());
  EXPECT_EQ(f->kind, Frame::Kind::kAdvertisement);
  EXPECT_EQ(f->neighbor_mac, kOurs);
  EXPECT_EQ(f->neighbor_ip, kPeer6);
  EXPECT_EQ(link.counters().answers, 1u);
}

TEST(InnerLink, TheHostsQuestionsAboutItselfGetNoAnswer) {
  InnerLink link(kOurs, kHost);
  // Gratuitous ARP (sender = target), an ARP probe (sender 0.0.0.0, RFC 5227)
  // and duplicate address detection (an NS from ::): answering any of them
  // would tell the host its own address is taken.
  EXPECT_EQ(receive(link, arp_request(host(), {10, 100, 0, 1})).rx, InnerLink::Rx::kDropped);
  EXPECT_EQ(receive(link, arp_request(host({0, 0, 0, 0}), kPeer4)).rx, InnerLink::Rx::kDropped);
  EXPECT_EQ(receive(link, solicitation(host({10, 100, 0, 1}, {}), host().v6->addr)).rx,
            InnerLink::Rx::kDropped);
  EXPECT_EQ(link.counters().ignored, 3u);
  EXPECT_EQ(link.counters().answers, 0u);
}

TEST(InnerLink, IpPacketsToUsAreHandedOnAndTheHostIsLearnt) {
  InnerLink link(kOurs, MacAddress{});
  EXPECT_EQ(receive(link, ip_frame(kOurs, kEtherIpv4, 4)).rx, InnerLink::Rx::kPacket);
  EXPECT_EQ(receive(link, ip_frame(kOurs, kEtherIpv6, 6)).rx, InnerLink::Rx::kPacket);
  EXPECT_EQ(link.counters().packets, 2u);
  EXPECT_EQ(link.host(), kHost);
}

TEST(InnerLink, EverythingElseIsDroppedForItsReason) {
  InnerLink link(kOurs, kHost);
  auto dropped = [&](const Bytes& f, FrameDrop reason) {
    const uint64_t before = link.counters().dropped(reason);
    EXPECT_EQ(receive(link, f).rx, InnerLink::Rx::kDropped);
    EXPECT_EQ(link.counters().dropped(reason), before + 1) << frame_drop_name(reason);
  };
  const MacAddress mld_group = {0x33, 0x33, 0, 0, 0, 0x16};
  dropped(ip_frame(mld_group, kEtherIpv6, 6), FrameDrop::kNotForUs);  // MLD, RS, mDNS
  dropped(ip_frame(kHost, kEtherIpv4, 4), FrameDrop::kNotForUs);      // another MAC
  dropped(ip_frame(kOurs, kEtherIpv4, 6), FrameDrop::kBadIpHeader);   // version vs type
  dropped(ip_frame(kOurs, kEtherIpv6, 4), FrameDrop::kBadIpHeader);
  dropped(ip_frame(kOurs, kEtherIpv4, 4, 0), FrameDrop::kBadIpHeader);  // no IP byte at all
  dropped(ip_frame(kOurs, 0x8100, 4), FrameDrop::kUnsupported);         // a VLAN tag
  dropped(Bytes(kEthernetHeader - 1, 0), FrameDrop::kTruncated);
  Bytes arp = arp_request(host(), kPeer4);
  arp.resize(kEthernetHeader + 20);
  dropped(arp, FrameDrop::kTruncated);
  Bytes ns = solicitation(host(), kPeer6);
  ns[ns.size() - 1] ^= 0x01;  // the checksum no longer holds
  dropped(ns, FrameDrop::kBadNd);
  EXPECT_EQ(link.counters().answers, 0u);
  EXPECT_EQ(link.counters().packets, 0u);
}

TEST(InnerLink, HeadersToTheHostCarryTheVersionsEtherType) {
  InnerLink link(kOurs, kHost);
  std::array<uint8_t, kEthernetHeader> h{};
  ASSERT_TRUE(link.write_header(h.data(), 0x45));
  EXPECT_EQ(0, std::memcmp(h.data(), kHost.data(), 6));
  EXPECT_EQ(0, std::memcmp(h.data() + 6, kOurs.data(), 6));
  EXPECT_EQ(inet::load_be16(h.data() + 12), kEtherIpv4);
  ASSERT_TRUE(link.write_header(h.data(), 0x60));
  EXPECT_EQ(inet::load_be16(h.data() + 12), kEtherIpv6);
  EXPECT_FALSE(link.write_header(h.data(), 0x15));
}

TEST(InnerLink, AnUnknownHostIsReachedByBroadcastUntilItsFirstFrame) {
  InnerLink link(kOurs, MacAddress{});  // a vhost-user application, not heard from yet
  std::array<uint8_t, kEthernetHeader> h{};
  ASSERT_TRUE(link.write_header(h.data(), 0x45));
  const MacAddress broadcast = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
  EXPECT_EQ(0, std::memcmp(h.data(), broadcast.data(), 6));
  EXPECT_EQ(receive(link, ip_frame(kOurs, kEtherIpv4, 4)).rx, InnerLink::Rx::kPacket);
  ASSERT_TRUE(link.write_header(h.data(), 0x45));
  EXPECT_EQ(0, std::memcmp(h.data(), kHost.data(), 6));
}

// Two lcores' links on one vhost-user socket: the application sends on one
// queue pair only, yet the other link's frames go to it; and when a new
// application comes with a new address, heard on the other pair, both follow.
TEST(InnerLink, LinksThatShareTheHostWriteWhatAnyOfThemLastHeard) {
  std::atomic<uint64_t> learnt{0};
  InnerLink heard(kOurs, MacAddress{}), silent(kOurs, MacAddress{});
  heard.share_host(&learnt);
  silent.share_host(&learnt);
  EXPECT_EQ(silent.host(), MacAddress{});
  EXPECT_EQ(receive(heard, ip_frame(kOurs, kEtherIpv4, 4)).rx, InnerLink::Rx::kPacket);
  std::array<uint8_t, kEthernetHeader> h{};
  ASSERT_TRUE(silent.write_header(h.data(), 0x45));
  EXPECT_EQ(0, std::memcmp(h.data(), kHost.data(), 6));

  Bytes from_new = ip_frame(kOurs, kEtherIpv4, 4);
  const MacAddress kNew = {0x02, 0x22, 0, 0, 0, 3};
  std::memcpy(from_new.data() + 6, kNew.data(), 6);
  EXPECT_EQ(receive(silent, from_new).rx, InnerLink::Rx::kPacket);
  ASSERT_TRUE(heard.write_header(h.data(), 0x60));
  EXPECT_EQ(0, std::memcmp(h.data(), kNew.data(), 6));
  EXPECT_EQ(heard.host(), kNew);
  // A link on its own keeps to what it heard itself.
  InnerLink alone(kOurs, kHost);
  EXPECT_EQ(receive(alone, from_new).rx, InnerLink::Rx::kPacket);
  EXPECT_EQ(alone.host(), kNew);
  EXPECT_EQ(silent.host(), kNew);
}

}  // namespace
}  // namespace faraday::dataplane
