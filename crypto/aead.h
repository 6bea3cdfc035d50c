// aead.h: single-message AEAD for the handshake and cookie replies (whitepaper §5.4).
// AEAD is ChaCha20-Poly1305 (RFC 8439) with WireGuard's 96-bit nonce: 4 zero bytes ||
// little-endian 64-bit counter. XAEAD is XChaCha20-Poly1305 (24-byte nonce,
// draft-irtf-cfrg-xchacha), used for cookie replies. Backed by libsodium; stateless
// and thread-safe, no init call needed. The data path uses aead_batch.h instead.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include "crypto/keys.h"

namespace faraday::crypto {

inline constexpr size_t kTagSize = 16;
inline constexpr size_t kXNonceSize = 24;

// dst receives len + kTagSize bytes (ciphertext || tag). dst either equals src (in
// place) or does not overlap it; the same holds for every function here.
void aead_seal(uint8_t* dst, const uint8_t* src, size_t len, uint64_t counter, const Key& key,
               std::span<const uint8_t> ad);
// src holds len_with_tag bytes (ciphertext || tag); dst receives len_with_tag - kTagSize
// bytes of plaintext. Returns false when src is shorter than a tag or the tag does not
// verify; dst is then left untouched. dst may equal src.
bool aead_open(uint8_t* dst, const uint8_t* src, size_t len_with_tag, uint64_t counter,
               const Key& key, std::span<const uint8_t> ad);

// As above with a 24-byte random nonce.
void xaead_seal(uint8_t* dst, const uint8_t* src, size_t len, const uint8_t nonce[kXNonceSize],
                const Key& key, std::span<const uint8_t> ad);
bool xaead_open(uint8_t* dst, const uint8_t* src, size_t len_with_tag,
                const uint8_t nonce[kXNonceSize], const Key& key, std::span<const uint8_t> ad);

}  // namespace faraday::crypto
