// ratelimiter.h: per-source-address limit on handshake messages that the core
// answers while under load: a token bucket per source (IPv4 /32, IPv6 /64) of
// 50 per second with a burst of 5, as the Linux driver uses. Memory is bounded:
// at most kMaxEntries sources are tracked; past that, new sources are refused
// until idle entries are collected. Handshake context only (one thread).
#pragma once

#include <cstdint>
#include <functional>
#include <unordered_map>

#include "dataplane/clock.h"
#include "dataplane/net.h"

namespace faraday::dataplane {

class RateLimiter {
 public:
  static constexpr Nanos kPacketCost = kSecond / 50;  // INITIATIONS_PER_SECOND
  static constexpr Nanos kBurst = 5 * kPacketCost;    // INITIATIONS_BURSTABLE
  static constexpr size_t kMaxEntries = 16384;
  static constexpr Nanos kIdle = kSecond;  // an entry idle this long is collected

  // True if a message from `source` may be processed now.
  bool allow(const Endpoint& source, Nanos now);
  size_t size() const { return buckets_.size(); }

 private:
  struct Bucket {
    Nanos tokens;
    Nanos last;
  };
  void collect(Nanos now);

  // IPv4 address or IPv6 /64, and the family: an IPv6 prefix can hold any
  // 64-bit value, so the family must be part of the key, not folded into it.
  struct Key {
    uint64_t prefix;
    bool v6;
    bool operator==(const Key&) const = default;
  };
  // Keyed (SipHash, a random key per limiter) so that a sender who owns many
  // addresses cannot choose ones that pile into one hash chain.
  struct KeyHash {
    uint8_t secret[16];
    KeyHash();
    size_t operator()(const Key& k) const noexcept;
  };
  static Key source_key(const Endpoint& ep);

  std::unordered_map<Key, Bucket, KeyHash> buckets_;
  Nanos last_collect_ = 0;
};

}  // namespace faraday::dataplane
