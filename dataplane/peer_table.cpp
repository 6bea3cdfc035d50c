// peer_table.cpp: see peer_table.h.
#include "dataplane/peer_table.h"

#include <sodium.h>

#include <algorithm>
#include <bit>
#include <cstring>

#include "dataplane/rcu.h"

namespace faraday::dataplane {

IndexSnapshot::IndexSnapshot(size_t count)
    : entries_(std::bit_ceil(std::max<size_t>(count * 2, 16))), mask_(entries_.size() - 1) {}

void IndexSnapshot::insert(uint32_t index, Keypair* kp) {
  size_t i = hash(index);
  while (entries_[i].keypair != nullptr) i = (i + 1) & mask_;
  entries_[i] = {index, kp};
}

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
  delete published_.load();
}

void PeerTable::publish() {
  if (!index_changed_) return;
  index_changed_ = false;
  auto snapshot = std::make_unique<IndexSnapshot>(index_.size());
  for (const auto& [index, entry] : index_)
    if (entry.keypair) snapshot->insert(index, entry.keypair);
  const IndexSnapshot* old = published_.exchange(snapshot.release(), std::memory_order_acq_rel);
  if (old) retired_snapshots_.emplace_back(old);
  for (uint32_t slot : order_) {
    Peer& peer = *slots_[slot];
    peer.sending.store(peer.current.get(), std::memory_order_release);
  }
}

void PeerTable::reclaim(bool force) {
  if (!force && retired_.empty() && retired_peers_.empty() && retired_snapshots_.empty()) return;
  rcu_synchronize();
  for (auto& kp : retired_) kp->wipe();
  retired_.clear();
  retired_peers_.clear();
  retired_snapshots_.clear();
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
  peer->id = ++next_id_;
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
  peer.sending.store(nullptr, std::memory_order_release);
  retired_peers_.push_back(std::move(slots_[slot]));
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
  index_changed_ = true;
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
  kp->confirmed.store(keys.initiator, std::memory_order_relaxed);
  index_[kp->local_index] = IndexEntry{&peer, kp.get()};
  index_changed_ = true;
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
  if (peer.current) peer.current->confirmed.store(true, std::memory_order_relaxed);
  index_changed_ = true;
}

}  // namespace faraday::dataplane
