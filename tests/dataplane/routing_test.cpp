// The sans-IO core, end to end over the two-device harness (harness.h): endpoint
// roaming from authenticated packets only, cryptokey routing on send and receive,
// and malformed datagrams of every type, each dropped and counted by reason with
// nothing else changed.
#include <gtest/gtest.h>

#include <ostream>
#include <string>
#include <vector>

#include "tests/dataplane/harness.h"

namespace faraday::dataplane {
namespace {

using namespace testing;  // the two-device harness (harness.h)

// ------------------------------------------------------------------ roaming

TEST(Roaming, AuthenticatedPacketsMoveTheEndpoint) {
  Network net;
  net.establish();
  net.move(net.b, "10.0.0.99:2002");
  Bytes from_b = ipv4_packet(kTunB4, kTunA4, 60, 1);
  net.send(net.b, from_b);
  net.pump();
  ASSERT_EQ(net.a.tunnel.size(), 1u);
  EXPECT_EQ(net.peer_of(net.a)->endpoint, net.b.source);

  Bytes from_a = ipv4_packet(kTunA4, kTunB4, 60, 2);
  EXPECT_EQ(net.send(net.a, from_a), Verdict::kPass);
  EXPECT_EQ(net.log.back().datagram.destination, net.b.source);
  net.pump();
  ASSERT_EQ(net.b.tunnel.size(), 1u);
  EXPECT_EQ(net.b.tunnel[0], from_a);
  EXPECT_TRUE(net.lost.empty());

  // Also through a handshake: b moves again and rekeys from the new address
  // (after the 5 s that b's own response holds back an initiation).
  net.clock.advance(kRekeyTimeout);
  net.move(net.b, "[2001:db8::2]:3003");
  net.peer_of(net.b)->current->send_counter = kRekeyAfterMessages;
  net.send(net.b, from_b);
  net.pump();
  EXPECT_EQ(net.sent(net.b, MessageType::kInitiation), 1u);
  EXPECT_EQ(net.peer_of(net.a)->endpoint, net.b.source);
  EXPECT_TRUE(net.lost.empty());
}

TEST(Roaming, ForgedPacketsDoNotMoveTheEndpoint) {
  Network net;
  net.establish();
  Peer* pa = net.peer_of(net.a);
  const Endpoint attacker = testing::endpoint("10.6.6.6:666");

  // A transport packet with b's valid receiver index but a bad tag.
  Datagram forged{
      craft_transport(*net.peer_of(net.b)->current, 77, ipv4_packet(kTunB4, kTunA4, 40)), attacker,
      net.a.source};
  forged.bytes[40] ^= 1;
  EXPECT_EQ(net.receive(net.a, forged), Verdict::kDrop);
  EXPECT_EQ(net.a.dropped(Drop::kDecryptFailed), 1u);
  EXPECT_EQ(pa->endpoint, net.b.source);

  // Garbage with a valid index and a keepalive's size.
  Datagram short_forged = forged;
  short_forged.bytes.resize(32);
  EXPECT_EQ(net.receive(net.a, short_forged), Verdict::kDrop);
  EXPECT_EQ(net.a.dropped(Drop::kDecryptFailed), 2u);
  EXPECT_EQ(pa->endpoint, net.b.source);

  // The same packet unmodified does authenticate, and does move it.
  forged.bytes[40] ^= 1;
  EXPECT_EQ(net.receive(net.a, forged), Verdict::kPass);
  EXPECT_EQ(pa->endpoint, attacker);
}

// ------------------------------------------------------------------ cryptokey routing

struct SourceCase {
  const char* name;
  bool v6;
  const char* src;
};

class SourceNotAllowed : public ::testing::TestWithParam<SourceCase> {};

TEST_P(SourceNotAllowed, Dropped) {
  const SourceCase& c = GetParam();
  Network net;
  // A third peer at b owns 192.168.0.3 and fd00::3.
  crypto::Key third = crypto::x25519_public(crypto::x25519_generate_private());
  Peer* pc = net.b.device.add_peer(third);
  net.b.device.add_allowed_ip(*pc, testing::prefix("192.168.0.3/32"));
  net.b.device.add_allowed_ip(*pc, testing::prefix("fd00::3/128"));
  net.establish();

  // a routes by destination only, so it encrypts whatever source it is given.
  Bytes pkt = c.v6 ? ipv6_packet(c.src, kTunB6, 80) : ipv4_packet(c.src, kTunB4, 80);
  EXPECT_EQ(net.send(net.a, pkt), Verdict::kPass);
  Counters before = net.b.counters();
  net.pump();
  EXPECT_TRUE(net.b.tunnel.empty());
  EXPECT_EQ(net.b.dropped(Drop::kSourceNotAllowed), 1u) << drop_changes(before, net.b.counters());
  EXPECT_EQ(net.b.counters().dropped_total(), 1u) << drop_changes(before, net.b.counters());
}

INSTANTIATE_TEST_SUITE_P(Core, SourceNotAllowed,
                         ::testing::Values(SourceCase{"v4_unknown", false, "192.168.7.7"},
                                           SourceCase{"v4_other_peer", false, "192.168.0.3"},
                                           SourceCase{"v4_receiver_itself", false, "192.168.0.2"},
                                           SourceCase{"v6_unknown", true, "fd00::77"},
                                           SourceCase{"v6_other_peer", true, "fd00::3"},
                                           SourceCase{"v4_mapped", true, "::ffff:192.168.0.1"}),
                         [](const auto& info) { return std::string(info.param.name); });

struct SendDropCase {
  const char* name;
  Bytes packet;
  Drop reason;
};

TEST(Routing, UnsendablePacketsAreCounted) {
  Network net;
  net.establish();
  std::vector<SendDropCase> cases = {
      {"v4_no_route", ipv4_packet(kTunA4, "192.168.9.9", 60), Drop::kNoRoute},
      {"v6_no_route", ipv6_packet(kTunA6, "fd00::9", 60), Drop::kNoRoute},
      {"v4_own_address", ipv4_packet(kTunA4, kTunA4, 60), Drop::kNoRoute},
      {"v6_to_v4_mapped_peer", ipv6_packet(kTunA6, "::ffff:192.168.0.2", 60), Drop::kNoRoute},
      {"empty", Bytes{}, Drop::kBadInnerPacket},
      {"version_5", Bytes(40, 0x50), Drop::kBadInnerPacket},
      {"v4_truncated", Bytes{0x45, 0, 0, 20}, Drop::kBadInnerPacket},
      {"v4_length_past_buffer",
       [] {
         Bytes p = ipv4_packet(kTunA4, kTunB4, 60);
         p[3] = 61;
         return p;
       }(),
       Drop::kBadInnerPacket},
      {"v6_length_past_buffer",
       [] {
         Bytes p = ipv6_packet(kTunA6, kTunB6, 60);
         p[5] = 21;
         return p;
       }(),
       Drop::kBadInnerPacket},
  };
  for (const SendDropCase& c : cases) {
    SCOPED_TRACE(c.name);
    Counters before = net.a.counters();
    size_t sent = net.log.size();
    EXPECT_EQ(net.send(net.a, c.packet), Verdict::kDrop);
    EXPECT_EQ(net.a.dropped(c.reason), before.dropped(c.reason) + 1)
        << drop_changes(before, net.a.counters());
    EXPECT_EQ(net.a.counters().dropped_total(), before.dropped_total() + 1);
    EXPECT_EQ(net.log.size(), sent);
    EXPECT_EQ(net.a.counters().tx_data, before.tx_data);
  }
}

TEST(Routing, PeerWithoutEndpoint) {
  Network net;
  net.a.device.set_endpoint(*net.peer_of(net.a), Endpoint{});
  EXPECT_EQ(net.send(net.a, ipv4_packet(kTunA4, kTunB4, 60)), Verdict::kDrop);
  EXPECT_EQ(net.a.dropped(Drop::kNoEndpoint), 1u);
  EXPECT_TRUE(net.log.empty());
}

// ------------------------------------------------------------------ malformed datagrams

struct MalformedCase {
  std::string name;
  Bytes bytes;
  Drop reason;
  // Encrypted with the real session key: it authenticates, so it comes from
  // b's address (an authenticated packet may move the endpoint) and touches
  // the timers and byte counts as any authenticated packet does.
  bool authentic = false;
};

Bytes with_type(uint32_t type, size_t size, uint8_t fill = 0x42) {
  Bytes b(size, fill);
  if (size >= 4) store_le32(b.data(), type);
  return b;
}

// A handshake message of type M filled with garbage but a valid mac1 for `to`.
template <typename M>
Bytes garbage_with_mac1(uint32_t type, const crypto::Key& to, Nanos now) {
  Bytes b = with_type(type, sizeof(M), 0x24);
  CookieMaker maker;
  maker.set_peer_public_key(to);
  maker.add_macs(b, mac1_offset<M>(), now);
  return b;
}

std::vector<MalformedCase> malformed_cases(Network& net) {
  const Keypair& b_kp = *net.peer_of(net.b)->current;  // what a receives on
  const Keypair& a_kp = *net.peer_of(net.a)->current;
  const Nanos now = net.clock.monotonic();
  auto transport = [&](uint32_t receiver, size_t size) {
    Bytes b = with_type(4, size);
    store_le32(b.data() + 4, receiver);
    return b;
  };
  auto reserved = [](uint32_t type, size_t size, int byte) {
    Bytes b = with_type(type, size);
    b[byte] = 1;
    return b;
  };
  std::vector<MalformedCase> c = {
      {"empty", {}, Drop::kTooShort},
      {"one_byte", {1}, Drop::kTooShort},
      {"three_bytes", {4, 0, 0}, Drop::kTooShort},
      {"type0", with_type(0, 148), Drop::kUnknownType},
      {"type5", with_type(5, 148), Drop::kUnknownType},
      {"type255", with_type(255, 64), Drop::kUnknownType},
      {"type_max", with_type(0xffffffff, 64), Drop::kUnknownType},
      {"initiation_reserved1", reserved(1, 148, 1), Drop::kUnknownType},
      {"initiation_reserved3", reserved(1, 148, 3), Drop::kUnknownType},
      {"response_reserved2", reserved(2, 92, 2), Drop::kUnknownType},
      {"cookie_reserved1", reserved(3, 64, 1), Drop::kUnknownType},
      {"transport_reserved1", reserved(4, 64, 1), Drop::kUnknownType},
      {"transport_reserved3", reserved(4, 32, 3), Drop::kUnknownType},
      {"initiation_type_only", with_type(1, 4), Drop::kBadSize},
      {"initiation_short", with_type(1, 147), Drop::kBadSize},
      {"initiation_long", with_type(1, 149), Drop::kBadSize},
      {"initiation_huge", with_type(1, 65535), Drop::kBadSize},
      {"response_short", with_type(2, 91), Drop::kBadSize},
      {"response_long", with_type(2, 93), Drop::kBadSize},
      {"response_as_initiation", with_type(2, 148), Drop::kBadSize},
      {"cookie_short", with_type(3, 63), Drop::kBadSize},
      {"cookie_long", with_type(3, 65), Drop::kBadSize},
      {"transport_type_only", with_type(4, 4), Drop::kTooShort},
      {"transport_header_only", transport(a_kp.local_index, 16), Drop::kTooShort},
      {"transport_31", transport(a_kp.local_index, 31), Drop::kTooShort},
      {"initiation_bad_mac1", with_type(1, 148), Drop::kBadMac1},
      {"response_bad_mac1", with_type(2, 92), Drop::kBadMac1},
      {"initiation_garbage", garbage_with_mac1<MessageInitiation>(1, net.a.public_key, now),
       Drop::kHandshakeDecrypt},
      {"response_unknown_receiver", garbage_with_mac1<MessageResponse>(2, net.a.public_key, now),
       Drop::kUnexpectedResponse},
      {"cookie_unknown_receiver", with_type(3, 64), Drop::kUnexpectedResponse},
      {"transport_unknown_index", transport(a_kp.local_index ^ 0x5a5a5a5a, 64),
       Drop::kUnknownIndex},
      {"transport_keepalive_garbage", transport(a_kp.local_index, 32), Drop::kDecryptFailed},
      {"transport_garbage", transport(a_kp.local_index, 100), Drop::kDecryptFailed},
      {"transport_oversized", transport(a_kp.local_index, kMaxDatagram), Drop::kDecryptFailed},
      {"transport_counter_limit", craft_transport(b_kp, kRejectAfterMessages, {}),
       Drop::kKeypairExpired},
      {"inner_not_ip", craft_transport(b_kp, 500, Bytes(64, 0x77)), Drop::kBadInnerPacket, true},
      {"inner_truncated_v4", craft_transport(b_kp, 501, Bytes{0x45, 0, 0, 20, 0, 0, 0, 0}),
       Drop::kBadInnerPacket, true},
      {"inner_v4_length_past_payload",
       craft_transport(b_kp, 502,
                       [] {
                         Bytes p = ipv4_packet(kTunB4, kTunA4, 48);
                         p[3] = 49;
                         return p;
                       }()),
       Drop::kBadInnerPacket, true},
      {"inner_v6_truncated", craft_transport(b_kp, 503, Bytes(39, 0x60)), Drop::kBadInnerPacket,
       true},
  };
  return c;
}

TEST(Malformed, EachCountedByReasonAndNothingElseChanges) {
  Network net;
  net.establish();
  Peer* pa = net.peer_of(net.a);
  const Endpoint attacker = testing::endpoint("10.6.6.6:666");
  for (const MalformedCase& c : malformed_cases(net)) {
    SCOPED_TRACE(c.name);
    Counters before = net.a.counters();
    Keypair* current = pa->current.get();
    Keypair* previous = pa->previous.get();
    uint64_t rx_bytes = pa->rx_bytes;
    size_t sent = net.log.size();
    size_t delivered = net.a.tunnel.size();
    Nanos deadline = net.a.device.next_deadline();

    const Endpoint& source = c.authentic ? net.b.source : attacker;
    EXPECT_EQ(net.receive(net.a, Datagram{c.bytes, source, net.a.source}), Verdict::kDrop);

    const Counters& after = net.a.counters();
    EXPECT_EQ(after.dropped(c.reason), before.dropped(c.reason) + 1) << drop_changes(before, after);
    EXPECT_EQ(after.dropped_total(), before.dropped_total() + 1) << drop_changes(before, after);
    EXPECT_EQ(after.rx_datagrams, before.rx_datagrams + 1);
    EXPECT_EQ(after.rx_data, before.rx_data);
    EXPECT_EQ(after.handshakes_completed, before.handshakes_completed);
    EXPECT_EQ(after.cookies_sent, before.cookies_sent);
    EXPECT_EQ(pa->current.get(), current);
    EXPECT_EQ(pa->previous.get(), previous);
    EXPECT_EQ(pa->next, nullptr);
    EXPECT_EQ(pa->endpoint, net.b.source);
    EXPECT_EQ(net.log.size(), sent);
    EXPECT_EQ(net.a.tunnel.size(), delivered);
    if (!c.authentic) {
      EXPECT_EQ(pa->rx_bytes, rx_bytes);
      EXPECT_EQ(net.a.device.next_deadline(), deadline);
    }
  }
  // All of them in one burst, between two real packets: the real ones pass.
  std::vector<Datagram> burst = net.send_held(net.b, ipv4_packet(kTunB4, kTunA4, 60, 1));
  for (const MalformedCase& c : malformed_cases(net))
    burst.push_back({c.bytes, c.authentic ? net.b.source : attacker, {}});
  for (Datagram& d : net.send_held(net.b, ipv4_packet(kTunB4, kTunA4, 60, 2)))
    burst.push_back(std::move(d));
  std::vector<Verdict> verdicts = net.receive(net.a, burst);
  EXPECT_EQ(verdicts.front(), Verdict::kPass);
  EXPECT_EQ(verdicts.back(), Verdict::kPass);
  EXPECT_EQ(net.a.tunnel.size(), 2u);

  // The session still works both ways.
  net.a.tunnel.clear();
  Bytes ab = ipv4_packet(kTunA4, kTunB4, 60, 3), ba = ipv6_packet(kTunB6, kTunA6, 60, 4);
  EXPECT_EQ(net.send(net.a, ab), Verdict::kPass);
  EXPECT_EQ(net.send(net.b, ba), Verdict::kPass);
  net.pump();
  EXPECT_EQ(net.b.tunnel, std::vector<Bytes>{ab});
  EXPECT_EQ(net.a.tunnel, std::vector<Bytes>{ba});
  EXPECT_EQ(net.a.counters().handshakes_completed, 1u);
}

// Handshake messages aimed at a handshake in flight, authentic mac1 but wrong
// content, must not disturb it: the real response still completes it.
TEST(Malformed, ForgedResponseDoesNotDisturbHandshakeInFlight) {
  Network net;
  std::vector<Datagram> held = net.send_held(net.a, ipv4_packet(kTunA4, kTunB4, 60));
  ASSERT_EQ(held.size(), 1u);
  uint32_t a_index = load_le32(held[0].bytes.data() + 4);
  net.receive(net.b, held[0]);  // b answers; the response is now on the wire

  Bytes forged = garbage_with_mac1<MessageResponse>(2, net.a.public_key, net.clock.monotonic());
  store_le32(forged.data() + 8, a_index);
  CookieMaker maker;
  maker.set_peer_public_key(net.a.public_key);
  maker.add_macs(forged, mac1_offset<MessageResponse>(), net.clock.monotonic());
  EXPECT_EQ(net.receive(net.a, Datagram{forged, testing::endpoint("10.6.6.6:666"), {}}),
            Verdict::kDrop);
  EXPECT_EQ(net.a.dropped(Drop::kHandshakeDecrypt), 1u) << drop_changes({}, net.a.counters());
  Bytes bad_cookie = with_type(3, 64);
  store_le32(bad_cookie.data() + 4, a_index);
  EXPECT_EQ(net.receive(net.a, Datagram{bad_cookie, testing::endpoint("10.6.6.6:666"), {}}),
            Verdict::kDrop);
  EXPECT_EQ(net.a.dropped(Drop::kBadCookieReply), 1u) << drop_changes({}, net.a.counters());
  EXPECT_EQ(net.peer_of(net.a)->endpoint, net.b.source);

  net.pump();
  EXPECT_EQ(net.b.tunnel.size(), 1u);
  EXPECT_EQ(net.a.counters().handshakes_completed, 1u);
}

TEST(Malformed, NoPrivateKey) {
  Network net;
  std::vector<Datagram> held = net.send_held(net.a, ipv4_packet(kTunA4, kTunB4, 60));
  net.b.device.set_private_key(std::nullopt);
  EXPECT_EQ(net.receive(net.b, held[0]), Verdict::kDrop);
  EXPECT_EQ(net.b.dropped(Drop::kNoPrivateKey), 1u);
  EXPECT_TRUE(net.log.size() == 1u);
}

}  // namespace
}  // namespace faraday::dataplane
