// send.cpp: Device's send path, tunnel -> network. send_burst() routes each
// inner packet by destination (allowed IPs), encrypts the burst in one AEAD
// call and writes the transport header in place; packets for a peer without a
// usable session are staged and a handshake is started (on a worker: handed to
// the handshake context, which does both). Keepalives and staged packets
// released by a completed handshake go out through the outbox.
#include <algorithm>
#include <cstring>

#include "dataplane/device.h"
#include "dataplane/messages.h"

namespace faraday::dataplane {

void Device::stage(Peer& peer, const Packet& pkt) {
  if (peer.staged.size() >= kMaxStagedPackets) {
    peer.staged.pop_front();
    counters_.drop(Drop::kStagedOverflow);
  }
  peer.staged.emplace_back(pkt.data(), pkt.data() + pkt.length);
}

void Device::send_keepalive(Peer& peer) {
  if (peer.staged.empty()) peer.staged.emplace_back();
  send_staged(peer);
}

void Device::finish_transport(Packet& pkt, const Endpoint& to, Keypair& kp, uint64_t counter,
                              uint32_t sealed_len) {
  pkt.offset -= kTransportHeaderSize;
  uint8_t* hdr = pkt.data();
  store_le32(hdr, static_cast<uint32_t>(MessageType::kTransport));
  store_le32(hdr + 4, kp.remote_index);
  store_le64(hdr + 8, counter);
  pkt.length = static_cast<uint32_t>(kTransportHeaderSize) + sealed_len;
  pkt.endpoint = to;
}

void Device::send_staged(Peer& peer) {
  Nanos t = now();
  Keypair* kp = peer.current.get();
  if (!kp || !kp->can_send(t) || !peer.endpoint.valid()) {
    send_initiation(peer, false);
    return;
  }
  bool carried_data = false;
  const uint32_t mtu = mtu_.load(std::memory_order_relaxed);
  const Endpoint to = peer.endpoint.load();
  while (!peer.staged.empty()) {
    crypto::AeadJob jobs[kBurstSize];
    Packet* pkts[kBurstSize];
    size_t n = 0;
    while (n < kBurstSize && !peer.staged.empty() && kp->can_send(t)) {
      const std::vector<uint8_t>& inner = peer.staged.front();
      size_t plen = padded_length(inner.size(), mtu);
      if (kHeadroom + plen + kTagSize > outbox_slot_size_) {
        counters_.drop(Drop::kTooBig);  // the MTU grew past the outbox's slots
        peer.staged.pop_front();
        continue;
      }
      Packet* out = outbox_slot();
      if (!out) break;
      if (!inner.empty()) std::memcpy(out->data(), inner.data(), inner.size());
      std::memset(out->data() + inner.size(), 0, plen - inner.size());
      carried_data |= !inner.empty();
      uint64_t counter = kp->send_counter.fetch_add(1, std::memory_order_relaxed);
      if (counter >= kRejectAfterMessages) {  // a worker took the last nonce meanwhile
        --outbox_used_;
        break;
      }
      jobs[n] = {&kp->send_key, counter, out->data(), static_cast<uint32_t>(plen), false};
      pkts[n++] = out;
      peer.staged.pop_front();
    }
    if (n == 0) break;
    aead_.seal_burst({jobs, n});
    for (size_t i = 0; i < n; ++i) {
      finish_transport(*pkts[i], to, *kp, jobs[i].counter, jobs[i].length + kTagSize);
      peer.tx_bytes.fetch_add(pkts[i]->length, std::memory_order_relaxed);
      ++counters_.tx_data;
    }
  }
  note_sent(peer, carried_data);
}

void Device::note_sent(Peer& peer, bool carried_data) {
  Nanos t = now();
  if (carried_data) peer.timers.data_sent(t, jitter());
  peer.timers.any_authenticated_packet_traversal(t, peer.persistent_keepalive);
  peer.timers.any_authenticated_packet_sent();
  keep_key_fresh_on_send(peer);
}

void Device::keep_key_fresh_on_send(Peer& peer) {
  const Keypair* kp = peer.current.get();
  if (kp && (kp->send_counter.load(std::memory_order_relaxed) > kRekeyAfterMessages ||
             (kp->initiator && now() - kp->created >= kRekeyAfterTime)))
    send_initiation(peer, false);
}

Peer* Device::route(Worker& w, const Routing& r, Packet& pkt, size_t& padded) {
  sa_family_t family;
  const uint8_t* dst;
  size_t length;
  if (!inner_destination(pkt.bytes(), family, dst, length)) {
    w.counters_.drop(Drop::kBadInnerPacket);
    return nullptr;
  }
  auto slot = r.ips.lookup(family, dst);
  if (!slot) {
    w.counters_.drop(Drop::kNoRoute);
    return nullptr;
  }
  Peer* peer = r.by_slot[*slot];
  if (!peer->endpoint.valid()) {
    w.counters_.drop(Drop::kNoEndpoint);
    return nullptr;
  }
  pkt.length = static_cast<uint32_t>(length);
  padded = padded_length(pkt.length, mtu_.load(std::memory_order_relaxed));
  if (kTransportHeaderSize + padded + kTagSize > kMaxDatagram) {
    w.counters_.drop(Drop::kTooBig);  // the datagram would not fit in UDP
    return nullptr;
  }
  return peer;
}

void Device::reserve_nonces(Worker& w, AeadBurst& b, std::span<Packet> pkts,
                            std::span<Verdict> verdicts) {
  // One atomic step per keypair per burst: with one peer on several workers, a
  // contended atomic per packet would cost more than the crypto of a small one.
  // Nonces rise in packet order within the burst, and never pass the limit.
  constexpr uint64_t kNone = UINT64_MAX;
  bool done[kBurstSize] = {};
  for (size_t j = 0; j < b.n; ++j) {
    if (done[j]) continue;
    Keypair* kp = b.kp[j];
    uint64_t want = 0;
    for (size_t k = j; k < b.n; ++k) want += b.kp[k] == kp;
    uint64_t next = kp->send_counter.load(std::memory_order_relaxed);
    uint64_t take;
    do {
      take = next >= kRejectAfterMessages ? 0 : std::min(want, kRejectAfterMessages - next);
    } while (take != 0 &&
             !kp->send_counter.compare_exchange_weak(next, next + take, std::memory_order_relaxed));
    for (size_t k = j; k < b.n; ++k) {
      if (b.kp[k] != kp) continue;
      b.jobs[k].counter = take > 0 ? next++ : kNone;
      take -= take > 0;
      done[k] = true;
    }
  }
  // The keypair ran out under these packets (here or on another worker): they
  // wait for the next session, as they would had the burst found it spent.
  size_t kept = 0;
  for (size_t j = 0; j < b.n; ++j) {
    if (b.jobs[j].counter == kNone) {
      Packet& pkt = pkts[b.pkt[j]];
      verdicts[b.pkt[j]] = Verdict::kConsumed;
      if (w.on_control_thread_) {
        stage(*b.peer[j], pkt);
        send_staged(*b.peer[j]);
      } else {
        hand_over_staged(w, *b.peer[j], pkt);
      }
      continue;
    }
    if (kept != j) {
      b.jobs[kept] = b.jobs[j];
      b.pkt[kept] = b.pkt[j];
      b.kp[kept] = b.kp[j];
      b.peer[kept] = b.peer[j];
    }
    ++kept;
  }
  b.n = kept;
}

void Device::send_burst(std::span<Packet> pkts, std::span<Verdict> verdicts) {
  commit();
  send_burst(own_worker_, pkts, verdicts);
  commit();
}

void Device::send_burst(Worker& w, std::span<Packet> pkts, std::span<Verdict> verdicts) {
  Nanos t = now();
  const Routing& r = routing();
  const bool direct = w.on_control_thread_;
  for (size_t base = 0; base < pkts.size(); base += kBurstSize) {
    size_t count = std::min(kBurstSize, pkts.size() - base);
    AeadBurst b;
    for (size_t i = base; i < base + count; ++i) {
      Packet& pkt = pkts[i];
      verdicts[i] = Verdict::kDrop;
      size_t plen;
      Peer* peer = route(w, r, pkt, plen);
      if (!peer) continue;
      Keypair* kp = direct ? peer->current.get() : peer->sending.load(std::memory_order_acquire);
      // No session yet (or, on the control thread, packets already waiting: keep
      // their order). A worker's own packets cannot overtake staged ones: the
      // keypair that releases them is published only after they left. The nonce
      // limit is reserve_nonces' to check, once per keypair per burst: the
      // counter is written by every worker sending to the peer, and a read of it
      // per packet here was a cache miss per packet with two workers.
      if (!kp || !kp->young(t) || (direct && !peer->staged.empty())) {
        verdicts[i] = Verdict::kConsumed;
        if (direct) {
          stage(*peer, pkt);
          send_staged(*peer);
        } else {
          hand_over_staged(w, *peer, pkt);
        }
        continue;
      }
      if (pkt.offset < kTransportHeaderSize || pkt.offset + plen + kTagSize > pkt.capacity) {
        w.counters_.drop(Drop::kTooBig);
        continue;
      }
      std::memset(pkt.data() + pkt.length, 0, plen - pkt.length);
      b.add({&kp->send_key, 0, pkt.data(), static_cast<uint32_t>(plen), false}, i, kp, peer);
    }
    reserve_nonces(w, b, pkts, verdicts);
    w.aead_.seal_burst({b.jobs, b.n});
    // Byte counters and timers once per peer per burst, after its last job. The
    // burst's peers in the order of their last jobs (one pass from the end; a
    // burst has few peers, and one is the common case).
    Peer* peers[kBurstSize];
    static_assert(kBurstSize <= 256, "peer_of holds an index into peers");
    uint8_t peer_of[kBurstSize];
    size_t npeers = 0;
    for (size_t j = b.n; j-- > 0;) {
      size_t k = 0;
      while (k < npeers && peers[k] != b.peer[j]) ++k;
      if (k == npeers) peers[npeers++] = b.peer[j];
      peer_of[j] = static_cast<uint8_t>(k);
    }
    uint64_t bytes[kBurstSize];
    std::fill_n(bytes, npeers, uint64_t{0});
    Peer* last = nullptr;
    Endpoint to;
    for (size_t j = 0; j < b.n; ++j) {
      Packet& pkt = pkts[b.pkt[j]];
      Peer& peer = *b.peer[j];
      if (&peer != last) {
        to = peer.endpoint.load();
        last = &peer;
      }
      finish_transport(pkt, to, *b.kp[j], b.jobs[j].counter, b.jobs[j].length + kTagSize);
      verdicts[b.pkt[j]] = Verdict::kPass;
      ++w.counters_.tx_data;
      bytes[peer_of[j]] += pkt.length;
    }
    for (size_t k = npeers; k-- > 0;) {
      Peer& peer = *peers[k];
      peer.tx_bytes.fetch_add(bytes[k], std::memory_order_relaxed);
      if (direct)
        note_sent(peer, true);
      else
        report(w, peer, kEventSentData | kEventSentAny);
    }
  }
}

}  // namespace faraday::dataplane
