#include "dataplane/ratelimiter.h"

#include <sodium.h>

#include <algorithm>
#include <cstring>

namespace faraday::dataplane {

RateLimiter::KeyHash::KeyHash() {
  randombytes_buf(secret, sizeof(secret));
}

size_t RateLimiter::KeyHash::operator()(const Key& k) const noexcept {
  uint8_t in[9];
  std::memcpy(in, &k.prefix, 8);
  in[8] = k.v6;
  uint64_t out;
  crypto_shorthash(reinterpret_cast<uint8_t*>(&out), in, sizeof(in), secret);
  return static_cast<size_t>(out);
}

// The bucket key: the IPv4 address, or the top 64 bits of an IPv6 address.
RateLimiter::Key RateLimiter::source_key(const Endpoint& ep) {
  Key key{0, ep.family != AF_INET};
  if (key.v6) {
    std::memcpy(&key.prefix, ep.addr.data(), 8);
  } else {
    uint32_t v4;
    std::memcpy(&v4, ep.addr.data(), 4);
    key.prefix = v4;
  }
  return key;
}

void RateLimiter::collect(Nanos now) {
  for (auto it = buckets_.begin(); it != buckets_.end();) {
    if (now - it->second.last > kIdle)
      it = buckets_.erase(it);
    else
      ++it;
  }
  last_collect_ = now;
}

bool RateLimiter::allow(const Endpoint& source, Nanos now) {
  if (now - last_collect_ > kIdle) collect(now);
  Key key = source_key(source);
  auto it = buckets_.find(key);
  if (it == buckets_.end()) {
    if (buckets_.size() >= kMaxEntries) {
      collect(now);
      if (buckets_.size() >= kMaxEntries) return false;
    }
    buckets_.emplace(key, Bucket{kBurst - kPacketCost, now});
    return true;
  }
  Bucket& b = it->second;
  b.tokens = std::min(kBurst, b.tokens + (now - b.last));
  b.last = now;
  if (b.tokens < kPacketCost) return false;
  b.tokens -= kPacketCost;
  return true;
}

}  // namespace faraday::dataplane
