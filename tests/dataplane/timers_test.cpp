// Every timer of the whitepaper (§6) through two Devices and a fake clock:
// rekey on time and on message count, reject after time and count, handshake
// retransmission and giving up, passive and persistent keepalives, the new
// handshake after unanswered data, zeroing keys, and the last-minute rekey on
// receive. Jitter is fixed (DeviceOptions::fixed_jitter) so every deadline is
// exact, except in the one test that checks the jitter's range.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "tests/dataplane/harness.h"

namespace faraday::dataplane {
namespace {

using testing::Bytes;
using testing::Datagram;
using testing::Fate;
using testing::fixed;
using testing::ipv4_packet;
using testing::kTunA4;
using testing::kTunB4;
using testing::Network;
using testing::Node;
using testing::PrintTo;

constexpr Nanos kJitter = 123 * kMillisecond;

Bytes a_to_b(uint8_t seed = 0) {
  return ipv4_packet(kTunA4, kTunB4, 60, seed);
}
Bytes b_to_a(uint8_t seed = 0) {
  return ipv4_packet(kTunB4, kTunA4, 60, seed);
}

// A Network with fixed jitter and a session a initiated at t0 = start().
class Timers : public ::testing::Test {
 protected:
  Timers() : net(fixed(kJitter), fixed(kJitter)) {
    net.establish();
    t0 = net.clock.monotonic();
  }
  Nanos at(Nanos offset) const { return t0 + offset; }

