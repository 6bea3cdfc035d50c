// peer_health_test.cpp: faradayd's rule for when a peer goes (control/peer_health.h),
// sans-IO with a fake clock (silence 5 s, retry 1 s). Covered: silence under
// the threshold asks nothing; silence asks farad once, tagged with the
// member's generation and episode; PRESENT, UNKNOWN and an unreachable farad
// keep the peer and ask again a retry later (logged once per new answer);
// ABSENT removes it; an ABSENT that arrives after the peer was heard again, was
// heard on its link, joined again, changed or was revoked and added again is
// ignored or kept; answers and pushes applied in farad's order; a revocation
// removes at once, silent or not, and a later join adds the name again; a
// re-join ends a silence and restarts its clock.
#include "control/peer_health.h"

#include <gtest/gtest.h>

#include <chrono>
#include <functional>
#include <ostream>
#include <string>
#include <vector>

namespace faraday::control {
namespace {

using namespace std::chrono_literals;
using Time = PeerHealth::Time;
using Kind = PeerHealth::Action::Kind;
using Outcome = PeerHealth::Outcome;

const Time kStart = Time{} + 1h;
constexpr auto kSilence = 5s;
constexpr auto kRetry = 1s;

// The fake clock: milliseconds since the start.
Time at(int ms) {
  return kStart + std::chrono::milliseconds(ms);
}

PeerHealth::Answer says(proto::State s) {
  return {.ok = true, .state = s, .error = ""};
}
PeerHealth::Answer unreachable(const std::string& why) {
  return {.ok = false, .state = proto::STATE_UNSPECIFIED, .error = why};
}

const PeerHealth::Answer kPresent = says(proto::PRESENT);
const PeerHealth::Answer kAbsent = says(proto::ABSENT);
const PeerHealth::Answer kUnknown = says(proto::UNKNOWN);

// A rule with member "b" added at 0 and gone silent: the question asked at 5 s.
struct Silent {
  PeerHealth health{kSilence, kRetry};
  PeerHealth::Query query;

