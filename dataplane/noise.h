// noise.h: the Noise_IKpsk2 handshake of WireGuard (whitepaper §5.4.2-§5.4.5).
//
// Each function is one step of the handshake for one peer; it computes on
// local copies and changes the Handshake only when the step succeeds, so a
// forged or corrupt message never disturbs a handshake in progress. Indices,
// MACs, timers and the wire are the caller's business (device.cpp).
//
// State machine, changed only here:
//   kZeroed --create_initiation--> kCreatedInitiation --consume_response--> kConsumedResponse
//   kZeroed/any --consume_initiation--> kConsumedInitiation --create_response--> kCreatedResponse
//   kConsumedResponse / kCreatedResponse --derive_keys--> kZeroed (keys handed out)
//
// Handshake context only: one thread.
#pragma once

#include <cstdint>
#include <optional>

#include "crypto/keys.h"
#include "crypto/tai64n.h"
#include "dataplane/clock.h"
#include "dataplane/counters.h"
#include "dataplane/messages.h"

namespace faraday::dataplane {

// INITIATIONS_PER_SECOND: a peer's initiations closer together than this are
// dropped as a flood.
inline constexpr Nanos kInitiationMinInterval = kSecond / 50;

enum class HandshakeState : uint8_t {
  kZeroed,
  kCreatedInitiation,
  kConsumedInitiation,
  kCreatedResponse,
  kConsumedResponse,
};

// This device's static key pair.
struct StaticIdentity {
  bool present = false;
  crypto::Key private_key{};
  crypto::Key public_key{};

  void set(const crypto::Key& private_key);
  void clear();
};

struct Handshake {
  HandshakeState state = HandshakeState::kZeroed;
  crypto::Key remote_static{};
  crypto::Key static_static{};  // DH(our static, their static), precomputed
  crypto::Key preshared_key{};  // zero when none
  crypto::Key hash{};
  crypto::Key chaining_key{};
  crypto::Key ephemeral_private{};
  crypto::Key remote_ephemeral{};
  uint32_t local_index = 0;
  uint32_t remote_index = 0;
  crypto::Timestamp latest_timestamp{};          // greatest TAI64N accepted from the peer
  Nanos last_initiation_consumption = -kSecond;  // monotonic

  // Recomputes static_static; false (and zero) when the DH is degenerate.
  bool precompute(const StaticIdentity& id);
  // Forgets the ephemeral secrets and the transcript, keeps the peer's identity.
  void clear_session();
};

// What a completed handshake yields: the transport keys of one keypair.
struct SessionKeys {
  crypto::Key send{};
  crypto::Key receive{};
  bool initiator = false;
  uint32_t local_index = 0;
  uint32_t remote_index = 0;
};

// Initiator, step 1. Fills every field but the MACs.
bool noise_create_initiation(MessageInitiation& msg, Handshake& hs, const StaticIdentity& id,
                             uint32_t local_index, Nanos wall_now);

// Responder, step 1a: decrypts the initiator's static key, which names the
// peer. `scan` carries the transcript to step 1b.
struct InitiationScan {
  crypto::Key chaining_key{};
  crypto::Key hash{};
  crypto::Key remote_ephemeral{};
  crypto::Key remote_static{};
};
bool noise_scan_initiation(const MessageInitiation& msg, const StaticIdentity& id,
                           InitiationScan& scan);
// Responder, step 1b, with the peer found: timestamp, replay and flood checks.
std::optional<Drop> noise_consume_initiation(const MessageInitiation& msg,
                                             const InitiationScan& scan, Handshake& hs, Nanos now);
// Responder, step 2. Fills every field but the MACs.
bool noise_create_response(MessageResponse& msg, Handshake& hs, uint32_t local_index);
// Initiator, step 2.
std::optional<Drop> noise_consume_response(const MessageResponse& msg, Handshake& hs,
                                           const StaticIdentity& id);
// Either side, after the last step: the transport keys. Zeroes the handshake.
std::optional<SessionKeys> noise_derive_keys(Handshake& hs);

}  // namespace faraday::dataplane
