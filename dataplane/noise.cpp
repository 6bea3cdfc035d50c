#include "dataplane/noise.h"

#include <cstring>
#include <string_view>

#include "crypto/aead.h"
#include "crypto/blake2s.h"
#include "crypto/x25519.h"

namespace faraday::dataplane {

namespace {

using crypto::Key;

constexpr std::string_view kConstruction = "Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s";
constexpr std::string_view kIdentifier = "WireGuard v1 zx2c4 Jason@zx2c4.com";

std::span<const uint8_t> as_bytes(std::string_view s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

// The transcript's starting point: C0 = HASH(construction), H0 = HASH(C0 || identifier).
struct Initial {
  Key chaining_key;
  Key hash;
};
const Initial& initial() {
  static const Initial init = [] {
    Initial i;
    i.chaining_key = crypto::hash(as_bytes(kConstruction));
    i.hash = crypto::hash(i.chaining_key, as_bytes(kIdentifier));
    return i;
  }();
  return init;
}

// ck = KDF1(ck, input)
void mix_key(Key& ck, std::span<const uint8_t> input) {
  Key next;
  crypto::kdf(ck, input, &next);
  ck = next;
  crypto::wipe(next);
}

// (ck, k) = KDF2(ck, input)
void mix_key2(Key& ck, Key& k, std::span<const uint8_t> input) {
  Key next;
  crypto::kdf(ck, input, &next, &k);
  ck = next;
  crypto::wipe(next);
}

void mix_hash(Key& h, std::span<const uint8_t> input) {
  h = crypto::hash(h, input);
}

// The responder's and the initiator's shared psk step:
// (ck, tau, k) = KDF3(ck, psk); h = HASH(h || tau).
void mix_psk(Key& ck, Key& h, const Key& psk, Key& tau, Key& k) {
  Key next;
  crypto::kdf(ck, psk, &next, &tau, &k);
  ck = next;
  crypto::wipe(next);
  mix_hash(h, tau);
}

// Wipes a set of secrets when the step returns, successful or not.
template <size_t N>
struct Wiper {
  Key* keys[N];
  ~Wiper() {
    for (Key* k : keys) crypto::wipe(*k);
  }
};

}  // namespace

void StaticIdentity::set(const Key& priv) {
  private_key = priv;
  public_key = crypto::x25519_public(priv);
  present = true;
}

void StaticIdentity::clear() {
  crypto::wipe(private_key);
  public_key = {};
  present = false;
}

bool Handshake::precompute(const StaticIdentity& id) {
  if (!id.present || !crypto::x25519(static_static, id.private_key, remote_static)) {
    crypto::wipe(static_static);
    return false;
  }
  return true;
}

void Handshake::clear_session() {
  crypto::wipe(hash);
  crypto::wipe(chaining_key);
  crypto::wipe(ephemeral_private);
  crypto::wipe(remote_ephemeral);
  local_index = 0;
  remote_index = 0;
  state = HandshakeState::kZeroed;
}

bool noise_create_initiation(MessageInitiation& msg, Handshake& hs, const StaticIdentity& id,
                             uint32_t local_index, Nanos wall_now) {
  if (!id.present || crypto::is_zero(hs.static_static)) return false;
  Key ck = initial().chaining_key;
  Key h = initial().hash;
  Key k{}, dh{};
  Key e_priv = crypto::x25519_generate_private();
  Wiper<4> wipe{{&ck, &k, &dh, &e_priv}};

  mix_hash(h, hs.remote_static);
  Key e_pub = crypto::x25519_public(e_priv);
  std::memcpy(msg.ephemeral, e_pub.data(), kKeySize);
  mix_key(ck, e_pub);
  mix_hash(h, e_pub);

  if (!crypto::x25519(dh, e_priv, hs.remote_static)) return false;
  mix_key2(ck, k, dh);
  crypto::aead_seal(msg.encrypted_static, id.public_key.data(), kKeySize, 0, k, h);
  mix_hash(h, msg.encrypted_static);

  mix_key2(ck, k, hs.static_static);
  crypto::Timestamp ts = crypto::tai64n(wall_now);
  crypto::aead_seal(msg.encrypted_timestamp, ts.data(), ts.size(), 0, k, h);
  mix_hash(h, msg.encrypted_timestamp);

  store_le32(msg.type, static_cast<uint32_t>(MessageType::kInitiation));
  store_le32(msg.sender, local_index);

  hs.hash = h;
  hs.chaining_key = ck;
  hs.ephemeral_private = e_priv;
  hs.local_index = local_index;
  hs.state = HandshakeState::kCreatedInitiation;
  return true;
}

bool noise_scan_initiation(const MessageInitiation& msg, const StaticIdentity& id,
                           InitiationScan& scan) {
  if (!id.present) return false;
  Key ck = initial().chaining_key;
  Key h = initial().hash;
  Key k{}, dh{};
  Wiper<3> wipe{{&ck, &k, &dh}};

  mix_hash(h, id.public_key);
  Key e;
  std::memcpy(e.data(), msg.ephemeral, kKeySize);
  mix_key(ck, e);
  mix_hash(h, e);

  if (!crypto::x25519(dh, id.private_key, e)) return false;
  mix_key2(ck, k, dh);
  Key remote_static;
  if (!crypto::aead_open(remote_static.data(), msg.encrypted_static, sizeof(msg.encrypted_static),
                         0, k, h))
    return false;
  mix_hash(h, msg.encrypted_static);

  scan.chaining_key = ck;
  scan.hash = h;
  scan.remote_ephemeral = e;
  scan.remote_static = remote_static;
  return true;
}

std::optional<Drop> noise_consume_initiation(const MessageInitiation& msg,
                                             const InitiationScan& scan, Handshake& hs, Nanos now) {
  if (crypto::is_zero(hs.static_static)) return Drop::kHandshakeDecrypt;
  Key ck = scan.chaining_key;
  Key h = scan.hash;
  Key k{};
  Wiper<3> wipe{{&ck, &h, &k}};

  mix_key2(ck, k, hs.static_static);
  crypto::Timestamp ts;
  if (!crypto::aead_open(ts.data(), msg.encrypted_timestamp, sizeof(msg.encrypted_timestamp), 0, k,
                         h))
    return Drop::kHandshakeDecrypt;
  // Flood first: two genuine initiations inside one TAI64N granule (2^24 ns)
  // carry equal timestamps and are a flood, not a replay.
  if (now - hs.last_initiation_consumption < kInitiationMinInterval) return Drop::kInitiationFlood;
  if (!crypto::tai64n_after(ts, hs.latest_timestamp)) return Drop::kReplayedTimestamp;
  mix_hash(h, msg.encrypted_timestamp);

  hs.clear_session();
  hs.chaining_key = ck;
  hs.hash = h;
  hs.remote_ephemeral = scan.remote_ephemeral;
  hs.remote_index = load_le32(msg.sender);
  hs.latest_timestamp = ts;
  hs.last_initiation_consumption = now;
  hs.state = HandshakeState::kConsumedInitiation;
  return std::nullopt;
}

bool noise_create_response(MessageResponse& msg, Handshake& hs, uint32_t local_index) {
  if (hs.state != HandshakeState::kConsumedInitiation) return false;
  Key ck = hs.chaining_key;
  Key h = hs.hash;
  Key k{}, dh{}, tau{};
  Key e_priv = crypto::x25519_generate_private();
  Wiper<5> wipe{{&ck, &k, &dh, &tau, &e_priv}};

  Key e_pub = crypto::x25519_public(e_priv);
  std::memcpy(msg.ephemeral, e_pub.data(), kKeySize);
  mix_key(ck, e_pub);
  mix_hash(h, e_pub);
  if (!crypto::x25519(dh, e_priv, hs.remote_ephemeral)) return false;
  mix_key(ck, dh);
  if (!crypto::x25519(dh, e_priv, hs.remote_static)) return false;
  mix_key(ck, dh);
  mix_psk(ck, h, hs.preshared_key, tau, k);
  crypto::aead_seal(msg.encrypted_nothing, nullptr, 0, 0, k, h);
  mix_hash(h, msg.encrypted_nothing);

  store_le32(msg.type, static_cast<uint32_t>(MessageType::kResponse));
  store_le32(msg.sender, local_index);
  store_le32(msg.receiver, hs.remote_index);

  hs.chaining_key = ck;
  hs.hash = h;
  hs.local_index = local_index;
  hs.state = HandshakeState::kCreatedResponse;
  return true;
}

std::optional<Drop> noise_consume_response(const MessageResponse& msg, Handshake& hs,
                                           const StaticIdentity& id) {
  if (hs.state != HandshakeState::kCreatedInitiation) return Drop::kUnexpectedResponse;
  if (!id.present) return Drop::kNoPrivateKey;
  Key ck = hs.chaining_key;
  Key h = hs.hash;
  Key k{}, dh{}, tau{};
  Wiper<5> wipe{{&ck, &h, &k, &dh, &tau}};

  Key e;
  std::memcpy(e.data(), msg.ephemeral, kKeySize);
  mix_key(ck, e);
  mix_hash(h, e);
  if (!crypto::x25519(dh, hs.ephemeral_private, e)) return Drop::kHandshakeDecrypt;
  mix_key(ck, dh);
  if (!crypto::x25519(dh, id.private_key, e)) return Drop::kHandshakeDecrypt;
  mix_key(ck, dh);
  mix_psk(ck, h, hs.preshared_key, tau, k);
  uint8_t nothing[1];
  if (!crypto::aead_open(nothing, msg.encrypted_nothing, sizeof(msg.encrypted_nothing), 0, k, h))
    return Drop::kHandshakeDecrypt;
  mix_hash(h, msg.encrypted_nothing);

  hs.chaining_key = ck;
  hs.hash = h;
  hs.remote_ephemeral = e;
  hs.remote_index = load_le32(msg.sender);
  hs.state = HandshakeState::kConsumedResponse;
  return std::nullopt;
}

std::optional<SessionKeys> noise_derive_keys(Handshake& hs) {
  SessionKeys keys;
  if (hs.state == HandshakeState::kConsumedResponse) {
    keys.initiator = true;
    crypto::kdf(hs.chaining_key, {}, &keys.send, &keys.receive);
  } else if (hs.state == HandshakeState::kCreatedResponse) {
    keys.initiator = false;
    crypto::kdf(hs.chaining_key, {}, &keys.receive, &keys.send);
  } else {
    return std::nullopt;
  }
  keys.local_index = hs.local_index;
  keys.remote_index = hs.remote_index;
  hs.clear_session();
  return keys;
}

}  // namespace faraday::dataplane
