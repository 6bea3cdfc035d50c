// blake2s.h: BLAKE2s (RFC 7693, from libb2) and the hash constructions WireGuard's
// handshake builds on it: HASH, MAC (keyed BLAKE2s, 16 bytes), HMAC and KDF_n
// (whitepaper §5.4). Every function is pure and thread-safe; a Blake2s object is a
// plain value owned by one thread at a time. Secret intermediates are wiped.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include <blake2.h>

#include "crypto/keys.h"

namespace faraday::crypto {

inline constexpr size_t kHashSize = 32;
inline constexpr size_t kMacSize = 16;

// Incremental BLAKE2s, unkeyed or keyed. outlen is 1..32, a key 0..32 bytes.
// Copyable (a copy forks the running state); the destructor wipes the state.
class Blake2s {
 public:
  explicit Blake2s(size_t outlen = kHashSize);
  Blake2s(std::span<const uint8_t> key, size_t outlen);
  Blake2s(const Blake2s&) = default;
  Blake2s& operator=(const Blake2s&) = default;
  ~Blake2s();

  void update(std::span<const uint8_t> data);
  void final(std::span<uint8_t> out);  // out.size() == outlen; once per object

 private:
  blake2s_state state_;
  size_t outlen_;
};

// HASH(a || b), 32 bytes.
Key hash(std::span<const uint8_t> a, std::span<const uint8_t> b = {});
// MAC(key, data): keyed BLAKE2s with a 16-byte output.
void mac(uint8_t out[kMacSize], std::span<const uint8_t> key, std::span<const uint8_t> data);
// HMAC (RFC 2104) over BLAKE2s: 64-byte block, 32-byte output.
Key hmac(std::span<const uint8_t> key, std::span<const uint8_t> data);
// WireGuard's KDF_n: t0 = HMAC(ck, input); t1 = HMAC(t0, 0x01);
// t2 = HMAC(t0, t1 || 0x02); t3 = HMAC(t0, t2 || 0x03). Writes each non-null output;
// the outputs may alias chaining_key or input. Wipes t0 and temporaries.
void kdf(const Key& chaining_key, std::span<const uint8_t> input, Key* t1, Key* t2 = nullptr,
         Key* t3 = nullptr);

}  // namespace faraday::crypto
