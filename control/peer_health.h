// peer_health.h: faradayd's rule for when a peer goes (DESIGN.md, "faradayd
// control thread" and "Failure model"), the node-side counterpart of farad's
// Membership.
//
//   - Every member has a generation, drawn from one counter when it is added
//     or its announcement changes, and a silence episode, bumped when a
//     silence ends or the member joins farad again unchanged. A question to
//     farad is tagged with both; an answer whose tag is no longer current is
//     stale and ignored (the member was heard again, re-joined, changed, or
//     was removed and added again since it was asked about).
//   - A member is heard when it joins (or joins again) and whenever its link
//     hears it (heard(), fed in by the caller). One not heard for `silence`
//     is silent: tick() asks about it at once, then again every `retry` while
//     it stays silent and no question about it is in flight. Silence under
//     the threshold asks nothing. Hearing it again ends the silence.
//   - answer(): ABSENT removes the member, unless its link heard it after it
//     went silent or it is no longer silent. PRESENT, UNKNOWN and a failure
//     to ask keep it; it is asked again `retry` after the answer.
//   - revoke(): a member farad no longer trusts is removed at once, silent or
//     not; a later add() of the name is a new member.
//   - Answers and pushes are applied in the order the caller passes them,
//     which is farad's order on its connection.
//
// Sans-IO: time is passed in; the caller asks farad, logs, and removes the
// peer from the data path, the routes and the links when told to. Not
// thread-safe; one owner thread (the control thread).
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "proto/farad.pb.h"

namespace faraday::control {

class PeerHealth {
 public:
  using Clock = std::chrono::steady_clock;
  using Time = Clock::time_point;
  using Duration = Clock::duration;

  // silence: how long unheard before farad is asked; retry: how long after an
  // answer (or a question) before asking again while the silence lasts.
  PeerHealth(Duration silence, Duration retry) : silence_(silence), retry_(retry) {}

  // One member's state, read-only for the caller.
  struct Peer {
    uint64_t generation = 0;
    Time joined_at{};                // added, changed or joined again
    std::optional<Time> link_heard;  // the latest time its link heard it
    bool silent = false;
    Time heard_before_silence{};  // when it was last heard before going silent
    uint64_t episode = 0;         // bumped when a silence ends
    bool query_pending = false;   // a question is in flight
    Time next_query{};            // not asked again before this
    proto::State farad_says = proto::STATE_UNSPECIFIED;  // during this silence
    std::string query_error;  // the last failure to ask, during this silence
  };

  // A question for farad about one member; pass it back with the answer.
  struct Query {
    std::string name;
    uint64_t generation = 0;
    uint64_t episode = 0;
  };

  // What tick() asks the caller to do.
  struct Action {
    enum class Kind {
      kAsk,         // it just went silent: ask farad
      kAskAgain,    // still silent, no question in flight, `retry` passed: ask again
      kHeardAgain,  // its silence ended; nothing to do but say so
    };
    Kind kind;
    std::string name;
    Duration silence{};  // how long it has been silent, or (kHeardAgain) was
    Query query;         // kAsk, kAskAgain: what to ask
  };

  // farad's answer, or why it could not be asked.
  struct Answer {
    bool ok = false;
    proto::State state = proto::STATE_UNSPECIFIED;
    std::string error;  // when !ok
  };

  enum class Outcome {
    kStale,            // about an older generation or episode, or a member gone: ignored
    kUnreachable,      // farad could not be asked: kept, asked again later
    kKeep,             // PRESENT or UNKNOWN: kept, asked again later while silent
    kKeepHeardOnLink,  // ABSENT, but its link heard it after it went silent: kept
    kKeepHeardAgain,   // ABSENT, but no longer silent (a guard; stale answers say kStale): kept
    kRemove,           // ABSENT: remove the peer (already forgotten here)
    kCount,
  };
  struct Decision {
    Outcome outcome = Outcome::kStale;
    // kUnreachable: a different error than last time; kKeep: a different
    // state than last time (what to log once rather than every retry).
    bool changed = false;
  };

  // A new member, or a member whose announcement changed: a new generation;
  // its silence (and any question in flight about it) ends. Returns the
  // generation.
  uint64_t add(const std::string& name, Time now);
  // The member joined farad again with the same announcement: farad has just
  // heard from it, so its silence ends and an answer in flight is stale.
  // Adds it if unknown.
  void rejoin(const std::string& name, Time now);
  // Its link heard it at `at`; unknown names are ignored.
  void heard(const std::string& name, Time at);
  // Checks every member's silence at `now`.
  std::vector<Action> tick(Time now);
  // Applies farad's answer to `query`.
  Decision answer(const Query& query, const Answer& answer, Time now);
  // farad revoked the member: forget it at once. False if it was no member.
  bool revoke(const std::string& name);

  const Peer* find(const std::string& name) const;
  size_t size() const { return peers_.size(); }

 private:
  Action ask(const std::string& name, Peer& p, Action::Kind kind, Duration silence, Time now);

  Duration silence_;
  Duration retry_;
  uint64_t generation_ = 0;
  std::map<std::string, Peer> peers_;
};

const char* outcome_name(PeerHealth::Outcome o);

}  // namespace faraday::control
