// receive.cpp: Device's receive path, network -> tunnel. receive_burst() runs
// three passes over each burst: (1) transport datagrams are matched to their
// keypair by receiver index and queued for one AEAD call, handshake messages
// are set aside; (2) each authenticated datagram passes the replay window,
// may confirm a responder's keypair or roam the peer's endpoint, and its inner
// source must be in the peer's allowed IPs; (3) the set-aside handshake
// messages go to the handshake context (handshake.cpp).
#include <algorithm>

#include "dataplane/device.h"
#include "dataplane/messages.h"

namespace faraday::dataplane {

namespace {

// Handshake messages are handled after the data packets of a burst; this
// marks them during the first pass.
bool is_handshake(std::span<const uint8_t> datagram) {
  return datagram.size() >= 4 && load_le32(datagram.data()) >= 1 && load_le32(datagram.data()) <= 3;
}

}  // namespace

Keypair* Device::receiving_keypair(Packet& pkt, Nanos t) {
  auto type = classify(pkt.bytes());
  if (const Drop* reason = std::get_if<Drop>(&type)) {
    counters_.drop(*reason);
    return nullptr;
  }
  const PeerTable::IndexEntry* entry = peers_.find_index(load_le32(pkt.data() + 4));
  if (!entry || entry->keypair == nullptr) {
    counters_.drop(Drop::kUnknownIndex);
    return nullptr;
  }
  Keypair* kp = entry->keypair;
  uint64_t counter = load_le64(pkt.data() + 8);
  if (!kp->can_receive(t) || counter >= kRejectAfterMessages) {
    counters_.drop(Drop::kKeypairExpired);
    return nullptr;
  }
  return kp;
}

// An authenticated, fresh datagram from kp's peer: roaming, confirmation of a
// responder's keypair, the last-minute rekey, the timers.
void Device::note_received(Peer& peer, Keypair& kp, Nanos t) {
  if (&kp == peer.next.get()) {
    // The initiator's first data confirms the responder's new keypair.
    peers_.confirm_next(peer);
    ++counters_.handshakes_completed;
    peer.last_handshake_wall = clock_.wall();
    peer.timers.handshake_complete();
    send_staged(peer);
  }
  if (&kp == peer.current.get() && kp.initiator && !peer.sent_lastminute_handshake &&
      t - kp.created >= kRejectAfterTime - kKeepaliveTimeout - kRekeyTimeout) {
    peer.sent_lastminute_handshake = true;
    send_initiation(peer, false);
  }
  peer.timers.any_authenticated_packet_received();
  peer.timers.any_authenticated_packet_traversal(t, peer.persistent_keepalive);
}

void Device::accept_transport(Packet& pkt, Verdict& verdict, Keypair& kp,
                              const crypto::AeadJob& job, Nanos t) {
  if (!job.ok) {
    counters_.drop(Drop::kDecryptFailed);
    return;
  }
  switch (kp.replay.accept(job.counter)) {
    case ReplayResult::kAccepted:
      break;
    case ReplayResult::kDuplicate:
      counters_.drop(Drop::kReplayDuplicate);
      return;
    case ReplayResult::kTooOld:
      counters_.drop(Drop::kReplayTooOld);
      return;
    case ReplayResult::kLimit:
      counters_.drop(Drop::kKeypairExpired);
      return;
  }
  Peer& peer = *kp.peer;
  peer.endpoint = pkt.endpoint;  // roaming: only from authenticated packets
  peer.rx_bytes += pkt.length;
  note_received(peer, kp, t);
  uint32_t plain_len = job.length - static_cast<uint32_t>(kTagSize);
  if (plain_len == 0) {
    verdict = Verdict::kConsumed;  // keepalive
    return;
  }
  peer.timers.data_received(t);
  std::span<const uint8_t> inner{pkt.data() + kTransportHeaderSize, plain_len};
  sa_family_t family;
  const uint8_t* src;
  size_t length;
  if (!inner_source(inner, family, src, length)) {
    counters_.drop(Drop::kBadInnerPacket);
    return;
  }
  auto slot = allowed_ips_.lookup(family, src);
  if (!slot || *slot != peer.slot) {
    counters_.drop(Drop::kSourceNotAllowed);
    return;
  }
  pkt.offset += kTransportHeaderSize;
  pkt.length = static_cast<uint32_t>(length);
  verdict = Verdict::kPass;
  ++counters_.rx_data;
}

void Device::receive_burst(std::span<Packet> pkts, std::span<Verdict> verdicts) {
  Nanos t = now();
  for (size_t base = 0; base < pkts.size(); base += kBurstSize) {
    size_t count = std::min(kBurstSize, pkts.size() - base);
    AeadBurst b;
    // Pass 1: transport data to the AEAD burst; handshakes wait for pass 3.
    for (size_t i = base; i < base + count; ++i) {
      Packet& pkt = pkts[i];
      ++counters_.rx_datagrams;
      verdicts[i] = Verdict::kDrop;
      if (is_handshake(pkt.bytes())) {
        verdicts[i] = Verdict::kConsumed;  // decided in pass 3
        continue;
      }
      Keypair* kp = receiving_keypair(pkt, t);
      if (!kp) continue;
      b.add({&kp->receive_key, load_le64(pkt.data() + 8), pkt.data() + kTransportHeaderSize,
             static_cast<uint32_t>(pkt.length - kTransportHeaderSize), false},
            i, kp, nullptr);
    }
    aead_.open_burst({b.jobs, b.n});
    // Pass 2: authenticated packets: replay, session confirmation, routing.
    for (size_t j = 0; j < b.n; ++j)
      accept_transport(pkts[b.pkt[j]], verdicts[b.pkt[j]], *b.kp[j], b.jobs[j], t);
    // Pass 3: the handshake context.
    for (size_t i = base; i < base + count; ++i)
      if (verdicts[i] == Verdict::kConsumed && is_handshake(pkts[i].bytes()))
        handle_handshake(pkts[i], verdicts[i]);
  }
  peers_.reclaim();
}

}  // namespace faraday::dataplane
