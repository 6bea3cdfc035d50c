// device.h: the WireGuard core of one interface, sans-IO.
//
// Device takes bursts of datagrams from the network and of inner packets from
// the tunnel, and rewrites them in place: decrypted packets for the tunnel,
// encrypted datagrams (endpoint set) for the network. Messages the core makes
// itself (handshake messages, cookie replies, keepalives, packets released by a
// completed handshake) go to the outbox, which the caller sends and clears.
// Time comes from the injected Clock; tick() runs the timers that are due and
// next_deadline() says when to call it again. No sockets, threads or clocks
// inside, so two Devices can be wired together in memory by a test.
//
// Device is the facade; its implementation is split by concern:
//   device.cpp          construction, configuration (the control thread's part), outbox
//   peer_table.{h,cpp}  peers by key and slot, receiver indices, keypair rotation
//   handshake.cpp       the handshake context: initiation, response, cookie reply,
//                       mac1/mac2 admission and load accounting
//   send.cpp            tunnel -> network: send_burst, staged packets, keepalives
//   receive.cpp         network -> tunnel: receive_burst
//   timer_dispatch.cpp  tick(), next_deadline(): runs what timers.h decides
//
//   worker.{h,cpp}      per-worker state, the rings to the handshake context, and
//                       service(), which drains them
//
// Threading. One thread, the control thread, is the handshake context: it calls
// everything here except the Worker overloads of receive_burst and send_burst.
// Any number of worker threads call those at once, each with its own Worker
// (add_worker(), before the threads start) and each holding an RcuReader
// (rcu.h). Workers read the peers through snapshots that commit() publishes
// (the routing table here, the receiver indices in peer_table.h) and write only
// the atomic fields peer.h lists; what they cannot do themselves (handshake
// messages, packets waiting for a session, timers, roaming, confirming a
// keypair) they hand over through their rings, which service() drains. Neither
// side takes a lock; nothing on a worker's path allocates.
//
// The overloads without a Worker run the data path on the control thread with
// the Device's own worker, which acts on the handshake state directly (as one
// thread did everything before there were workers): in-memory tests, and a
// pipeline with one worker. They publish first and reclaim after.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <vector>

#include "crypto/aead_batch.h"
#include "crypto/keys.h"
#include "dataplane/allowedips.h"
#include "dataplane/clock.h"
#include "dataplane/cookie.h"
#include "dataplane/counters.h"
#include "dataplane/noise.h"
#include "dataplane/packet.h"
#include "dataplane/peer.h"
#include "dataplane/peer_table.h"
#include "dataplane/ratelimiter.h"
#include "dataplane/worker.h"

namespace faraday::dataplane {

// What became of one packet of a burst.
enum class Verdict : uint8_t {
  kPass,      // receive: deliver to the tunnel; send: transmit to packet.endpoint
  kConsumed,  // taken by the core (handshake message, keepalive, staged for later)
  kDrop,      // dropped; the reason was counted
};

struct DeviceOptions {
  uint32_t mtu = 1420;  // inner MTU, caps the padding
  // More handshake messages than this within one second put the device under
  // load for a second: initiations then need a valid mac2 (cookie) and pass
  // the per-source rate limiter.
  uint32_t under_load_threshold = 64;
  size_t outbox_size = 256;  // slots of slot_size(mtu) bytes (packet.h)
  // Per worker: handshake messages and packets for staging in flight to the
  // handshake context (worker.h).
  size_t handoff_handshakes = 256;
  size_t handoff_staged = 32;
  // Tests fix the jitter; negative means random in [0, kMaxJitter).
  Nanos fixed_jitter = -1;
};

class Device {
 public:
  Device(const Clock& clock, crypto::AeadBackend& aead, DeviceOptions options = {});
  ~Device();
  Device(const Device&) = delete;
  Device& operator=(const Device&) = delete;

  // --- Configuration.
  // Sets or clears the private key. Peers whose public key equals the new
  // public key are removed (a device is never its own peer).
  void set_private_key(const std::optional<crypto::Key>& private_key);
  const StaticIdentity& identity() const { return identity_; }
  // Adds a peer, or returns the existing one. nullptr if it is our own key.
  Peer* add_peer(const crypto::Key& public_key);
  Peer* find_peer(const crypto::Key& public_key);
  void remove_peer(const crypto::Key& public_key);
  void remove_all_peers();
  void set_preshared_key(Peer& peer, const crypto::Key& psk);  // zero key = none
  void set_endpoint(Peer& peer, const Endpoint& endpoint);
  // Turning keepalive on sends one at once, so the peer learns our endpoint.
  void set_persistent_keepalive(Peer& peer, uint16_t seconds);
  void add_allowed_ip(Peer& peer, const Prefix& prefix);
  void clear_allowed_ips(Peer& peer);
  std::vector<Prefix> allowed_ips(const Peer& peer) const {
    return allowed_ips_.prefixes_of(peer.slot);
  }
  std::vector<const Peer*> peers() const;  // in order of addition
  void set_mtu(uint32_t mtu) { mtu_.store(mtu, std::memory_order_relaxed); }

