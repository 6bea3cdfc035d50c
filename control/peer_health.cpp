// peer_health.cpp: see peer_health.h.
#include "control/peer_health.h"

#include <array>

#include "common/names.h"

namespace faraday::control {

const char* outcome_name(PeerHealth::Outcome o) {
  static constexpr std::array<const char*, 6> kNames = {
      "stale", "unreachable", "keep", "keep (heard on its link)", "keep (heard again)", "remove"};
  return names::name_of(kNames, o);
}

uint64_t PeerHealth::add(const std::string& name, Time now) {
  Peer& p = peers_[name];
  p.generation = ++generation_;
  p.joined_at = now;
  p.silent = false;
  p.query_pending = false;
  p.farad_says = proto::STATE_UNSPECIFIED;
  return p.generation;
}

void PeerHealth::rejoin(const std::string& name, Time now) {
  auto it = peers_.find(name);
  if (it == peers_.end()) {
    add(name, now);
    return;
  }
  Peer& p = it->second;
  p.joined_at = now;
  p.silent = false;
  p.query_pending = false;
  ++p.episode;
}

void PeerHealth::heard(const std::string& name, Time at) {
  auto it = peers_.find(name);
  if (it == peers_.end()) return;
  Peer& p = it->second;
  if (!p.link_heard || at > *p.link_heard) p.link_heard = at;
}

PeerHealth::Action PeerHealth::ask(const std::string& name, Peer& p, Action::Kind kind,
                                   Duration silence, Time now) {
  p.query_pending = true;
  p.next_query = now + retry_;
  return Action{kind, name, silence, Query{name, p.generation, p.episode}};
}

std::vector<PeerHealth::Action> PeerHealth::tick(Time now) {
  std::vector<Action> actions;
  for (auto& [name, p] : peers_) {
    Time heard = p.joined_at;
    if (p.link_heard && *p.link_heard > heard) heard = *p.link_heard;
    if (now - heard < silence_) {
      if (p.silent) {
        actions.push_back(
            Action{Action::Kind::kHeardAgain, name, heard - p.heard_before_silence, {}});
        ++p.episode;
        p.query_pending = false;
      }
      p.silent = false;
      p.farad_says = proto::STATE_UNSPECIFIED;
      p.query_error.clear();
      continue;
    }
    if (!p.silent) {
      p.silent = true;
      p.heard_before_silence = heard;
      actions.push_back(ask(name, p, Action::Kind::kAsk, now - heard, now));
    } else if (!p.query_pending && now >= p.next_query) {
      actions.push_back(ask(name, p, Action::Kind::kAskAgain, now - heard, now));
    }
  }
  return actions;
}

PeerHealth::Decision PeerHealth::answer(const Query& query, const Answer& answer, Time now) {
  auto it = peers_.find(query.name);
  if (it == peers_.end() || it->second.generation != query.generation) return {};
  Peer& p = it->second;
  if (p.episode != query.episode) return {};  // heard again (or re-joined) since it was asked
  p.query_pending = false;
  p.next_query = now + retry_;
  if (!answer.ok) {
    bool changed = answer.error != p.query_error;
    p.query_error = answer.error;
    return {Outcome::kUnreachable, changed};
  }
  p.query_error.clear();
  if (answer.state == proto::ABSENT) {
    if (p.link_heard && *p.link_heard > p.heard_before_silence) return {Outcome::kKeepHeardOnLink};
    if (!p.silent) return {Outcome::kKeepHeardAgain};
    peers_.erase(it);
    return {Outcome::kRemove};
  }
  bool changed = answer.state != p.farad_says;
  p.farad_says = answer.state;
  return {Outcome::kKeep, changed};
}

bool PeerHealth::revoke(const std::string& name) {
  return peers_.erase(name) > 0;
}

const PeerHealth::Peer* PeerHealth::find(const std::string& name) const {
  auto it = peers_.find(name);
  return it == peers_.end() ? nullptr : &it->second;
}

}  // namespace faraday::control
