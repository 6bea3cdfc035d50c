// peer_table.h: the peers of one Device and the state that finds them: peers by
// public key (a keyed hash map, O(1)), peers by slot (the value the allowed-IPs
// table maps prefixes to), the receiver-index table that maps an incoming
// message's receiver index to its peer and keypair, and the keypair rotation
// (previous/current/next) that keeps that table in step.
//
// PeerTable owns the Peer objects and their keypairs. A peer removed or a
// keypair taken out of rotation leaves the tables at once, but the object is
// freed (and a keypair's keys wiped) only by reclaim(), after an RCU grace
// period (rcu.h), so a pointer a worker took from an earlier snapshot stays
// valid until the worker's next quiescent state.
//
// Threading: every method runs in the handshake context (the control thread),
// except published_index(), which the workers call. The workers never see the
// mutable index map: publish() builds an immutable IndexSnapshot of the live
// keypairs and stores it with a release store, and sets each peer's `sending`
// keypair (peer.h); the snapshot it replaces is freed by reclaim().
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <unordered_map>
#include <vector>

#include "crypto/keys.h"
#include "dataplane/clock.h"
#include "dataplane/noise.h"
#include "dataplane/peer.h"

namespace faraday::dataplane {

// Receiver index -> live keypair, as the workers see it: open addressing over a
// power-of-two table, built once and then read-only.
class IndexSnapshot {
 public:
  explicit IndexSnapshot(size_t count);
  void insert(uint32_t index, Keypair* kp);
  Keypair* find(uint32_t index) const {
    for (size_t i = hash(index);; i = (i + 1) & mask_) {
      const Entry& e = entries_[i];
      if (e.keypair == nullptr || e.index == index) return e.keypair;
    }
  }

 private:
  struct Entry {
    uint32_t index = 0;
    Keypair* keypair = nullptr;
  };
  size_t hash(uint32_t index) const {
    // Indices are random (we pick them), so a multiplicative spread suffices.
    return (uint64_t{index} * 0x9E3779B97F4A7C15ull >> 32) & mask_;
  }
  std::vector<Entry> entries_;
  size_t mask_;
};

class PeerTable {
 public:
  // What a receiver index (our local index) stands for.
  struct IndexEntry {
    Peer* peer;
    Keypair* keypair;  // nullptr: a handshake in flight
  };

  PeerTable();
  ~PeerTable();
  PeerTable(const PeerTable&) = delete;
  PeerTable& operator=(const PeerTable&) = delete;

  // --- Peers.
  Peer* find(const crypto::Key& public_key) const;
  // Adds a peer with this key in the lowest free slot; the key must be absent.
  Peer& add(const crypto::Key& public_key);
  // Retires the peer's keypairs and handshake index, wipes its secrets and
  // frees its slot (the caller removes its allowed IPs first).
  void remove(Peer& peer);
  Peer& at(uint32_t slot) const { return *slots_[slot]; }
  // The peer in slot, or nullptr when the slot is free or out of range.
  Peer* at_slot(uint32_t slot) const { return slot < slots_.size() ? slots_[slot].get() : nullptr; }
  // Slots in order of addition.
  std::span<const uint32_t> order() const { return order_; }
  bool empty() const { return order_.empty(); }

  // --- Receiver indices.
  // A fresh random index, registered for a handshake in flight with peer.
  uint32_t new_index(Peer& peer);
  const IndexEntry* find_index(uint32_t index) const {
    auto it = index_.find(index);
    return it == index_.end() ? nullptr : &it->second;
  }
  void erase_index(uint32_t index) { index_.erase(index); }
  // Drops index if it still names a handshake in flight (no keypair).
  void release_handshake_index(uint32_t index);
  // Drops peer's handshake index if it is still in flight and still peer's.
  void release_handshake_index(Peer& peer);

  // --- Keypairs.
  // Installs the keypair of a completed handshake: as current (initiator) or
  // as next, until the initiator confirms it (responder).
  void add_keypair(Peer& peer, const SessionKeys& keys, Nanos now);
  // The initiator's first data packet arrived on peer.next: it becomes current.
  void confirm_next(Peer& peer);
  // Wipes kp, unregisters its index and moves it to the retired list.
  void retire(std::unique_ptr<Keypair>& kp);
  // Retires all three keypairs and the handshake index, clears the session.
  void zero_key_material(Peer& peer);
  // zero_key_material, plus the staged packets and the timers.
  void clear_keypairs(Peer& peer);
  // --- Publication to the workers.
  // The snapshot of live keypairs by receiver index (a worker's acquire load).
  const IndexSnapshot* published_index() const {
    return published_.load(std::memory_order_acquire);
  }
  // Publishes what changed since the last call: a new index snapshot and each
  // peer's `sending` keypair.
  void publish();
  // Waits for a grace period if anything was retired (or force), then frees
  // it: no pointer a worker loaded before this call is used again.
  void reclaim(bool force = false);

 private:
  struct KeyHash {
    uint8_t secret[16];
    size_t operator()(const crypto::Key& key) const;
  };

  std::vector<std::unique_ptr<Peer>> slots_;  // nullptr = free slot
  std::vector<uint32_t> order_;               // slots in order of addition
  std::unordered_map<crypto::Key, uint32_t, KeyHash> by_key_;
  std::unordered_map<uint32_t, IndexEntry> index_;
  uint64_t next_id_ = 0;
  bool index_changed_ = true;
  std::atomic<const IndexSnapshot*> published_{nullptr};
  std::vector<std::unique_ptr<Keypair>> retired_;
  std::vector<std::unique_ptr<Peer>> retired_peers_;
  std::vector<std::unique_ptr<const IndexSnapshot>> retired_snapshots_;
};

}  // namespace faraday::dataplane