  Silent() {
    health.add("b", at(0));
    auto actions = health.tick(at(5000));
    EXPECT_EQ(actions.size(), 1u);
    if (!actions.empty()) query = actions[0].query;
  }
};

TEST(PeerHealth, SilenceUnderTheThresholdAsksNothing) {
  PeerHealth h(kSilence, kRetry);
  h.add("b", at(0));
  EXPECT_TRUE(h.tick(at(0)).empty());
  EXPECT_TRUE(h.tick(at(4999)).empty());
  h.heard("b", at(4000));
  EXPECT_TRUE(h.tick(at(8999)).empty());  // 4.999 s since its link heard it
  EXPECT_FALSE(h.find("b")->silent);
  h.heard("b", at(2000));  // older news changes nothing
  EXPECT_TRUE(h.tick(at(8999)).empty());
  h.heard("nobody", at(1000));  // not a member: ignored
  EXPECT_EQ(h.size(), 1u);
}

TEST(PeerHealth, SilenceAsksFaradOnceTaggedWithGenerationAndEpisode) {
  PeerHealth h(kSilence, kRetry);
  uint64_t generation = h.add("b", at(0));
  h.heard("b", at(1000));
  auto actions = h.tick(at(6000));
  ASSERT_EQ(actions.size(), 1u);
  EXPECT_EQ(actions[0].kind, Kind::kAsk);
  EXPECT_EQ(actions[0].name, "b");
  EXPECT_EQ(actions[0].silence, 5s);
  EXPECT_EQ(actions[0].query.name, "b");
  EXPECT_EQ(actions[0].query.generation, generation);
  EXPECT_EQ(actions[0].query.episode, h.find("b")->episode);
  EXPECT_TRUE(h.find("b")->silent);
  EXPECT_TRUE(h.find("b")->query_pending);
  // While the question is in flight nothing more is asked, however long.
  EXPECT_TRUE(h.tick(at(7000)).empty());
  EXPECT_TRUE(h.tick(at(60000)).empty());
}

TEST(PeerHealth, EachMemberHasItsOwnSilence) {
  PeerHealth h(kSilence, kRetry);
  h.add("a", at(0));
  h.add("b", at(0));
  h.add("c", at(2000));
  h.heard("a", at(4000));
  auto actions = h.tick(at(5000));
  ASSERT_EQ(actions.size(), 1u);
  EXPECT_EQ(actions[0].name, "b");
  EXPECT_NE(h.find("a")->generation, h.find("b")->generation);
}

// PRESENT, UNKNOWN, farad unreachable: kept, asked again a retry after the answer.
struct KeepCase {
  std::string name;
  std::vector<PeerHealth::Answer> answers;  // one per question, in order
  std::vector<bool> changed;                // what to log: a new answer
};

void PrintTo(const KeepCase& c, std::ostream* os) {
  *os << c.name;
}

class Keep : public ::testing::TestWithParam<KeepCase> {};

TEST_P(Keep, KeepsThePeerAndAsksAgainLater) {
  const KeepCase& c = GetParam();
  Silent s;
  PeerHealth::Query query = s.query;
  int now = 5200;
  for (size_t i = 0; i < c.answers.size(); ++i) {
    SCOPED_TRACE(i);
    auto d = s.health.answer(query, c.answers[i], at(now));
    EXPECT_EQ(d.outcome, c.answers[i].ok ? Outcome::kKeep : Outcome::kUnreachable);
    EXPECT_EQ(d.changed, c.changed[i]);
    const PeerHealth::Peer* p = s.health.find("b");
    ASSERT_NE(p, nullptr);
    EXPECT_TRUE(p->silent);
    EXPECT_FALSE(p->query_pending);
    if (c.answers[i].ok) {
      EXPECT_EQ(p->farad_says, c.answers[i].state);
    } else {
      EXPECT_EQ(p->query_error, c.answers[i].error);
    }
    EXPECT_TRUE(s.health.tick(at(now + 999)).empty());  // not before the retry
    auto actions = s.health.tick(at(now + 1000));
    ASSERT_EQ(actions.size(), 1u);
    EXPECT_EQ(actions[0].kind, Kind::kAskAgain);
    EXPECT_EQ(actions[0].silence, std::chrono::milliseconds(now + 1000));
    EXPECT_EQ(actions[0].query.generation, query.generation);
    EXPECT_EQ(actions[0].query.episode, query.episode);
    query = actions[0].query;
    now += 1300;
  }
}

INSTANTIATE_TEST_SUITE_P(
    PeerHealth, Keep,
    ::testing::Values(
        KeepCase{"Present", {kPresent, kPresent, kPresent}, {true, false, false}},
        KeepCase{"Unknown", {kUnknown, kUnknown}, {true, false}},
        KeepCase{"UnknownThenPresent", {kUnknown, kPresent, kUnknown}, {true, true, true}},
        KeepCase{
            "Unreachable",
            {unreachable("not connected"), unreachable("not connected"), unreachable("timed out")},
            {true, false, true}},
        KeepCase{"UnreachableThenPresent",
                 {unreachable("not connected"), kPresent, unreachable("not connected")},
                 {true, true, true}}),
    [](const auto& info) { return info.param.name; });

TEST(PeerHealth, AbsentRemoves) {
  Silent s;
  auto d = s.health.answer(s.query, kAbsent, at(5100));
  EXPECT_EQ(d.outcome, Outcome::kRemove);
  EXPECT_EQ(s.health.find("b"), nullptr);
  EXPECT_EQ(s.health.size(), 0u);
  EXPECT_TRUE(s.health.tick(at(20000)).empty());
  // The same answer again (a duplicate) finds no member.
  EXPECT_EQ(s.health.answer(s.query, kAbsent, at(5200)).outcome, Outcome::kStale);
}

TEST(PeerHealth, AbsentAfterKeepingRemoves) {
  Silent s;
  EXPECT_EQ(s.health.answer(s.query, kUnknown, at(5100)).outcome, Outcome::kKeep);
  auto again = s.health.tick(at(6100));
  ASSERT_EQ(again.size(), 1u);
  EXPECT_EQ(s.health.answer(again[0].query, kAbsent, at(6200)).outcome, Outcome::kRemove);
  EXPECT_EQ(s.health.find("b"), nullptr);
}

// What happens between the question (5 s) and farad's ABSENT (at 5.8 s).
struct MeanwhileCase {
  std::string name;
  std::function<void(PeerHealth&)> meanwhile;
  Outcome want;
  bool member_after;
};

void PrintTo(const MeanwhileCase& c, std::ostream* os) {
  *os << c.name;
}

class AbsentAfter : public ::testing::TestWithParam<MeanwhileCase> {};

TEST_P(AbsentAfter, IsAppliedOnlyToTheSilenceItWasAskedAbout) {
  const MeanwhileCase& c = GetParam();
  Silent s;
  c.meanwhile(s.health);
  auto d = s.health.answer(s.query, kAbsent, at(5800));
  EXPECT_EQ(d.outcome, c.want) << outcome_name(d.outcome);
  EXPECT_EQ(s.health.find("b") != nullptr, c.member_after);
}

INSTANTIATE_TEST_SUITE_P(
    PeerHealth, AbsentAfter,
    ::testing::Values(
        MeanwhileCase{"Nothing", [](PeerHealth&) {}, Outcome::kRemove, false},
        MeanwhileCase{"TimePassing", [](PeerHealth& h) { h.tick(at(5700)); }, Outcome::kRemove,
                      false},
        // Heard again and the rule has seen it end the silence: a new episode.
        MeanwhileCase{"HeardAgain",
                      [](PeerHealth& h) {
                        h.heard("b", at(5500));
                        h.tick(at(5600));
                      },
                      Outcome::kStale, true},
        // Its link heard it, though no tick has run since: the answer checks.
        MeanwhileCase{"HeardOnItsLink", [](PeerHealth& h) { h.heard("b", at(5500)); },
                      Outcome::kKeepHeardOnLink, true},
        // Heard on the link only before it went silent: still silent.
        MeanwhileCase{"HeardOnItsLinkBeforeTheSilence", [](PeerHealth& h) { h.heard("b", at(-1)); },
                      Outcome::kRemove, false},
        MeanwhileCase{"Rejoined", [](PeerHealth& h) { h.rejoin("b", at(5500)); }, Outcome::kStale,
                      true},
        MeanwhileCase{"AnnouncementChanged", [](PeerHealth& h) { h.add("b", at(5500)); },
                      Outcome::kStale, true},
        MeanwhileCase{"RevokedAndJoinedAgain",
                      [](PeerHealth& h) {
                        h.revoke("b");
                        h.add("b", at(5500));
                      },
                      Outcome::kStale, true},
        MeanwhileCase{"Revoked", [](PeerHealth& h) { h.revoke("b"); }, Outcome::kStale, false},
        // Heard again, then silent again: the old question was about the old
        // silence (a new one is asked about the new one).
        MeanwhileCase{"HeardAgainThenSilentAgain",
                      [](PeerHealth& h) {
                        h.heard("b", at(5100));
                        h.tick(at(5200));
                        h.tick(at(10100));
                      },
                      Outcome::kStale, true}),
    [](const auto& info) { return info.param.name; });

TEST(PeerHealth, HeardAgainEndsTheSilence) {
  Silent s;
  EXPECT_EQ(s.health.answer(s.query, kPresent, at(5100)).outcome, Outcome::kKeep);
  s.health.heard("b", at(7000));
  auto actions = s.health.tick(at(7100));
  ASSERT_EQ(actions.size(), 1u);
  EXPECT_EQ(actions[0].kind, Kind::kHeardAgain);
  EXPECT_EQ(actions[0].silence, 7s);  // last heard at 0 (joined), then at 7 s
  const PeerHealth::Peer* p = s.health.find("b");
  EXPECT_FALSE(p->silent);
  EXPECT_FALSE(p->query_pending);
  EXPECT_EQ(p->farad_says, proto::STATE_UNSPECIFIED);
  EXPECT_EQ(p->episode, s.query.episode + 1);
  // A new silence is asked about at once, as a new episode.
  actions = s.health.tick(at(12000));
  ASSERT_EQ(actions.size(), 1u);
  EXPECT_EQ(actions[0].kind, Kind::kAsk);
  EXPECT_EQ(actions[0].query.episode, s.query.episode + 1);
  EXPECT_EQ(s.health.answer(actions[0].query, kPresent, at(12100)).changed, true);
}

TEST(PeerHealth, RejoinEndsTheSilenceAndRestartsItsClock) {
  Silent s;
  s.health.rejoin("b", at(6000));
  EXPECT_FALSE(s.health.find("b")->silent);
  EXPECT_FALSE(s.health.find("b")->query_pending);
  EXPECT_TRUE(s.health.tick(at(6000)).empty());  // no "heard again": nothing was heard on the link
  EXPECT_TRUE(s.health.tick(at(10999)).empty());
  auto actions = s.health.tick(at(11000));
  ASSERT_EQ(actions.size(), 1u);
  EXPECT_EQ(actions[0].kind, Kind::kAsk);
  EXPECT_EQ(actions[0].silence, 5s);
  EXPECT_EQ(actions[0].query.generation, s.query.generation);  // the same announcement
  EXPECT_GT(actions[0].query.episode, s.query.episode);
  EXPECT_EQ(s.health.answer(actions[0].query, kAbsent, at(11100)).outcome, Outcome::kRemove);
}

TEST(PeerHealth, RejoinOfAnUnknownNameAddsIt) {
  PeerHealth h(kSilence, kRetry);
  h.rejoin("b", at(0));
  ASSERT_NE(h.find("b"), nullptr);
  EXPECT_GT(h.find("b")->generation, 0u);
}

// Answers and pushes are applied in the order farad sent them on its
// connection: an ABSENT then a join re-adds the member; a join then the ABSENT
// (asked before the join) keeps it.
TEST(PeerHealth, AbsentThenJoinRemovesThenAddsAgain) {
  Silent s;
  EXPECT_EQ(s.health.answer(s.query, kAbsent, at(5100)).outcome, Outcome::kRemove);
  uint64_t generation = s.health.add("b", at(5200));
  EXPECT_GT(generation, s.query.generation);
  const PeerHealth::Peer* p = s.health.find("b");
  ASSERT_NE(p, nullptr);
  EXPECT_FALSE(p->silent);
  EXPECT_FALSE(p->link_heard.has_value());
  EXPECT_TRUE(s.health.tick(at(10199)).empty());
  EXPECT_EQ(s.health.tick(at(10200)).size(), 1u);
}

TEST(PeerHealth, JoinThenAbsentKeeps) {
  Silent s;
  s.health.rejoin("b", at(5100));
  EXPECT_EQ(s.health.answer(s.query, kAbsent, at(5200)).outcome, Outcome::kStale);
  EXPECT_NE(s.health.find("b"), nullptr);
}

TEST(PeerHealth, AnswersAboutSeveralMembersInTheirOrder) {
  PeerHealth h(kSilence, kRetry);
  for (const char* n : {"a", "b", "c"}) h.add(n, at(0));
  auto asked = h.tick(at(5000));
  ASSERT_EQ(asked.size(), 3u);  // in name order
  // farad answers c, a, b; each answer is applied to its own member.
  EXPECT_EQ(h.answer(asked[2].query, kAbsent, at(5100)).outcome, Outcome::kRemove);
  EXPECT_EQ(h.answer(asked[0].query, kPresent, at(5200)).outcome, Outcome::kKeep);
  h.heard("b", at(5250));
  EXPECT_EQ(h.answer(asked[1].query, kAbsent, at(5300)).outcome, Outcome::kKeepHeardOnLink);
  EXPECT_EQ(h.size(), 2u);
  EXPECT_EQ(h.find("c"), nullptr);
  EXPECT_EQ(h.find("a")->farad_says, proto::PRESENT);
}

TEST(PeerHealth, RevokedMemberIsRemovedAtOnceSilentOrNot) {
  PeerHealth h(kSilence, kRetry);
  h.add("a", at(0));
  h.add("b", at(0));
  h.heard("a", at(4000));
  auto asked = h.tick(at(5000));  // b silent, a not
  ASSERT_EQ(asked.size(), 1u);
  EXPECT_TRUE(h.revoke("a"));
  EXPECT_TRUE(h.revoke("b"));
  EXPECT_EQ(h.size(), 0u);
  EXPECT_FALSE(h.revoke("b"));  // no member any more
  EXPECT_FALSE(h.revoke("nobody"));
  // The answer about b's silence finds nothing to act on.
  EXPECT_EQ(h.answer(asked[0].query, kAbsent, at(5100)).outcome, Outcome::kStale);
  EXPECT_TRUE(h.tick(at(20000)).empty());
  // A later join of the name (a new certificate) is a new member.
  uint64_t generation = h.add("b", at(21000));
  EXPECT_GT(generation, asked[0].query.generation);
  EXPECT_FALSE(h.find("b")->silent);
  EXPECT_TRUE(h.tick(at(25999)).empty());
  auto again = h.tick(at(26000));
  ASSERT_EQ(again.size(), 1u);
  EXPECT_EQ(again[0].query.generation, generation);
}

TEST(PeerHealth, OutcomesHaveNames) {
  for (Outcome o : {Outcome::kStale, Outcome::kUnreachable, Outcome::kKeep,
                    Outcome::kKeepHeardOnLink, Outcome::kKeepHeardAgain, Outcome::kRemove}) {
    EXPECT_STRNE(outcome_name(o), "?");
  }
}

}  // namespace
}  // namespace faraday::control
