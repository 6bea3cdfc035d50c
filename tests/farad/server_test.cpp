// server_test.cpp: farad and FaradClient over real mutual TLS on loopback:
// joins pushed to members, queries (with the post-restart UNKNOWN window),
// expiry, resuming with a cursor, a restart's new epoch and snapshot, identity
// binding, the same node's newer connection winning, coalescing. Trust
// (revocation, a second holder of a name, disconnect grace): trust_test.cpp.
#include <fmt/core.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <set>

#include "harness.h"

namespace faraday::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::UnorderedElementsAre;

bool same(const proto::NodeInfo& a, const proto::NodeInfo& b) {
  return a.SerializeAsString() == b.SerializeAsString();
}

proto::NodeInfo named(proto::NodeInfo info, const std::string& name) {
  info.set_name(name);
  return info;
}

TEST(FaradServer, JoinIsPushedToTheOtherMembers) {
  Cluster c;
  c.start_server();
  LogCapture logs;
  auto& a = c.node("alpha", 1);
  ASSERT_TRUE(c.run_until([&] { return a.client->joined(); }));
  auto& b = c.node("beta", 2);
  ASSERT_TRUE(c.run_until([&] { return a.peers.count("beta") && b.peers.count("alpha"); }));
  // Each learns the other exactly as announced, with the certificate's name.
  EXPECT_TRUE(same(a.peers["beta"], named(node_info(2), "beta")));
  EXPECT_TRUE(same(b.peers["alpha"], named(node_info(1), "alpha")));
  // beta's first join was a snapshot; nobody is told about itself.
  ASSERT_EQ(b.joins.size(), 1u);
  EXPECT_TRUE(b.joins[0].snapshot());
  EXPECT_EQ(b.joins[0].name(), "beta");
  EXPECT_EQ(a.peers.count("alpha"), 0u);
  EXPECT_EQ(b.peers.count("beta"), 0u);

  auto& g = c.node("gamma", 3);
  ASSERT_TRUE(c.run_until(
      [&] { return a.peers.count("gamma") && b.peers.count("gamma") && g.peers.size() == 2; }));
  EXPECT_EQ(c.server().membership().size(), 3u);
  // Everyone is at farad's newest cursor, in farad's epoch.
  for (TestNode* n : {&a, &b, &g}) {
    EXPECT_EQ(n->client->epoch(), c.server().membership().epoch());
    EXPECT_EQ(n->client->cursor(), c.server().membership().cursor());
  }
  // One structured line per membership change.
  const std::string& text = logs.text();
  EXPECT_THAT(text, HasSubstr("membership event=join node=alpha"));
  EXPECT_THAT(text, HasSubstr("membership event=join node=gamma"));
  EXPECT_THAT(text, HasSubstr("allowed_ips=[10.100.0.3/32,10.200.3.0/24]"));
  size_t lines = 0;
  for (size_t at = 0; (at = text.find("membership event=", at)) != std::string::npos; ++at) ++lines;
  EXPECT_EQ(lines, 3u);
}

TEST(FaradServer, UpdatesArePushedAndUnchangedRejoinsAreNot) {
  Cluster c;
  c.start_server();
  auto& a = c.node("alpha", 1);
  auto& b = c.node("beta", 2);
  ASSERT_TRUE(c.run_until([&] { return a.peers.count("beta") && b.peers.count("alpha"); }));
  uint64_t before = c.server().membership().cursor();

  proto::NodeInfo moved = node_info(1);
  *moved.mutable_underlay(0) = *proto::parse_endpoint("198.51.100.7:4000");
  bool acked = false;
  a.client->update(moved, [&](const control::FaradClient::Reply& r) { acked = r.ok; });
  ASSERT_TRUE(c.run_until([&] {
    return acked && proto::endpoint_text(b.peers["alpha"].underlay(0)) == "198.51.100.7:4000";
  }));
  EXPECT_EQ(c.server().membership().cursor(), before + 1);

  // alpha reconnects and re-joins with the same info: no new cursor, no push.
  size_t pushes = b.pushes.size();
  a.client->stop();
  a.client->start();
  ASSERT_TRUE(c.run_until([&] { return a.joins.size() == 2; }));
  c.run_for(100ms);
  EXPECT_EQ(c.server().membership().cursor(), before + 1);
  EXPECT_EQ(b.pushes.size(), pushes);
  EXPECT_FALSE(a.joins[1].snapshot());
}

