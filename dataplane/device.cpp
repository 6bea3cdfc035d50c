// device.cpp: see device.h. Construction, configuration and the outbox; the
// other parts of Device live in the files device.h lists.
#include "dataplane/device.h"

#include <sodium.h>

namespace faraday::dataplane {

Device::Device(const Clock& clock, crypto::AeadBackend& aead, DeviceOptions options)
    : clock_(clock),
      aead_(aead),
      options_(options),
      mtu_(options.mtu),
      outbox_slot_size_(slot_size(options.mtu)),
      outbox_arena_(options.outbox_size, outbox_slot_size_),
      own_worker_(aead, true, 0, 0, 0) {
  randombytes_buf(&jitter_state_, sizeof jitter_state_);
  commit();  // the workers always find a routing table and an index snapshot
}

Device::~Device() {
  remove_all_peers();
  identity_.clear();
  commit();
  delete routing_.load();
}

Counters Device::counters() const {
  Counters sum = counters_;
  sum += own_worker_.counters_;
  for (const auto& w : workers_) sum += w->counters_;
  return sum;
}

void Device::commit() {
  if (routing_changed_) {
    routing_changed_ = false;
    auto r = std::make_unique<Routing>();
    r->ips = allowed_ips_;
    r->mac1_key = cookie_checker_.mac1_key();
    for (uint32_t slot : peers_.order()) {
      if (r->by_slot.size() <= slot) r->by_slot.resize(slot + 1, nullptr);
      r->by_slot[slot] = &peers_.at(slot);
    }
    const Routing* old = routing_.exchange(r.release(), std::memory_order_acq_rel);
    if (old) retired_routing_.emplace_back(old);
  }
  peers_.publish();
  // One grace period covers both: the peer table waits for it when it has
  // anything to free, and the old routing versions go after it.
  if (!retired_routing_.empty()) {
    peers_.reclaim(/*force=*/true);
    retired_routing_.clear();
  } else {
    peers_.reclaim();
  }
}

Nanos Device::jitter() {
  if (options_.fixed_jitter >= 0) return options_.fixed_jitter;
  // splitmix64; the modulo bias of a 64-bit draw over 333,333 values is nil.
  uint64_t z = (jitter_state_ += 0x9e3779b97f4a7c15);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9;
  z = (z ^ (z >> 27)) * 0x94d049bb133111eb;
  z ^= z >> 31;
  return static_cast<Nanos>(z % static_cast<uint64_t>(kMaxJitter / 1000)) * 1000;
}

Packet* Device::outbox_slot() {
  if (outbox_used_ >= outbox_arena_.size()) {
    counters_.drop(Drop::kOutboxFull);
    return nullptr;
  }
  Packet* pkt = &outbox_arena_.packets()[outbox_used_++];
  pkt->reset();
  return pkt;
}

// ---------------------------------------------------------------- configuration

void Device::set_private_key(const std::optional<crypto::Key>& private_key) {
  bool setting = private_key && !crypto::is_zero(*private_key);
  // Re-applying the same key (wg setconf does) must not tear sessions down.
  if (setting == identity_.present &&
      (!setting ||
       sodium_memcmp(private_key->data(), identity_.private_key.data(), crypto::kKeySize) == 0))
    return;
  if (setting) {
    identity_.set(*private_key);
    cookie_checker_.set_public_key(identity_.public_key);
    if (Peer* self = find_peer(identity_.public_key)) remove_peer(self->public_key);
  } else {
    identity_.clear();
    cookie_checker_.clear();
  }
  routing_changed_ = true;  // the workers' mac1 key, published at the end
  // New static key: every session and handshake is void.
  for (uint32_t slot : peers_.order()) {
    Peer& p = peers_.at(slot);
    peers_.clear_keypairs(p);
    p.handshake.precompute(identity_);
  }
  commit();
}

Peer* Device::find_peer(const crypto::Key& public_key) {
  return peers_.find(public_key);
}

Peer* Device::add_peer(const crypto::Key& public_key) {
  if (Peer* existing = find_peer(public_key)) return existing;
  if (identity_.present && public_key == identity_.public_key) return nullptr;
  Peer& peer = peers_.add(public_key);
  routing_changed_ = true;
  peer.handshake.remote_static = public_key;
  peer.handshake.precompute(identity_);
  peer.cookie.set_peer_public_key(public_key);
  return &peer;
}

void Device::remove_peer(const crypto::Key& public_key) {
  if (Peer* p = find_peer(public_key)) {
    allowed_ips_.remove_value(p->slot);
    peers_.remove(*p);
    routing_changed_ = true;
  }
}

void Device::remove_all_peers() {
  while (!peers_.empty()) {
    Peer& p = peers_.at(peers_.order().front());
    allowed_ips_.remove_value(p.slot);
    peers_.remove(p);
    routing_changed_ = true;
  }
}

void Device::set_preshared_key(Peer& peer, const crypto::Key& psk) {
  peer.handshake.preshared_key = psk;
}

void Device::set_endpoint(Peer& peer, const Endpoint& endpoint) {
  peer.endpoint = endpoint;
}

void Device::set_persistent_keepalive(Peer& peer, uint16_t seconds) {
  bool turned_on = seconds != 0 && peer.persistent_keepalive != seconds;
  peer.persistent_keepalive = seconds;
  if (turned_on && identity_.present) send_keepalive(peer);
}

void Device::add_allowed_ip(Peer& peer, const Prefix& prefix) {
  allowed_ips_.insert(prefix, peer.slot);
  routing_changed_ = true;
}

void Device::clear_allowed_ips(Peer& peer) {
  allowed_ips_.remove_value(peer.slot);
  routing_changed_ = true;
}

std::vector<const Peer*> Device::peers() const {
  std::vector<const Peer*> out;
  out.reserve(peers_.order().size());
  for (uint32_t slot : peers_.order()) out.push_back(&peers_.at(slot));
  return out;
}

}  // namespace faraday::dataplane
