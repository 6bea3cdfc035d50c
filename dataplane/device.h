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
// Threading: a Device is used by one thread at a time, today the whole
// data-path loop (pipeline.h). The data-path calls (receive_burst, send_burst)
// touch only what a per-queue worker will own (keypair send counters and replay
// windows, byte counters); handshake messages are handled after the data
// packets of the same burst, in the handshake context (handshake.cpp), so data
// never waits behind them.
#pragma once

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
  void set_mtu(uint32_t mtu) { options_.mtu = mtu; }

  // --- Data path. verdicts.size() must be >= pkts.size().
  // Network -> tunnel. Each packet holds one UDP payload and its source.
  void receive_burst(std::span<Packet> pkts, std::span<Verdict> verdicts);
  // Tunnel -> network. Each packet holds one inner IP packet with kHeadroom in
  // front and kTailroom behind.
  void send_burst(std::span<Packet> pkts, std::span<Verdict> verdicts);

  // --- Timers and generated messages.
  void tick();
  Nanos next_deadline() const;
  std::span<Packet> outbox() { return outbox_arena_.packets().first(outbox_used_); }
  void clear_outbox() { outbox_used_ = 0; }

  const Counters& counters() const { return counters_; }
  bool under_load() const;

 private:
  Nanos now() const { return clock_.monotonic(); }
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

  // send.cpp: tunnel -> network.
  // Checks one inner packet and finds its peer; nullptr if dropped (counted).
  Peer* route(Packet& pkt, size_t& padded);
  void send_keepalive(Peer& peer);
  void send_staged(Peer& peer);
  void stage(Peer& peer, const Packet& pkt);
  void keep_key_fresh_on_send(Peer& peer);
  // After data of a burst was sent to peer.
  void note_sent(Peer& peer, bool carried_data);
  // Encrypts one inner packet in place for peer with kp and sets its header.
  void finish_transport(Packet& pkt, Peer& peer, Keypair& kp, uint64_t counter,
                        uint32_t sealed_len);

  // receive.cpp: network -> tunnel.
  // Pass 1: the keypair a transport datagram is for; nullptr if dropped.
  Keypair* receiving_keypair(Packet& pkt, Nanos t);
  // Pass 2: one authenticated datagram: replay, confirmation, routing.
  void accept_transport(Packet& pkt, Verdict& verdict, Keypair& kp, const crypto::AeadJob& job,
                        Nanos t);
  void note_received(Peer& peer, Keypair& kp, Nanos t);

  // timer_dispatch.cpp.
  void run_timer(Peer& peer, TimerAction action);

  const Clock& clock_;
  crypto::AeadBackend& aead_;
  DeviceOptions options_;
  StaticIdentity identity_;
  CookieChecker cookie_checker_;
  RateLimiter rate_limiter_;
  AllowedIps allowed_ips_;
  PeerTable peers_;
  uint32_t outbox_slot_size_;
  PacketArena outbox_arena_;
  size_t outbox_used_ = 0;
  Counters counters_;
  // Handshake load accounting.
  Nanos load_window_start_ = 0;
  uint32_t load_window_count_ = 0;
  Nanos under_load_until_ = 0;
};

}  // namespace faraday::dataplane
