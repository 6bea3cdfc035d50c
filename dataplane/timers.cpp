#include "dataplane/timers.h"

#include <algorithm>

namespace faraday::dataplane {

void PeerTimers::data_sent(Nanos now, Nanos jitter) {
  if (deadline_[kNewHandshake] == kNever)
    deadline_[kNewHandshake] = now + kKeepaliveTimeout + kRekeyTimeout + jitter;
}

void PeerTimers::data_received(Nanos now) {
  if (deadline_[kSendKeepalive] == kNever)
    deadline_[kSendKeepalive] = now + kKeepaliveTimeout;
  else
    need_another_keepalive_ = true;
}

void PeerTimers::any_authenticated_packet_sent() {
  deadline_[kSendKeepalive] = kNever;
}

void PeerTimers::any_authenticated_packet_received() {
  deadline_[kNewHandshake] = kNever;
}

void PeerTimers::any_authenticated_packet_traversal(Nanos now, uint16_t persistent_keepalive_s) {
  if (persistent_keepalive_s != 0)
    deadline_[kPersistent] = now + Nanos{persistent_keepalive_s} * kSecond;
}

void PeerTimers::handshake_initiated(Nanos now, Nanos jitter) {
  deadline_[kRetransmit] = now + kRekeyTimeout + jitter;
}

void PeerTimers::handshake_complete() {
  deadline_[kRetransmit] = kNever;
  handshake_attempts_ = 0;
}

void PeerTimers::session_derived(Nanos now) {
  deadline_[kZeroKeys] = now + kZeroKeyMaterialAfter;
}

Nanos PeerTimers::next_deadline() const {
  return *std::min_element(deadline_.begin(), deadline_.end());
}

TimerAction PeerTimers::expire(Nanos now) {
  if (deadline_[kRetransmit] <= now) {
    deadline_[kRetransmit] = kNever;
    if (handshake_attempts_ > kMaxHandshakeAttempts) {
      deadline_[kSendKeepalive] = kNever;
      if (deadline_[kZeroKeys] == kNever) deadline_[kZeroKeys] = now + kZeroKeyMaterialAfter;
      return TimerAction::kGiveUp;
    }
    ++handshake_attempts_;
    return TimerAction::kRetryHandshake;
  }
  if (deadline_[kSendKeepalive] <= now) {
    deadline_[kSendKeepalive] = kNever;
    if (need_another_keepalive_) {
      need_another_keepalive_ = false;
      deadline_[kSendKeepalive] = now + kKeepaliveTimeout;
    }
    return TimerAction::kSendKeepalive;
  }
  if (deadline_[kNewHandshake] <= now) {
    deadline_[kNewHandshake] = kNever;
    return TimerAction::kNewHandshake;
  }
  if (deadline_[kZeroKeys] <= now) {
    deadline_[kZeroKeys] = kNever;
    return TimerAction::kZeroKeyMaterial;
  }
  if (deadline_[kPersistent] <= now) {
    deadline_[kPersistent] = kNever;
    return TimerAction::kPersistentKeepalive;
  }
  return TimerAction::kNone;
}

void PeerTimers::stop_all() {
  deadline_.fill(kNever);
  handshake_attempts_ = 0;
  need_another_keepalive_ = false;
}

}  // namespace faraday::dataplane
