#include "dataplane/cookie.h"

#include <sodium.h>

#include <cstring>
#include <string_view>

#include "crypto/aead.h"
#include "crypto/blake2s.h"

namespace faraday::dataplane {

namespace {

constexpr std::string_view kLabelMac1 = "mac1----";
constexpr std::string_view kLabelCookie = "cookie--";

std::span<const uint8_t> bytes(std::string_view s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

}  // namespace

void CookieChecker::set_public_key(const crypto::Key& our_public) {
  mac1_key_ = crypto::hash(bytes(kLabelMac1), our_public);
  cookie_key_ = crypto::hash(bytes(kLabelCookie), our_public);
  has_key_ = true;
}

void CookieChecker::clear() {
  crypto::wipe(mac1_key_);
  crypto::wipe(cookie_key_);
  has_key_ = false;
}

bool CookieChecker::check_mac1(std::span<const uint8_t> msg, size_t mac1_off) const {
  return has_key_ && verify_mac1(mac1_key_, msg, mac1_off);
}

std::optional<crypto::Key> CookieChecker::mac1_key() const {
  if (!has_key_) return std::nullopt;
  return mac1_key_;
}

bool CookieChecker::verify_mac1(const crypto::Key& key, std::span<const uint8_t> msg,
                                size_t mac1_off) {
  uint8_t expected[kMacSize];
  crypto::mac(expected, key, msg.first(mac1_off));
  return sodium_memcmp(expected, msg.data() + mac1_off, kMacSize) == 0;
}

void CookieChecker::cookie_for(uint8_t out[kMacSize], const Endpoint& source, Nanos now) {
  if (!secret_set_ || now - secret_birth_ >= kCookieSecretMaxAge) {
    randombytes_buf(secret_.data(), secret_.size());
    secret_birth_ = now;
    secret_set_ = true;
  }
  // The cookie binds the source address and port; only we ever check it, so
  // the encoding is ours to choose.
  uint8_t input[18];
  size_t alen = source.family == AF_INET ? 4 : 16;
  std::memcpy(input, source.addr.data(), alen);
  input[alen] = static_cast<uint8_t>(source.port >> 8);
  input[alen + 1] = static_cast<uint8_t>(source.port);
  crypto::mac(out, secret_, {input, alen + 2});
}

bool CookieChecker::check_mac2(std::span<const uint8_t> msg, size_t mac2_off,
                               const Endpoint& source, Nanos now) {
  uint8_t cookie[kMacSize];
  cookie_for(cookie, source, now);
  uint8_t expected[kMacSize];
  crypto::mac(expected, {cookie, kMacSize}, msg.first(mac2_off));
  return sodium_memcmp(expected, msg.data() + mac2_off, kMacSize) == 0;
}

void CookieChecker::make_reply(MessageCookieReply& out, std::span<const uint8_t> msg,
                               size_t mac1_off, const Endpoint& source, Nanos now) {
  store_le32(out.type, static_cast<uint32_t>(MessageType::kCookieReply));
  std::memcpy(out.receiver, msg.data() + 4, 4);
  randombytes_buf(out.nonce, sizeof(out.nonce));
  uint8_t cookie[kMacSize];
  cookie_for(cookie, source, now);
  crypto::xaead_seal(out.encrypted_cookie, cookie, kMacSize, out.nonce, cookie_key_,
                     msg.subspan(mac1_off, kMacSize));
}

void CookieMaker::set_peer_public_key(const crypto::Key& peer_public) {
  mac1_key_ = crypto::hash(bytes(kLabelMac1), peer_public);
  cookie_key_ = crypto::hash(bytes(kLabelCookie), peer_public);
  have_cookie_ = false;
  have_last_mac1_ = false;
}

bool CookieMaker::has_fresh_cookie(Nanos now) const {
  return have_cookie_ && now - cookie_birth_ < kCookieSecretMaxAge - kCookieSecretLatency;
}

void CookieMaker::add_macs(std::span<uint8_t> msg, size_t mac1_off, Nanos now) {
  size_t mac2_off = mac1_off + kMacSize;
  crypto::mac(msg.data() + mac1_off, mac1_key_, msg.first(mac1_off));
  std::memcpy(last_mac1_, msg.data() + mac1_off, kMacSize);
  have_last_mac1_ = true;
  if (has_fresh_cookie(now)) {
    crypto::mac(msg.data() + mac2_off, {cookie_, kMacSize}, msg.first(mac2_off));
  } else {
    std::memset(msg.data() + mac2_off, 0, kMacSize);
  }
}

bool CookieMaker::consume_reply(const MessageCookieReply& reply, Nanos now) {
  if (!have_last_mac1_) return false;
  uint8_t cookie[kMacSize];
  if (!crypto::xaead_open(cookie, reply.encrypted_cookie, sizeof(reply.encrypted_cookie),
                          reply.nonce, cookie_key_, {last_mac1_, kMacSize}))
    return false;
  std::memcpy(cookie_, cookie, kMacSize);
  cookie_birth_ = now;
  have_cookie_ = true;
  have_last_mac1_ = false;  // one cookie per message sent
  return true;
}

}  // namespace faraday::dataplane
