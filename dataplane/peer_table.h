// peer_table.h: the peers of one Device and the state that finds them: peers by
// public key (a keyed hash map, O(1)), peers by slot (the value the allowed-IPs
// table maps prefixes to), the receiver-index table that maps an incoming
// message's receiver index to its peer and keypair, and the keypair rotation
// (previous/current/next) that keeps that table in step.
//
// PeerTable owns the Peer objects and their keypairs. A keypair taken out of
// rotation is wiped at once and its index removed, but the object is only freed
// by reclaim(), which Device calls at the end of each call into the core, so a
// Keypair* taken earlier in the same burst stays valid.
//
// Threading: one thread at a time (the Device's). Configuration (add, remove)
// is the control thread's part of the Device; index and keypair changes are the
// handshake context's; the data path only reads (find_index) and writes the
// keypair fields peer.h gives it.
#pragma once

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
  // Frees retired keypairs: no Keypair* from before this call is used again.
  void reclaim() { retired_.clear(); }

 private:
  struct KeyHash {
    uint8_t secret[16];
    size_t operator()(const crypto::Key& key) const;
  };

  std::vector<std::unique_ptr<Peer>> slots_;  // nullptr = free slot
  std::vector<uint32_t> order_;               // slots in order of addition
  std::unordered_map<crypto::Key, uint32_t, KeyHash> by_key_;
  std::unordered_map<uint32_t, IndexEntry> index_;
  std::vector<std::unique_ptr<Keypair>> retired_;
};

}  // namespace faraday::dataplane