  // --- Workers (control thread).
  // A worker for one more data-path thread, with its own AEAD backend. Before
  // the threads start; the Device owns it.
  Worker& add_worker(crypto::AeadBackend& aead);
  // Called (from a worker) when it hands over a parcel, or sends a note and has
  // not woken the control thread for kNoteWakeInterval (worker.h): wake the
  // control thread so it calls service() soon. While service() finds work, call
  // it again within kNoteWakeInterval.
  void set_wake(void (*wake)(void*), void* arg) {
    wake_ = wake;
    wake_arg_ = arg;
  }
  // Drains every worker's rings: events for the timers, confirmations, roaming,
  // then handshake messages and packets to stage while the outbox has room;
  // then commit(). True if it found anything: then send the outbox and call it
  // again, until false.
  bool service();
  // Publishes configuration and keypair changes to the workers, then frees what
  // they can no longer see (after a grace period). The overloads without a
  // Worker and service() call it; a caller that configures the Device while
  // workers run calls it after each batch of changes.
  void commit();

  // --- Data path. verdicts.size() must be >= pkts.size().
  // Network -> tunnel. Each packet holds one UDP payload and its source.
  void receive_burst(std::span<Packet> pkts, std::span<Verdict> verdicts);
  // Tunnel -> network. Each packet holds one inner IP packet with kHeadroom in
  // front and kTailroom behind.
  void send_burst(std::span<Packet> pkts, std::span<Verdict> verdicts);
  // The same on a worker thread. Handshake messages and packets for a peer
  // without a session are handed over (verdict kConsumed).
  void receive_burst(Worker& w, std::span<Packet> pkts, std::span<Verdict> verdicts);
  void send_burst(Worker& w, std::span<Packet> pkts, std::span<Verdict> verdicts);

  // --- Timers and generated messages.
  void tick();
  Nanos next_deadline() const;
  std::span<Packet> outbox() { return outbox_arena_.packets().first(outbox_used_); }
  void clear_outbox() { outbox_used_ = 0; }

  // The handshake context's counters and every worker's, summed.
  Counters counters() const;
  bool under_load() const;

 private:
  Nanos now() const { return clock_.monotonic(); }
  // Timer jitter: spreads rekeys, needs no secrecy. A generator seeded once
  // from the CSPRNG, so a burst does not pay a getrandom() per peer.
  Nanos jitter();
  Packet* outbox_slot();

  // handshake.cpp: the handshake context.
  void handle_handshake(Packet& pkt, Verdict& verdict);
  void handle_initiation(Packet& pkt, Verdict& verdict);
  void respond(Peer& peer);
  void handle_response(Packet& pkt, Verdict& verdict);
  void handle_cookie_reply(Packet& pkt, Verdict& verdict);
  // Checks mac1, and under load mac2 and the rate limiter; may send a cookie.
  bool admit_handshake(Packet& pkt, size_t mac1_off);
  void send_initiation(Peer& peer, bool is_retry);

  // One burst's AEAD jobs with the packet, keypair and peer each is for; the
  // send and receive paths fill it, run it through the backend, then finish
  // each job in order.
  struct AeadBurst {
    crypto::AeadJob jobs[kBurstSize];
    size_t pkt[kBurstSize];
    Keypair* kp[kBurstSize];
    Peer* peer[kBurstSize];
    size_t n = 0;
    void add(const crypto::AeadJob& job, size_t i, Keypair* k, Peer* p) {
      jobs[n] = job;
      pkt[n] = i;
      kp[n] = k;
      peer[n++] = p;
    }
  };

  // What the workers route by: the allowed-IPs table and the peers by slot, as
  // one immutable version (commit() publishes a new one when either changed).
  struct Routing {
    AllowedIps ips;
    std::vector<Peer*> by_slot;  // nullptr: a free slot
    // What workers check handshake messages with before they hand them over,
    // so junk cannot fill the ring (nullopt: no private key, nothing passes).
    std::optional<crypto::Key> mac1_key;
  };
  const Routing& routing() const { return *routing_.load(std::memory_order_acquire); }
  // send.cpp: gives each job of a sealing burst its nonce; the packets whose
  // keypair ran out are taken out of the burst and staged.
  void reserve_nonces(Worker& w, AeadBurst& b, std::span<Packet> pkts, std::span<Verdict> verdicts);

