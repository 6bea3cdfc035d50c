#include "dataplane/device.h"

#include <sodium.h>

#include <algorithm>
#include <cstring>

#include "crypto/x25519.h"
#include "dataplane/messages.h"

namespace faraday::dataplane {

namespace {

// Handshake messages are handled after the data packets of a burst; this
// marks them during the first pass.
bool is_handshake(std::span<const uint8_t> datagram) {
  return datagram.size() >= 4 && load_le32(datagram.data()) >= 1 && load_le32(datagram.data()) <= 3;
}

}  // namespace

Device::Device(const Clock& clock, crypto::AeadBackend& aead, DeviceOptions options)
    : clock_(clock), aead_(aead), options_(options), outbox_arena_(options.outbox_size) {}

Device::~Device() {
  remove_all_peers();
  identity_.clear();
}

Nanos Device::jitter() {
  if (options_.fixed_jitter >= 0) return options_.fixed_jitter;
  return Nanos{randombytes_uniform(static_cast<uint32_t>(kMaxJitter / 1000))} * 1000;
}

bool Device::under_load() const {
  return now() < under_load_until_;
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
  // New static key: every session and handshake is void.
  for (auto& p : peers_) {
    if (!p) continue;
    clear_keypairs(*p);
    p->handshake.precompute(identity_);
  }
}

Peer* Device::find_peer(const crypto::Key& public_key) {
  for (auto& p : peers_)
    if (p && sodium_memcmp(p->public_key.data(), public_key.data(), crypto::kKeySize) == 0)
      return p.get();
  return nullptr;
}

Peer* Device::add_peer(const crypto::Key& public_key) {
  if (Peer* existing = find_peer(public_key)) return existing;
  if (identity_.present && public_key == identity_.public_key) return nullptr;
  auto free_slot = std::find(peers_.begin(), peers_.end(), nullptr);
  uint32_t slot = static_cast<uint32_t>(free_slot - peers_.begin());
  if (free_slot == peers_.end()) peers_.emplace_back();
  auto peer = std::make_unique<Peer>();
  peer->slot = slot;
  peer->public_key = public_key;
  peer->handshake.remote_static = public_key;
  peer->handshake.precompute(identity_);
  peer->cookie.set_peer_public_key(public_key);
  peers_[slot] = std::move(peer);
  peer_order_.push_back(slot);
  return peers_[slot].get();
}

void Device::destroy_peer(Peer& peer) {
  clear_keypairs(peer);
  allowed_ips_.remove_value(peer.slot);
  crypto::wipe(peer.handshake.static_static);
  crypto::wipe(peer.handshake.preshared_key);
  uint32_t slot = peer.slot;
  std::erase(peer_order_, slot);
  peers_[slot].reset();
}

void Device::remove_peer(const crypto::Key& public_key) {
  if (Peer* p = find_peer(public_key)) destroy_peer(*p);
  retired_.clear();
}

void Device::remove_all_peers() {
  for (auto& p : peers_)
    if (p) destroy_peer(*p);
  retired_.clear();
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
  retired_.clear();
}

void Device::add_allowed_ip(Peer& peer, const Prefix& prefix) {
  allowed_ips_.insert(prefix, peer.slot);
}

void Device::clear_allowed_ips(Peer& peer) {
  allowed_ips_.remove_value(peer.slot);
}

std::vector<const Peer*> Device::peers() const {
  std::vector<const Peer*> out;
  out.reserve(peer_order_.size());
  for (uint32_t slot : peer_order_) out.push_back(peers_[slot].get());
  return out;
}

// ---------------------------------------------------------------- indices, keypairs

uint32_t Device::new_index(Peer* peer) {
  uint32_t index;
  do {
    index = randombytes_random();
  } while (index_.contains(index));
  index_.emplace(index, IndexEntry{peer, nullptr});
  return index;
}

void Device::release_handshake_index(Peer& peer) {
  uint32_t idx = peer.handshake.local_index;
  auto it = index_.find(idx);
  if (idx != 0 && it != index_.end() && it->second.keypair == nullptr && it->second.peer == &peer)
    index_.erase(it);
}

void Device::retire(std::unique_ptr<Keypair>& kp) {
  if (!kp) return;
  auto it = index_.find(kp->local_index);
  if (it != index_.end() && it->second.keypair == kp.get()) index_.erase(it);
  kp->wipe();
  retired_.push_back(std::move(kp));
}

void Device::clear_keypairs(Peer& peer) {
  retire(peer.previous);
  retire(peer.current);
  retire(peer.next);
  release_handshake_index(peer);
  peer.handshake.clear_session();
  peer.staged.clear();
  peer.timers.stop_all();
}

void Device::add_keypair(Peer& peer, const SessionKeys& keys) {
  auto kp = std::make_unique<Keypair>();
  kp->send_key = keys.send;
  kp->receive_key = keys.receive;
  kp->created = now();
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

Packet* Device::outbox_slot() {
  if (outbox_used_ >= outbox_arena_.size()) {
    counters_.drop(Drop::kOutboxFull);
    return nullptr;
  }
  Packet* pkt = &outbox_arena_.packets()[outbox_used_++];
  pkt->reset();
  return pkt;
}

// ---------------------------------------------------------------- handshake context

bool Device::admit_handshake(Packet& pkt, size_t mac1_off) {
  if (!cookie_checker_.check_mac1(pkt.bytes(), mac1_off)) {
    counters_.drop(Drop::kBadMac1);
    return false;
  }
  Nanos t = now();
  if (t - load_window_start_ >= kSecond) {
    load_window_start_ = t;
    load_window_count_ = 0;
  }
  if (++load_window_count_ > options_.under_load_threshold) under_load_until_ = t + kSecond;
  if (!under_load()) return true;
  if (!cookie_checker_.check_mac2(pkt.bytes(), mac1_off + kMacSize, pkt.endpoint, t)) {
    if (Packet* out = outbox_slot()) {
      MessageCookieReply reply;
      cookie_checker_.make_reply(reply, pkt.bytes(), mac1_off, pkt.endpoint, t);
      std::memcpy(out->data(), &reply, sizeof(reply));
      out->length = sizeof(reply);
      out->endpoint = pkt.endpoint;
      ++counters_.cookies_sent;
    }
    counters_.drop(Drop::kCookieSent);
    return false;
  }
  if (!rate_limiter_.allow(pkt.endpoint, t)) {
    counters_.drop(Drop::kRateLimited);
    return false;
  }
  return true;
}

void Device::handle_handshake(Packet& pkt, Verdict& verdict) {
  verdict = Verdict::kDrop;
  auto type = classify(pkt.bytes());
  if (const Drop* reason = std::get_if<Drop>(&type)) {
    counters_.drop(*reason);
    return;
  }
  if (!identity_.present) {
    counters_.drop(Drop::kNoPrivateKey);
    return;
  }
  switch (std::get<MessageType>(type)) {
    case MessageType::kInitiation:
      handle_initiation(pkt, verdict);
      break;
    case MessageType::kResponse:
      handle_response(pkt, verdict);
      break;
    case MessageType::kCookieReply:
      handle_cookie_reply(pkt, verdict);
      break;
    case MessageType::kTransport:
      break;
  }
}

void Device::handle_initiation(Packet& pkt, Verdict& verdict) {
  if (!admit_handshake(pkt, mac1_offset<MessageInitiation>())) return;
  MessageInitiation msg;
  std::memcpy(&msg, pkt.data(), sizeof(msg));
  InitiationScan scan;
  if (!noise_scan_initiation(msg, identity_, scan)) {
    counters_.drop(Drop::kHandshakeDecrypt);
    return;
  }
  Peer* peer = find_peer(scan.remote_static);
  crypto::wipe(scan.remote_static);
  if (!peer) {
    counters_.drop(Drop::kUnknownPeer);
    return;
  }
  uint32_t old_index = peer->handshake.local_index;
  if (auto reason = noise_consume_initiation(msg, scan, peer->handshake, now())) {
    counters_.drop(*reason);
    return;
  }
  // The initiation replaced any handshake we had in flight with this peer.
  if (auto it = index_.find(old_index);
      old_index != 0 && it != index_.end() && it->second.keypair == nullptr)
    index_.erase(it);
  verdict = Verdict::kConsumed;
  Nanos t = now();
  peer->endpoint = pkt.endpoint;
  peer->rx_bytes += pkt.length;

  Packet* out = outbox_slot();
  if (out) {
    MessageResponse resp;
    uint32_t index = new_index(peer);
    if (noise_create_response(resp, peer->handshake, index)) {
      peer->cookie.add_macs({reinterpret_cast<uint8_t*>(&resp), sizeof(resp)},
                            mac1_offset<MessageResponse>(), t);
      auto keys = noise_derive_keys(peer->handshake);
      add_keypair(*peer, *keys);
      crypto::wipe(keys->send);
      crypto::wipe(keys->receive);
      std::memcpy(out->data(), &resp, sizeof(resp));
      out->length = sizeof(resp);
      out->endpoint = peer->endpoint;
      peer->tx_bytes += sizeof(resp);
      // A response counts as a handshake sent: no initiation of our own for
      // REKEY_TIMEOUT, or data we send before the initiator's confirmation
      // arrives would start a second, crossing handshake (as Linux does).
      peer->last_sent_handshake = t;
      peer->timers.session_derived(t);
      peer->timers.any_authenticated_packet_traversal(t, peer->persistent_keepalive);
      peer->timers.any_authenticated_packet_sent();
    } else {
      index_.erase(index);
      --outbox_used_;
    }
  }
  peer->timers.any_authenticated_packet_received();
  peer->timers.any_authenticated_packet_traversal(t, peer->persistent_keepalive);
}

void Device::handle_response(Packet& pkt, Verdict& verdict) {
  if (!admit_handshake(pkt, mac1_offset<MessageResponse>())) return;
  MessageResponse msg;
  std::memcpy(&msg, pkt.data(), sizeof(msg));
  auto it = index_.find(load_le32(msg.receiver));
  if (it == index_.end() || it->second.keypair != nullptr) {
    counters_.drop(Drop::kUnexpectedResponse);
    return;
  }
  Peer& peer = *it->second.peer;
  if (auto reason = noise_consume_response(msg, peer.handshake, identity_)) {
    counters_.drop(*reason);
    return;
  }
  verdict = Verdict::kConsumed;
  Nanos t = now();
  peer.endpoint = pkt.endpoint;
  peer.rx_bytes += pkt.length;
  auto keys = noise_derive_keys(peer.handshake);
  add_keypair(peer, *keys);
  crypto::wipe(keys->send);
  crypto::wipe(keys->receive);
  ++counters_.handshakes_completed;
  peer.last_handshake_wall = clock_.wall();
  peer.timers.session_derived(t);
  peer.timers.handshake_complete();
  peer.timers.any_authenticated_packet_received();
  peer.timers.any_authenticated_packet_traversal(t, peer.persistent_keepalive);
  // Confirms the session to the responder: staged data, or a keepalive.
  send_keepalive(peer);
}

void Device::handle_cookie_reply(Packet& pkt, Verdict& verdict) {
  MessageCookieReply msg;
  std::memcpy(&msg, pkt.data(), sizeof(msg));
  auto it = index_.find(load_le32(msg.receiver));
  if (it == index_.end() || !it->second.peer->cookie.consume_reply(msg, now())) {
    counters_.drop(it == index_.end() ? Drop::kUnexpectedResponse : Drop::kBadCookieReply);
    return;
  }
  verdict = Verdict::kConsumed;
}

void Device::send_initiation(Peer& peer, bool is_retry) {
  if (!is_retry) peer.timers.handshake_requested();
  Nanos t = now();
  if (t - peer.last_sent_handshake < kRekeyTimeout) return;
  if (!identity_.present || crypto::is_zero(peer.handshake.static_static)) return;
  if (!peer.endpoint.valid()) {
    counters_.drop(Drop::kNoEndpoint);
    return;
  }
  Packet* out = outbox_slot();
  if (!out) return;
  release_handshake_index(peer);
  MessageInitiation msg;
  uint32_t index = new_index(&peer);
  if (!noise_create_initiation(msg, peer.handshake, identity_, index, clock_.wall())) {
    index_.erase(index);
    --outbox_used_;
    return;
  }
  peer.cookie.add_macs({reinterpret_cast<uint8_t*>(&msg), sizeof(msg)},
                       mac1_offset<MessageInitiation>(), t);
  std::memcpy(out->data(), &msg, sizeof(msg));
  out->length = sizeof(msg);
  out->endpoint = peer.endpoint;
  peer.tx_bytes += sizeof(msg);
  peer.last_sent_handshake = t;
  peer.timers.any_authenticated_packet_traversal(t, peer.persistent_keepalive);
  peer.timers.any_authenticated_packet_sent();
  peer.timers.handshake_initiated(t, jitter());
}

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
      Packet* out = outbox_slot();
      if (!out) break;
      size_t plen = padded_length(inner.size(), options_.mtu);
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

// ---------------------------------------------------------------- data path

void Device::send_burst(std::span<Packet> pkts, std::span<Verdict> verdicts) {
  Nanos t = now();
  for (size_t base = 0; base < pkts.size(); base += kBurstSize) {
    size_t count = std::min(kBurstSize, pkts.size() - base);
    crypto::AeadJob jobs[kBurstSize];
    size_t job_pkt[kBurstSize];
    Peer* job_peer[kBurstSize];
    Keypair* job_kp[kBurstSize];
    size_t n = 0;
    for (size_t i = base; i < base + count; ++i) {
      Packet& pkt = pkts[i];
      verdicts[i] = Verdict::kDrop;
      sa_family_t family;
      const uint8_t* dst;
      size_t length;
      if (!inner_destination(pkt.bytes(), family, dst, length)) {
        counters_.drop(Drop::kBadInnerPacket);
        continue;
      }
      auto slot = allowed_ips_.lookup(family, dst);
      if (!slot) {
        counters_.drop(Drop::kNoRoute);
        continue;
      }
      Peer& peer = *peers_[*slot];
      if (!peer.endpoint.valid()) {
        counters_.drop(Drop::kNoEndpoint);
        continue;
      }
      pkt.length = static_cast<uint32_t>(length);
      size_t plen = padded_length(pkt.length, options_.mtu);
      if (kTransportHeaderSize + plen + kTagSize > kMaxDatagram) {
        counters_.drop(Drop::kTooBig);  // the datagram would not fit in UDP
        continue;
      }
      Keypair* kp = peer.current.get();
      if (!kp || !kp->can_send(t) || !peer.staged.empty()) {
        // No session yet (or packets already waiting, keep their order).
        stage(peer, pkt);
        verdicts[i] = Verdict::kConsumed;
        send_staged(peer);
        continue;
      }
      if (pkt.offset < kTransportHeaderSize || pkt.offset + plen + kTagSize > kBufferSize) {
        counters_.drop(Drop::kTooBig);
        continue;
      }
      std::memset(pkt.data() + pkt.length, 0, plen - pkt.length);
      jobs[n] = {&kp->send_key, kp->send_counter++, pkt.data(), static_cast<uint32_t>(plen), false};
      job_pkt[n] = i;
      job_kp[n] = kp;
      job_peer[n++] = &peer;
    }
    aead_.seal_burst({jobs, n});
    for (size_t j = 0; j < n; ++j) {
      Packet& pkt = pkts[job_pkt[j]];
      Peer& peer = *job_peer[j];
      finish_transport(pkt, peer, *job_kp[j], jobs[j].counter, jobs[j].length + kTagSize);
      verdicts[job_pkt[j]] = Verdict::kPass;
      // Timers once per peer per burst: on the last job of that peer.
      bool last_of_peer =
          std::none_of(job_peer + j + 1, job_peer + n, [&](Peer* p) { return p == &peer; });
      if (last_of_peer) note_sent(peer, true);
    }
  }
  retired_.clear();
}

void Device::receive_burst(std::span<Packet> pkts, std::span<Verdict> verdicts) {
  Nanos t = now();
  for (size_t base = 0; base < pkts.size(); base += kBurstSize) {
    size_t count = std::min(kBurstSize, pkts.size() - base);
    crypto::AeadJob jobs[kBurstSize];
    size_t job_pkt[kBurstSize];
    Keypair* job_kp[kBurstSize];
    size_t n = 0;
    // Pass 1: transport data to the AEAD burst; handshakes wait for pass 3.
    for (size_t i = base; i < base + count; ++i) {
      Packet& pkt = pkts[i];
      ++counters_.rx_datagrams;
      verdicts[i] = Verdict::kDrop;
      if (is_handshake(pkt.bytes())) {
        verdicts[i] = Verdict::kConsumed;  // decided in pass 3
        continue;
      }
      auto type = classify(pkt.bytes());
      if (const Drop* reason = std::get_if<Drop>(&type)) {
        counters_.drop(*reason);
        continue;
      }
      auto it = index_.find(load_le32(pkt.data() + 4));
      if (it == index_.end() || it->second.keypair == nullptr) {
        counters_.drop(Drop::kUnknownIndex);
        continue;
      }
      Keypair* kp = it->second.keypair;
      uint64_t counter = load_le64(pkt.data() + 8);
      if (!kp->can_receive(t) || counter >= kRejectAfterMessages) {
        counters_.drop(Drop::kKeypairExpired);
        continue;
      }
      jobs[n] = {&kp->receive_key, counter, pkt.data() + kTransportHeaderSize,
                 static_cast<uint32_t>(pkt.length - kTransportHeaderSize), false};
      job_pkt[n] = i;
      job_kp[n++] = kp;
    }
    aead_.open_burst({jobs, n});
    // Pass 2: authenticated packets: replay, session confirmation, routing.
    for (size_t j = 0; j < n; ++j) {
      Packet& pkt = pkts[job_pkt[j]];
      Verdict& verdict = verdicts[job_pkt[j]];
      Keypair* kp = job_kp[j];
      if (!jobs[j].ok) {
        counters_.drop(Drop::kDecryptFailed);
        continue;
      }
      switch (kp->replay.accept(jobs[j].counter)) {
        case ReplayResult::kAccepted:
          break;
        case ReplayResult::kDuplicate:
          counters_.drop(Drop::kReplayDuplicate);
          continue;
        case ReplayResult::kTooOld:
          counters_.drop(Drop::kReplayTooOld);
          continue;
        case ReplayResult::kLimit:
          counters_.drop(Drop::kKeypairExpired);
          continue;
      }
      Peer& peer = *kp->peer;
      peer.endpoint = pkt.endpoint;  // roaming: only from authenticated packets
      peer.rx_bytes += pkt.length;
      if (kp == peer.next.get()) {
        // The initiator's first data confirms the responder's new keypair.
        retire(peer.previous);
        peer.previous = std::move(peer.current);
        peer.current = std::move(peer.next);
        ++counters_.handshakes_completed;
        peer.last_handshake_wall = clock_.wall();
        peer.timers.handshake_complete();
        send_staged(peer);
      }
      if (kp == peer.current.get() && kp->initiator && !peer.sent_lastminute_handshake &&
          t - kp->created >= kRejectAfterTime - kKeepaliveTimeout - kRekeyTimeout) {
        peer.sent_lastminute_handshake = true;
        send_initiation(peer, false);
      }
      peer.timers.any_authenticated_packet_received();
      peer.timers.any_authenticated_packet_traversal(t, peer.persistent_keepalive);
      uint32_t plain_len = jobs[j].length - static_cast<uint32_t>(kTagSize);
      if (plain_len == 0) {
        verdict = Verdict::kConsumed;  // keepalive
        continue;
      }
      peer.timers.data_received(t);
      std::span<const uint8_t> inner{pkt.data() + kTransportHeaderSize, plain_len};
      sa_family_t family;
      const uint8_t* src;
      size_t length;
      if (!inner_source(inner, family, src, length)) {
        counters_.drop(Drop::kBadInnerPacket);
        continue;
      }
      auto slot = allowed_ips_.lookup(family, src);
      if (!slot || *slot != peer.slot) {
        counters_.drop(Drop::kSourceNotAllowed);
        continue;
      }
      pkt.offset += kTransportHeaderSize;
      pkt.length = static_cast<uint32_t>(length);
      verdict = Verdict::kPass;
      ++counters_.rx_data;
    }
    // Pass 3: the handshake context.
    for (size_t i = base; i < base + count; ++i)
      if (verdicts[i] == Verdict::kConsumed && is_handshake(pkts[i].bytes()))
        handle_handshake(pkts[i], verdicts[i]);
  }
  retired_.clear();
}

// ---------------------------------------------------------------- timers

void Device::run_timer(Peer& peer, TimerAction action) {
  switch (action) {
    case TimerAction::kNone:
      break;
    case TimerAction::kRetryHandshake:
      send_initiation(peer, true);
      break;
    case TimerAction::kGiveUp:
      peer.staged.clear();
      break;
    case TimerAction::kSendKeepalive:
      send_keepalive(peer);
      break;
    case TimerAction::kNewHandshake:
      send_initiation(peer, false);
      break;
    case TimerAction::kZeroKeyMaterial:
      retire(peer.previous);
      retire(peer.current);
      retire(peer.next);
      release_handshake_index(peer);
      peer.handshake.clear_session();
      break;
    case TimerAction::kPersistentKeepalive:
      // The deadline may predate turning keepalive off (as Linux checks).
      if (peer.persistent_keepalive != 0) send_keepalive(peer);
      break;
  }
}

void Device::tick() {
  Nanos t = now();
  for (uint32_t slot : std::vector<uint32_t>(peer_order_)) {
    Peer* peer = peers_[slot].get();
    if (!peer) continue;
    for (TimerAction a; (a = peer->timers.expire(t)) != TimerAction::kNone;) run_timer(*peer, a);
  }
  retired_.clear();
}

Nanos Device::next_deadline() const {
  Nanos next = kNever;
  for (uint32_t slot : peer_order_) next = std::min(next, peers_[slot]->timers.next_deadline());
  return next;
}

}  // namespace faraday::dataplane
