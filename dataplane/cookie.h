// cookie.h: mac1/mac2 and the cookie reply (whitepaper §5.4.4, §5.4.7).
//
// CookieChecker is the responder's side: every handshake message must carry a
// valid mac1 (keyed by our public key, so it proves the sender knows whom it is
// talking to); under load it must also carry a valid mac2, made from a cookie
// that only this device can mint for the sender's address. A message without it
// gets a cookie reply instead of a handshake.
//
// CookieMaker is the initiator's side, one per peer: it stamps mac1 (and mac2
// while it holds a fresh cookie) on the messages we send to that peer, and
// takes the cookie replies that peer sends us.
//
// Both are handshake-context state: one thread. The workers check mac1 with
// verify_mac1() and a copy of the key the handshake context publishes.
#pragma once

#include <cstdint>
#include <optional>
#include <span>

#include "crypto/keys.h"
#include "dataplane/clock.h"
#include "dataplane/messages.h"
#include "dataplane/net.h"

namespace faraday::dataplane {

inline constexpr Nanos kCookieSecretMaxAge = 120 * kSecond;
inline constexpr Nanos kCookieSecretLatency = 5 * kSecond;

class CookieChecker {
 public:
  // Derives the mac1 and cookie keys from our static public key.
  void set_public_key(const crypto::Key& our_public);
  void clear();

  bool check_mac1(std::span<const uint8_t> msg, size_t mac1_off) const;
  // The mac1 key, for the workers' copy (it follows from the public key: no
  // secret); nullopt without a key.
  std::optional<crypto::Key> mac1_key() const;
  // Whether msg carries the mac1 that `key` gives it.
  static bool verify_mac1(const crypto::Key& key, std::span<const uint8_t> msg, size_t mac1_off);
  bool check_mac2(std::span<const uint8_t> msg, size_t mac2_off, const Endpoint& source, Nanos now);
  // A cookie reply to `msg` (sender index at bytes 4..7, mac1 at mac1_off).
  void make_reply(MessageCookieReply& out, std::span<const uint8_t> msg, size_t mac1_off,
                  const Endpoint& source, Nanos now);

 private:
  void cookie_for(uint8_t out[kMacSize], const Endpoint& source, Nanos now);

  bool has_key_ = false;
  crypto::Key mac1_key_{};
  crypto::Key cookie_key_{};
  crypto::Key secret_{};
  Nanos secret_birth_ = 0;
  bool secret_set_ = false;
};

class CookieMaker {
 public:
  void set_peer_public_key(const crypto::Key& peer_public);

  // Writes mac1, and mac2 when a cookie younger than 115 s is held (else zeros).
  void add_macs(std::span<uint8_t> msg, size_t mac1_off, Nanos now);
  // Decrypts the cookie with the mac1 we last sent as associated data.
  bool consume_reply(const MessageCookieReply& reply, Nanos now);
  bool has_fresh_cookie(Nanos now) const;

 private:
  crypto::Key mac1_key_{};
  crypto::Key cookie_key_{};
  uint8_t last_mac1_[kMacSize]{};
  bool have_last_mac1_ = false;
  uint8_t cookie_[kMacSize]{};
  Nanos cookie_birth_ = 0;
  bool have_cookie_ = false;
};

}  // namespace faraday::dataplane
