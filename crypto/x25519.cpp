#include "crypto/x25519.h"

#include <cstdlib>

#include <sodium.h>

namespace faraday::crypto {
namespace {

void ensure_sodium() {
  static const bool ready = sodium_init() >= 0;
  if (!ready) std::abort();
}

}  // namespace

Key x25519_generate_private() {
  ensure_sodium();
  Key key;
  randombytes_buf(key.data(), key.size());
  key[0] &= 248;
  key[31] &= 127;
  key[31] |= 64;
  return key;
}

Key x25519_public(const Key& private_key) {
  ensure_sodium();
  Key pub;
  // Fails only for a scalar that clamps to zero, which clamping makes impossible.
  if (crypto_scalarmult_base(pub.data(), private_key.data()) != 0) std::abort();
  return pub;
}

bool x25519(Key& shared, const Key& private_key, const Key& public_key) {
  ensure_sodium();
  Key out;
  // libsodium returns -1 for an all-zero result (and for small-order points).
  const bool ok = crypto_scalarmult(out.data(), private_key.data(), public_key.data()) == 0;
  shared = ok ? out : Key{};
  wipe(out);
  return ok;
}

}  // namespace faraday::crypto