TEST(FaradServer, QueryIsUnknownUntilUpLongerThanTheExpiryWindow) {
  Cluster c;
  c.options.expiry = 1500ms;
  c.start_server();
  auto start = Clock::now();
  auto& a = c.node("alpha", 1);
  auto& b = c.node("beta", 2);
  ASSERT_TRUE(c.run_until([&] { return a.client->joined() && b.client->joined(); }));
  EXPECT_EQ(c.query(a, "beta"), proto::PRESENT);
  EXPECT_EQ(c.query(a, "alpha"), proto::PRESENT);
  // Never seen, but farad has been up less than the window: it cannot know.
  ASSERT_LT(Clock::now() - start, 1s);
  EXPECT_EQ(c.query(a, "ghost"), proto::UNKNOWN);
  // A node that left is known to be gone, even inside the window.
  bool left = false;
  b.client->leave([&](const control::FaradClient::Reply& r) { left = r.ok; });
  ASSERT_TRUE(c.run_until([&] { return left; }));
  EXPECT_EQ(c.query(a, "beta"), proto::ABSENT);
  EXPECT_EQ(c.query(a, "ghost"), proto::UNKNOWN);
  // Once up longer than the window, a non-member is ABSENT. alpha heartbeats
  // (every expiry/3) so it stays PRESENT.
  c.run_until([&] { return Clock::now() - start > 1700ms; }, 3s);
  EXPECT_EQ(c.query(a, "ghost"), proto::ABSENT);
  EXPECT_EQ(c.query(a, "alpha"), proto::PRESENT);
  EXPECT_GE(a.client->stats().heartbeats, 2u);
}

TEST(FaradServer, SilentMembersExpireAndAreNotHandedToNewMembers) {
  Cluster c;
  c.options.expiry = 1s;
  c.options.idle_timeout = 10s;  // keep beta's connection open while it is silent
  c.start_server();
  LogCapture logs;
  auto& a = c.node("alpha", 1);  // heartbeats every expiry/3
  auto& b = c.node("beta", 2, true, [](auto& o) { o.heartbeat = 1h; });
  auto& d = c.node("delta", 4);
  ASSERT_TRUE(c.run_until([&] { return a.peers.count("beta") && a.peers.count("delta"); }));
  d.client->stop();  // delta dies: no more messages
  ASSERT_TRUE(c.run_until([&] { return !c.server().membership().find("delta"); }, 3s));
  EXPECT_TRUE(c.server().membership().find("alpha"));
  EXPECT_EQ(c.query(a, "delta"), proto::ABSENT);
  EXPECT_THAT(logs.text(), HasSubstr("membership event=expire node=delta"));

  // beta is still connected but silent: it expires too; a member that joins
  // now is not told about either.
  ASSERT_TRUE(c.run_until([&] { return !c.server().membership().find("beta"); }, 3s));
  auto& g = c.node("gamma", 3);
  ASSERT_TRUE(c.run_until([&] { return g.client->joined() && g.peers.count("alpha"); }));
  c.run_for(50ms);
  EXPECT_EQ(g.peers.count("beta"), 0u);
  EXPECT_EQ(g.peers.count("delta"), 0u);

  // When beta speaks again (a heartbeat), farad says NOT_MEMBER and the client
  // joins again, which is pushed to everyone as a join.
  b.client->heartbeat();
  ASSERT_TRUE(c.run_until([&] { return g.peers.count("beta") == 1; }));
  EXPECT_EQ(b.joins.size(), 2u);
  EXPECT_EQ(c.query(a, "beta"), proto::PRESENT);
}

TEST(FaradServer, ReconnectWithCursorGetsExactlyTheMissedChanges) {
  Cluster c;
  c.start_server();
  auto& a = c.node("alpha", 1);
  auto& b = c.node("beta", 2);
  auto& g = c.node("gamma", 3);
  ASSERT_TRUE(c.run_until([&] { return a.peers.size() == 2 && b.peers.size() == 2; }));
  uint64_t cursor = a.client->cursor();
  uint64_t epoch = a.client->epoch();
  a.client->stop();
  ASSERT_TRUE(c.run_until([&] { return !a.client->connected(); }));

  // While alpha is away: delta joins, beta changes (twice), gamma does nothing.
  auto& d = c.node("delta", 4);
  ASSERT_TRUE(c.run_until([&] { return d.client->joined() && g.peers.count("delta"); }));
  proto::NodeInfo b1 = node_info(2), b2 = node_info(2);
  *b1.mutable_underlay(0) = *proto::parse_endpoint("198.51.100.1:1");
  *b2.mutable_underlay(0) = *proto::parse_endpoint("198.51.100.2:2");
  b.client->update(b1);
  b.client->update(b2);
  ASSERT_TRUE(c.run_until([&] { return same(g.peers["beta"], named(b2, "beta")); }));

  size_t seen = a.pushed_names.size();
  a.client->start();
  ASSERT_TRUE(c.run_until([&] { return a.client->cursor() == c.server().membership().cursor(); }));
  c.run_for(50ms);
  ASSERT_EQ(a.joins.size(), 2u);
  EXPECT_FALSE(a.joins[1].snapshot());
  EXPECT_EQ(a.client->epoch(), epoch);
  std::vector<std::string> missed(a.pushed_names.begin() + static_cast<long>(seen),
                                  a.pushed_names.end());
  // beta once, as it is now; delta; nothing about gamma.
  EXPECT_THAT(missed, UnorderedElementsAre("beta", "delta"));
  EXPECT_TRUE(same(a.peers["beta"], named(b2, "beta")));
  EXPECT_GT(a.client->cursor(), cursor);
}

