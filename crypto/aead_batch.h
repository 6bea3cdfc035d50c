// aead_batch.h: the data path's AEAD interface. A worker seals or opens a burst of
// transport messages in place (ChaCha20-Poly1305, nonce = 4 zero bytes || LE64 counter,
// no associated data), so a multi-buffer backend (intel-ipsec-mb) works behind the same
// calls as the one-message-at-a-time one (libsodium). Backends are chosen once at
// startup by select_aead_backend(), which runs the known-answer self-test on each and
// times the ones that pass.
//
// Threads: a backend object may keep per-burst scratch state, so each worker thread
// owns its own instance (make one per worker). The sodium backend is stateless; the
// ipsec-mb one owns a job manager and per-burst nonce and tag scratch.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "crypto/keys.h"
#include "result.h"

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
  // The name and, where it matters, the variant in use: "ipsec-mb (avx512)".
  virtual std::string describe() const { return name(); }
  // `length` is not updated: the caller knows the sealed size is length + 16 and the
  // opened size length - 16.
  virtual void seal_burst(std::span<AeadJob> jobs) = 0;
  virtual void open_burst(std::span<AeadJob> jobs) = 0;
};

// The portable backend: one libsodium call per message. name() == "sodium".
std::unique_ptr<AeadBackend> make_sodium_backend();

// The multi-buffer backend on intel-ipsec-mb's job API (aead_ipsecmb.cpp); one job
// manager per object. name() == "ipsec-mb". An error when the build has no
// intel-ipsec-mb or the library cannot run on this CPU.
Result<std::unique_ptr<AeadBackend>> make_ipsecmb_backend();

// Known-answer vectors (RFC 8439 A.5, which uses a WireGuard-format nonce) through the
// backend, a forged tag that must fail without touching the data, and a burst of mixed
// sizes cross-checked against aead_seal/aead_open.
bool aead_self_test(AeadBackend& backend);

// The backend chosen at start-up, and one line saying why: "ipsec-mb (avx512): 21.3
// Gbit/s vs sodium 4.9 Gbit/s in a 5 ms start-up measurement each (best 1 ms turn of
// 5); self-tests passed".
// `make` makes further instances of the chosen type (one per thread that needs one,
// as ParallelAead's lanes do); null if one cannot be made.
using AeadFactory = std::function<std::unique_ptr<AeadBackend>()>;
struct AeadChoice {
  std::unique_ptr<AeadBackend> backend;
  std::string reason;
  AeadFactory make;
};

// forced empty: the fastest backend whose self-test passes; otherwise the named one.
// "Fastest" is measured, not assumed: the backends that pass take turns sealing
// 1420-byte messages in bursts of 32, five 1 ms turns each, and each keeps its best
// turn. An error when the name is unknown, or no backend (or not the forced one) can
// run here and pass its self-test (make_ipsecmb_backend's reasons count as failed).
Result<AeadChoice> select_aead_backend(std::string_view forced);

}  // namespace faraday::crypto
