// worker.cpp: see worker.h. The rings, and the handshake context's side of
// them (Device::service() and what it calls); the workers' side lives in
// send.cpp and receive.cpp.
#include "dataplane/worker.h"

#include <algorithm>
#include <cstring>

#include "dataplane/device.h"

namespace faraday::dataplane {

ParcelRing::ParcelRing(size_t count, uint32_t buffer_size)
    : buffer_size_(buffer_size), count_(std::min(count, kMaxCount)), arena_(count_, buffer_size) {
  for (size_t i = 0; i < arena_.size(); ++i) free_.push(static_cast<uint16_t>(i));
}

bool ParcelRing::put(std::span<const uint8_t> bytes, const Endpoint& endpoint, uint32_t slot,
                     uint64_t peer_id) {
  uint16_t buffer;
  if (bytes.size() > buffer_size_ || !free_.pop(buffer)) return false;
  std::memcpy(arena_.packets()[buffer].base, bytes.data(), bytes.size());
  full_.push(Parcel{buffer, static_cast<uint32_t>(bytes.size()), slot, peer_id, endpoint});
  return true;
}

bool ParcelRing::take(Parcel& parcel) {
  return full_.pop(parcel);
}

std::span<uint8_t> ParcelRing::bytes(const Parcel& parcel) {
  return {arena_.packets()[parcel.buffer].base, parcel.length};
}

// Handshake messages are at most an initiation (148 bytes); staged packets up
// to the MTU the Device had when the worker was made (a larger one is dropped
// as kTooBig).
Worker::Worker(crypto::AeadBackend& aead, bool on_control_thread, size_t handshakes, size_t staged,
               uint32_t stage_buffer_size)
    : aead_(aead),
      on_control_thread_(on_control_thread),
      handshakes_(on_control_thread ? 0 : handshakes, 160),
      staged_(on_control_thread ? 0 : staged, stage_buffer_size) {}

bool Worker::note(const Note& n) {
  if (notes_.push(n)) return true;
  notes_lost_.store(true, std::memory_order_release);
  return false;
}

Worker& Device::add_worker(crypto::AeadBackend& aead) {
  uint32_t stage_size = std::max<uint32_t>(mtu_.load(std::memory_order_relaxed), 1280);
  workers_.push_back(std::unique_ptr<Worker>(
      new Worker(aead, false, options_.handoff_handshakes, options_.handoff_staged, stage_size)));
  return *workers_.back();
}

// ------------------------------------------------------------ worker side

bool Device::note(Worker& w, const Worker::Note& n) {
  if (!w.note(n)) return false;
  Nanos t = now();
  if (t - w.last_wake_ >= kNoteWakeInterval) {
    w.last_wake_ = t;
    if (wake_) wake_(wake_arg_);
  }
  return true;
}

void Device::report(Worker& w, Peer& peer, uint32_t bits) {
  // Most bursts find the bits already set: no write, no note.
  if ((peer.events.load(std::memory_order_relaxed) & bits) == bits) return;
  if (peer.events.fetch_or(bits, std::memory_order_release) == 0)
    note(w, {Worker::Note::kEvents, peer.slot, 0, peer.id, {}});
}

void Device::report_received(Worker& w, Peer& peer, Keypair& kp, const Endpoint& from, bool data) {
  if (!kp.confirmed.load(std::memory_order_acquire) &&
      !kp.confirm_asked.exchange(true, std::memory_order_acq_rel) &&
      !note(w, {Worker::Note::kConfirm, peer.slot, kp.local_index, peer.id, {}}))
    kp.confirm_asked.store(false, std::memory_order_relaxed);  // ask again next packet
  // One note per move: not again while the control thread has not written the
  // endpoint since (it has the note); once it has, a difference is news again.
  const uint32_t version = peer.endpoint.version();
  if (!(peer.endpoint == from) &&
      !(w.roamed_peer_ == peer.id && w.roamed_to_ == from && w.roamed_version_ == version) &&
      note(w, {Worker::Note::kRoam, peer.slot, 0, peer.id, from})) {
    w.roamed_peer_ = peer.id;
    w.roamed_to_ = from;
    w.roamed_version_ = version;
  }
  report(w, peer, kEventReceivedAny | (data ? uint32_t{kEventReceivedData} : 0u));
}

void Device::hand_over_staged(Worker& w, Peer& peer, const Packet& pkt) {
  if (pkt.length > w.staged_.buffer_size()) {
    w.counters_.drop(Drop::kTooBig);
    return;
  }
  if (!w.staged_.put(pkt.bytes(), {}, peer.slot, peer.id)) {
    w.counters_.drop(Drop::kHandoffFull);
    return;
  }
  if (wake_) wake_(wake_arg_);
}

// ------------------------------------------------------------ handshake context

Peer* Device::peer_by_id(uint32_t slot, uint64_t id) {
  Peer* peer = peers_.at_slot(slot);
  return peer && peer->id == id ? peer : nullptr;
}

// The initiator's first data confirms the responder's new keypair.
void Device::confirm(Peer& peer) {
  peers_.confirm_next(peer);
  ++counters_.handshakes_completed;
  peer.last_handshake_wall = clock_.wall();
  peer.timers.handshake_complete();
  send_staged(peer);
}

// What a worker reported since the last look, in the order that keeps the
// fewest timers armed when both directions were busy: a packet received after
// data sent cancels the new-handshake timer, a packet sent after data
// received cancels the passive keepalive.
void Device::apply_events(Peer& peer, uint32_t events) {
  Nanos t = now();
  if (events & kEventSentData) peer.timers.data_sent(t, jitter());
  if (events & kEventReceivedAny) {
    Keypair* kp = peer.current.get();
    if (kp && kp->initiator && !peer.sent_lastminute_handshake &&
        t - kp->created >= kRejectAfterTime - kKeepaliveTimeout - kRekeyTimeout) {
      peer.sent_lastminute_handshake = true;
      send_initiation(peer, false);
    }
    peer.timers.any_authenticated_packet_received();
  }
  if (events & kEventReceivedData) peer.timers.data_received(t);
  if (events & kEventSentAny) peer.timers.any_authenticated_packet_sent();
  if (events & (kEventSentAny | kEventReceivedAny))
    peer.timers.any_authenticated_packet_traversal(t, peer.persistent_keepalive);
  if (events & kEventSentAny) keep_key_fresh_on_send(peer);
}

// Notes first: a note can only name a keypair or endpoint the worker saw before
// the handshake messages still in its ring were handled, so taking them first
// keeps one worker's order (a confirmation is not overtaken by the initiation
// that replaces the keypair, nor a handshake's endpoint by an older roam).
bool Device::drain(Worker& w) {
  bool any = false;
  Worker::Note n;
  while (w.notes_.pop(n)) {
    any = true;
    Peer* peer = peer_by_id(n.slot, n.peer_id);
    if (!peer) continue;  // removed since
    switch (n.kind) {
      case Worker::Note::kEvents:
        apply_events(*peer, peer->events.exchange(0, std::memory_order_acquire));
        break;
      case Worker::Note::kConfirm:
        if (peer->next && peer->next->local_index == n.local_index) confirm(*peer);
        break;
      case Worker::Note::kRoam:
        peer->endpoint = n.endpoint;
        break;
    }
  }
  // Parcels while the outbox has room for what one may produce (a response, or
  // a peer's staged packets); the rest wait in the ring for the next call.
  auto room = [this] { return outbox_used_ + kMaxStagedPackets + 1 <= outbox_arena_.size(); };
  ParcelRing::Parcel parcel;
  while (room() && w.handshakes_.take(parcel)) {
    any = true;
    std::span<uint8_t> bytes = w.handshakes_.bytes(parcel);
    Packet pkt{bytes.data(), parcel.length, 0, parcel.length, parcel.endpoint};
    Verdict verdict;
    handle_handshake(pkt, verdict);
    w.handshakes_.release(parcel);
  }
  while (room() && w.staged_.take(parcel)) {
    any = true;
    std::span<uint8_t> bytes = w.staged_.bytes(parcel);
    if (Peer* peer = peer_by_id(parcel.slot, parcel.peer_id)) {
      Packet pkt{bytes.data(), parcel.length, 0, parcel.length, {}};
      stage(*peer, pkt);
      send_staged(*peer);
    }
    w.staged_.release(parcel);
  }
  return any;
}

bool Device::service() {
  bool any = false;
  for (auto& w : workers_) any |= drain(*w);
  bool lost = false;
  for (auto& w : workers_) lost |= w->notes_lost_.exchange(false, std::memory_order_acquire);
  if (lost)
    for (uint32_t slot : peers_.order()) {
      Peer& peer = peers_.at(slot);
      if (uint32_t events = peer.events.exchange(0, std::memory_order_acquire))
        apply_events(peer, events);
    }
  commit();
  return any || lost;
}

}  // namespace faraday::dataplane
