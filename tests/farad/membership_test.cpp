// membership_test.cpp: farad's sans-IO core with a fake clock: the change log
// (push frames, holes, compaction, skipping one's own entry, Removals) and
// Membership's rules (identity, keys, allowed IPs, cursors, expiry, the
// disconnect grace, revocation, PRESENT/ABSENT/UNKNOWN).
#include <gtest/gtest.h>

#include "farad/changelog.h"
#include "farad/membership.h"
#include "harness.h"
#include "proto/frame.h"

namespace faraday::farad {
namespace {

using namespace std::chrono_literals;
using testing::node_info;

proto::Member member(uint64_t cursor, int index) {
  proto::Member m;
  m.set_cursor(cursor);
  *m.mutable_node() = node_info(index);
  m.mutable_node()->set_name("n" + std::to_string(index));
  return m;
}

// Parses one frame built by append_push_frame.
proto::Push parse_push(const std::string& frame) {
  proto::FrameDecoder d;
  proto::FaradMessage msg;
  int frames = 0;
  d.feed({reinterpret_cast<const uint8_t*>(frame.data()), frame.size()}, [&](auto p) {
    EXPECT_EQ(proto::decode(p, msg), proto::FrameError::kNone);
    ++frames;
    return true;
  });
  EXPECT_EQ(frames, 1);
  EXPECT_TRUE(msg.has_push());
  return msg.push();
}

std::vector<std::string> names(const proto::Push& p) {
  std::vector<std::string> out;
  for (const auto& m : p.members()) out.push_back(m.node().name());
  return out;
}

TEST(ChangeLog, PushFramesParseAndCarryTheEntriesAfterTheCursor) {
  ChangeLog log;
  int owners[5];
  for (int i = 0; i < 5; ++i) log.put(&owners[i], member(10 + i, i));
  std::string frame;
  auto b = log.append_push_frame(frame, 77, 11, nullptr, 1 << 20);
  EXPECT_EQ(b.entries, 3u);
  EXPECT_TRUE(b.caught_up);
  EXPECT_EQ(b.cursor, 14u);
  EXPECT_EQ(b.frame_bytes, frame.size());
  proto::Push p = parse_push(frame);
  EXPECT_EQ(p.epoch(), 77u);
  EXPECT_EQ(p.cursor(), 14u);
  EXPECT_TRUE(p.caught_up());
  EXPECT_EQ(names(p), (std::vector<std::string>{"n2", "n3", "n4"}));
  EXPECT_EQ(p.members(0).cursor(), 12u);
  EXPECT_EQ(p.members(0).node().SerializeAsString(), member(12, 2).node().SerializeAsString());
}

TEST(ChangeLog, SkipsTheReceiversOwnEntryAndHoles) {
  ChangeLog log;
  int owners[5];
  for (int i = 0; i < 5; ++i) log.put(&owners[i], member(i + 1, i));
  log.erase(2);
  std::string frame;
  auto b = log.append_push_frame(frame, 1, 0, &owners[3], 1 << 20);
  EXPECT_EQ(names(parse_push(frame)), (std::vector<std::string>{"n0", "n2", "n4"}));
  EXPECT_EQ(b.cursor, 5u);
  // Nothing left but one's own entry: an empty push that still moves the cursor.
  frame.clear();
  b = log.append_push_frame(frame, 1, 4, &owners[4], 1 << 20);
  EXPECT_EQ(b.entries, 0u);
  EXPECT_EQ(b.cursor, 5u);
  EXPECT_TRUE(parse_push(frame).caught_up());
}

TEST(ChangeLog, SplitsAtTheSizeLimitAndResumesExactly) {
  ChangeLog log;
  std::vector<int> owners(300);
  for (int i = 0; i < 300; ++i) log.put(&owners[i], member(i + 1, i));
  uint64_t cursor = 0;
  std::vector<std::string> all;
  int frames = 0;
  for (;;) {
    std::string frame;
    auto b = log.append_push_frame(frame, 1, cursor, nullptr, 4000);
    ++frames;
    EXPECT_LE(frame.size(), 4000u + 200u);
    auto p = parse_push(frame);
    for (auto& n : names(p)) all.push_back(n);
    EXPECT_EQ(p.cursor(), b.cursor);
    EXPECT_GT(b.cursor, cursor);
    cursor = b.cursor;
    if (b.caught_up) break;
  }
  EXPECT_GT(frames, 5);
  ASSERT_EQ(all.size(), 300u);
  for (int i = 0; i < 300; ++i) EXPECT_EQ(all[i], "n" + std::to_string(i));
}

TEST(ChangeLog, CompactsHolesWithoutChangingWhatIsSent) {
  ChangeLog log;
  std::vector<int> owners(4000);
  for (int i = 0; i < 4000; ++i) log.put(&owners[i], member(i + 1, i));
  for (int i = 0; i < 4000; i += 4) {
    for (int k = 0; k < 3; ++k) log.erase(i + k + 1);  // keep every 4th
  }
  EXPECT_EQ(log.live_entries(), 1000u);
  EXPECT_LT(log.live_bytes() * 2, 4000u * 100);
  std::string frame;
  auto b = log.append_push_frame(frame, 1, 2000, nullptr, 1 << 20);
  EXPECT_EQ(b.entries, 500u);
  auto p = parse_push(frame);
  EXPECT_EQ(p.members(0).node().name(), "n2003");
}

TEST(ChangeLog, RemovalsGoToResumersButNotToSnapshotsTakenAfterThem) {
  ChangeLog log;
  int owners[4];
  for (int i = 0; i < 3; ++i) log.put(&owners[i], member(i + 1, i));
  log.erase(2);  // n1 revoked: its entry goes, a Removal takes cursor 4
  proto::Removal r;
  r.set_cursor(4);
  r.set_name("n1");
  r.set_reason(proto::Removal::REVOKED);
  log.put(&owners[3], r);
  // A node at cursor 2 resumes: it hears of the removal.
  std::string frame;
  auto b = log.append_push_frame(frame, 1, 2, nullptr, 1 << 20);
  auto p = parse_push(frame);
  EXPECT_EQ(b.cursor, 4u);
  EXPECT_EQ(names(p), (std::vector<std::string>{"n2"}));
  ASSERT_EQ(p.removed_size(), 1);
  EXPECT_EQ(p.removed(0).name(), "n1");
  // A snapshot taken at cursor 4 gets only the current members.
  frame.clear();
  b = log.append_push_frame(frame, 1, 0, nullptr, 1 << 20, 4);
  p = parse_push(frame);
  EXPECT_EQ(names(p), (std::vector<std::string>{"n0", "n2"}));
  EXPECT_EQ(p.removed_size(), 0);
  EXPECT_EQ(b.cursor, 4u);
}

struct Recorder : Membership::Listener {
  void on_member_change(ChangeKind k, const MemberRecord& m, Time) override {
    events.push_back(std::string(change_kind_name(k)) + ":" + m.name);
  }
  std::vector<std::string> events;
};

class MembershipTest : public ::testing::Test {
 protected:
  Time t0 = Time(1000s);
  Recorder rec;
  Membership m{42, t0, 30s, &rec};
};

TEST_F(MembershipTest, JoinUpdateUnchangedAndCursors) {
  EXPECT_TRUE(m.join("a", node_info(1), t0).changed);
  EXPECT_TRUE(m.join("b", node_info(2), t0).changed);
  EXPECT_EQ(m.cursor(), 2u);
  auto r = m.join("a", node_info(1), t0 + 1s);  // same info
  EXPECT_TRUE(r.ok);
  EXPECT_FALSE(r.changed);
  EXPECT_EQ(m.cursor(), 2u);
  proto::NodeInfo moved = node_info(1);
  moved.mutable_underlay(0)->set_port(9);
  EXPECT_TRUE(m.update("a", moved, t0 + 2s).changed);
  EXPECT_EQ(m.find("a")->cursor, 3u);
  EXPECT_EQ(m.find("a")->info.name(), "a");
  EXPECT_EQ(m.log().live_entries(), 2u);
  EXPECT_EQ(rec.events, (std::vector<std::string>{"join:a", "join:b", "update:a"}));
  auto nm = m.update("c", node_info(3), t0);
  EXPECT_FALSE(nm.ok);
  EXPECT_EQ(nm.code, proto::Error::NOT_MEMBER);
}

TEST_F(MembershipTest, IdentityKeysAndAllowedIpsAreBound) {
  ASSERT_TRUE(m.join("a", node_info(1), t0).ok);
  proto::NodeInfo named_a = node_info(2);
  named_a.set_name("a");
  EXPECT_EQ(m.join("b", named_a, t0).code, proto::Error::IDENTITY_MISMATCH);
  proto::NodeInfo key_a = node_info(2);
  key_a.set_public_key(node_info(1).public_key());
  EXPECT_EQ(m.join("b", key_a, t0).code, proto::Error::KEY_IN_USE);
  // Overlaps: a /16 covering a's /32, and a /32 inside a's /24.
  proto::NodeInfo wide = node_info(2);
  *wide.mutable_allowed_ips(0) = *proto::parse_prefix("10.100.0.0/16");
  EXPECT_EQ(m.join("b", wide, t0).code, proto::Error::ALLOWED_IPS_IN_USE);
  proto::NodeInfo inside = node_info(2);
  *inside.mutable_allowed_ips(0) = *proto::parse_prefix("10.200.1.77/32");
  EXPECT_EQ(m.join("b", inside, t0).code, proto::Error::ALLOWED_IPS_IN_USE);
  // A range spanning two others where the last one is b's own still collides.
  ASSERT_TRUE(m.join("b", node_info(2), t0).ok);
  proto::NodeInfo span = node_info(2);
  *span.mutable_allowed_ips(1) = *proto::parse_prefix("10.200.0.0/22");  // covers a's 10.200.1.0/24
  EXPECT_EQ(m.update("b", span, t0).code, proto::Error::ALLOWED_IPS_IN_USE);
  // A node may change its own prefixes and key freely.
  proto::NodeInfo b2 = node_info(2);
  b2.set_public_key(node_info(7).public_key());
  *b2.mutable_allowed_ips(1) = *proto::parse_prefix("10.200.2.0/23");
  EXPECT_TRUE(m.update("b", b2, t0).changed);
  // b's old key is free for others now; IPv4 and IPv6 never collide.
  proto::NodeInfo c = node_info(3);
  c.set_public_key(node_info(2).public_key());
  *c.mutable_allowed_ips(0) = *proto::parse_prefix("::/0");
  *c.mutable_allowed_ips(1) = *proto::parse_prefix("10.201.0.0/16");
  auto rc = m.join("c", c, t0);
  EXPECT_TRUE(rc.ok) << rc.detail;
  // Invalid info is refused before anything else.
  proto::NodeInfo bad = node_info(4);
  bad.set_public_key("short");
  EXPECT_EQ(m.join("d", bad, t0).code, proto::Error::INVALID_NODE_INFO);
  EXPECT_EQ(m.size(), 3u);
}

TEST_F(MembershipTest, ExpiryFollowsTheLastMessage) {
  m.join("a", node_info(1), t0);
  m.join("b", node_info(2), t0);
  m.heard_from("a", t0 + 20s);
  EXPECT_EQ(m.expire(t0 + 30s), 0u);
  EXPECT_EQ(m.expire(t0 + 30s + 1ms), 1u);
  EXPECT_FALSE(m.find("b"));
  EXPECT_TRUE(m.find("a"));
  EXPECT_EQ(m.log().live_entries(), 1u);
  EXPECT_EQ(m.expire(t0 + 50s + 1ms), 1u);
  EXPECT_EQ(m.size(), 0u);
  EXPECT_EQ(rec.events.back(), "expire:a");
  // Its key and addresses are free again.
  EXPECT_TRUE(m.join("z", node_info(1), t0 + 60s).ok);
}

TEST_F(MembershipTest, QueryAnswersWithTheUnknownWindow) {
  m.join("a", node_info(1), t0 + 1s);
  m.join("b", node_info(2), t0 + 1s);
  EXPECT_EQ(m.query("a", t0 + 2s), proto::PRESENT);
  EXPECT_EQ(m.query("ghost", t0 + 2s), proto::UNKNOWN);
  m.leave("b", t0 + 3s);
  EXPECT_EQ(m.query("b", t0 + 3s), proto::ABSENT);  // known to have left
  EXPECT_EQ(m.query("ghost", t0 + 30s), proto::UNKNOWN);
  EXPECT_EQ(m.query("ghost", t0 + 30s + 1ms), proto::ABSENT);
  EXPECT_EQ(m.query("b", t0 + 31s), proto::ABSENT);
  // a has been silent for 30 s at t0+31s + 1ms... query expires it first.
  EXPECT_EQ(m.query("a", t0 + 31s), proto::PRESENT);
  EXPECT_EQ(m.query("a", t0 + 31s + 1ms), proto::ABSENT);
  // Re-joining makes b present again.
  m.join("b", node_info(2), t0 + 40s);
  EXPECT_EQ(m.query("b", t0 + 40s), proto::PRESENT);
}

TEST(MembershipGrace, ADisconnectedMemberGoesAfterTheGraceUnlessHeardAgain) {
  Time t0 = Time(1000s);
  Recorder rec;
  Membership m{42, t0, 30s, &rec, 10s};
  EXPECT_EQ(m.grace(), 10s);
  m.join("a", node_info(1), t0);
  m.join("b", node_info(2), t0);
  m.disconnected("a", t0 + 1s);
  m.disconnected("b", t0 + 1s);
  m.heard_from("b", t0 + 5s);  // b reconnected and spoke
  EXPECT_EQ(m.expire(t0 + 11s), 0u);
  EXPECT_EQ(m.query("a", t0 + 11s), proto::PRESENT);
  EXPECT_EQ(m.query("a", t0 + 11s + 1ms), proto::ABSENT);
  EXPECT_EQ(rec.events.back(), "disconnect:a");
  EXPECT_EQ(m.query("b", t0 + 20s), proto::PRESENT);
  // b's silence still expires it at the expiry window.
  EXPECT_EQ(m.query("b", t0 + 35s + 1ms), proto::ABSENT);
  EXPECT_EQ(rec.events.back(), "expire:b");
  // A grace longer than the expiry window is the expiry window.
  Membership wide{1, t0, 3s, nullptr, 10s};
  EXPECT_EQ(wide.grace(), 3s);
}

TEST_F(MembershipTest, RevocationRemovesAtOnceAndLeavesARemoval) {
  m.join("a", node_info(1), t0);
  m.join("b", node_info(2), t0);
  EXPECT_TRUE(m.revoke("a", proto::Removal::REVOKED, "certificate revoked", t0 + 1s));
  EXPECT_FALSE(m.revoke("ghost", proto::Removal::REVOKED, "", t0 + 1s));
  EXPECT_FALSE(m.find("a"));
  EXPECT_EQ(rec.events.back(), "revoke:a");
  EXPECT_EQ(m.query("a", t0 + 2s), proto::ABSENT);
  EXPECT_EQ(m.cursor(), 3u);
  EXPECT_EQ(m.removals(), 1u);
  EXPECT_EQ(m.log().live_entries(), 2u);  // b, and a's Removal
  std::string frame;
  m.log().append_push_frame(frame, m.epoch(), 2, nullptr, 1 << 20);
  auto p = parse_push(frame);
  ASSERT_EQ(p.removed_size(), 1);
  EXPECT_EQ(p.removed(0).name(), "a");
  EXPECT_EQ(p.removed(0).cursor(), 3u);
  EXPECT_EQ(p.removed(0).detail(), "certificate revoked");
  // Its key is free; a new certificate for the name joins and replaces the
  // Removal with a member entry.
  EXPECT_TRUE(m.join("a", node_info(1), t0 + 3s).ok);
  EXPECT_EQ(m.removals(), 0u);
  EXPECT_EQ(m.log().live_entries(), 2u);
}

}  // namespace
}  // namespace faraday::farad
