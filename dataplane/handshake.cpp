// handshake.cpp: Device's handshake context. Handles initiations, responses
// and cookie replies after the data packets of a burst (receive.cpp hands them
// over), admits them under load (mac1, mac2 and the rate limiter, cookie.h,
// ratelimiter.h), and sends initiations when a timer or the send path asks.
// The Noise messages themselves are noise.h's; keypairs go to the PeerTable.
#include <cstring>

#include "dataplane/device.h"
#include "dataplane/messages.h"

namespace faraday::dataplane {

bool Device::under_load() const {
  return now() < under_load_until_;
}

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
  peers_.release_handshake_index(old_index);
  verdict = Verdict::kConsumed;
  Nanos t = now();
  peer->endpoint = pkt.endpoint;
  peer->rx_bytes += pkt.length;
  respond(*peer);
  peer->timers.any_authenticated_packet_received();
  peer->timers.any_authenticated_packet_traversal(t, peer->persistent_keepalive);
}

// Answers a consumed initiation and installs the responder's keypair as next.
void Device::respond(Peer& peer) {
  Packet* out = outbox_slot();
  if (!out) return;
  Nanos t = now();
  MessageResponse resp;
  uint32_t index = peers_.new_index(peer);
  if (!noise_create_response(resp, peer.handshake, index)) {
    peers_.erase_index(index);
    --outbox_used_;
    return;
  }
  peer.cookie.add_macs({reinterpret_cast<uint8_t*>(&resp), sizeof(resp)},
                       mac1_offset<MessageResponse>(), t);
  auto keys = noise_derive_keys(peer.handshake);
  peers_.add_keypair(peer, *keys, t);
  crypto::wipe(keys->send);
  crypto::wipe(keys->receive);
  std::memcpy(out->data(), &resp, sizeof(resp));
  out->length = sizeof(resp);
  out->endpoint = peer.endpoint;
  peer.tx_bytes += sizeof(resp);
  // A response counts as a handshake sent: no initiation of our own for
  // REKEY_TIMEOUT, or data we send before the initiator's confirmation
  // arrives would start a second, crossing handshake (as Linux does).
  peer.last_sent_handshake = t;
  peer.timers.session_derived(t);
  peer.timers.any_authenticated_packet_traversal(t, peer.persistent_keepalive);
  peer.timers.any_authenticated_packet_sent();
}

void Device::handle_response(Packet& pkt, Verdict& verdict) {
  if (!admit_handshake(pkt, mac1_offset<MessageResponse>())) return;
  MessageResponse msg;
  std::memcpy(&msg, pkt.data(), sizeof(msg));
  const PeerTable::IndexEntry* entry = peers_.find_index(load_le32(msg.receiver));
  if (!entry || entry->keypair != nullptr) {
    counters_.drop(Drop::kUnexpectedResponse);
    return;
  }
  Peer& peer = *entry->peer;
  if (auto reason = noise_consume_response(msg, peer.handshake, identity_)) {
    counters_.drop(*reason);
    return;
  }
  verdict = Verdict::kConsumed;
  Nanos t = now();
  peer.endpoint = pkt.endpoint;
  peer.rx_bytes += pkt.length;
  auto keys = noise_derive_keys(peer.handshake);
  peers_.add_keypair(peer, *keys, t);
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
  const PeerTable::IndexEntry* entry = peers_.find_index(load_le32(msg.receiver));
  if (!entry || !entry->peer->cookie.consume_reply(msg, now())) {
    counters_.drop(!entry ? Drop::kUnexpectedResponse : Drop::kBadCookieReply);
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
  peers_.release_handshake_index(peer);
  MessageInitiation msg;
  uint32_t index = peers_.new_index(peer);
  if (!noise_create_initiation(msg, peer.handshake, identity_, index, clock_.wall())) {
    peers_.erase_index(index);
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

}  // namespace faraday::dataplane
