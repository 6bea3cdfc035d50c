// membership.cpp: see membership.h.
#include "farad/membership.h"

#include <fmt/core.h>
#include "common/names.h"

#include <algorithm>
#include <cassert>

#include "proto/node_info.h"

namespace faraday::farad {

namespace {

Membership::Result refuse(proto::Error::Code code, std::string detail) {
  Membership::Result r;
  r.ok = false;
  r.code = code;
  r.detail = std::move(detail);
  return r;
}

}  // namespace

const char* change_kind_name(ChangeKind k) {
  static constexpr std::array<const char*, 6> kNames = {"join",   "update",     "leave",
                                                        "expire", "disconnect", "revoke"};
  return names::name_of(kNames, k);
}

Membership::Membership(uint64_t epoch, Time started, Duration expiry, Listener* listener,
                       Duration grace)
    : epoch_(epoch),
      started_(started),
      expiry_(expiry),
      grace_(grace > Duration::zero() && grace < expiry ? grace : expiry),
      listener_(listener) {}

Membership::Result Membership::check(const std::string& name, const proto::NodeInfo& info,
                                     const MemberRecord* self) {
  if (!info.name().empty() && info.name() != name) {
    return refuse(proto::Error::IDENTITY_MISMATCH,
                  fmt::format("NodeInfo names {:?} but the certificate names {:?}",
                              info.name().substr(0, 80), name));
  }
  if (Status valid = proto::check_node_info(info); !valid) {
    return refuse(proto::Error::INVALID_NODE_INFO, valid.error());
  }
  auto k = by_key_.find(info.public_key());
  if (k != by_key_.end() && k->second != self) {
    return refuse(proto::Error::KEY_IN_USE,
                  fmt::format("public key already announced by {}", k->second->name));
  }
  for (const auto& p : info.allowed_ips()) {
    auto [lo, hi] = proto::prefix_range(p);
    // Ranges are disjoint and sorted by first address (so by last address too):
    // walk back from the last range starting at or before `hi` while ranges
    // still reach `lo`.
    for (auto it = by_range_.upper_bound(hi); it != by_range_.begin();) {
      --it;
      if (it->second.last < lo) break;
      if (it->second.owner != self) {
        return refuse(proto::Error::ALLOWED_IPS_IN_USE,
                      fmt::format("allowed IP {} overlaps {}'s", proto::prefix_text(p),
                                  it->second.owner->name));
      }
    }
  }
  return {};
}

void Membership::index(MemberRecord& m) {
  by_key_[m.info.public_key()] = &m;
  for (const auto& p : m.info.allowed_ips()) {
    auto [lo, hi] = proto::prefix_range(p);
    by_range_[lo] = Range{hi, &m};
  }
}

void Membership::unindex(MemberRecord& m) {
  auto k = by_key_.find(m.info.public_key());
  if (k != by_key_.end() && k->second == &m) by_key_.erase(k);
  for (const auto& p : m.info.allowed_ips()) {
    auto it = by_range_.find(proto::prefix_range(p).first);
    if (it != by_range_.end() && it->second.owner == &m) by_range_.erase(it);
  }
}

void Membership::record(MemberRecord& m) {
  if (m.cursor) log_.erase(m.cursor);
  m.cursor = next_cursor_++;
  proto::Member entry;
  entry.set_cursor(m.cursor);
  *entry.mutable_node() = m.info;
  log_.put(&m, entry);
}

Membership::Result Membership::join(const std::string& name, const proto::NodeInfo& info,
                                    Time now) {
  auto it = members_.find(name);
  MemberRecord* self = it == members_.end() ? nullptr : it->second.get();
  Result r = check(name, info, self);
  if (!r.ok) return r;
  proto::NodeInfo stored = info;
  stored.set_name(name);
  if (self) {
    heard_from(name, now);
    if (self->info.SerializeAsString() == stored.SerializeAsString()) return r;
    unindex(*self);
    self->info = std::move(stored);
    index(*self);
    record(*self);
    r.changed = true;
    if (listener_) listener_->on_member_change(ChangeKind::kUpdate, *self, now);
    return r;
  }
  auto m = std::make_unique<MemberRecord>();
  m->name = name;
  m->info = std::move(stored);
  m->joined_at = now;
  m->last_heard = now;
  m->by_age = by_age_.insert(by_age_.end(), m.get());
  MemberRecord& ref = *m;
  members_.emplace(name, std::move(m));
  departed_.erase(name);
  forget_removal(name);
  index(ref);
  record(ref);
  r.changed = true;
  if (listener_) listener_->on_member_change(ChangeKind::kJoin, ref, now);
  return r;
}

Membership::Result Membership::update(const std::string& name, const proto::NodeInfo& info,
                                      Time now) {
  if (!members_.count(name)) {
    return refuse(proto::Error::NOT_MEMBER, fmt::format("{} is not a member; join first", name));
  }
  return join(name, info, now);
}

void Membership::heard_from(const std::string& name, Time now) {
  auto it = members_.find(name);
  if (it == members_.end()) return;
  MemberRecord& m = *it->second;
  m.last_heard = now;
  by_age_.splice(by_age_.end(), by_age_, m.by_age);
  if (m.disconnected) {
    by_disconnect_.erase(*m.disconnected);
    m.disconnected.reset();
  }
}

void Membership::disconnected(const std::string& name, Time now) {
  auto it = members_.find(name);
  if (it == members_.end() || it->second->disconnected) return;
  MemberRecord& m = *it->second;
  m.disconnected = by_disconnect_.emplace(now, &m);
}

void Membership::forget_removal(const std::string& name) {
  auto it = removals_.find(name);
  if (it == removals_.end()) return;
  log_.erase(it->second->cursor);
  removals_.erase(it);
}

bool Membership::revoke(const std::string& name, proto::Removal::Reason reason,
                        const std::string& detail, Time now) {
  auto it = members_.find(name);
  if (it == members_.end()) return false;
  remove(*it->second, ChangeKind::kRevoke, now);
  forget_removal(name);
  if (removals_.size() >= kMaxRemovals) {
    // Revocations are rare; past the bound, the oldest entry goes (a node that
    // resumes from before it keeps that peer until it is silent and ABSENT).
    auto oldest = std::min_element(removals_.begin(), removals_.end(), [](auto& a, auto& b) {
      return a.second->cursor < b.second->cursor;
    });
    forget_removal(std::string(oldest->first));
  }
  auto entry = std::make_unique<Removed>();
  entry->cursor = next_cursor_++;
  proto::Removal r;
  r.set_cursor(entry->cursor);
  r.set_name(name);
  r.set_reason(reason);
  r.set_detail(detail);
  log_.put(entry.get(), r);
  removals_.emplace(name, std::move(entry));
  return true;
}

void Membership::remove(MemberRecord& m, ChangeKind kind, Time now) {
  unindex(m);
  log_.erase(m.cursor);
  by_age_.erase(m.by_age);
  if (m.disconnected) by_disconnect_.erase(*m.disconnected);
  if (in_unknown_window(now)) departed_.insert(m.name);
  auto owned = std::move(members_.at(m.name));
  members_.erase(m.name);
  if (listener_) listener_->on_member_change(kind, *owned, now);
}

bool Membership::leave(const std::string& name, Time now) {
  auto it = members_.find(name);
  if (it == members_.end()) return false;
  remove(*it->second, ChangeKind::kLeave, now);
  return true;
}

size_t Membership::expire(Time now) {
  size_t n = 0;
  while (!by_age_.empty() && now - by_age_.front()->last_heard > expiry_) {
    remove(*by_age_.front(), ChangeKind::kExpire, now);
    ++n;
  }
  while (!by_disconnect_.empty() && now - by_disconnect_.begin()->first > grace_) {
    remove(*by_disconnect_.begin()->second, ChangeKind::kDisconnect, now);
    ++n;
  }
  if (!in_unknown_window(now) && !departed_.empty()) {
    std::unordered_set<std::string>().swap(departed_);
  }
  return n;
}

proto::State Membership::query(const std::string& name, Time now) {
  expire(now);
  if (members_.count(name)) return proto::PRESENT;
  if (in_unknown_window(now) && !departed_.count(name)) return proto::UNKNOWN;
  return proto::ABSENT;
}

const MemberRecord* Membership::find(const std::string& name) const {
  auto it = members_.find(name);
  return it == members_.end() ? nullptr : it->second.get();
}

}  // namespace faraday::farad
