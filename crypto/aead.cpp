#include "crypto/aead.h"

#include <algorithm>
#include <array>
#include <cstdlib>

#include <sodium.h>

namespace faraday::crypto {
namespace {

using Nonce = std::array<uint8_t, crypto_aead_chacha20poly1305_IETF_NPUBBYTES>;

void ensure_sodium() {
  static const bool ready = sodium_init() >= 0;
  if (!ready) std::abort();
}

// 4 zero bytes || LE64(counter).
Nonce wireguard_nonce(uint64_t counter) {
  Nonce nonce{};
  for (size_t i = 0; i < 8; ++i) nonce[4 + i] = static_cast<uint8_t>(counter >> (8 * i));
  return nonce;
}

void seal(uint8_t* dst, const uint8_t* src, size_t len, const Nonce& nonce, const uint8_t* key,
          std::span<const uint8_t> ad) {
  ensure_sodium();
  crypto_aead_chacha20poly1305_ietf_encrypt_detached(dst, dst + len, nullptr, src, len, ad.data(),
                                                     ad.size(), nullptr, nonce.data(), key);
}

// Verifies first and decrypts only on success, so a forged message never touches dst
// (libsodium's combined decrypt zeroes its output on failure, which would wipe an
// in-place buffer). The keystream for the payload starts at block 1; block 0 is the
// Poly1305 key (RFC 8439 §2.8).
bool open(uint8_t* dst, const uint8_t* src, size_t len_with_tag, const Nonce& nonce,
          const uint8_t* key, std::span<const uint8_t> ad) {
  ensure_sodium();
  if (len_with_tag < kTagSize) return false;
  const size_t len = len_with_tag - kTagSize;
  if (crypto_aead_chacha20poly1305_ietf_decrypt_detached(
          nullptr, nullptr, src, len, src + len, ad.data(), ad.size(), nonce.data(), key) != 0) {
    return false;
  }
  if (len > 0) crypto_stream_chacha20_ietf_xor_ic(dst, src, len, nonce.data(), 1, key);
  return true;
}

// XChaCha20: subkey = HChaCha20(key, nonce[0..16]); then ChaCha20-Poly1305 with the
// 96-bit nonce 4 zero bytes || nonce[16..24] (draft-irtf-cfrg-xchacha §2.3).
struct XKey {
  Key subkey;
  Nonce nonce{};
  XKey(const uint8_t xnonce[kXNonceSize], const Key& key) {
    ensure_sodium();
    crypto_core_hchacha20(subkey.data(), xnonce, key.data(), nullptr);
    std::copy(xnonce + 16, xnonce + kXNonceSize, nonce.begin() + 4);
  }
  ~XKey() { wipe(subkey); }
  XKey(const XKey&) = delete;
  XKey& operator=(const XKey&) = delete;
};

}  // namespace

void aead_seal(uint8_t* dst, const uint8_t* src, size_t len, uint64_t counter, const Key& key,
               std::span<const uint8_t> ad) {
  seal(dst, src, len, wireguard_nonce(counter), key.data(), ad);
}

bool aead_open(uint8_t* dst, const uint8_t* src, size_t len_with_tag, uint64_t counter,
               const Key& key, std::span<const uint8_t> ad) {
  return open(dst, src, len_with_tag, wireguard_nonce(counter), key.data(), ad);
}

void xaead_seal(uint8_t* dst, const uint8_t* src, size_t len, const uint8_t nonce[kXNonceSize],
                const Key& key, std::span<const uint8_t> ad) {
  const XKey x(nonce, key);
  seal(dst, src, len, x.nonce, x.subkey.data(), ad);
}

bool xaead_open(uint8_t* dst, const uint8_t* src, size_t len_with_tag,
                const uint8_t nonce[kXNonceSize], const Key& key, std::span<const uint8_t> ad) {
  const XKey x(nonce, key);
  return open(dst, src, len_with_tag, x.nonce, x.subkey.data(), ad);
}

}  // namespace faraday::crypto
