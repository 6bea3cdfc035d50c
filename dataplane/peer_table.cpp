// peer_table.cpp: see peer_table.h.
#include "dataplane/peer_table.h"

#include <sodium.h>

#include <algorithm>
#include <cstring>

namespace faraday::dataplane {

size_t PeerTable::KeyHash::operator()(const crypto::Key& key) const {
  // Keyed (SipHash): lookups come from the network, and the table is not
  // predictable from the keys alone.
  uint8_t out[crypto_shorthash_BYTES];
  crypto_shorthash(out, key.data(), key.size(), secret);
  size_t h;
  std::memcpy(&h, out, sizeof(h));
  return h;
}

PeerTable::PeerTable()
    : by_key_(0, [] {
        KeyHash h;
        randombytes_buf(h.secret, sizeof(h.secret));
        return h;
      }()) {}

PeerTable::~PeerTable() {
  for (uint32_t slot : std::vector<uint32_t>(order_)) remove(*slots_[slot]);
  reclaim();
}

Peer* PeerTable::find(const crypto::Key& public_key) const {
  auto it = by_key_.find(public_key);
  return it == by_key_.end() ? nullptr : slots_[it->second].get();
}

Peer& PeerTable::add(const crypto::Key& public_key) {
  auto free_slot = std::find(slots_.begin(), slots_.end(), nullptr);
  uint32_t slot = static_cast<uint32_t>(free_slot - slots_.begin());
  if (free_slot == slots_.end()) slots_.emplace_back();
  auto peer = std::make_unique<Peer>();
  peer->slot = slot;
  peer->public_key = public_key;
  slots_[slot] = std::move(peer);
  order_.push_back(slot);
  by_key_.emplace(public_key, slot);
  return *slots_[slot];
}

void PeerTable::remove(Peer& peer) {
  clear_keypairs(peer);
  crypto::wipe(peer.handshake.static_static);
  crypto::wipe(peer.handshake.preshared_key);
  uint32_t slot = peer.slot;
  by_key_.erase(peer.public_key);
  std::erase(order_, slot);
  slots_[slot].reset();
}

uint32_t PeerTable::new_index(Peer& peer) {
  uint32_t index;
  do {
    index = randombytes_random();
  } while (index_.contains(index));
  index_.emplace(index, IndexEntry{&peer, nullptr});
  return index;
}

void PeerTable::release_handshake_index(uint32_t index) {
  auto it = index_.find(index);
  if (index != 0 && it != index_.end() && it->second.keypair == nullptr) index_.erase(it);
}

void PeerTable::release_handshake_index(Peer& peer) {
  uint32_t index = peer.handshake.local_index;
  auto it = index_.find(index);
  if (index != 0 && it != index_.end() && it->second.keypair == nullptr && it->second.peer == &peer)
    index_.erase(it);
}

void PeerTable::retire(std::unique_ptr<Keypair>& kp) {
  if (!kp) return;
  auto it = index_.find(kp->local_index);
  if (it != index_.end() && it->second.keypair == kp.get()) index_.erase(it);
  kp->wipe();
  retired_.push_back(std::move(kp));
}

void PeerTable::zero_key_material(Peer& peer) {
  retire(peer.previous);
  retire(peer.current);
  retire(peer.next);
  release_handshake_index(peer);
  peer.handshake.clear_session();
}

void PeerTable::clear_keypairs(Peer& peer) {
  zero_key_material(peer);
  peer.staged.clear();
  peer.timers.stop_all();
}

void PeerTable::add_keypair(Peer& peer, const SessionKeys& keys, Nanos now) {
  auto kp = std::make_unique<Keypair>();
  kp->send_key = keys.send;
  kp->receive_key = keys.receive;
  kp->created = now;
  kp->initiator = keys.initiator;
  kp->local_index = keys.local_index;
  kp->remote_index = keys.remote_index;
  kp->peer = &peer;
  index_[kp->local_index] = IndexEntry{&peer, kp.get()};
  if (keys.initiator) {
    // A responder keypair not yet confirmed is superseded by ours.
    if (peer.next) {
      retire(peer.previous);
      peer.previous = std::move(peer.next);
      retire(peer.current);
    } else {
      retire(peer.previous);
      peer.previous = std::move(peer.current);
    }
    peer.current = std::move(kp);
  } else {
    retire(peer.next);
    peer.next = std::move(kp);
    retire(peer.previous);
  }
  peer.sent_lastminute_handshake = false;
}

void PeerTable::confirm_next(Peer& peer) {
  retire(peer.previous);
  peer.previous = std::move(peer.current);
  peer.current = std::move(peer.next);
}

}  // namespace faraday::dataplane
