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

Keypair* Device::receiving_keypair(Worker& w, const IndexSnapshot& ix, Packet& pkt, Nanos t) {
  auto type = classify(pkt.bytes());
  if (const Drop* reason = std::get_if<Drop>(&type)) {
    w.counters_.drop(*reason);
    return nullptr;
  }
  Keypair* kp = ix.find(load_le32(pkt.data() + 4));
  if (!kp) {
    w.counters_.drop(Drop::kUnknownIndex);
    return nullptr;
  }
  uint64_t counter = load_le64(pkt.data() + 8);
  if (!kp->young(t) || counter >= kRejectAfterMessages) {
    w.counters_.drop(Drop::kKeypairExpired);
    return nullptr;
  }
  return kp;
}

// An authenticated, fresh datagram from kp's peer: roaming, confirmation of a
// responder's keypair, the last-minute rekey, the timers.
void Device::note_received(Peer& peer, Keypair& kp, Nanos t) {
  if (&kp == peer.next.get()) confirm(peer);
  if (&kp == peer.current.get() && kp.initiator && !peer.sent_lastminute_handshake &&
      t - kp.created >= kRejectAfterTime - kKeepaliveTimeout - kRekeyTimeout) {
    peer.sent_lastminute_handshake = true;
    send_initiation(peer, false);
  }
  peer.timers.any_authenticated_packet_received();
  peer.timers.any_authenticated_packet_traversal(t, peer.persistent_keepalive);
}

void Device::accept_transport(Worker& w, const Routing& r, Packet& pkt, Verdict& verdict,
                              Keypair& kp, const crypto::AeadJob& job, Nanos t, BurstTally& rx) {
  if (!job.ok) {
    w.counters_.drop(Drop::kDecryptFailed);
    return;
  }
  switch (kp.replay.mark(job.counter)) {
    case ReplayResult::kAccepted: {
      uint64_t& greatest = rx.greatest.at(kp);
      greatest = std::max(greatest, job.counter);
      break;
    }
    case ReplayResult::kDuplicate:
      w.counters_.drop(Drop::kReplayDuplicate);
      return;
    case ReplayResult::kTooOld:
      w.counters_.drop(Drop::kReplayTooOld);
      return;
    case ReplayResult::kLimit:
      w.counters_.drop(Drop::kKeypairExpired);
      return;
  }
  Peer& peer = *kp.peer;
  rx.bytes.at(peer) += pkt.length;
  uint32_t plain_len = job.length - static_cast<uint32_t>(kTagSize);
  if (w.on_control_thread_) {
    peer.endpoint = pkt.endpoint;  // roaming: only from authenticated packets
    note_received(peer, kp, t);
    if (plain_len != 0) peer.timers.data_received(t);
  } else {
    report_received(w, peer, kp, pkt.endpoint, plain_len != 0);
  }
  if (plain_len == 0) {
    verdict = Verdict::kConsumed;  // keepalive
    return;
  }
  std::span<const uint8_t> inner{pkt.data() + kTransportHeaderSize, plain_len};
  sa_family_t family;
  const uint8_t* src;
  size_t length;
  if (!inner_source(inner, family, src, length)) {
    w.counters_.drop(Drop::kBadInnerPacket);
    return;
  }
  // By pointer: the routing version may be newer than the keypair's, and a
  // slot may have been given to another peer since.
  auto slot = r.ips.lookup(family, src);
  if (!slot || r.by_slot[*slot] != &peer) {
    w.counters_.drop(Drop::kSourceNotAllowed);
    return;
  }
  pkt.offset += kTransportHeaderSize;
  pkt.length = static_cast<uint32_t>(length);
  verdict = Verdict::kPass;
  ++w.counters_.rx_data;
}

bool Device::may_hand_over(Worker& w, const Routing& r, MessageType type,
                           std::span<const uint8_t> msg) {
  switch (type) {
    case MessageType::kInitiation:
      return r.mac1_key &&
             CookieChecker::verify_mac1(*r.mac1_key, msg, mac1_offset<MessageInitiation>());
    case MessageType::kResponse:
      return r.mac1_key &&
             CookieChecker::verify_mac1(*r.mac1_key, msg, mac1_offset<MessageResponse>());
    default:
      // A cookie reply has no mac1 (the handshake context decrypts it): it may
      // use only half the ring, so a flood of them leaves room for handshakes.
      return w.handshakes_.free_count() > w.handshakes_.count() / 2;
  }
}

void Device::receive_burst(std::span<Packet> pkts, std::span<Verdict> verdicts) {
  commit();
  receive_burst(own_worker_, pkts, verdicts);
  commit();
}

void Device::receive_burst(Worker& w, std::span<Packet> pkts, std::span<Verdict> verdicts) {
  Nanos t = now();
  for (size_t base = 0; base < pkts.size(); base += kBurstSize) {
    size_t count = std::min(kBurstSize, pkts.size() - base);
    // On the control thread, a handshake of the previous chunk is seen by this one.
    if (w.on_control_thread_ && base != 0) commit();
    const Routing& r = routing();
    const IndexSnapshot& ix = *peers_.published_index();
    AeadBurst b;
    // Pass 1: transport data to the AEAD burst; handshakes wait for pass 3.
    for (size_t i = base; i < base + count; ++i) {
      Packet& pkt = pkts[i];
      ++w.counters_.rx_datagrams;
      verdicts[i] = Verdict::kDrop;
      if (is_handshake(pkt.bytes())) {
        verdicts[i] = Verdict::kConsumed;  // decided in pass 3
        continue;
      }
      Keypair* kp = receiving_keypair(w, ix, pkt, t);
      if (!kp) continue;
      b.add({&kp->receive_key, load_le64(pkt.data() + 8), pkt.data() + kTransportHeaderSize,
             static_cast<uint32_t>(pkt.length - kTransportHeaderSize), false},
            i, kp, nullptr);
    }
    w.aead_.open_burst({b.jobs, b.n});
    // Pass 2: authenticated packets: replay, session confirmation, routing.
    BurstTally rx;
    for (size_t j = 0; j < b.n; ++j)
      accept_transport(w, r, pkts[b.pkt[j]], verdicts[b.pkt[j]], *b.kp[j], b.jobs[j], t, rx);
    rx.flush();
    // Pass 3: the handshake context, here or through the worker's ring.
    bool handed_over = false;
    for (size_t i = base; i < base + count; ++i) {
      if (verdicts[i] != Verdict::kConsumed || !is_handshake(pkts[i].bytes())) continue;
      auto type = classify(pkts[i].bytes());
      if (w.on_control_thread_) {
        handle_handshake(pkts[i], verdicts[i]);
      } else if (const Drop* reason = std::get_if<Drop>(&type)) {
        w.counters_.drop(*reason);  // a wrong size never reaches the ring
        verdicts[i] = Verdict::kDrop;
      } else if (!may_hand_over(w, r, std::get<MessageType>(type), pkts[i].bytes())) {
        // Nor junk: a flood cannot crowd out peers' handshakes.
        w.counters_.drop(std::get<MessageType>(type) == MessageType::kCookieReply
                             ? Drop::kHandoffFull
                             : Drop::kBadMac1);
        verdicts[i] = Verdict::kDrop;
      } else if (w.handshakes_.put(pkts[i].bytes(), pkts[i].endpoint, 0, 0)) {
        handed_over = true;
      } else {
        w.counters_.drop(Drop::kHandoffFull);
        verdicts[i] = Verdict::kDrop;
      }
    }
    if (handed_over && wake_) wake_(wake_arg_);
  }
}

}  // namespace faraday::dataplane
