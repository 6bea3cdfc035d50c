#include "crypto/blake2s.h"

#include <algorithm>
#include <array>
#include <cassert>
#include <cstdlib>

namespace faraday::crypto {
namespace {

constexpr size_t kBlockSize = 64;  // BLAKE2s block: HMAC's pad length

// libb2 only fails on bad parameters, which the constructors assert against;
// a failure here means memory corruption, so stop rather than return a bad hash.
void check(int rc) {
  if (rc != 0) std::abort();
}

}  // namespace

Blake2s::Blake2s(size_t outlen) : outlen_(outlen) {
  assert(outlen >= 1 && outlen <= BLAKE2S_OUTBYTES);
  check(blake2s_init(&state_, outlen));
}

Blake2s::Blake2s(std::span<const uint8_t> key, size_t outlen) : outlen_(outlen) {
  assert(outlen >= 1 && outlen <= BLAKE2S_OUTBYTES);
  assert(key.size() <= BLAKE2S_KEYBYTES);
  if (key.empty()) {
    check(blake2s_init(&state_, outlen));
  } else {
    check(blake2s_init_key(&state_, outlen, key.data(), key.size()));
  }
}

Blake2s::~Blake2s() {
  wipe(&state_, sizeof state_);
}

void Blake2s::update(std::span<const uint8_t> data) {
  if (data.empty()) return;
  check(blake2s_update(&state_, data.data(), data.size()));
}

void Blake2s::final(std::span<uint8_t> out) {
  assert(out.size() == outlen_);
  check(blake2s_final(&state_, out.data(), outlen_));
}

Key hash(std::span<const uint8_t> a, std::span<const uint8_t> b) {
  Blake2s h;
  h.update(a);
  h.update(b);
  Key out;
  h.final(out);
  return out;
}

void mac(uint8_t out[kMacSize], std::span<const uint8_t> key, std::span<const uint8_t> data) {
  Blake2s h(key, kMacSize);
  h.update(data);
  h.final(std::span<uint8_t>(out, kMacSize));
}

Key hmac(std::span<const uint8_t> key, std::span<const uint8_t> data) {
  std::array<uint8_t, kBlockSize> pad{};
  if (key.size() > kBlockSize) {
    Key short_key = hash(key);
    std::copy(short_key.begin(), short_key.end(), pad.begin());
    wipe(short_key);
  } else {
    std::copy(key.begin(), key.end(), pad.begin());
  }

  for (uint8_t& b : pad) b ^= 0x36;  // ipad
  Key inner = hash(pad, data);
  for (uint8_t& b : pad) b ^= 0x36 ^ 0x5c;  // ipad -> opad
  Key out = hash(pad, inner);

  wipe(pad.data(), pad.size());
  wipe(inner);
  return out;
}

void kdf(const Key& chaining_key, std::span<const uint8_t> input, Key* t1, Key* t2, Key* t3) {
  // t0 is computed before any output is written, so outputs may alias the inputs.
  Key t0 = hmac(chaining_key, input);
  std::array<Key, 3> t{};
  std::array<uint8_t, kHashSize + 1> prev_and_index{};
  const int needed = t3 ? 3 : t2 ? 2 : t1 ? 1 : 0;

  for (int i = 0; i < needed; ++i) {
    size_t len = 0;
    if (i > 0) {
      std::copy(t[i - 1].begin(), t[i - 1].end(), prev_and_index.begin());
      len = kHashSize;
    }
    prev_and_index[len] = static_cast<uint8_t>(i + 1);
    t[i] = hmac(t0, std::span<const uint8_t>(prev_and_index.data(), len + 1));
  }

  if (t1) *t1 = t[0];
  if (t2) *t2 = t[1];
  if (t3) *t3 = t[2];
  wipe(t0);
  for (Key& k : t) wipe(k);
  wipe(prev_and_index.data(), prev_and_index.size());
}

}  // namespace faraday::crypto
