// peer.h: one WireGuard peer and its keypairs, as plain state.
//
// Who owns what today (one thread runs the whole Device, see device.h):
//  - PeerTable (peer_table.h) owns every Peer and Keypair: it creates and frees
//    peers, registers receiver indices and rotates keypairs (previous/current/
//    next), retiring old ones and freeing them at the end of each call;
//  - configuration (public key, preshared key, keepalive, endpoint, allowed IPs
//    in the AllowedIps table) is written by Device's configuration calls
//    (device.cpp), which the pipeline runs for the control thread;
//  - handshake state, cookies and the last-handshake times are written by the
//    handshake context (handshake.cpp); staged packets by the send path
//    (send.cpp); timers are reported to by all three and run by tick()
//    (timer_dispatch.cpp);
//  - a keypair's send counter is written by the send path and its replay
//    window by the receive path (receive.cpp): the only per-keypair state the
//    data path writes, which is what a per-queue worker would own (the replay
//    window also takes concurrent accept() calls from several workers, replay.h);
//  - rx/tx byte counters are written by the send, receive and handshake paths
//    and read by Pipeline::state().
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <vector>

#include "crypto/keys.h"
#include "dataplane/clock.h"
#include "dataplane/cookie.h"
#include "dataplane/net.h"
#include "dataplane/noise.h"
#include "dataplane/replay.h"
#include "dataplane/timers.h"

namespace faraday::dataplane {

struct Peer;

struct Keypair {
  crypto::Key send_key{};
  crypto::Key receive_key{};
  uint64_t send_counter = 0;
  ReplayWindow replay;
  Nanos created = 0;
  bool initiator = false;
  uint32_t local_index = 0;
  uint32_t remote_index = 0;
  Peer* peer = nullptr;

  // Usable for sending: young enough and below REJECT_AFTER_MESSAGES.
  bool can_send(Nanos now) const {
    return now - created < kRejectAfterTime && send_counter < kRejectAfterMessages;
  }
  bool can_receive(Nanos now) const { return now - created < kRejectAfterTime; }
  void wipe() {
    crypto::wipe(send_key);
    crypto::wipe(receive_key);
  }
};

struct Peer {
  uint32_t slot = 0;  // value in the allowed-IPs table

  // Configuration.
  crypto::Key public_key{};
  uint16_t persistent_keepalive = 0;  // seconds, 0 = off
  Endpoint endpoint;                  // updated by roaming

  // Handshake context.
  Handshake handshake;
  CookieMaker cookie;
  PeerTimers timers;
  Nanos last_sent_handshake = -kRekeyTimeout - 1;
  bool sent_lastminute_handshake = false;
  std::deque<std::vector<uint8_t>> staged;  // inner packets waiting for a session

  // Keypairs: previous (still accepted), current (sending), next (responder's
  // new keypair, until the initiator confirms it with a first data packet).
  std::unique_ptr<Keypair> previous, current, next;

  // Statistics (UDP payload bytes, handshakes included, as wg(8) reports).
  uint64_t rx_bytes = 0;
  uint64_t tx_bytes = 0;
  Nanos last_handshake_wall = 0;  // 0 = never
};

// MAX_STAGED_PACKETS: packets kept per peer while a handshake is in flight.
inline constexpr size_t kMaxStagedPackets = 128;

}  // namespace faraday::dataplane
