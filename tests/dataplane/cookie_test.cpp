// mac1/mac2, cookie replies and the per-source rate limiter (whitepaper §5.3,
// §5.4.4, §5.4.7): the device under load answers initiations without a valid
// mac2 with a cookie reply, the initiator's retry carries mac2 and completes;
// bad MACs and bad cookie replies are counted; the RateLimiter's bucket, its
// source grouping and its memory bound.
#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "dataplane/ratelimiter.h"
#include "tests/dataplane/harness.h"

namespace faraday::dataplane {
namespace {

using testing::Bytes;
using testing::craft_initiation;
using testing::Datagram;
using testing::drop_changes;
using testing::Fate;
using testing::fixed;
using testing::ipv4_packet;
using testing::kTunA4;
using testing::kTunB4;
using testing::Network;
using testing::Node;
using testing::PrintTo;

constexpr Nanos kJitter = 50 * kMillisecond;
constexpr size_t kInitMac1 = mac1_offset<MessageInitiation>();
constexpr size_t kInitMac2 = mac2_offset<MessageInitiation>();

bool mac2_is_zero(const Datagram& d) {
  return std::all_of(d.bytes.begin() + kInitMac2, d.bytes.begin() + kInitMac2 + kMacSize,
                     [](uint8_t x) { return x == 0; });
}

// ------------------------------------------------------------------ under load

TEST(UnderLoad, CookieReplyThenRetryWithMac2Completes) {
  // b is always under load.
  Network net(fixed(kJitter), fixed(kJitter, /*under_load_threshold=*/0));
  Bytes pkt = ipv4_packet(kTunA4, kTunB4, 60, 1);
  EXPECT_EQ(net.send(net.a, pkt), Verdict::kConsumed);
  net.pump();

  std::vector<Datagram> from_a = net.sent_by(net.a);
  ASSERT_EQ(from_a.size(), 1u);
  EXPECT_TRUE(mac2_is_zero(from_a[0]));
  EXPECT_EQ(net.b.dropped(Drop::kCookieSent), 1u);
  EXPECT_EQ(net.b.counters().cookies_sent, 1u);
  EXPECT_TRUE(net.b.device.under_load());
  std::vector<Datagram> from_b = net.sent_by(net.b);
  ASSERT_EQ(from_b.size(), 1u);
  EXPECT_TRUE(from_b[0].is(MessageType::kCookieReply));
  EXPECT_EQ(from_b[0].destination, net.a.source);
  EXPECT_EQ(from_b[0].receiver(), load_le32(from_a[0].bytes.data() + 4));
  // a took the cookie quietly and has no session yet.
  EXPECT_EQ(net.a.counters().dropped_total(), 0u) << drop_changes({}, net.a.counters());
  EXPECT_EQ(net.peer_of(net.a)->current, nullptr);
  EXPECT_EQ(net.peer_of(net.b)->next, nullptr);
  EXPECT_TRUE(net.b.tunnel.empty());

  // The retry (on the retransmit timer) carries mac2 and gets through.
  net.run_for(kRekeyTimeout + kJitter);
  from_a = net.sent_by(net.a);
  ASSERT_GE(from_a.size(), 2u);
  EXPECT_TRUE(from_a[1].is(MessageType::kInitiation));
  EXPECT_FALSE(mac2_is_zero(from_a[1]));
  ASSERT_EQ(net.b.tunnel.size(), 1u);
  EXPECT_EQ(net.b.tunnel[0], pkt);
  EXPECT_EQ(net.b.dropped(Drop::kCookieSent), 1u);
  EXPECT_EQ(net.b.counters().dropped_total(), 1u) << drop_changes({}, net.b.counters());
  EXPECT_EQ(net.a.counters().handshakes_completed, 1u);
  EXPECT_EQ(net.b.counters().handshakes_completed, 1u);
}

TEST(UnderLoad, ThresholdWithinOneSecond) {
  Network net(fixed(kJitter), fixed(kJitter, /*under_load_threshold=*/2));
  auto initiation = [&] {
    net.clock.advance(25 * kMillisecond);  // past the per-peer flood limit
    return Datagram{craft_initiation(net.a.private_key, net.b.public_key, net.clock.wall(),
                                     net.clock.monotonic()),
                    net.a.source, net.b.source};
  };
  EXPECT_EQ(net.receive(net.b, initiation()), Verdict::kConsumed);
  EXPECT_EQ(net.receive(net.b, initiation()), Verdict::kConsumed);
  EXPECT_FALSE(net.b.device.under_load());
  EXPECT_EQ(net.receive(net.b, initiation()), Verdict::kDrop);  // the third in a second
  EXPECT_TRUE(net.b.device.under_load());
  EXPECT_EQ(net.b.dropped(Drop::kCookieSent), 1u) << drop_changes({}, net.b.counters());
  EXPECT_EQ(net.sent(net.b, MessageType::kResponse), 2u);
  EXPECT_EQ(net.sent(net.b, MessageType::kCookieReply), 1u);

  net.clock.advance(kSecond + 100 * kMillisecond);
  EXPECT_FALSE(net.b.device.under_load());
  EXPECT_EQ(net.receive(net.b, initiation()), Verdict::kConsumed);
  EXPECT_EQ(net.sent(net.b, MessageType::kResponse), 3u);
}

// Datagrams with a bad mac1 are neither counted towards load nor answered.
TEST(UnderLoad, BadMac1DoesNotCountTowardsLoad) {
  Network net(fixed(kJitter), fixed(kJitter, /*under_load_threshold=*/1));
  Bytes bad = craft_initiation(net.a.private_key, net.b.public_key, net.clock.wall(),
                               net.clock.monotonic());
  bad[kInitMac1] ^= 1;
  for (int i = 0; i < 10; ++i) net.receive(net.b, Datagram{bad, net.a.source, {}});
  EXPECT_EQ(net.b.dropped(Drop::kBadMac1), 10u);
  EXPECT_FALSE(net.b.device.under_load());
  EXPECT_TRUE(net.log.empty());
}

struct BadMac1Case {
  const char* name;
  bool under_load;
  bool response;   // else an initiation
  bool wrong_key;  // mac1 made for another public key, else a flipped bit
};

class BadMac1 : public ::testing::TestWithParam<BadMac1Case> {};

TEST_P(BadMac1, DroppedWithoutAnswer) {
  const BadMac1Case& c = GetParam();
  // Only the receiving side is under load, so the other can make a genuine
  // message for it.
  const uint32_t threshold = c.under_load ? 0 : 64;
  Network net(fixed(kJitter, c.response ? threshold : 64),
              fixed(kJitter, c.response ? 64 : threshold));
  Node& to = c.response ? net.a : net.b;
  Bytes msg;
  size_t mac1_off;
  if (c.response) {
    // b's genuine response to a's initiation, intercepted.
    std::vector<Datagram> held;
    net.filter = [&](const Node&, Datagram& d) {
      if (d.is(MessageType::kResponse)) held.push_back(d);
      return d.is(MessageType::kResponse) ? Fate::kDrop : Fate::kDeliver;
    };
    net.send(net.a, ipv4_packet(kTunA4, kTunB4, 60));
    net.pump();
    ASSERT_EQ(held.size(), 1u);
    msg = held[0].bytes;
    mac1_off = mac1_offset<MessageResponse>();
  } else {
    msg = craft_initiation(net.a.private_key, net.b.public_key, net.clock.wall(),
                           net.clock.monotonic());
    mac1_off = kInitMac1;
  }
  if (c.wrong_key) {
    CookieMaker other;
    other.set_peer_public_key(crypto::x25519_public(crypto::x25519_generate_private()));
    other.add_macs(msg, mac1_off, net.clock.monotonic());
  } else {
    msg[mac1_off + 5] ^= 0x10;
  }
  net.log.clear();
  Counters before = to.counters();
  EXPECT_EQ(net.receive(to, Datagram{msg, net.other(to).source, to.source}), Verdict::kDrop);
  EXPECT_EQ(to.dropped(Drop::kBadMac1), before.dropped(Drop::kBadMac1) + 1)
      << drop_changes(before, to.counters());
  EXPECT_EQ(to.counters().dropped_total(), before.dropped_total() + 1)
      << drop_changes(before, to.counters());
  EXPECT_TRUE(net.log.empty());  // no cookie reply, no response
  EXPECT_EQ(to.counters().handshakes_completed, 0u);
}

INSTANTIATE_TEST_SUITE_P(
    Core, BadMac1,
    ::testing::Values(BadMac1Case{"initiation_flipped", false, false, false},
                      BadMac1Case{"initiation_wrong_key", false, false, true},
                      BadMac1Case{"initiation_flipped_under_load", true, false, false},
                      BadMac1Case{"initiation_wrong_key_under_load", true, false, true},
                      BadMac1Case{"response_flipped", false, true, false},
                      BadMac1Case{"response_wrong_key", false, true, true},
                      BadMac1Case{"response_flipped_under_load", true, true, false}),
    [](const auto& info) { return std::string(info.param.name); });

struct CookieReplyCase {
  const char* name;
  void (*mangle)(Bytes&);
  Drop reason;
};

TEST(CookieReply, WrongOrCorruptedRepliesAreDroppedAndCounted) {
  Network net(fixed(kJitter), fixed(kJitter, /*under_load_threshold=*/0));
  std::vector<Datagram> replies;
  bool hold = true;
  net.filter = [&](const Node&, Datagram& d) {
    if (hold && d.is(MessageType::kCookieReply)) {
      replies.push_back(d);
      return Fate::kDrop;
    }
    return Fate::kDeliver;
  };
  net.send(net.a, ipv4_packet(kTunA4, kTunB4, 60));
  net.pump();
  ASSERT_EQ(replies.size(), 1u);
  const Datagram first = replies[0];

  const std::vector<CookieReplyCase> cases = {
      {"wrong_receiver", [](Bytes& b) { b[4] ^= 0x01; }, Drop::kUnexpectedResponse},
      {"cookie_flipped", [](Bytes& b) { b[40] ^= 0x01; }, Drop::kBadCookieReply},
      {"tag_flipped", [](Bytes& b) { b[63] ^= 0x80; }, Drop::kBadCookieReply},
      {"nonce_flipped", [](Bytes& b) { b[8] ^= 0x01; }, Drop::kBadCookieReply},
      {"truncated", [](Bytes& b) { b.pop_back(); }, Drop::kBadSize},
      {"extended", [](Bytes& b) { b.push_back(0); }, Drop::kBadSize},
      {"reserved", [](Bytes& b) { b[2] = 1; }, Drop::kUnknownType},
  };
  for (const CookieReplyCase& c : cases) {
    SCOPED_TRACE(c.name);
    Datagram d = first;
    c.mangle(d.bytes);
    Counters before = net.a.counters();
    EXPECT_EQ(net.receive(net.a, d), Verdict::kDrop);
    EXPECT_EQ(net.a.dropped(c.reason), before.dropped(c.reason) + 1)
        << drop_changes(before, net.a.counters());
    EXPECT_EQ(net.a.counters().dropped_total(), before.dropped_total() + 1);
  }
  // None of them gave a a cookie: its retry still has no mac2 and gets
  // another cookie reply.
  net.run_for(kRekeyTimeout + kJitter);
  ASSERT_EQ(replies.size(), 2u);
  EXPECT_TRUE(mac2_is_zero(net.sent_by(net.a).back()));
  EXPECT_EQ(net.b.dropped(Drop::kCookieSent), 2u);

  // The first reply is stale now: the retry replaced the index it names.
  Counters before = net.a.counters();
  EXPECT_EQ(net.receive(net.a, first), Verdict::kDrop);
  EXPECT_EQ(net.a.dropped(Drop::kUnexpectedResponse),
            before.dropped(Drop::kUnexpectedResponse) + 1);
  // The current one is taken once.
  EXPECT_EQ(net.receive(net.a, replies[1]), Verdict::kConsumed);
  EXPECT_EQ(net.a.dropped(Drop::kBadCookieReply), 3u);
  EXPECT_EQ(net.receive(net.a, replies[1]), Verdict::kDrop);
  EXPECT_EQ(net.a.dropped(Drop::kBadCookieReply), 4u);

  hold = false;
  net.run_for(kRekeyTimeout + kJitter);
  std::vector<Datagram> initiations;
  for (const Datagram& d : net.sent_by(net.a))
    if (d.is(MessageType::kInitiation)) initiations.push_back(d);
  ASSERT_EQ(initiations.size(), 3u);
  EXPECT_FALSE(mac2_is_zero(initiations[2]));
  EXPECT_EQ(net.b.tunnel.size(), 1u);
  EXPECT_EQ(net.b.dropped(Drop::kCookieSent), 2u);
}

// The cookie is bound to the initiator's address and port: after a moves, its
// mac2 is no good and it needs a new cookie.
TEST(CookieReply, BoundToTheSourceAddress) {
  Network net(fixed(kJitter), fixed(kJitter, /*under_load_threshold=*/0));
  net.send(net.a, ipv4_packet(kTunA4, kTunB4, 60));
  net.pump();
  EXPECT_EQ(net.b.dropped(Drop::kCookieSent), 1u);
  net.move(net.a, "10.0.0.1:1111");  // a NAT rebinding
  net.run_for(kRekeyTimeout + kJitter);
  EXPECT_FALSE(mac2_is_zero(net.sent_by(net.a)[1]));
  EXPECT_EQ(net.b.dropped(Drop::kCookieSent), 2u);
  EXPECT_TRUE(net.b.tunnel.empty());
  net.run_for(kRekeyTimeout + kJitter);
  EXPECT_EQ(net.b.dropped(Drop::kCookieSent), 2u);
  EXPECT_EQ(net.b.tunnel.size(), 1u);
  EXPECT_EQ(net.peer_of(net.b)->endpoint, net.a.source);
}

// Under load, initiations with a valid mac2 still pass the per-source rate
// limiter: a burst of 5, then 50 a second.
TEST(UnderLoad, RateLimitedPerSource) {
  Network net(fixed(kJitter), fixed(kJitter, /*under_load_threshold=*/0));
  CookieMaker maker;  // a's side, driven by hand
  maker.set_peer_public_key(net.b.public_key);
  auto initiation = [&] {
    net.clock.advance_wall(20 * kMillisecond);  // always a newer timestamp
    return Datagram{craft_initiation(net.a.private_key, net.b.public_key, net.clock.wall(),
                                     net.clock.monotonic(), maker),
                    net.a.source, net.b.source};
  };
  EXPECT_EQ(net.receive(net.b, initiation()), Verdict::kDrop);
  std::vector<Datagram> from_b = net.sent_by(net.b);
  ASSERT_EQ(from_b.size(), 1u);
  MessageCookieReply reply;
  std::memcpy(&reply, from_b[0].bytes.data(), sizeof(reply));
  ASSERT_TRUE(maker.consume_reply(reply, net.clock.monotonic()));

  std::vector<Datagram> burst;
  for (int i = 0; i < 10; ++i) burst.push_back(initiation());
  Counters before = net.b.counters();
  net.receive(net.b, burst);
  EXPECT_EQ(net.b.dropped(Drop::kRateLimited), 5u) << drop_changes(before, net.b.counters());
  // Of the five let through, one is answered and four are a flood from one peer.
  EXPECT_EQ(net.b.dropped(Drop::kInitiationFlood), 4u) << drop_changes(before, net.b.counters());
  EXPECT_EQ(net.sent(net.b, MessageType::kResponse), 1u);

  net.clock.advance(19 * kMillisecond);
  EXPECT_EQ(net.receive(net.b, initiation()), Verdict::kDrop);
  EXPECT_EQ(net.b.dropped(Drop::kRateLimited), 6u);
  net.clock.advance(kMillisecond);
  EXPECT_EQ(net.receive(net.b, initiation()), Verdict::kConsumed);
  EXPECT_EQ(net.sent(net.b, MessageType::kResponse), 2u);
}

// ------------------------------------------------------------------ CookieChecker / CookieMaker

class Macs : public ::testing::Test {
 protected:
  Macs() {
    responder_key = crypto::x25519_public(crypto::x25519_generate_private());
    checker.set_public_key(responder_key);
    maker.set_peer_public_key(responder_key);
    msg.assign(sizeof(MessageInitiation), 0x33);
    store_le32(msg.data(), 1);
  }
  // Stamps msg as sent at `t`; true if it then carries a non-zero mac2.
  bool stamp(Nanos t) {
    maker.add_macs(msg, kInitMac1, t);
    return !std::all_of(msg.begin() + kInitMac2, msg.end(), [](uint8_t x) { return x == 0; });
  }
  void get_cookie(Nanos t) {
    stamp(t);
    MessageCookieReply reply;
    checker.make_reply(reply, msg, kInitMac1, source, t);
    ASSERT_TRUE(maker.consume_reply(reply, t));
  }

