// timers.h: every WireGuard timer and constant (whitepaper §6), per peer.
//
// The core reports what happened (data_sent, handshake_complete, ...) and this
// module decides which timers to arm or cancel; when the clock passes a
// deadline, expire() says what the core must do. No clock inside: every call
// takes the monotonic time, and jitter is passed in so tests can fix it.
//
//   timer                 armed by                          on expiry
//   retransmit_handshake  handshake_initiated (+jitter)     retry, or give up after
//                                                           REKEY_ATTEMPT_TIME
//   send_keepalive        data_received                     send a keepalive
//   new_handshake         data_sent (+jitter), no reply     new handshake
//   zero_key_material     session_derived, give-up          erase all keys
//   persistent_keepalive  any authenticated packet          send a keepalive
//
// Handshake context only: one thread.
#pragma once

#include <array>
#include <cstdint>

#include "dataplane/clock.h"

namespace faraday::dataplane {

inline constexpr Nanos kRekeyAfterTime = 120 * kSecond;
inline constexpr Nanos kRejectAfterTime = 180 * kSecond;
inline constexpr Nanos kRekeyAttemptTime = 90 * kSecond;
inline constexpr Nanos kRekeyTimeout = 5 * kSecond;
inline constexpr Nanos kKeepaliveTimeout = 10 * kSecond;
inline constexpr Nanos kZeroKeyMaterialAfter = 3 * kRejectAfterTime;
inline constexpr Nanos kMaxJitter = kSecond / 3;
inline constexpr uint64_t kRekeyAfterMessages = uint64_t{1} << 60;
inline constexpr uint64_t kRejectAfterMessages = UINT64_MAX - (uint64_t{1} << 13);
inline constexpr int kMaxHandshakeAttempts = kRekeyAttemptTime / kRekeyTimeout;  // 18

enum class TimerAction : uint8_t {
  kNone,
  kRetryHandshake,       // send the initiation again
  kGiveUp,               // REKEY_ATTEMPT_TIME passed: drop staged packets
  kSendKeepalive,        // passive keepalive
  kNewHandshake,         // sent data but heard nothing back
  kZeroKeyMaterial,      // erase every keypair and the handshake
  kPersistentKeepalive,  // configured keepalive interval passed
};

class PeerTimers {
 public:
  // Events.
  void data_sent(Nanos now, Nanos jitter);
  void data_received(Nanos now);
  void any_authenticated_packet_sent();
  void any_authenticated_packet_received();
  void any_authenticated_packet_traversal(Nanos now, uint16_t persistent_keepalive_s);
  void handshake_initiated(Nanos now, Nanos jitter);
  void handshake_complete();
  void session_derived(Nanos now);
  // A new (not retried) initiation restarts the attempt count.
  void handshake_requested() { handshake_attempts_ = 0; }

  // The earliest armed deadline, or kNever.
  Nanos next_deadline() const;
  // The action of one due timer (disarming it), or kNone when none is due.
  // Call repeatedly until kNone.
  TimerAction expire(Nanos now);
  void stop_all();

  int handshake_attempts() const { return handshake_attempts_; }
  bool armed_retransmit() const { return deadline_[kRetransmit] != kNever; }
  bool armed_new_handshake() const { return deadline_[kNewHandshake] != kNever; }
  bool armed_send_keepalive() const { return deadline_[kSendKeepalive] != kNever; }
  bool armed_zero_key_material() const { return deadline_[kZeroKeys] != kNever; }

 private:
  enum Slot : uint8_t {
    kRetransmit,
    kSendKeepalive,
    kNewHandshake,
    kZeroKeys,
    kPersistent,
    kSlots
  };
  std::array<Nanos, kSlots> deadline_{kNever, kNever, kNever, kNever, kNever};
  int handshake_attempts_ = 0;
  bool need_another_keepalive_ = false;
};

}  // namespace faraday::dataplane