TEST(FaradServer, RestartDrawsANewEpochAndSendsASnapshot) {
  Cluster c;
  c.options.expiry = 1500ms;
  c.start_server();
  auto& a = c.node("alpha", 1);
  auto& b = c.node("beta", 2);
  auto& g = c.node("gamma", 3);
  ASSERT_TRUE(c.run_until([&] { return a.peers.size() == 2 && b.peers.size() == 2; }));
  uint64_t old_epoch = a.client->epoch();
  g.client->stop();  // gamma will not come back after the restart

  c.stop_server();
  ASSERT_TRUE(c.run_until([&] { return !a.client->connected() && !b.client->connected(); }));
  auto restarted = Clock::now();
  c.start_server();
  ASSERT_TRUE(c.run_until([&] { return a.joins.size() == 2 && b.joins.size() == 2; }));
  EXPECT_NE(a.client->epoch(), old_epoch);
  EXPECT_EQ(a.client->epoch(), c.server().membership().epoch());
  EXPECT_TRUE(a.joins[1].snapshot());
  EXPECT_TRUE(b.joins[1].snapshot());
  // The snapshot rebuilds each member's view from cursor 0 of the new epoch.
  size_t a_seen = a.pushed_names.size();
  ASSERT_TRUE(c.run_until([&] {
    return a.client->cursor() == c.server().membership().cursor() &&
           b.client->cursor() == c.server().membership().cursor();
  }));
  EXPECT_EQ(c.server().membership().size(), 2u);
  EXPECT_TRUE(std::count(a.pushed_names.begin(), a.pushed_names.end(), "beta") >= 2);
  (void)a_seen;
  // gamma was a member before the restart and has not re-joined: UNKNOWN while
  // farad has been up less than the window, ABSENT after.
  ASSERT_LT(Clock::now() - restarted, 1s);
  EXPECT_EQ(c.query(a, "gamma"), proto::UNKNOWN);
  EXPECT_EQ(c.query(a, "beta"), proto::PRESENT);
  c.run_until([&] { return Clock::now() - restarted > 1700ms; }, 3s);
  EXPECT_EQ(c.query(a, "gamma"), proto::ABSENT);
  EXPECT_EQ(c.query(a, "beta"), proto::PRESENT);
}

TEST(FaradServer, ANodeCanOnlyRegisterItsOwnEntry) {
  Cluster c;
  c.start_server();
  auto& a = c.node("alpha", 1);
  auto& w = c.node("watcher", 9);
  ASSERT_TRUE(c.run_until([&] { return w.peers.count("alpha"); }));

  // mallory presents alpha's WireGuard key: refused.
  proto::NodeInfo stolen_key = node_info(5);
  stolen_key.set_public_key(node_info(1).public_key());
  auto& m1 = c.node_with("mallory", c.pki.issue("mallory"), stolen_key, true);
  ASSERT_TRUE(c.run_until([&] { return !m1.errors.empty(); }));
  EXPECT_EQ(m1.errors[0].code(), proto::Error::KEY_IN_USE);
  EXPECT_FALSE(m1.client->joined());
  m1.client->stop();

  // mallory2 claims to be alpha in NodeInfo.name: refused.
  proto::NodeInfo claims = node_info(6);
  claims.set_name("alpha");
  auto& m2 = c.node_with("mallory2", c.pki.issue("mallory2"), claims, true);
  ASSERT_TRUE(c.run_until([&] { return !m2.errors.empty(); }));
  EXPECT_EQ(m2.errors[0].code(), proto::Error::IDENTITY_MISMATCH);
  m2.client->stop();

  // mallory3 announces a prefix covering alpha's overlay address: refused.
  proto::NodeInfo overlap = node_info(7);
  *overlap.mutable_allowed_ips(0) = *proto::parse_prefix("10.100.0.0/24");
  auto& m3 = c.node_with("mallory3", c.pki.issue("mallory3"), overlap, true);
  ASSERT_TRUE(c.run_until([&] { return !m3.errors.empty(); }));
  EXPECT_EQ(m3.errors[0].code(), proto::Error::ALLOWED_IPS_IN_USE);
  m3.client->stop();

  c.run_for(50ms);
  EXPECT_EQ(c.server().membership().size(), 2u);
  EXPECT_TRUE(same(c.server().membership().find("alpha")->info, named(node_info(1), "alpha")));
  EXPECT_TRUE(same(w.peers["alpha"], named(node_info(1), "alpha")));
  EXPECT_EQ(w.peers.size(), 1u);
  EXPECT_EQ(c.server().counters().request_errors[proto::Error::KEY_IN_USE], 1u);
  (void)a;
}