  // worker.cpp: the handshake context's side of the rings.
  bool drain(Worker& w);
  Peer* peer_by_id(uint32_t slot, uint64_t id);
  void apply_events(Peer& peer, uint32_t events);
  void confirm(Peer& peer);
  // On a worker: hands pkt over to be staged for peer, or drops it (counted).
  void hand_over_staged(Worker& w, Peer& peer, const Packet& pkt);
  // Sets bits in peer.events; a note when they were clear.
  void report(Worker& w, Peer& peer, uint32_t bits);
  // Worker::note, waking the control thread as worker.h says.
  bool note(Worker& w, const Worker::Note& n);

  // send.cpp: tunnel -> network.
  // Checks one inner packet and finds its peer; nullptr if dropped (counted).
  Peer* route(Worker& w, const Routing& r, Packet& pkt, size_t& padded);
  void send_keepalive(Peer& peer);
  void send_staged(Peer& peer);
  void stage(Peer& peer, const Packet& pkt);
  void keep_key_fresh_on_send(Peer& peer);
  // After data of a burst was sent to peer.
  void note_sent(Peer& peer, bool carried_data);
  // Encrypts one inner packet in place for peer with kp and sets its header.
  void finish_transport(Packet& pkt, const Endpoint& to, Keypair& kp, uint64_t counter,
                        uint32_t sealed_len);

  // receive.cpp: network -> tunnel.
  // Pass 1: the keypair a transport datagram is for; nullptr if dropped.
  Keypair* receiving_keypair(Worker& w, const IndexSnapshot& ix, Packet& pkt, Nanos t);
  // What pass 2 writes to state that every worker receiving from a peer
  // shares, gathered over the burst and written once per peer and keypair at
  // its end: the peer's received bytes, and the edge of the keypair's replay
  // window (ReplayWindow::raise). Written per packet, those cache lines moved
  // between cores per packet when workers shared peers.
  template <class Key>
  struct BurstSums {
    Key* keys[kBurstSize];
    uint64_t values[kBurstSize];
    size_t n = 0;
    size_t last = 0;  // the entry found last: usually the same key again
    // The value for key, 0 the first time.
    uint64_t& at(Key& key) {
      if (n == 0 || keys[last] != &key) {
        last = 0;
        while (last < n && keys[last] != &key) ++last;
        if (last == n) {
          keys[n] = &key;
          values[n++] = 0;
        }
      }
      return values[last];
    }
  };
  struct BurstTally {
    BurstSums<Peer> bytes;
    BurstSums<Keypair> greatest;  // counters marked in the replay window
    void flush() {
      for (size_t k = 0; k < bytes.n; ++k)
        bytes.keys[k]->rx_bytes.fetch_add(bytes.values[k], std::memory_order_relaxed);
      for (size_t k = 0; k < greatest.n; ++k) greatest.keys[k]->replay.raise(greatest.values[k]);
      bytes.n = greatest.n = 0;
    }
  };
  // Pass 3 on a worker: whether a handshake message may go to the ring: its
  // mac1 holds (initiation, response), or the ring is at most half used
  // (cookie reply).
  static bool may_hand_over(Worker& w, const Routing& r, MessageType type,
                            std::span<const uint8_t> msg);
  // Pass 2: one authenticated datagram: replay, confirmation, routing.
  void accept_transport(Worker& w, const Routing& r, Packet& pkt, Verdict& verdict, Keypair& kp,
                        const crypto::AeadJob& job, Nanos t, BurstTally& rx);
  // On a worker, what note_received does on the control thread.
  void report_received(Worker& w, Peer& peer, Keypair& kp, const Endpoint& from, bool data);
  void note_received(Peer& peer, Keypair& kp, Nanos t);

  // timer_dispatch.cpp.
  void run_timer(Peer& peer, TimerAction action);

  const Clock& clock_;
  crypto::AeadBackend& aead_;
  DeviceOptions options_;
  std::atomic<uint32_t> mtu_;
  StaticIdentity identity_;
  CookieChecker cookie_checker_;
  RateLimiter rate_limiter_;
  AllowedIps allowed_ips_;
  PeerTable peers_;
  bool routing_changed_ = true;
  std::atomic<const Routing*> routing_{nullptr};
  std::vector<std::unique_ptr<const Routing>> retired_routing_;
  uint32_t outbox_slot_size_;
  PacketArena outbox_arena_;
  size_t outbox_used_ = 0;
  Counters counters_;
  // Handshake load accounting.
  Nanos load_window_start_ = 0;
  uint32_t load_window_count_ = 0;
  Nanos under_load_until_ = 0;
  uint64_t jitter_state_;
  Worker own_worker_;
  std::vector<std::unique_ptr<Worker>> workers_;
  void (*wake_)(void*) = nullptr;
  void* wake_arg_ = nullptr;
};

}  // namespace faraday::dataplane