  Network net;
  Nanos t0;
};

// ------------------------------------------------------------------ rekey

TEST_F(Timers, RekeyAfterTimeOnlyByTheInitiator) {
  net.run_until(at(kRekeyAfterTime - 1));
  EXPECT_EQ(net.send(net.a, a_to_b(1)), Verdict::kPass);
  EXPECT_EQ(net.send(net.b, b_to_a(1)), Verdict::kPass);
  net.pump();
  EXPECT_EQ(net.sent(net.a, MessageType::kInitiation), 1u);
  EXPECT_EQ(net.sent(net.b, MessageType::kInitiation), 0u);

  net.run_until(at(kRekeyAfterTime));
  Keypair* old_a = net.peer_of(net.a)->current.get();
  Keypair* old_b = net.peer_of(net.b)->current.get();
  // The responder's keypair is as old, but it does not rekey on time.
  EXPECT_EQ(net.send(net.b, b_to_a(2)), Verdict::kPass);
  EXPECT_EQ(net.sent(net.b, MessageType::kInitiation), 0u);
  // The initiator sends this packet on the old keypair and starts a handshake.
  EXPECT_EQ(net.send(net.a, a_to_b(2)), Verdict::kPass);
  EXPECT_EQ(net.sent(net.a, MessageType::kInitiation), 2u);
  net.pump();
  EXPECT_EQ(net.a.tunnel.size(), 2u);
  EXPECT_EQ(net.b.tunnel.size(), 2u);
  Peer* pa = net.peer_of(net.a);
  Peer* pb = net.peer_of(net.b);
  EXPECT_NE(pa->current.get(), old_a);
  EXPECT_EQ(pa->previous.get(), old_a);
  EXPECT_NE(pb->current.get(), old_b);  // confirmed by a's keepalive
  EXPECT_EQ(pb->previous.get(), old_b);
  EXPECT_EQ(net.a.counters().handshakes_completed, 2u);
  EXPECT_EQ(net.b.counters().handshakes_completed, 2u);
  // Sending again does not rekey again.
  net.send(net.a, a_to_b(3));
  EXPECT_EQ(net.sent(net.a, MessageType::kInitiation), 2u);
}

struct MessageRekeyCase {
  const char* name;
  bool from_a;
  uint64_t send_counter;
  bool rekeys;
};

class RekeyAfterMessages : public ::testing::TestWithParam<MessageRekeyCase> {};

TEST_P(RekeyAfterMessages, EitherSideRekeys) {
  const MessageRekeyCase& c = GetParam();
  Network net(fixed(kJitter), fixed(kJitter));
  net.establish();
  net.clock.advance(kRekeyTimeout);  // past b's response, which holds back b's initiations
  Node& from = c.from_a ? net.a : net.b;
  Node& to = net.other(from);
  Peer* p = net.peer_of(from);
  Keypair* old = p->current.get();
  p->current->send_counter = c.send_counter;
  Bytes pkt = c.from_a ? a_to_b(1) : b_to_a(1);
  EXPECT_EQ(net.send(from, pkt), Verdict::kPass);
  EXPECT_EQ(net.sent_by(from).back().counter(), c.send_counter);
  EXPECT_EQ(net.sent(from, MessageType::kInitiation), (c.from_a ? 1u : 0u) + (c.rekeys ? 1u : 0u));
  net.pump();
  ASSERT_EQ(to.tunnel.size(), 1u);
  EXPECT_EQ(to.tunnel[0], pkt);
  if (c.rekeys) {
    EXPECT_NE(p->current.get(), old);
    EXPECT_TRUE(p->current->initiator);
    EXPECT_LT(p->current->send_counter, 2u);
  } else {
    EXPECT_EQ(p->current.get(), old);
  }
}

INSTANTIATE_TEST_SUITE_P(
    Core, RekeyAfterMessages,
    ::testing::Values(MessageRekeyCase{"a_below", true, kRekeyAfterMessages - 1, false},
                      MessageRekeyCase{"a_at", true, kRekeyAfterMessages, true},
                      MessageRekeyCase{"b_below", false, kRekeyAfterMessages - 1, false},
                      MessageRekeyCase{"b_at", false, kRekeyAfterMessages, true},
                      MessageRekeyCase{"b_far_past", false, kRekeyAfterMessages * 8, true}),
    [](const auto& info) { return std::string(info.param.name); });

// ------------------------------------------------------------------ reject

TEST_F(Timers, RejectAfterMessages) {
  net.clock.advance(kRekeyTimeout);  // a's last initiation no longer holds back a new one
  Peer* pa = net.peer_of(net.a);
  Keypair* old = pa->current.get();
  pa->current->send_counter = kRejectAfterMessages - 1;
  std::vector<Bytes> burst = {a_to_b(1), a_to_b(2)};
  std::vector<Verdict> v = net.send(net.a, burst);
  EXPECT_EQ(v[0], Verdict::kPass);      // the last counter this keypair may use
  EXPECT_EQ(v[1], Verdict::kConsumed);  // waits for a new session
  EXPECT_EQ(old->send_counter, kRejectAfterMessages);
  EXPECT_EQ(net.sent(net.a, MessageType::kInitiation), 2u);
  net.pump();
  EXPECT_EQ(net.b.tunnel, burst);
  EXPECT_NE(pa->current.get(), old);
}

// The burst reserves its nonces at once: the ones left go out in order, the
// rest wait for the next session, and the counter stops at the limit.
TEST_F(Timers, RejectAfterMessagesMidBurst) {
  net.clock.advance(kRekeyTimeout);
  Peer* pa = net.peer_of(net.a);
  Keypair* old = pa->current.get();
  pa->current->send_counter = kRejectAfterMessages - 2;
  std::vector<Bytes> burst = {a_to_b(1), a_to_b(2), a_to_b(3), a_to_b(4)};
  std::vector<Verdict> v = net.send(net.a, burst);
  EXPECT_THAT(v, ::testing::ElementsAre(Verdict::kPass, Verdict::kPass, Verdict::kConsumed,
                                        Verdict::kConsumed));
  EXPECT_EQ(old->send_counter, kRejectAfterMessages);
  EXPECT_EQ(pa->staged.size(), 2u);
  net.pump();
  EXPECT_EQ(net.b.tunnel, burst);
  EXPECT_NE(pa->current.get(), old);
}

struct RejectCase {
  const char* name;
  bool from_a;
};

class RejectAfterTime : public ::testing::TestWithParam<RejectCase> {};

TEST_P(RejectAfterTime, SendingStagesAndInitiates) {
  const RejectCase& c = GetParam();
  Network net(fixed(kJitter), fixed(kJitter));
  net.establish();
  const Nanos t0 = net.clock.monotonic();
  net.run_until(t0 + kRejectAfterTime - 1);
  Node& from = c.from_a ? net.a : net.b;
  size_t initiations = net.sent(from, MessageType::kInitiation);

  net.run_until(t0 + kRejectAfterTime);
  Bytes pkt = c.from_a ? a_to_b(1) : b_to_a(1);
  EXPECT_EQ(net.send(from, pkt), Verdict::kConsumed);
  EXPECT_EQ(net.peer_of(from)->staged.size(), 1u);
  EXPECT_EQ(net.sent(from, MessageType::kInitiation), initiations + 1);
  EXPECT_EQ(net.sent_data(from), c.from_a ? 1u : 0u);  // only establish()'s packet
  net.pump();
  ASSERT_EQ(net.other(from).tunnel.size(), 1u);
  EXPECT_EQ(net.other(from).tunnel[0], pkt);
  EXPECT_TRUE(net.peer_of(from)->current->initiator);
}

INSTANTIATE_TEST_SUITE_P(Core, RejectAfterTime,
                         ::testing::Values(RejectCase{"initiator", true},
                                           RejectCase{"responder", false}),
                         [](const auto& info) { return std::string(info.param.name); });

TEST_F(Timers, ReceivingOnAnExpiredKeypair) {
  std::vector<Datagram> held;
  net.run_until(at(kRejectAfterTime - 1));
  net.capture(held);
  EXPECT_EQ(net.send(net.b, b_to_a(1)), Verdict::kPass);  // the keypair's last nanosecond
  EXPECT_EQ(net.send(net.b, b_to_a(2)), Verdict::kPass);
  net.pump();
  net.filter = nullptr;
  ASSERT_EQ(held.size(), 2u);
  EXPECT_EQ(net.receive(net.a, held[0]), Verdict::kPass);  // still in time
  net.clock.advance(1);
  EXPECT_EQ(net.receive(net.a, held[1]), Verdict::kDrop);
  EXPECT_EQ(net.a.dropped(Drop::kKeypairExpired), 1u);
  EXPECT_EQ(net.a.tunnel.size(), 1u);
}

// ------------------------------------------------------------------ retransmission

TEST(Retransmit, EveryRekeyTimeoutPlusJitterThenGiveUp) {
  Network net(fixed(kJitter), fixed(kJitter));
  net.filter = [](const Node&, Datagram&) { return Fate::kDrop; };
  const Nanos t0 = net.clock.monotonic();
  EXPECT_EQ(net.send(net.a, a_to_b()), Verdict::kConsumed);
  Peer* pa = net.peer_of(net.a);
  const Nanos interval = kRekeyTimeout + kJitter;

  // As Linux and wireguard-go: a retry while attempts <= MAX_TIMER_HANDSHAKES
  // (18), so 19 retries, 20 initiations in all ("did not complete after 20
  // attempts, giving up").
  const int kRetries = kMaxHandshakeAttempts + 1;
  for (int k = 1; k <= kRetries; ++k) {
    SCOPED_TRACE(k);
    net.run_until(t0 + k * interval - 1);
    EXPECT_EQ(net.sent(net.a, MessageType::kInitiation), static_cast<size_t>(k));
    net.run_until(t0 + k * interval);
    EXPECT_EQ(net.sent(net.a, MessageType::kInitiation), static_cast<size_t>(k + 1));
    EXPECT_EQ(pa->timers.handshake_attempts(), k);
    EXPECT_EQ(pa->staged.size(), 1u);
  }
  std::vector<Nanos> times = net.times(net.a, MessageType::kInitiation);
  ASSERT_EQ(times.size(), static_cast<size_t>(kRetries + 1));
  for (size_t i = 0; i < times.size(); ++i) EXPECT_EQ(times[i], t0 + Nanos(i) * interval);
  EXPECT_EQ(times.back() - times.front(), 19 * interval);  // > REKEY_ATTEMPT_TIME

  // The next expiry gives up: staged packets dropped, no more initiations.
  net.run_until(t0 + (kRetries + 1) * interval);
  EXPECT_TRUE(pa->staged.empty());
  EXPECT_FALSE(pa->timers.armed_retransmit());
  EXPECT_TRUE(pa->timers.armed_zero_key_material());
  net.run_for(20 * 60 * kSecond);
  EXPECT_EQ(net.sent(net.a, MessageType::kInitiation), static_cast<size_t>(kRetries + 1));
  EXPECT_EQ(net.sent_by(net.b).size(), 0u);
  EXPECT_EQ(net.a.device.next_deadline(), kNever);

  // New data starts over with a fresh count.
  net.filter = nullptr;
  net.send(net.a, a_to_b(9));
  net.pump();
  EXPECT_EQ(net.b.tunnel.size(), 1u);
}

TEST(Retransmit, RandomJitterWithinBounds) {
  Network net;  // random jitter
  net.filter = [](const Node&, Datagram&) { return Fate::kDrop; };
  net.send(net.a, a_to_b());
  net.run_for(60 * kSecond);
  std::vector<Nanos> times = net.times(net.a, MessageType::kInitiation);
  ASSERT_GE(times.size(), 10u);
  bool varied = false;
  for (size_t i = 1; i < times.size(); ++i) {
    Nanos gap = times[i] - times[i - 1];
    EXPECT_GE(gap, kRekeyTimeout);
    EXPECT_LT(gap, kRekeyTimeout + kMaxJitter);
    varied |= gap != times[1] - times[0];
  }
  EXPECT_TRUE(varied);
}

TEST(Retransmit, HandshakeCompletesWhenTheNetworkHeals) {
  Network net(fixed(kJitter), fixed(kJitter));
  int dropped = 0;
  net.filter = [&](const Node&, Datagram& d) {
    if (d.is(MessageType::kInitiation) && dropped < 3) {
      ++dropped;
      return Fate::kDrop;
    }
    return Fate::kDeliver;
  };
  Bytes pkt = a_to_b(1);
  net.send(net.a, pkt);
  net.run_for(3 * (kRekeyTimeout + kJitter));
  EXPECT_EQ(net.sent(net.a, MessageType::kInitiation), 4u);
  ASSERT_EQ(net.b.tunnel.size(), 1u);
  EXPECT_EQ(net.b.tunnel[0], pkt);
  Peer* pa = net.peer_of(net.a);
  EXPECT_FALSE(pa->timers.armed_retransmit());
  EXPECT_EQ(pa->timers.handshake_attempts(), 0);
  net.run_for(kRekeyAttemptTime);
  EXPECT_EQ(net.sent(net.a, MessageType::kInitiation), 4u);
}

// A lost response: the initiator retries, the responder answers the new
// initiation, and the session the first response would have made never
// confuses anything.
TEST(Retransmit, LostResponse) {
  Network net(fixed(kJitter), fixed(kJitter));
  bool dropped = false;
  net.filter = [&](const Node&, Datagram& d) {
    if (d.is(MessageType::kResponse) && !dropped) {
      dropped = true;
      return Fate::kDrop;
    }
    return Fate::kDeliver;
  };
  Bytes pkt = a_to_b(1);
  net.send(net.a, pkt);
  net.pump();
  EXPECT_NE(net.peer_of(net.b)->next, nullptr);
  net.run_for(kRekeyTimeout + kJitter);
  ASSERT_EQ(net.b.tunnel.size(), 1u);
  EXPECT_EQ(net.b.counters().handshakes_completed, 1u);
  EXPECT_EQ(net.peer_of(net.b)->next, nullptr);
  EXPECT_EQ(net.b.counters().dropped_total(), 0u);
}

// ------------------------------------------------------------------ keepalives

TEST_F(Timers, PassiveKeepaliveWhenTheReceiverHasNothingToSay) {
  // b received establish()'s packet at t0 and has sent nothing since.
  net.run_until(at(kKeepaliveTimeout - 1));
  EXPECT_EQ(net.sent_keepalives(net.b), 0u);
  net.run_until(at(kKeepaliveTimeout));
  EXPECT_EQ(net.sent_keepalives(net.b), 1u);
  EXPECT_TRUE(net.a.tunnel.empty());  // keepalives never reach the tunnel
  EXPECT_EQ(net.a.counters().dropped_total(), 0u);
  // a's new-handshake timer (armed by its data) was answered by it.
  EXPECT_FALSE(net.peer_of(net.a)->timers.armed_new_handshake());
  // A keepalive is not data: a does not answer it.
  net.run_for(10 * kKeepaliveTimeout);
  EXPECT_EQ(net.sent_keepalives(net.a), 0u);
  EXPECT_EQ(net.sent_keepalives(net.b), 1u);
}

TEST_F(Timers, MoreDataDoesNotPostponeThePassiveKeepalive) {
  net.run_until(at(5 * kSecond));
  net.send(net.a, a_to_b(1));
  net.pump();
  net.run_until(at(kKeepaliveTimeout));
  EXPECT_EQ(net.times(net.b, [](const Datagram& d) { return d.is_keepalive(); }),
            std::vector<Nanos>{at(kKeepaliveTimeout)});
}

TEST_F(Timers, NoPassiveKeepaliveWhenTheReceiverAnswers) {
  net.run_until(at(3 * kSecond));
  net.send(net.b, b_to_a(1));
  net.pump();
  net.run_until(at(kKeepaliveTimeout + 4 * kSecond));
  EXPECT_EQ(net.sent_keepalives(net.b), 0u);
  // Now a has received data and said nothing: its keepalive follows.
  EXPECT_EQ(net.times(net.a, [](const Datagram& d) { return d.is_keepalive(); }),
            std::vector<Nanos>{at(3 * kSecond + kKeepaliveTimeout)});
}

struct NewHandshakeCase {
  const char* name;
  bool reply_lost;
};

class NewHandshake : public ::testing::TestWithParam<NewHandshakeCase> {};

TEST_P(NewHandshake, AfterDataWithNoReply) {
  const NewHandshakeCase& c = GetParam();
  Network net(fixed(kJitter), fixed(kJitter));
  net.establish();
  net.run_for(kKeepaliveTimeout + kSecond);  // b's passive keepalive has come and gone
  ASSERT_EQ(net.sent_keepalives(net.b), 1u);
  if (c.reply_lost)
    net.filter = [&](const Node& from, Datagram&) {
      return &from == &net.b ? Fate::kDrop : Fate::kDeliver;
    };
  const Nanos t1 = net.clock.monotonic();
  EXPECT_EQ(net.send(net.a, a_to_b(1)), Verdict::kPass);
  net.pump();
  const Nanos deadline = t1 + kKeepaliveTimeout + kRekeyTimeout + kJitter;
  net.run_until(deadline - 1);
  EXPECT_EQ(net.sent(net.a, MessageType::kInitiation), 1u);
  net.run_until(deadline);
  EXPECT_EQ(net.sent(net.a, MessageType::kInitiation), c.reply_lost ? 2u : 1u);
  EXPECT_EQ(net.sent_keepalives(net.b), 2u);  // sent (maybe lost) at t1 + 10 s
}

INSTANTIATE_TEST_SUITE_P(Core, NewHandshake,
                         ::testing::Values(NewHandshakeCase{"reply_lost", true},
                                           NewHandshakeCase{"reply_arrives", false}),
                         [](const auto& info) { return std::string(info.param.name); });

TEST_F(Timers, PersistentKeepalive) {
  net.run_until(at(kKeepaliveTimeout + kSecond));
  const Nanos t1 = net.clock.monotonic();
  const Nanos interval = 25 * kSecond;
  Peer* pa = net.peer_of(net.a);
  net.a.device.set_persistent_keepalive(*pa, 25);  // one at once
  net.flush(net.a);
  net.pump();
  net.run_until(t1 + 2 * interval);
  auto keepalives = [&] {
    return net.times(net.a, [](const Datagram& d) { return d.is_keepalive(); });
  };
  EXPECT_EQ(keepalives(), (std::vector<Nanos>{t1, t1 + interval, t1 + 2 * interval}));

  // Any authenticated packet restarts the interval: b's data at t1 + 60 s
  // (a's passive keepalive follows at +70 s, then persistent ones every 25 s).
  net.run_until(t1 + 60 * kSecond);
  net.send(net.b, b_to_a(1));
  net.pump();
  net.run_until(t1 + 96 * kSecond);
  EXPECT_EQ(keepalives(), (std::vector<Nanos>{t1, t1 + interval, t1 + 2 * interval,
                                              t1 + 70 * kSecond, t1 + 95 * kSecond}));
  EXPECT_EQ(net.sent_keepalives(net.b), 1u);  // b has no interval of its own

  // Setting the same interval again sends nothing; turning it off stops it.
  net.a.device.set_persistent_keepalive(*pa, 25);
  net.flush(net.a);
  EXPECT_EQ(keepalives().size(), 5u);
  net.a.device.set_persistent_keepalive(*pa, 0);
  net.run_for(100 * kSecond);
  EXPECT_EQ(keepalives().size(), 5u);
}

// ------------------------------------------------------------------ key zeroing

TEST_F(Timers, KeysZeroedAfterThreeRejectAfterTimes) {
  std::vector<Datagram> held = net.send_held(net.a, a_to_b(1));
  ASSERT_EQ(held.size(), 1u);
  Peer* pa = net.peer_of(net.a);
  Peer* pb = net.peer_of(net.b);

  net.run_until(at(kZeroKeyMaterialAfter - 1));
  EXPECT_NE(pa->current, nullptr);
  EXPECT_NE(pb->current, nullptr);
  EXPECT_TRUE(pa->timers.armed_zero_key_material());
  size_t sent = net.log.size();

  net.run_until(at(kZeroKeyMaterialAfter));
  EXPECT_EQ(kZeroKeyMaterialAfter, 3 * kRejectAfterTime);
  for (Peer* p : {pa, pb}) {
    EXPECT_EQ(p->current, nullptr);
    EXPECT_EQ(p->previous, nullptr);
    EXPECT_EQ(p->next, nullptr);
    EXPECT_EQ(p->handshake.state, HandshakeState::kZeroed);
    EXPECT_FALSE(p->timers.armed_zero_key_material());
  }
  EXPECT_EQ(net.log.size(), sent);  // zeroing sends nothing
  // The keypair's index is gone: its packets are now of unknown index.
  EXPECT_EQ(net.receive(net.b, held[0]), Verdict::kDrop);
  EXPECT_EQ(net.b.dropped(Drop::kUnknownIndex), 1u);
  // A new packet starts a new session.
  EXPECT_EQ(net.send(net.a, a_to_b(2)), Verdict::kConsumed);
  net.pump();
  EXPECT_EQ(net.b.tunnel.size(), 1u);
}

// ------------------------------------------------------------------ last-minute rekey

TEST_F(Timers, LastMinuteRekeyOnReceiveByTheInitiator) {
  const Nanos last_minute = kRejectAfterTime - kKeepaliveTimeout - kRekeyTimeout;  // 165 s
  net.run_until(at(last_minute - 1));
  net.send(net.b, b_to_a(1));
  net.pump();
  EXPECT_EQ(net.sent(net.a, MessageType::kInitiation), 1u);

  net.run_until(at(last_minute));
  bool drop_initiations = true;
  net.filter = [&](const Node&, Datagram& d) {
    return drop_initiations && d.is(MessageType::kInitiation) ? Fate::kDrop : Fate::kDeliver;
  };
  net.send(net.b, b_to_a(2));
  net.pump();
  EXPECT_EQ(net.sent(net.a, MessageType::kInitiation), 2u);
  EXPECT_EQ(net.sent(net.b, MessageType::kInitiation), 0u);  // b, the responder, never does
  // Once per keypair: more data on it does not start another.
  net.clock.advance(kRekeyTimeout - 1);
  net.send(net.b, b_to_a(3));
  net.pump();
  EXPECT_EQ(net.sent(net.a, MessageType::kInitiation), 2u);
  EXPECT_EQ(net.a.tunnel.size(), 3u);

  // The retry gets through and makes a new session.
  drop_initiations = false;
  Keypair* old = net.peer_of(net.a)->current.get();
  net.run_until(at(last_minute + kRekeyTimeout + kJitter));
  EXPECT_EQ(net.sent(net.a, MessageType::kInitiation), 3u);
  EXPECT_NE(net.peer_of(net.a)->current.get(), old);
  EXPECT_FALSE(net.peer_of(net.a)->sent_lastminute_handshake);
}

// ------------------------------------------------------------------ deadlines

TEST_F(Timers, NextDeadline) {
  // a: new handshake (its data, unanswered so far) at 15 s + jitter, keys at 540 s.
  EXPECT_EQ(net.a.device.next_deadline(), at(kKeepaliveTimeout + kRekeyTimeout + kJitter));
  // b: passive keepalive at 10 s.
  EXPECT_EQ(net.b.device.next_deadline(), at(kKeepaliveTimeout));
  net.run_until(at(kKeepaliveTimeout));
  EXPECT_EQ(net.a.device.next_deadline(), at(kZeroKeyMaterialAfter));
  EXPECT_EQ(net.b.device.next_deadline(), at(kZeroKeyMaterialAfter));
  net.a.device.remove_all_peers();
  EXPECT_EQ(net.a.device.next_deadline(), kNever);
}

// ------------------------------------------------------------------ PeerTimers alone

TEST(PeerTimers, ExpiryOrderAndRearming) {
  PeerTimers t;
  const Nanos now = 1000 * kSecond;
  EXPECT_EQ(t.next_deadline(), kNever);
  EXPECT_EQ(t.expire(now), TimerAction::kNone);

  t.data_sent(now, 7);
  t.data_sent(now + kSecond, 9);  // already armed: unchanged
  EXPECT_EQ(t.next_deadline(), now + kKeepaliveTimeout + kRekeyTimeout + 7);
  t.any_authenticated_packet_received();
  EXPECT_EQ(t.next_deadline(), kNever);

  t.data_received(now);
  EXPECT_TRUE(t.armed_send_keepalive());
  t.any_authenticated_packet_sent();
  EXPECT_FALSE(t.armed_send_keepalive());

  t.handshake_initiated(now, 5);
  t.session_derived(now);
  t.any_authenticated_packet_traversal(now, 3);
  t.data_received(now);
  EXPECT_EQ(t.next_deadline(), now + 3 * kSecond);
  const Nanos late = now + kZeroKeyMaterialAfter;
  std::vector<TimerAction> fired;
  for (TimerAction a; (a = t.expire(late)) != TimerAction::kNone;) fired.push_back(a);
  EXPECT_EQ(fired, (std::vector<TimerAction>{
                       TimerAction::kRetryHandshake, TimerAction::kSendKeepalive,
                       TimerAction::kZeroKeyMaterial, TimerAction::kPersistentKeepalive}));
  EXPECT_EQ(t.handshake_attempts(), 1);
  t.handshake_complete();
  EXPECT_EQ(t.handshake_attempts(), 0);
  EXPECT_EQ(t.next_deadline(), kNever);

  t.handshake_initiated(now, 0);
  t.stop_all();
  EXPECT_EQ(t.next_deadline(), kNever);
}

}  // namespace
}  // namespace faraday::dataplane
