// timer_dispatch.cpp: Device::tick() and next_deadline(). timers.h decides
// which timer fired; this file does what it asks (resend an initiation, send a
// keepalive, drop the keys).
#include <algorithm>

#include "dataplane/device.h"

namespace faraday::dataplane {

void Device::run_timer(Peer& peer, TimerAction action) {
  switch (action) {
    case TimerAction::kNone:
      break;
    case TimerAction::kRetryHandshake:
      send_initiation(peer, true);
      break;
    case TimerAction::kGiveUp:
      peer.staged.clear();
      break;
    case TimerAction::kSendKeepalive:
      send_keepalive(peer);
      break;
    case TimerAction::kNewHandshake:
      send_initiation(peer, false);
      break;
    case TimerAction::kZeroKeyMaterial:
      peers_.zero_key_material(peer);
      break;
    case TimerAction::kPersistentKeepalive:
      // The deadline may predate turning keepalive off (as Linux checks).
      if (peer.persistent_keepalive != 0) send_keepalive(peer);
      break;
  }
}

void Device::tick() {
  Nanos t = now();
  auto order = peers_.order();
  for (uint32_t slot : std::vector<uint32_t>(order.begin(), order.end())) {
    Peer& peer = peers_.at(slot);
    for (TimerAction a; (a = peer.timers.expire(t)) != TimerAction::kNone;) run_timer(peer, a);
  }
  commit();
}

Nanos Device::next_deadline() const {
  Nanos next = kNever;
  for (uint32_t slot : peers_.order())
    next = std::min(next, peers_.at(slot).timers.next_deadline());
  return next;
}

}  // namespace faraday::dataplane
