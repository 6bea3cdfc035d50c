// send.cpp: Device's send path, tunnel -> network. send_burst() routes each
// inner packet by destination (allowed IPs), encrypts the burst in one AEAD
// call and writes the transport header in place; packets for a peer without a
// usable session are staged and a handshake is started. Keepalives and staged
// packets released by a completed handshake go out through the outbox.
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

void Device::finish_transport(Packet& pkt, Peer& peer, Keypair& kp, uint64_t counter,
                              uint32_t sealed_len) {
  pkt.offset -= kTransportHeaderSize;
  uint8_t* hdr = pkt.data();
  store_le32(hdr, static_cast<uint32_t>(MessageType::kTransport));
  store_le32(hdr + 4, kp.remote_index);
  store_le64(hdr + 8, counter);
  pkt.length = static_cast<uint32_t>(kTransportHeaderSize) + sealed_len;
  pkt.endpoint = peer.endpoint;
  peer.tx_bytes += pkt.length;
  ++counters_.tx_data;
}

void Device::send_staged(Peer& peer) {
  Nanos t = now();
  Keypair* kp = peer.current.get();
  if (!kp || !kp->can_send(t) || !peer.endpoint.valid()) {
    send_initiation(peer, false);
    return;
  }
  bool carried_data = false;
  while (!peer.staged.empty()) {
    crypto::AeadJob jobs[kBurstSize];
    Packet* pkts[kBurstSize];
    size_t n = 0;
    while (n < kBurstSize && !peer.staged.empty() && kp->send_counter < kRejectAfterMessages) {
      const std::vector<uint8_t>& inner = peer.staged.front();
      size_t plen = padded_length(inner.size(), options_.mtu);
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
      jobs[n] = {&kp->send_key, kp->send_counter++, out->data(), static_cast<uint32_t>(plen),
                 false};
      pkts[n++] = out;
      peer.staged.pop_front();
    }
    if (n == 0) break;
    aead_.seal_burst({jobs, n});
    for (size_t i = 0; i < n; ++i)
      finish_transport(*pkts[i], peer, *kp, jobs[i].counter, jobs[i].length + kTagSize);
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
  if (kp && (kp->send_counter > kRekeyAfterMessages ||
             (kp->initiator && now() - kp->created >= kRekeyAfterTime)))
    send_initiation(peer, false);
}

Peer* Device::route(Packet& pkt, size_t& padded) {
  sa_family_t family;
  const uint8_t* dst;
  size_t length;
  if (!inner_destination(pkt.bytes(), family, dst, length)) {
    counters_.drop(Drop::kBadInnerPacket);
    return nullptr;
  }
  auto slot = allowed_ips_.lookup(family, dst);
  if (!slot) {
    counters_.drop(Drop::kNoRoute);
    return nullptr;
  }
  Peer& peer = peers_.at(*slot);
  if (!peer.endpoint.valid()) {
    counters_.drop(Drop::kNoEndpoint);
    return nullptr;
  }
  pkt.length = static_cast<uint32_t>(length);
  padded = padded_length(pkt.length, options_.mtu);
  if (kTransportHeaderSize + padded + kTagSize > kMaxDatagram) {
    counters_.drop(Drop::kTooBig);  // the datagram would not fit in UDP
    return nullptr;
  }
  return &peer;
}

void Device::send_burst(std::span<Packet> pkts, std::span<Verdict> verdicts) {
  Nanos t = now();
  for (size_t base = 0; base < pkts.size(); base += kBurstSize) {
    size_t count = std::min(kBurstSize, pkts.size() - base);
    AeadBurst b;
    for (size_t i = base; i < base + count; ++i) {
      Packet& pkt = pkts[i];
      verdicts[i] = Verdict::kDrop;
      size_t plen;
      Peer* peer = route(pkt, plen);
      if (!peer) continue;
      Keypair* kp = peer->current.get();
      if (!kp || !kp->can_send(t) || !peer->staged.empty()) {
        // No session yet (or packets already waiting, keep their order).
        stage(*peer, pkt);
        verdicts[i] = Verdict::kConsumed;
        send_staged(*peer);
        continue;
      }
      if (pkt.offset < kTransportHeaderSize || pkt.offset + plen + kTagSize > pkt.capacity) {
        counters_.drop(Drop::kTooBig);
        continue;
      }
      std::memset(pkt.data() + pkt.length, 0, plen - pkt.length);
      b.add({&kp->send_key, kp->send_counter++, pkt.data(), static_cast<uint32_t>(plen), false}, i,
            kp, peer);
    }
    aead_.seal_burst({b.jobs, b.n});
    for (size_t j = 0; j < b.n; ++j) {
      Packet& pkt = pkts[b.pkt[j]];
      Peer& peer = *b.peer[j];
      finish_transport(pkt, peer, *b.kp[j], b.jobs[j].counter, b.jobs[j].length + kTagSize);
      verdicts[b.pkt[j]] = Verdict::kPass;
      // Timers once per peer per burst: on the last job of that peer.
      bool last_of_peer =
          std::none_of(b.peer + j + 1, b.peer + b.n, [&](Peer* p) { return p == &peer; });
      if (last_of_peer) note_sent(peer, true);
    }
  }
  peers_.reclaim();
}

}  // namespace faraday::dataplane
