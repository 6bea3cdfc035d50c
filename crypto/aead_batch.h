// aead_batch.h: the data path's AEAD interface. A worker seals or opens a burst of
// transport messages in place (ChaCha20-Poly1305, nonce = 4 zero bytes || LE64 counter,
// no associated data), so a multi-buffer backend (intel-ipsec-mb) can slot in behind
// the same calls later. Backends are chosen once at startup by select_aead_backend(),
// which runs the known-answer self-test first.
//
// Threads: a backend object may keep per-burst scratch state, so each worker thread
// owns its own instance (make one per worker). The sodium backend is stateless.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "crypto/keys.h"
#include "crypto/result.h"

namespace faraday::crypto {

struct AeadJob {
  const Key* key;
  uint64_t counter;  // nonce: 4 zero bytes || LE64(counter)
  // seal: `length` bytes of plaintext with 16 bytes of room after; becomes
  //       ciphertext || tag (length + 16).
  // open: `length` bytes of ciphertext || tag; becomes plaintext (length - 16),
  //       unchanged on failure.
  uint8_t* data;
  uint32_t length;
  bool ok;  // set by open_burst (and true after seal_burst)
};

class AeadBackend {
 public:
  virtual ~AeadBackend() = default;
  virtual const char* name() const = 0;
  // `length` is not updated: the caller knows the sealed size is length + 16 and the
  // opened size length - 16.
  virtual void seal_burst(std::span<AeadJob> jobs) = 0;
  virtual void open_burst(std::span<AeadJob> jobs) = 0;
};

// The portable backend: one libsodium call per message. name() == "sodium".
std::unique_ptr<AeadBackend> make_sodium_backend();

// Known-answer vectors (RFC 8439 A.5, which uses a WireGuard-format nonce) through the
// backend, a forged tag that must fail without touching the data, and a burst of mixed
// sizes cross-checked against aead_seal/aead_open.
bool aead_self_test(AeadBackend& backend);

// forced empty: the fastest backend whose self-test passes; otherwise the named one.
// An error when the name is unknown or the backend fails its self-test.
Result<std::unique_ptr<AeadBackend>> select_aead_backend(std::string_view forced);

}  // namespace faraday::crypto