  crypto::Key responder_key;
  CookieChecker checker;
  CookieMaker maker;
  Bytes msg;
  Endpoint source = testing::endpoint("198.51.100.7:4242");
  const Nanos t0 = 5000 * kSecond;
};

TEST_F(Macs, Mac1CoversEverythingBeforeIt) {
  stamp(t0);
  EXPECT_TRUE(checker.check_mac1(msg, kInitMac1));
  for (size_t i : {size_t{0}, size_t{4}, size_t{50}, kInitMac1 - 1, kInitMac1}) {
    Bytes copy = msg;
    copy[i] ^= 1;
    EXPECT_FALSE(checker.check_mac1(copy, kInitMac1)) << i;
  }
  Bytes copy = msg;
  copy[kInitMac2] ^= 1;  // mac2 is not covered by mac1
  EXPECT_TRUE(checker.check_mac1(copy, kInitMac1));
  CookieChecker cleared = checker;
  cleared.clear();
  EXPECT_FALSE(cleared.check_mac1(msg, kInitMac1));
}

TEST_F(Macs, CookieLifetime) {
  EXPECT_FALSE(stamp(t0));  // no cookie yet: mac2 zero
  EXPECT_FALSE(checker.check_mac2(msg, kInitMac2, source, t0));
  get_cookie(t0);
  EXPECT_TRUE(stamp(t0 + kSecond));
  EXPECT_TRUE(checker.check_mac2(msg, kInitMac2, source, t0 + kSecond));
  EXPECT_FALSE(
      checker.check_mac2(msg, kInitMac2, testing::endpoint("198.51.100.7:4243"), t0 + kSecond));
  EXPECT_FALSE(
      checker.check_mac2(msg, kInitMac2, testing::endpoint("198.51.100.8:4242"), t0 + kSecond));
  // The maker uses a cookie for 120 - 5 s; the checker mints with a secret
  // that lives 120 s.
  const Nanos max_use = kCookieSecretMaxAge - kCookieSecretLatency;
  EXPECT_TRUE(stamp(t0 + max_use - 1));
  EXPECT_TRUE(checker.check_mac2(msg, kInitMac2, source, t0 + max_use - 1));
  EXPECT_FALSE(stamp(t0 + max_use));
  // A mac2 made just before the secret rotates fails just after.
  get_cookie(t0 + max_use);  // secret still the one born at t0
  EXPECT_TRUE(stamp(t0 + max_use + 1));
  EXPECT_TRUE(checker.check_mac2(msg, kInitMac2, source, t0 + kCookieSecretMaxAge - 1));
  EXPECT_FALSE(checker.check_mac2(msg, kInitMac2, source, t0 + kCookieSecretMaxAge));
}

TEST_F(Macs, ReplyOnlyForTheLastMessageAndOnce) {
  MessageCookieReply reply{};
  EXPECT_FALSE(maker.consume_reply(reply, t0));  // nothing sent yet
  stamp(t0);
  checker.make_reply(reply, msg, kInitMac1, source, t0);
  EXPECT_EQ(load_le32(reply.type), 3u);
  EXPECT_EQ(std::memcmp(reply.receiver, msg.data() + 4, 4), 0);
  MessageCookieReply stale = reply;
  msg[10] ^= 1;
  stamp(t0 + 1);  // a newer message: the reply to the old one no longer fits
  EXPECT_FALSE(maker.consume_reply(stale, t0 + 1));
  checker.make_reply(reply, msg, kInitMac1, source, t0 + 1);
  EXPECT_TRUE(maker.consume_reply(reply, t0 + 1));
  EXPECT_FALSE(maker.consume_reply(reply, t0 + 1));
}

// ------------------------------------------------------------------ RateLimiter

TEST(RateLimiter, BurstOfFiveThenFiftyPerSecond) {
  RateLimiter rl;
  const Endpoint src = testing::endpoint("192.0.2.1:1000");
  const Nanos t = 100 * kSecond;
  for (int i = 0; i < 5; ++i) EXPECT_TRUE(rl.allow(src, t)) << i;
  EXPECT_FALSE(rl.allow(src, t));
  EXPECT_FALSE(rl.allow(src, t + 19 * kMillisecond));
  EXPECT_TRUE(rl.allow(src, t + 20 * kMillisecond));
  EXPECT_FALSE(rl.allow(src, t + 20 * kMillisecond));
  int allowed = 0;
  for (Nanos ms = 21; ms <= 1020; ++ms) allowed += rl.allow(src, t + ms * kMillisecond);
  EXPECT_EQ(allowed, 50);
  // Idle refills the burst, never more.
  const Nanos later = t + 10 * kSecond;
  for (int i = 0; i < 5; ++i) EXPECT_TRUE(rl.allow(src, later)) << i;
  EXPECT_FALSE(rl.allow(src, later));
}

struct SourcesCase {
  const char* name;
  const char* first;
  const char* second;
  bool shared;  // same bucket
};

class RateLimiterSources : public ::testing::TestWithParam<SourcesCase> {};

TEST_P(RateLimiterSources, Grouping) {
  const SourcesCase& c = GetParam();
  RateLimiter rl;
  const Nanos t = 100 * kSecond;
  for (int i = 0; i < 5; ++i) EXPECT_TRUE(rl.allow(testing::endpoint(c.first), t));
  EXPECT_FALSE(rl.allow(testing::endpoint(c.first), t));
  EXPECT_EQ(rl.allow(testing::endpoint(c.second), t), !c.shared);
}

INSTANTIATE_TEST_SUITE_P(
    Core, RateLimiterSources,
    ::testing::Values(
        SourcesCase{"v4_other_port", "192.0.2.1:1", "192.0.2.1:2", true},
        SourcesCase{"v4_other_address", "192.0.2.1:1", "192.0.2.2:1", false},
        SourcesCase{"v4_other_slash8", "192.0.2.1:1", "10.0.2.1:1", false},
        SourcesCase{"v6_same_64", "[2001:db8:1:2::1]:1", "[2001:db8:1:2:ffff:ffff:ffff:ffff]:9",
                    true},
        SourcesCase{"v6_next_64", "[2001:db8:1:2::1]:1", "[2001:db8:1:3::1]:1", false},
        SourcesCase{"v6_other_48", "[2001:db8:1:2::1]:1", "[2001:db8:2:2::1]:1", false},
        SourcesCase{"v6_vs_v4", "[::]:1", "0.0.0.0:1", false},
        SourcesCase{"v4_vs_v6", "0.0.0.0:1", "[::]:1", false}),
    [](const auto& info) { return std::string(info.param.name); });

// No IPv6 /64 may share a bucket with an IPv4 address, whatever its bits.
TEST(RateLimiter, FamiliesNeverShareABucket) {
  for (const char* v4 : {"192.0.2.1:1", "10.0.0.1:1", "0.0.0.0:1", "255.255.255.255:1"}) {
    SCOPED_TRACE(v4);
    RateLimiter rl;
    const Nanos t = 100 * kSecond;
    const Endpoint a = testing::endpoint(v4);
    for (int i = 0; i < 5; ++i) EXPECT_TRUE(rl.allow(a, t));
    EXPECT_FALSE(rl.allow(a, t));
    // IPv6 prefixes whose first 64 bits, as a machine word, differ from the
    // IPv4 address (as a machine word) in one or two high bits: any tag that
    // merely sets or flips bits would collide with one of them.
    uint32_t v4_word;
    std::memcpy(&v4_word, a.addr.data(), 4);
    for (int hi = 32; hi < 64; ++hi) {
      for (int lo : {-1, 32, 40, 48, 56}) {
        uint64_t word = uint64_t{v4_word} ^ (uint64_t{1} << hi);
        if (lo >= 0 && lo != hi) word ^= uint64_t{1} << lo;
        Endpoint v6;
        v6.family = AF_INET6;
        v6.port = 1;
        std::memcpy(v6.addr.data(), &word, 8);
        ASSERT_TRUE(rl.allow(v6, t)) << hi << " " << lo;
      }
    }
  }
}

TEST(RateLimiter, MemoryIsBounded) {
  RateLimiter rl;
  const Nanos t = 100 * kSecond;
  auto source = [](uint32_t i) {
    Endpoint ep;
    ep.family = AF_INET;
    ep.port = 1;
    ep.addr[0] = 10;
    ep.addr[1] = static_cast<uint8_t>(i >> 16);
    ep.addr[2] = static_cast<uint8_t>(i >> 8);
    ep.addr[3] = static_cast<uint8_t>(i);
    return ep;
  };
  for (uint32_t i = 0; i < RateLimiter::kMaxEntries; ++i) ASSERT_TRUE(rl.allow(source(i), t));
  EXPECT_EQ(rl.size(), RateLimiter::kMaxEntries);
  EXPECT_FALSE(rl.allow(source(RateLimiter::kMaxEntries), t));  // full: new sources refused
  EXPECT_EQ(rl.size(), RateLimiter::kMaxEntries);
  EXPECT_TRUE(rl.allow(source(0), t));  // known ones keep their bucket
  // Entries idle for more than a second are collected.
  const Nanos later = t + RateLimiter::kIdle + 1;
  EXPECT_TRUE(rl.allow(source(RateLimiter::kMaxEntries), later));
  EXPECT_EQ(rl.size(), 1u);
}

}  // namespace
}  // namespace faraday::dataplane
