// peer.h: one WireGuard peer and its keypairs.
//
// Threads. The handshake context (the control thread; device.h) owns every
// Peer and Keypair and writes everything here, except what the data-path
// workers write on the packet path, which is marked "workers" below and is
// atomic. Workers read a Peer or Keypair only through the snapshots the
// PeerTable publishes (peer_table.h); objects taken out of use are freed after
// an RCU grace period (rcu.h), so a pointer a worker loaded stays valid until
// its next quiescent state.
//
// Field by field, what the packet path touches:
//   Keypair::send_key, receive_key, created, initiator, local/remote_index, peer:
//       written before the keypair is published, then read-only. Wiped only
//       when the keypair is freed, after the grace period.
//   Keypair::send_counter   workers: one compare-exchange per keypair per burst reserves
//                           that burst's nonces, so each packet has its own even
//                           when several workers send on one keypair at once. A
//                           cache line of its own: the keys beside it are read
//                           for every packet.
//   Keypair::replay         workers: a lock-free window (replay.h); a counter is
//                           accepted by at most one worker.
//   Keypair::confirmed      handshake context writes; workers read: false while a
//                           responder's keypair waits for the initiator's first data.
//   Keypair::confirm_asked  workers: set once to ask the handshake context to
//                           confirm this keypair (no repeat while it is pending).
//   Peer::endpoint          handshake context writes (roaming is asked for through
//                           the worker's ring); workers read (a seqlock, no lock).
//   Peer::sending           handshake context publishes the current keypair; workers
//                           load it to encrypt.
//   Peer::events            workers set bits (what happened since the handshake
//                           context last looked: data sent, packet received...);
//                           the handshake context takes them all and runs the timers.
//   Peer::rx_bytes, tx_bytes  workers and handshake context add (relaxed atomics,
//                           once per peer per burst).
// Everything else (handshake, cookie, timers, staged packets, keypair rotation)
// is the handshake context's alone.
#pragma once

#include <atomic>
#include <cstdint>
#include <cstring>
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

// An Endpoint that one thread writes and others read, without a lock: a
// sequence lock over atomic words. Readers retry while a write is under way.
class AtomicEndpoint {
 public:
  AtomicEndpoint() { store(Endpoint{}); }
  AtomicEndpoint(const AtomicEndpoint&) = delete;
  AtomicEndpoint& operator=(const AtomicEndpoint&) = delete;
  AtomicEndpoint& operator=(const Endpoint& e) {
    store(e);
    return *this;
  }
  operator Endpoint() const { return load(); }  // NOLINT: reads as its value
  bool operator==(const Endpoint& e) const { return load() == e; }
  bool valid() const { return load().valid(); }

  Endpoint load() const {
    for (;;) {
      uint32_t before = seq_.load(std::memory_order_acquire);
      uint64_t words[kWords];
      for (size_t i = 0; i < kWords; ++i) words[i] = words_[i].load(std::memory_order_relaxed);
      std::atomic_thread_fence(std::memory_order_acquire);
      if ((before & 1) == 0 && seq_.load(std::memory_order_relaxed) == before) {
        Endpoint e;
        std::memcpy(&e, words, sizeof(e));
        return e;
      }
    }
  }
  // Changes with every store(): tells a reader whether the writer has been here.
  uint32_t version() const { return seq_.load(std::memory_order_acquire); }
  // The one writer (the handshake context).
  void store(const Endpoint& e) {
    uint64_t words[kWords] = {};
    std::memcpy(words, &e, sizeof(e));
    uint32_t s = seq_.load(std::memory_order_relaxed);
    seq_.store(s + 1, std::memory_order_relaxed);
    std::atomic_thread_fence(std::memory_order_release);
    for (size_t i = 0; i < kWords; ++i) words_[i].store(words[i], std::memory_order_relaxed);
    seq_.store(s + 2, std::memory_order_release);
  }

 private:
  static constexpr size_t kWords = (sizeof(Endpoint) + 7) / 8;
  std::atomic<uint32_t> seq_{0};
  std::atomic<uint64_t> words_[kWords];
};

struct Keypair {
  crypto::Key send_key{};
  crypto::Key receive_key{};
  alignas(64) std::atomic<uint64_t> send_counter{0};
  alignas(64) ReplayWindow replay;
  Nanos created = 0;
  bool initiator = false;
  uint32_t local_index = 0;
  uint32_t remote_index = 0;
  Peer* peer = nullptr;
  std::atomic<bool> confirmed{true};
  std::atomic<bool> confirm_asked{false};

  // Younger than REJECT_AFTER_TIME: usable for receiving, and for sending while
  // below REJECT_AFTER_MESSAGES too (can_send).
  bool young(Nanos now) const { return now - created < kRejectAfterTime; }
  bool can_send(Nanos now) const {
    return young(now) && send_counter.load(std::memory_order_relaxed) < kRejectAfterMessages;
  }
  void wipe() {
    crypto::wipe(send_key);
    crypto::wipe(receive_key);
  }
};

// What workers report to the handshake context through Peer::events.
enum PeerEvent : uint32_t {
  kEventSentData = 1,      // data sent: new-handshake timer, key freshness
  kEventSentAny = 2,       // an authenticated packet sent (cancels the keepalive)
  kEventReceivedAny = 4,   // an authenticated packet received
  kEventReceivedData = 8,  // data received: the passive keepalive
};

struct Peer {
  uint32_t slot = 0;  // value in the allowed-IPs table
  uint64_t id = 0;    // unique for the Device's life: tells a reused slot apart

  // Configuration.
  crypto::Key public_key{};
  uint16_t persistent_keepalive = 0;  // seconds, 0 = off
  AtomicEndpoint endpoint;            // updated by roaming

  // Shared with the workers (see the top of this file).
  std::atomic<Keypair*> sending{nullptr};
  std::atomic<uint32_t> events{0};

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
  std::atomic<uint64_t> rx_bytes{0};
  std::atomic<uint64_t> tx_bytes{0};
  Nanos last_handshake_wall = 0;  // 0 = never
};

// MAX_STAGED_PACKETS: packets kept per peer while a handshake is in flight.
inline constexpr size_t kMaxStagedPackets = 128;

}  // namespace faraday::dataplane