TEST(FaradServer, TheNewerConnectionOfTheSameNodeWins) {
  Cluster c;
  c.options.disconnect_grace = 100ms;
  c.start_server();
  LogCapture logs;
  auto& w = c.node("watcher", 9);
  Identity shared = c.pki.issue("alpha");
  Identity copy = copy_of(shared);
  auto& old_conn = c.node_with("alpha", std::move(shared), node_info(1), true,
                               [](auto& o) { o.backoff_min = o.backoff_max = 10s; });
  ASSERT_TRUE(c.run_until([&] { return old_conn.client->joined() && w.peers.count("alpha"); }));

  // The same node connects again with the same key (say, it restarted, or
  // moved to another underlay address) while farad still holds the old one.
  proto::NodeInfo moved = node_info(1);
  *moved.mutable_underlay(0) = *proto::parse_endpoint("198.51.100.9:51820");
  auto& new_conn = c.node_with("alpha", std::move(copy), moved, true);
  ASSERT_TRUE(c.run_until([&] {
    return new_conn.client->joined() && !old_conn.client->connected() &&
           same(w.peers["alpha"], named(moved, "alpha"));
  }));
  ASSERT_FALSE(old_conn.errors.empty());
  EXPECT_EQ(old_conn.errors[0].code(), proto::Error::REPLACED);
  EXPECT_EQ(c.server().membership().size(), 2u);
  EXPECT_EQ(c.server().counters().close(farad::CloseReason::kReplaced), 1u);
  EXPECT_THAT(logs.text(), HasSubstr("node=alpha: replaced by a newer connection from"));
  // The replaced connection is not the holder any more: its close starts no
  // disconnect grace, and alpha stays a member.
  c.run_for(300ms);
  EXPECT_EQ(c.server().counters().disconnected, 0u);
  EXPECT_TRUE(c.server().membership().find("alpha"));
}

TEST(FaradServer, ChangesAreCoalescedPerConnection) {
  Cluster c;
  c.options.push_delay = 300ms;
  c.start_server();
  auto& a = c.node("alpha", 1);
  auto& b = c.node("beta", 2);
  ASSERT_TRUE(c.run_until([&] { return a.peers.count("beta") && b.peers.count("alpha"); }));
  c.run_for(400ms);
  size_t pushes = a.pushes.size();
  size_t names = a.pushed_names.size();
  // beta changes ten times in a burst: alpha gets one entry, the last state.
  proto::NodeInfo info = node_info(2);
  for (int i = 1; i <= 10; ++i) {
    *info.mutable_underlay(0) = *proto::parse_endpoint(fmt::format("198.51.100.{}:1", i));
    b.client->update(info);
  }
  ASSERT_TRUE(c.run_until([&] { return same(a.peers["beta"], named(info, "beta")); }));
  c.run_for(400ms);
  EXPECT_EQ(a.pushes.size(), pushes + 1);
  EXPECT_EQ(a.pushed_names.size(), names + 1);

  // Thirty nodes join at once: alpha hears of all of them in a few pushes.
  pushes = a.pushes.size();
  std::vector<TestNode*> many;
  for (int i = 0; i < 30; ++i) many.push_back(&c.node(fmt::format("n{}", i), 100 + i));
  ASSERT_TRUE(c.run_until([&] { return a.peers.size() == 31; }));
  EXPECT_LE(a.pushes.size() - pushes, 5u);
}

}  // namespace
}  // namespace faraday::testing
