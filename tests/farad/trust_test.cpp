// trust_test.cpp: farad's trust decisions while a certificate is in use, over
// real mutual TLS on loopback (farad.proto, Sessions 7 and 8): a second holder
// of a live node's certificate is refused and disturbs nothing; a revoked
// member (connected or not) is removed and every node is told; a certificate
// that expires while connected is dropped; a member whose connection closes
// without Leave is ABSENT after the disconnect grace, not the expiry window.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "harness.h"

namespace faraday::testing {
namespace {

using ::testing::HasSubstr;

bool holds_key(const TestNode& n, const std::string& name, const proto::NodeInfo& info) {
  auto it = n.peers.find(name);
  return it != n.peers.end() && it->second.public_key() == info.public_key();
}

TEST(FaradTrust, ASecondHolderWithAnotherKeyIsRefusedWhileTheHolderLives) {
  Cluster c;
  c.start_server();
  LogCapture logs;
  auto& w = c.node("watcher", 9);
  Identity alpha = c.pki.issue("alpha");
  Identity stolen = copy_of(alpha);
  auto& holder = c.node_with("alpha", std::move(alpha), node_info(1), true);
  ASSERT_TRUE(c.run_until([&] { return holder.client->joined() && w.peers.count("alpha"); }));
  uint64_t cursor = c.server().membership().cursor();

  // Another process with alpha's certificate, another key and addresses.
  auto& thief = c.node_with("alpha", std::move(stolen), node_info(11), true);
  // It keeps trying (backoff): every attempt is refused.
  ASSERT_TRUE(c.run_until([&] { return thief.errors.size() >= 3; }, 10s));
  EXPECT_FALSE(thief.client->joined());
  ASSERT_FALSE(thief.errors.empty());
  EXPECT_EQ(thief.errors[0].code(), proto::Error::NAME_IN_USE);
  EXPECT_TRUE(thief.errors[0].fatal());
  // The holder saw nothing: same connection, no error, no change pushed.
  EXPECT_TRUE(holder.client->joined());
  EXPECT_TRUE(holder.errors.empty());
  EXPECT_EQ(holder.client->stats().established, 1u);
  EXPECT_EQ(c.server().membership().cursor(), cursor);
  EXPECT_TRUE(holds_key(w, "alpha", node_info(1)));
  EXPECT_GE(c.server().counters().name_conflicts, 3u);
  EXPECT_EQ(c.server().counters().request_errors[proto::Error::NAME_IN_USE],
            c.server().counters().name_conflicts);
  // One security line per attempt, naming both addresses.
  const std::string& text = logs.text();
  EXPECT_THAT(text,
              HasSubstr("security: refused a second connection for node alpha from 127.0.0.1:"));
  EXPECT_THAT(text, HasSubstr("held by a live connection from 127.0.0.1:"));

  // The holder goes away (its connection closes): the new key is accepted at
  // the thief's next attempt and every member switches to it.
  holder.client->stop();
  ASSERT_TRUE(
      c.run_until([&] { return thief.client->joined() && holds_key(w, "alpha", node_info(11)); }));
  // alpha's old key is free again (nothing stale left in the key index).
  auto& k = c.node_with(
      "kappa", c.pki.issue("kappa"),
      [] {
        proto::NodeInfo i = node_info(12);
        i.set_public_key(node_info(1).public_key());
        return i;
      }(),
      true);
  ASSERT_TRUE(c.run_until([&] { return k.client->joined(); }));
}

TEST(FaradTrust, OnlyTheHoldersConnectionSpeaksForTheMember) {
  Cluster c;
  c.start_server();
  auto& w = c.node("watcher", 9);
  Identity alpha = c.pki.issue("alpha");
  Identity second = copy_of(alpha);
  auto& holder = c.node_with("alpha", std::move(alpha), node_info(1), true);
  ASSERT_TRUE(c.run_until([&] { return holder.client->joined() && w.peers.count("alpha"); }));

  // A second connection with the certificate that never joins: its Update,
  // Heartbeat and Leave change nothing of the holder's.
  RawPeer raw(c, &second);
  ASSERT_TRUE(c.run_until([&] { return raw.established; }));
  proto::NodeMessage update;
  update.set_request_id(1);
  *update.mutable_update()->mutable_node() = node_info(11);
  proto::NodeMessage leave;
  leave.set_request_id(2);
  leave.mutable_leave();
  raw.send(frame_of(update) + frame_of(leave));
  ASSERT_TRUE(c.run_until([&] { return farad_messages(raw.received).size() >= 2; }));
  auto replies = farad_messages(raw.received);
  ASSERT_TRUE(replies[0].has_error());
  EXPECT_EQ(replies[0].error().code(), proto::Error::NOT_MEMBER);
  EXPECT_TRUE(replies[1].has_ack());
  c.run_for(100ms);
  ASSERT_TRUE(c.server().membership().find("alpha"));
  EXPECT_EQ(c.server().membership().find("alpha")->info.public_key(), node_info(1).public_key());
  EXPECT_TRUE(holder.client->joined());
  EXPECT_EQ(c.query(w, "alpha"), proto::PRESENT);
}

TEST(FaradTrust, RevocationRemovesTheMemberAndTellsEveryNode) {
  Cluster c;
  std::string crl = c.write_crl();
  c.start_server();
  LogCapture logs;
  auto& a = c.node("alpha", 1);
  auto& b = c.node("beta", 2);
  // gamma was connected before and comes back (resuming its cursor) after the
  // revocation: it must hear of it too.
  auto& g = c.node("gamma", 3);
  ASSERT_TRUE(c.run_until(
      [&] { return a.peers.size() == 2 && b.peers.size() == 2 && g.peers.size() == 2; }));
  g.client->stop();
  c.run_for(50ms);

  c.pki.write_crl(crl, {b.id.cert.get()});
  Status reloaded = c.server().reload_tls();
  ASSERT_TRUE(reloaded.ok()) << reloaded.error();
  ASSERT_TRUE(c.run_until([&] { return !a.removals.empty(); }));
  EXPECT_EQ(a.removals[0].name(), "beta");
  EXPECT_EQ(a.removals[0].reason(), proto::Removal::REVOKED);
  EXPECT_THAT(a.removals[0].detail(), HasSubstr("revoked"));
  EXPECT_EQ(a.peers.count("beta"), 0u);
  EXPECT_FALSE(c.server().membership().find("beta"));
  EXPECT_EQ(c.server().counters().revoked, 1u);
  // beta's connection was closed with REVOKED, and it cannot come back.
  ASSERT_TRUE(c.run_until([&] { return !b.errors.empty() && !b.client->connected(); }));
  EXPECT_EQ(b.errors[0].code(), proto::Error::REVOKED);
  c.run_for(400ms);
  EXPECT_FALSE(c.server().membership().find("beta"));
  EXPECT_EQ(c.query(a, "beta"), proto::ABSENT);

  g.client->start();
  ASSERT_TRUE(c.run_until([&] { return !g.removals.empty(); }));
  EXPECT_EQ(g.removals[0].name(), "beta");
  EXPECT_EQ(g.peers.count("beta"), 0u);
  // A node that joins afterwards never knew beta and is not told about it.
  auto& d = c.node("delta", 4);
  ASSERT_TRUE(c.run_until([&] { return d.client->joined() && d.peers.size() == 2; }));
  c.run_for(100ms);
  EXPECT_TRUE(d.removals.empty());
  EXPECT_EQ(d.client->cursor(), c.server().membership().cursor());
  EXPECT_THAT(logs.text(), HasSubstr("membership event=revoke node=beta"));
}

TEST(FaradTrust, RevocationReachesAMemberWhoseConnectionIsClosed) {
  Cluster c;
  std::string crl = c.write_crl();
  c.start_server();
  auto& a = c.node("alpha", 1);
  auto& b = c.node("beta", 2);
  ASSERT_TRUE(c.run_until([&] { return a.peers.count("beta") && b.peers.count("alpha"); }));
  // beta is cut off from farad (no Leave): still a member during its grace.
  b.client->stop();
  c.run_for(50ms);
  ASSERT_TRUE(c.server().membership().find("beta"));

  c.pki.write_crl(crl, {b.id.cert.get()});
  Status reloaded = c.server().reload_tls();
  ASSERT_TRUE(reloaded.ok()) << reloaded.error();
  EXPECT_FALSE(c.server().membership().find("beta"));
  ASSERT_TRUE(c.run_until([&] { return !a.removals.empty(); }));
  EXPECT_EQ(a.removals[0].name(), "beta");
}

TEST(FaradTrust, ACertificateThatExpiresWhileConnectedIsDropped) {
  Cluster c;
  c.start_server();
  LogCapture logs;
  auto& a = c.node("alpha", 1);
  CertSpec brief("beta");
  brief.not_after = 2;  // seconds from now
  auto& b = c.node_with("beta", c.pki.issue(brief), node_info(2), true);
  ASSERT_TRUE(c.run_until([&] { return a.peers.count("beta") && b.client->joined(); }));
  // Within a sweep (a second) of the expiry: closed, removed, pushed.
  ASSERT_TRUE(c.run_until([&] { return !a.removals.empty(); }, 6s));
  EXPECT_EQ(a.removals[0].name(), "beta");
  EXPECT_EQ(a.removals[0].reason(), proto::Removal::EXPIRED);
  EXPECT_FALSE(c.server().membership().find("beta"));
  ASSERT_TRUE(c.run_until([&] { return !b.errors.empty(); }));
  EXPECT_EQ(b.errors[0].code(), proto::Error::CERTIFICATE_EXPIRED);
  EXPECT_THAT(logs.text(), HasSubstr("certificate expired while connected"));
}

TEST(FaradTrust, AMemberWhoseConnectionClosesIsAbsentAfterTheGrace) {
  Cluster c;
  c.options.expiry = 30s;
  c.options.disconnect_grace = 400ms;
  c.start_server();
  LogCapture logs;
  auto& a = c.node("alpha", 1);
  auto& b = c.node("beta", 2, true, [](auto& o) { o.heartbeat = 50ms; });
  ASSERT_TRUE(c.run_until([&] { return a.peers.count("beta") && b.peers.count("alpha"); }));

  // A reconnect within the grace keeps it: no removal, no change.
  uint64_t cursor = c.server().membership().cursor();
  b.client->stop();
  c.run_for(100ms);
  EXPECT_EQ(c.query(a, "beta"), proto::PRESENT);
  b.client->start();
  ASSERT_TRUE(c.run_until([&] { return b.joins.size() == 2; }));
  c.run_for(600ms);
  EXPECT_EQ(c.query(a, "beta"), proto::PRESENT);
  EXPECT_EQ(c.server().membership().cursor(), cursor);

  // Gone for good (a crash): ABSENT once the grace has passed, long before
  // the expiry window.
  auto stopped = Clock::now();
  b.client->stop();
  ASSERT_TRUE(c.run_until([&] { return c.query(a, "beta") == proto::ABSENT; }, 3s));
  EXPECT_LT(Clock::now() - stopped, 2s);
  EXPECT_EQ(c.server().counters().disconnected, 1u);
  EXPECT_THAT(logs.text(), HasSubstr("membership event=disconnect node=beta"));
}

}  // namespace
}  // namespace faraday::testing
