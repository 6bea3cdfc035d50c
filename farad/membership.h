// membership.h: farad's cluster state, in memory only, and its rules.
//
//   - A member is keyed by its certificate name; only that identity can join,
//     update or leave it. Its public key and allowed IPs must not be another
//     member's (no two members announce one key; no prefix overlaps another
//     member's), so a node cannot take over another's traffic.
//   - Every join or change draws the next cursor; the change log (changelog.h)
//     holds each member's newest entry for pushes. Joining again unchanged
//     draws nothing.
//   - A member farad has heard nothing from for `expiry` is removed; so is one
//     whose connection closed (disconnected()) and that has not been heard
//     from for `grace` since, so a crashed daemon is ABSENT quickly.
//   - revoke(): a member no longer trusted (its certificate revoked or
//     expired) is removed at once and leaves a Removal in the change log for
//     the nodes that knew it (changelog.h); a later join of the name (a new
//     certificate) replaces that entry. At most kMaxRemovals are kept.
//   - query(): PRESENT for a member; for anyone else ABSENT, except UNKNOWN
//     while farad has been up no longer than `expiry` and the name has not
//     left or expired since farad started (it may be a live node that simply
//     has not re-joined yet after a farad restart).
//
// Sans-IO: time is passed in; changes are reported to a Listener (farad logs
// them and schedules pushes). Not thread-safe; one owner thread.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <list>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "farad/changelog.h"
#include "proto/farad.pb.h"
#include "proto/node_info.h"

namespace faraday::farad {

using Clock = std::chrono::steady_clock;
using Time = Clock::time_point;
using Duration = Clock::duration;

struct MemberRecord {
  std::string name;
  proto::NodeInfo info;  // name filled in
  uint64_t cursor = 0;   // of its latest change
  Time joined_at{};
  Time last_heard{};
  std::list<MemberRecord*>::iterator by_age;  // position in expiry order
  // Set while its connection is closed: its place in the disconnect order.
  std::optional<std::multimap<Time, MemberRecord*>::iterator> disconnected;
};

// kDisconnect: removed after its connection closed and the grace ran out.
enum class ChangeKind { kJoin, kUpdate, kLeave, kExpire, kDisconnect, kRevoke, kCount };
const char* change_kind_name(ChangeKind k);

class Membership {
 public:
  class Listener {
   public:
    virtual ~Listener() = default;
    // Called after each change; for kLeave/kExpire `m` is about to be destroyed.
    virtual void on_member_change(ChangeKind kind, const MemberRecord& m, Time now) = 0;
  };

  // grace: how long a member whose connection closed stays (0: the expiry).
  Membership(uint64_t epoch, Time started, Duration expiry, Listener* listener = nullptr,
             Duration grace = Duration::zero());

  static constexpr size_t kMaxRemovals = 4096;

  struct Result {
    bool ok = true;
    bool changed = false;  // a new cursor was drawn
    proto::Error::Code code = proto::Error::CODE_UNSPECIFIED;
    std::string detail;
  };
  // Join or re-join (an existing member with a different NodeInfo is updated).
  Result join(const std::string& name, const proto::NodeInfo& info, Time now);
  // Change a member's entry; NOT_MEMBER if `name` is not one.
  Result update(const std::string& name, const proto::NodeInfo& info, Time now);
  // False if `name` was not a member.
  bool leave(const std::string& name, Time now);
  // Any message from `name` counts as contact.
  void heard_from(const std::string& name, Time now);
  // The member's connection closed without Leave: it goes after the grace
  // unless heard from again.
  void disconnected(const std::string& name, Time now);
  // Removes a member that is no longer trusted and records a Removal; false
  // if `name` was not a member.
  bool revoke(const std::string& name, proto::Removal::Reason reason, const std::string& detail,
              Time now);
  // Removes members silent for longer than the expiry window, or disconnected
  // for longer than the grace; returns how many.
  size_t expire(Time now);
  // Expires first, then answers.
  proto::State query(const std::string& name, Time now);

  const MemberRecord* find(const std::string& name) const;
  const ChangeLog& log() const { return log_; }
  uint64_t epoch() const { return epoch_; }
  uint64_t cursor() const { return log_.head(); }
  size_t size() const { return members_.size(); }
  Duration expiry() const { return expiry_; }
  Duration grace() const { return grace_; }
  size_t removals() const { return removals_.size(); }
  // True while a non-member may still be a live node that has not re-joined.
  bool in_unknown_window(Time now) const { return now - started_ <= expiry_; }

 private:
  Result check(const std::string& name, const proto::NodeInfo& info, const MemberRecord* self);
  void index(MemberRecord& m);
  void unindex(MemberRecord& m);
  void remove(MemberRecord& m, ChangeKind kind, Time now);
  void record(MemberRecord& m);

  // One allowed-IPs range, [first, last] with a family byte in front.
  using Bound = proto::PrefixBound;
  struct Range {
    Bound last;
    const MemberRecord* owner;
  };

  // The log's Removal entry for a name; its address is the entry's owner.
  struct Removed {
    uint64_t cursor = 0;
  };
  void forget_removal(const std::string& name);

  uint64_t epoch_;
  Time started_;
  Duration expiry_;
  Duration grace_;
  Listener* listener_;
  uint64_t next_cursor_ = 1;
  std::unordered_map<std::string, std::unique_ptr<MemberRecord>> members_;
  std::list<MemberRecord*> by_age_;  // least recently heard first
  std::unordered_map<std::string, const MemberRecord*> by_key_;
  std::map<Bound, Range> by_range_;           // keyed by first address; ranges never overlap
  std::unordered_set<std::string> departed_;  // left or expired, while in the unknown window
  std::multimap<Time, MemberRecord*> by_disconnect_;  // disconnected members, oldest first
  std::unordered_map<std::string, std::unique_ptr<Removed>> removals_;
  ChangeLog log_;
};

}  // namespace faraday::farad
