// x25519.h: Curve25519 Diffie-Hellman (RFC 7748) from libsodium, the DH() of
// WireGuard's handshake. Stateless and thread-safe; no init call needed.
#pragma once

#include "crypto/keys.h"

namespace faraday::crypto {

// A fresh private key from the system CSPRNG, clamped as RFC 7748 §5 describes.
Key x25519_generate_private();
// X25519(private_key, 9).
Key x25519_public(const Key& private_key);
// shared = X25519(private_key, public_key). Returns false, with shared zeroed, when
// the result is all zero (a low-order public key); the caller must then drop the
// handshake. shared may alias either input.
bool x25519(Key& shared, const Key& private_key, const Key& public_key);

}  // namespace faraday::crypto
