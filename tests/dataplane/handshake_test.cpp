// The handshake and the transport path of the sans-IO core, end to end: two
// Devices wired together in memory (harness.h). Covers session setup from either
// side, preshared keys, unknown peers, data both ways, padding, anti-replay and
// replayed and flooding initiations. Roaming, cryptokey routing and malformed
// datagrams are in routing_test.cpp.
#include <gtest/gtest.h>

#include <ostream>
#include <string>
#include <vector>

#include "tests/dataplane/harness.h"

namespace faraday::dataplane {
namespace {

using namespace testing;  // the two-device harness (harness.h)

constexpr size_t kInitiationSize = sizeof(MessageInitiation);

// ------------------------------------------------------------------ session setup

TEST(Handshake, FirstPacketIsStagedThenDelivered) {
  Network net;
  Bytes first = ipv4_packet(kTunA4, kTunB4, 84, 1);

  EXPECT_EQ(net.send(net.a, first), Verdict::kConsumed);
  EXPECT_EQ(net.peer_of(net.a)->staged.size(), 1u);
  ASSERT_EQ(net.log.size(), 1u);
  EXPECT_TRUE(net.log[0].datagram.is(MessageType::kInitiation));
  EXPECT_EQ(net.log[0].datagram.destination, net.b.source);
  EXPECT_EQ(net.log[0].datagram.bytes.size(), kInitiationSize);

  net.pump();
  EXPECT_EQ(net.sent(net.a, MessageType::kInitiation), 1u);
  EXPECT_EQ(net.sent(net.b, MessageType::kResponse), 1u);
  EXPECT_EQ(net.sent_data(net.a), 1u);
  EXPECT_EQ(net.sent_keepalives(net.a), 0u);  // the staged packet confirmed the session
  EXPECT_TRUE(net.peer_of(net.a)->staged.empty());
  ASSERT_EQ(net.b.tunnel.size(), 1u);
  EXPECT_EQ(net.b.tunnel[0], first);
  EXPECT_TRUE(net.a.tunnel.empty());

  EXPECT_EQ(net.a.counters().handshakes_completed, 1u);
  EXPECT_EQ(net.b.counters().handshakes_completed, 1u);
  Peer* pa = net.peer_of(net.a);
  Peer* pb = net.peer_of(net.b);
  ASSERT_NE(pa->current, nullptr);
  ASSERT_NE(pb->current, nullptr);
  EXPECT_TRUE(pa->current->initiator);
  EXPECT_FALSE(pb->current->initiator);
  EXPECT_EQ(pb->next, nullptr);
  EXPECT_EQ(pa->current->remote_index, pb->current->local_index);
  EXPECT_EQ(pb->current->remote_index, pa->current->local_index);
  EXPECT_EQ(pa->current->send_key, pb->current->receive_key);
  EXPECT_EQ(pb->current->send_key, pa->current->receive_key);
  EXPECT_EQ(pa->last_handshake_wall, net.clock.wall());
  EXPECT_EQ(pb->last_handshake_wall, net.clock.wall());
  EXPECT_EQ(pa->endpoint, net.b.source);
  EXPECT_EQ(pb->endpoint, net.a.source);

  // b answers directly: a session exists, so the packet passes in place.
  Bytes answer = ipv4_packet(kTunB4, kTunA4, 100, 2);
  EXPECT_EQ(net.send(net.b, answer), Verdict::kPass);
  net.pump();
  ASSERT_EQ(net.a.tunnel.size(), 1u);
  EXPECT_EQ(net.a.tunnel[0], answer);

  EXPECT_EQ(net.a.counters().dropped_total(), 0u) << drop_changes({}, net.a.counters());
  EXPECT_EQ(net.b.counters().dropped_total(), 0u) << drop_changes({}, net.b.counters());
  EXPECT_EQ(net.a.counters().rx_data, 1u);
  EXPECT_EQ(net.b.counters().rx_data, 1u);
  EXPECT_EQ(net.sent(net.a, MessageType::kInitiation), 1u);
  EXPECT_EQ(net.sent(net.b, MessageType::kInitiation), 0u);
  // wg(8) byte counts: initiation + data out, response + data in.
  EXPECT_EQ(pa->tx_bytes, kInitiationSize + net.sent_by(net.a)[1].bytes.size());
  EXPECT_EQ(pb->rx_bytes, pa->tx_bytes);
  EXPECT_EQ(pa->rx_bytes, pb->tx_bytes);
}

TEST(Handshake, ResponderKeepsNextUntilFirstDataConfirmsIt) {
  Network net;
  std::vector<Datagram> held;
  net.filter = [&](const Node& from, Datagram& d) {
    if (&from == &net.a && d.is(MessageType::kTransport)) {
      held.push_back(d);
      return Fate::kDrop;
    }
    return Fate::kDeliver;
  };
  Bytes first = ipv4_packet(kTunA4, kTunB4, 60, 1);
  net.send(net.a, first);
  net.pump();
  ASSERT_EQ(held.size(), 1u);

  Peer* pb = net.peer_of(net.b);
  EXPECT_NE(pb->next, nullptr);
  EXPECT_EQ(pb->current, nullptr);
  EXPECT_EQ(pb->previous, nullptr);
  EXPECT_EQ(net.b.counters().handshakes_completed, 0u);
  EXPECT_EQ(pb->last_handshake_wall, 0);
  EXPECT_NE(net.peer_of(net.a)->current, nullptr);
  EXPECT_EQ(net.a.counters().handshakes_completed, 1u);

  // b cannot send on an unconfirmed keypair: its packet waits, and since b has
  // just sent a response it does not start a handshake of its own.
  Bytes reply = ipv4_packet(kTunB4, kTunA4, 70, 2);
  EXPECT_EQ(net.send(net.b, reply), Verdict::kConsumed);
  EXPECT_EQ(pb->staged.size(), 1u);
  EXPECT_EQ(net.sent(net.b, MessageType::kInitiation), 0u);

  // The first data packet confirms: next becomes current, b's staged packet goes.
  Keypair* next = pb->next.get();
  net.filter = nullptr;
  net.receive(net.b, held);
  EXPECT_EQ(pb->current.get(), next);
  EXPECT_EQ(pb->next, nullptr);
  EXPECT_EQ(net.b.counters().handshakes_completed, 1u);
  EXPECT_EQ(pb->last_handshake_wall, net.clock.wall());
  ASSERT_EQ(net.b.tunnel.size(), 1u);
  EXPECT_EQ(net.b.tunnel[0], first);
  net.pump();
  ASSERT_EQ(net.a.tunnel.size(), 1u);
  EXPECT_EQ(net.a.tunnel[0], reply);
  EXPECT_TRUE(pb->staged.empty());
  EXPECT_EQ(net.sent(net.b, MessageType::kInitiation), 0u);
}

TEST(Handshake, InitiatedFromB) {
  Network net;
  Bytes first = ipv6_packet(kTunB6, kTunA6, 90, 3);
  EXPECT_EQ(net.send(net.b, first), Verdict::kConsumed);
  net.pump();
  ASSERT_EQ(net.a.tunnel.size(), 1u);
  EXPECT_EQ(net.a.tunnel[0], first);
  EXPECT_EQ(net.sent(net.b, MessageType::kInitiation), 1u);
  EXPECT_EQ(net.sent(net.a, MessageType::kResponse), 1u);
  EXPECT_EQ(net.sent(net.a, MessageType::kInitiation), 0u);
  EXPECT_TRUE(net.peer_of(net.b)->current->initiator);
  EXPECT_FALSE(net.peer_of(net.a)->current->initiator);
  EXPECT_EQ(net.a.counters().handshakes_completed, 1u);
  EXPECT_EQ(net.b.counters().handshakes_completed, 1u);

  Bytes answer = ipv6_packet(kTunA6, kTunB6, 41, 4);
  EXPECT_EQ(net.send(net.a, answer), Verdict::kPass);
  net.pump();
  ASSERT_EQ(net.b.tunnel.size(), 1u);
  EXPECT_EQ(net.b.tunnel[0], answer);
}

TEST(Handshake, KeepaliveConfirmsWhenNothingIsStaged) {
  Network net;
  // Persistent keepalive with no session: the keepalive waits for a handshake.
  net.a.device.set_persistent_keepalive(*net.peer_of(net.a), 25);
  net.flush(net.a);
  EXPECT_EQ(net.sent(net.a, MessageType::kInitiation), 1u);
  net.pump();
  EXPECT_EQ(net.sent_keepalives(net.a), 1u);
  EXPECT_EQ(net.sent_data(net.a), 0u);
  EXPECT_NE(net.peer_of(net.b)->current, nullptr);
  EXPECT_EQ(net.peer_of(net.b)->next, nullptr);
  EXPECT_EQ(net.b.counters().handshakes_completed, 1u);
  EXPECT_TRUE(net.b.tunnel.empty());
}

// Both sides start a handshake at the same moment; the initiations cross and
// each consumes the other's, so both responses are stale. The retransmit
// timers (different jitter) sort it out and every packet arrives once.
TEST(Handshake, CrossedInitiationsConverge) {
  DeviceOptions oa, ob;
  oa.fixed_jitter = 0;
  ob.fixed_jitter = 200 * kMillisecond;
  Network net(oa, ob);
  Bytes from_a = ipv4_packet(kTunA4, kTunB4, 60, 1);
  Bytes from_b = ipv4_packet(kTunB4, kTunA4, 60, 2);
  net.send(net.a, from_a);
  net.send(net.b, from_b);
  net.pump();
  EXPECT_EQ(net.a.dropped(Drop::kUnexpectedResponse), 1u);
  EXPECT_EQ(net.b.dropped(Drop::kUnexpectedResponse), 1u);
  net.run_for(6 * kSecond);
  ASSERT_EQ(net.a.tunnel.size(), 1u);
  ASSERT_EQ(net.b.tunnel.size(), 1u);
  EXPECT_EQ(net.a.tunnel[0], from_b);
  EXPECT_EQ(net.b.tunnel[0], from_a);
  EXPECT_NE(net.peer_of(net.a)->current, nullptr);
  EXPECT_NE(net.peer_of(net.b)->current, nullptr);
  EXPECT_FALSE(net.peer_of(net.a)->timers.armed_retransmit());
  EXPECT_FALSE(net.peer_of(net.b)->timers.armed_retransmit());
}

struct PskCase {
  const char* name;
  uint8_t psk_a;  // fill byte, 0 = no preshared key
  uint8_t psk_b;
  bool works;
};

class PresharedKey : public ::testing::TestWithParam<PskCase> {};

TEST_P(PresharedKey, SessionOnlyWhenBothSidesAgree) {
  const PskCase& c = GetParam();
  Network net;
  crypto::Key ka, kb;
  ka.fill(c.psk_a);
  kb.fill(c.psk_b);
  net.a.device.set_preshared_key(*net.peer_of(net.a), ka);
  net.b.device.set_preshared_key(*net.peer_of(net.b), kb);
  Bytes first = ipv4_packet(kTunA4, kTunB4, 60, 1);
  net.send(net.a, first);
  net.pump();
  EXPECT_EQ(net.sent(net.b, MessageType::kResponse), 1u);  // the initiation has no psk in it
  if (c.works) {
    ASSERT_EQ(net.b.tunnel.size(), 1u);
    EXPECT_EQ(net.b.tunnel[0], first);
    EXPECT_EQ(net.a.counters().handshakes_completed, 1u);
    EXPECT_EQ(net.b.counters().handshakes_completed, 1u);
    EXPECT_EQ(net.a.counters().dropped_total(), 0u);
  } else {
    EXPECT_EQ(net.a.dropped(Drop::kHandshakeDecrypt), 1u) << drop_changes({}, net.a.counters());
    EXPECT_EQ(net.a.counters().dropped_total(), 1u) << drop_changes({}, net.a.counters());
    EXPECT_EQ(net.peer_of(net.a)->current, nullptr);
    EXPECT_EQ(net.peer_of(net.a)->staged.size(), 1u);
    EXPECT_EQ(net.a.counters().handshakes_completed, 0u);
    EXPECT_EQ(net.b.counters().handshakes_completed, 0u);
    EXPECT_EQ(net.peer_of(net.b)->current, nullptr);
    EXPECT_TRUE(net.b.tunnel.empty());
    // The handshake is still in flight on a's side: its retry goes out.
    EXPECT_TRUE(net.peer_of(net.a)->timers.armed_retransmit());
  }
}

INSTANTIATE_TEST_SUITE_P(Core, PresharedKey,
                         ::testing::Values(PskCase{"none", 0, 0, true},
                                           PskCase{"equal", 0x5a, 0x5a, true},
                                           PskCase{"different", 0x5a, 0x5b, false},
                                           PskCase{"only_a", 0x5a, 0, false},
                                           PskCase{"only_b", 0, 0x5a, false}),
                         [](const auto& info) { return std::string(info.param.name); });

TEST(Handshake, UnknownPeerThenPeerAdded) {
  DeviceOptions opts;
  opts.fixed_jitter = 0;
  Network net(opts, opts);
  net.b.device.remove_peer(net.a.public_key);
  ASSERT_EQ(net.peer_of(net.b), nullptr);

  Bytes first = ipv4_packet(kTunA4, kTunB4, 60, 1);
  net.send(net.a, first);
  net.pump();
  EXPECT_EQ(net.b.dropped(Drop::kUnknownPeer), 1u);
  EXPECT_EQ(net.b.counters().dropped_total(), 1u) << drop_changes({}, net.b.counters());
  EXPECT_EQ(net.sent(net.b, MessageType::kResponse), 0u);

  // The control thread adds a, without an endpoint: b learns it from a's retry.
  Peer* pa = net.b.device.add_peer(net.a.public_key);
  ASSERT_NE(pa, nullptr);
  net.b.device.add_allowed_ip(*pa, testing::prefix("192.168.0.1/32"));
  EXPECT_FALSE(pa->endpoint.valid());
  net.run_for(kRekeyTimeout);
  EXPECT_EQ(net.sent(net.a, MessageType::kInitiation), 2u);
  ASSERT_EQ(net.b.tunnel.size(), 1u);
  EXPECT_EQ(net.b.tunnel[0], first);
  EXPECT_EQ(pa->endpoint, net.a.source);
  EXPECT_EQ(net.b.dropped(Drop::kUnknownPeer), 1u);
}

TEST(Handshake, RemovedPeerForgetsItsIndices) {
  Network net;
  net.establish();
  std::vector<Datagram> held = net.send_held(net.a, ipv4_packet(kTunA4, kTunB4, 60));
  ASSERT_EQ(held.size(), 1u);
  net.b.device.remove_peer(net.a.public_key);
  net.receive(net.b, held);
  EXPECT_EQ(net.b.dropped(Drop::kUnknownIndex), 1u);
  EXPECT_TRUE(net.b.tunnel.empty());
}

// ------------------------------------------------------------------ transport data

struct DataCase {
  const char* name;
  bool v6;
  size_t length;
};

class DataBothWays : public ::testing::TestWithParam<DataCase> {};

TEST_P(DataBothWays, ArrivesUnchanged) {
  const DataCase& c = GetParam();
  Network net;
  net.establish();
  std::vector<Bytes> ab, ba;
  for (uint8_t i = 0; i < 5; ++i) {
    ab.push_back(c.v6 ? ipv6_packet(kTunA6, kTunB6, c.length, i)
                      : ipv4_packet(kTunA4, kTunB4, c.length, i));
    ba.push_back(c.v6 ? ipv6_packet(kTunB6, kTunA6, c.length, 100 + i)
                      : ipv4_packet(kTunB4, kTunA4, c.length, 100 + i));
  }
  for (Verdict v : net.send(net.a, ab)) EXPECT_EQ(v, Verdict::kPass);
  for (Verdict v : net.send(net.b, ba)) EXPECT_EQ(v, Verdict::kPass);
  net.pump();
  EXPECT_EQ(net.b.tunnel, ab);
  EXPECT_EQ(net.a.tunnel, ba);
  EXPECT_EQ(net.a.counters().dropped_total(), 0u) << drop_changes({}, net.a.counters());
  EXPECT_EQ(net.b.counters().dropped_total(), 0u) << drop_changes({}, net.b.counters());
}

INSTANTIATE_TEST_SUITE_P(
    Core, DataBothWays,
    ::testing::Values(DataCase{"v4_min", false, 20}, DataCase{"v4_small", false, 61},
                      DataCase{"v4_mtu", false, 1420}, DataCase{"v4_jumbo", false, 9000},
                      DataCase{"v6_min", true, 40}, DataCase{"v6_small", true, 77},
                      DataCase{"v6_mtu", true, 1420}, DataCase{"v6_jumbo", true, 9000}),
    [](const auto& info) { return std::string(info.param.name); });

// A burst bigger than the declared batch, to two families, mixed with staging.
TEST(Transport, LargeMixedBurst) {
  Network net;
  net.establish();
  std::vector<Bytes> burst;
  for (size_t i = 0; i < 3 * kBurstSize + 5; ++i)
    burst.push_back(i % 2 ? ipv6_packet(kTunA6, kTunB6, 40 + i, static_cast<uint8_t>(i))
                          : ipv4_packet(kTunA4, kTunB4, 20 + i, static_cast<uint8_t>(i)));
  for (Verdict v : net.send(net.a, burst)) EXPECT_EQ(v, Verdict::kPass);
  net.pump();
  EXPECT_EQ(net.b.tunnel, burst);
  EXPECT_EQ(net.peer_of(net.a)->current->send_counter, burst.size() + 1);  // + the first one
}

// An inner packet's header may say it is shorter than the buffer: only the
// header's length is sent and delivered.
TEST(Transport, TrailingBytesBeyondTheIpLengthAreCut) {
  Network net;
  net.establish();
  Bytes pkt = ipv4_packet(kTunA4, kTunB4, 50, 9);
  Bytes longer = pkt;
  longer.resize(80, 0xee);
  net.send(net.a, longer);
  net.pump();
  ASSERT_EQ(net.b.tunnel.size(), 1u);
  EXPECT_EQ(net.b.tunnel[0], pkt);
  EXPECT_EQ(net.sent_by(net.a).back().bytes.size(), 32u + 64u);
}

struct PaddingCase {
  size_t length;  // inner packet length
  uint32_t mtu;
  size_t datagram;  // expected UDP payload length
};

void PrintTo(const PaddingCase& c, std::ostream* os) {
  *os << c.length << " bytes, mtu " << c.mtu;
}

class Padding : public ::testing::TestWithParam<PaddingCase> {};

TEST_P(Padding, DatagramLength) {
  const PaddingCase& c = GetParam();
  Network net;
  net.establish();
  net.a.device.set_mtu(c.mtu);
  Bytes pkt = c.length >= 40 && c.length % 2 ? ipv6_packet(kTunA6, kTunB6, c.length)
                                             : ipv4_packet(kTunA4, kTunB4, c.length);
  EXPECT_EQ(net.send(net.a, pkt), Verdict::kPass);
  ASSERT_EQ(net.in_flight(), 1u);
  EXPECT_EQ(net.log.back().datagram.bytes.size(), c.datagram);
  EXPECT_EQ(c.datagram, kTransportHeaderSize + padded_length(c.length, c.mtu) + kTagSize);
  net.pump();
  ASSERT_EQ(net.b.tunnel.size(), 1u);
  EXPECT_EQ(net.b.tunnel[0], pkt);  // the padding does not reach the tunnel
}

INSTANTIATE_TEST_SUITE_P(
    Core, Padding,
    ::testing::Values(
        PaddingCase{20, 1420, 64}, PaddingCase{31, 1420, 64}, PaddingCase{32, 1420, 64},
        PaddingCase{33, 1420, 80}, PaddingCase{41, 1420, 80}, PaddingCase{48, 1420, 80},
        PaddingCase{1400, 1420, 1440}, PaddingCase{1409, 1420, 1452}, PaddingCase{1415, 1420, 1452},
        PaddingCase{1419, 1420, 1452}, PaddingCase{1420, 1420, 1452}, PaddingCase{1421, 1420, 1453},
        PaddingCase{1500, 1420, 1532}, PaddingCase{1415, 0, 1456}, PaddingCase{100, 90, 132},
        PaddingCase{85, 90, 122}, PaddingCase{65503, 1420, 65535}),
    [](const auto& info) {
      return std::to_string(info.param.length) + "_mtu" + std::to_string(info.param.mtu);
    });

// The outbox's slots are sized for the MTU the device was made with (packet.h).
// A packet staged after the MTU was raised past them is dropped and counted when
// the session comes up, and the packets behind it still go.
TEST(Transport, StagedPacketLargerThanTheOutboxSlotIsDropped) {
  Network net;
  net.a.device.set_mtu(20000);
  Bytes big = ipv4_packet(kTunA4, kTunB4, 15000, 1);
  Bytes small = ipv4_packet(kTunA4, kTunB4, 84, 2);
  EXPECT_EQ(net.send(net.a, big), Verdict::kConsumed);
  EXPECT_EQ(net.send(net.a, small), Verdict::kConsumed);
  net.pump();
  EXPECT_EQ(net.a.dropped(Drop::kTooBig), 1u);
  ASSERT_EQ(net.b.tunnel.size(), 1u);
  EXPECT_EQ(net.b.tunnel[0], small);
}

// The largest UDP payload is 65535 bytes, so an inner packet that would grow
// past it cannot be sent, with a session or without.
TEST(Transport, TooBigForADatagram) {
  for (bool with_session : {true, false}) {
    SCOPED_TRACE(with_session ? "with session" : "without session");
    Network net;
    if (with_session) net.establish();
    net.a.device.set_mtu(0);  // no cap, so no shortcut: 32 + 65504 > 65535
    uint64_t sent_before = net.log.size();
    EXPECT_EQ(net.send(net.a, ipv4_packet(kTunA4, kTunB4, 65504)), Verdict::kDrop);
    EXPECT_EQ(net.a.dropped(Drop::kTooBig), 1u);
    EXPECT_EQ(net.log.size(), sent_before);
    EXPECT_TRUE(net.peer_of(net.a)->staged.empty());
    net.a.device.set_mtu(1420);
    EXPECT_EQ(net.send(net.a, ipv4_packet(kTunA4, kTunB4, 65535)), Verdict::kDrop);
    EXPECT_EQ(net.a.dropped(Drop::kTooBig), 2u);
  }
}

// ------------------------------------------------------------------ anti-replay

TEST(Replay, WindowOverTheWire) {
  Network net;
  net.establish();  // counter 0 used by the first packet
  Peer* pa = net.peer_of(net.a);
  std::vector<Datagram> captured;
  net.capture(captured);
  auto send_at = [&](uint64_t counter) {
    pa->current->send_counter = counter;
    net.send(net.a, ipv4_packet(kTunA4, kTunB4, 40, static_cast<uint8_t>(counter)));
    net.pump();
    Datagram d = captured.back();
    EXPECT_EQ(d.counter(), counter);
    return d;
  };
  std::vector<Datagram> low;
  for (uint64_t c : {1, 2, 3, 4}) low.push_back(send_at(c));
  Datagram edge = send_at(1872);   // 10000 - 8128: the oldest still accepted
  Datagram older = send_at(1871);  // one too old
  Datagram top = send_at(10000);
  Datagram far = send_at(uint64_t{1} << 40);
  net.filter = nullptr;

  auto deliver = [&](const Datagram& d) { return net.receive(net.b, d); };
  // In-window and out of order: all accepted.
  for (int i : {3, 1, 0, 2}) EXPECT_EQ(deliver(low[i]), Verdict::kPass) << i;
  EXPECT_EQ(net.b.tunnel.size(), 4u);
  // Each again: duplicates.
  for (int i : {0, 3}) EXPECT_EQ(deliver(low[i]), Verdict::kDrop);
  EXPECT_EQ(net.b.dropped(Drop::kReplayDuplicate), 2u);
  // Slide the window to 10000.
  EXPECT_EQ(deliver(top), Verdict::kPass);
  EXPECT_EQ(deliver(edge), Verdict::kPass);
  EXPECT_EQ(deliver(older), Verdict::kDrop);
  EXPECT_EQ(net.b.dropped(Drop::kReplayTooOld), 1u);
  EXPECT_EQ(deliver(edge), Verdict::kDrop);
  EXPECT_EQ(net.b.dropped(Drop::kReplayDuplicate), 3u);
  // Far ahead: accepted, and now everything before it is too old.
  EXPECT_EQ(deliver(far), Verdict::kPass);
  EXPECT_EQ(deliver(top), Verdict::kDrop);
  EXPECT_EQ(net.b.dropped(Drop::kReplayTooOld), 2u);
  EXPECT_EQ(net.b.tunnel.size(), 7u);
  EXPECT_EQ(net.b.counters().dropped_total(), 5u) << drop_changes({}, net.b.counters());
  EXPECT_EQ(net.b.counters().rx_data, 1u + 7u);
}

// A replayed keepalive or data packet from another address is not proof of
// anything: it must not move the endpoint.
TEST(Replay, ReplayFromElsewhereDoesNotRoam) {
  Network net;
  net.establish();
  std::vector<Datagram> captured;
  net.capture(captured, Fate::kDeliver);
  net.send(net.b, ipv4_packet(kTunB4, kTunA4, 60));
  net.pump();
  ASSERT_EQ(captured.size(), 1u);
  Datagram replay = captured[0];
  replay.source = testing::endpoint("10.6.6.6:666");
  EXPECT_EQ(net.receive(net.a, replay), Verdict::kDrop);
  EXPECT_EQ(net.a.dropped(Drop::kReplayDuplicate), 1u);
  EXPECT_EQ(net.peer_of(net.a)->endpoint, net.b.source);
}

// ------------------------------------------------------------------ replayed initiations

struct ReplayedInitiationCase {
  const char* name;
  Nanos delay;  // after b consumed the original
  Drop reason;
};

class ReplayedInitiation : public ::testing::TestWithParam<ReplayedInitiationCase> {};

TEST_P(ReplayedInitiation, DroppedWithoutSideEffects) {
  const ReplayedInitiationCase& c = GetParam();
  Network net;
  std::vector<Datagram> initiations;
  net.filter = [&](const Node&, Datagram& d) {
    if (d.is(MessageType::kInitiation)) initiations.push_back(d);
    return Fate::kDeliver;
  };
  net.establish();
  ASSERT_EQ(initiations.size(), 1u);
  net.clock.advance(c.delay);

  Peer* pb = net.peer_of(net.b);
  Keypair* current = pb->current.get();
  size_t sent = net.log.size();
  Counters before = net.b.counters();
  Datagram replay = initiations[0];
  replay.source = testing::endpoint("10.6.6.6:666");  // the attacker's own address
  EXPECT_EQ(net.receive(net.b, replay), Verdict::kDrop);
  EXPECT_EQ(net.b.dropped(c.reason), before.dropped(c.reason) + 1)
      << drop_changes(before, net.b.counters());
  EXPECT_EQ(net.b.counters().dropped_total(), before.dropped_total() + 1)
      << drop_changes(before, net.b.counters());
  EXPECT_EQ(net.log.size(), sent);  // no response
  EXPECT_EQ(pb->current.get(), current);
  EXPECT_EQ(pb->next, nullptr);
  EXPECT_EQ(pb->endpoint, net.a.source);

  // The session is untouched.
  Bytes pkt = ipv4_packet(kTunA4, kTunB4, 60, 7);
  EXPECT_EQ(net.send(net.a, pkt), Verdict::kPass);
  net.pump();
  ASSERT_EQ(net.b.tunnel.size(), 1u);
  EXPECT_EQ(net.b.tunnel[0], pkt);
}

INSTANTIATE_TEST_SUITE_P(
    Core, ReplayedInitiation,
    ::testing::Values(
        ReplayedInitiationCase{"at_once", 0, Drop::kInitiationFlood},
        ReplayedInitiationCase{"after_19ms", 19 * kMillisecond, Drop::kInitiationFlood},
        ReplayedInitiationCase{"after_20ms", 20 * kMillisecond, Drop::kReplayedTimestamp},
        ReplayedInitiationCase{"after_1s", kSecond, Drop::kReplayedTimestamp},
        ReplayedInitiationCase{"after_100s", 100 * kSecond, Drop::kReplayedTimestamp}),
    [](const auto& info) { return std::string(info.param.name); });

// Fresh initiations (newer timestamps) from one peer closer together than
// 20 ms: only the first is answered.
struct FloodCase {
  Nanos spacing;
  bool second_accepted;
};

void PrintTo(const FloodCase& c, std::ostream* os) {
  *os << c.spacing << " ns";
}

class InitiationFlood : public ::testing::TestWithParam<FloodCase> {};

TEST_P(InitiationFlood, SecondInitiation) {
  const FloodCase& c = GetParam();
  Network net;
  auto initiation = [&] {
    return Datagram{craft_initiation(net.a.private_key, net.b.public_key, net.clock.wall(),
                                     net.clock.monotonic()),
                    net.a.source, net.b.source};
  };
  EXPECT_EQ(net.receive(net.b, initiation()), Verdict::kConsumed);
  EXPECT_EQ(net.sent(net.b, MessageType::kResponse), 1u);
  // Advance the wall clock past the TAI64N granularity (2^24 ns) so the
  // timestamp is strictly newer whatever the spacing.
  net.clock.advance_wall(20 * kMillisecond);
  net.clock.advance(c.spacing);
  Verdict v = net.receive(net.b, initiation());
  if (c.second_accepted) {
    EXPECT_EQ(v, Verdict::kConsumed);
    EXPECT_EQ(net.sent(net.b, MessageType::kResponse), 2u);
    EXPECT_EQ(net.b.counters().dropped_total(), 0u) << drop_changes({}, net.b.counters());
  } else {
    EXPECT_EQ(v, Verdict::kDrop);
    EXPECT_EQ(net.sent(net.b, MessageType::kResponse), 1u);
    EXPECT_EQ(net.b.dropped(Drop::kInitiationFlood), 1u) << drop_changes({}, net.b.counters());
    EXPECT_EQ(net.b.counters().dropped_total(), 1u);
  }
}

INSTANTIATE_TEST_SUITE_P(
    Core, InitiationFlood,
    ::testing::Values(FloodCase{0, false}, FloodCase{kMillisecond, false},
                      FloodCase{19 * kMillisecond, false}, FloodCase{20 * kMillisecond - 1, false},
                      FloodCase{20 * kMillisecond, true}, FloodCase{kSecond, true}),
    [](const auto& info) { return std::to_string(info.param.spacing / 1000) + "us"; });

TEST(InitiationFlood, BurstOfInitiationsOnlyFirstAnswered) {
  Network net;
  std::vector<Datagram> burst;
  for (int i = 0; i < 10; ++i) {
    net.clock.advance_wall(20 * kMillisecond);  // each newer, all at the same monotonic time
    burst.push_back({craft_initiation(net.a.private_key, net.b.public_key, net.clock.wall(),
                                      net.clock.monotonic(), static_cast<uint32_t>(100 + i)),
                     net.a.source, net.b.source});
  }
  net.receive(net.b, burst);
  EXPECT_EQ(net.sent(net.b, MessageType::kResponse), 1u);
  EXPECT_EQ(net.b.dropped(Drop::kInitiationFlood), 9u) << drop_changes({}, net.b.counters());
}

}  // namespace
}  // namespace faraday::dataplane
