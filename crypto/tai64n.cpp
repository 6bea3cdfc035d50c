#include "crypto/tai64n.h"

#include <algorithm>

namespace faraday::crypto {
namespace {

constexpr uint64_t kTai64Epoch = 0x400000000000000aULL;  // TAI64 label of 1970 + 10 s
constexpr int64_t kNsPerSecond = 1'000'000'000;
constexpr uint32_t kWhitenMask = ~((uint32_t{1} << 24) - 1);

}  // namespace

Timestamp tai64n(int64_t unix_time_ns) {
  // Floor division, so times before 1970 still give nanoseconds in [0, 1e9).
  int64_t seconds = unix_time_ns / kNsPerSecond;
  int64_t nanos = unix_time_ns % kNsPerSecond;
  if (nanos < 0) {
    nanos += kNsPerSecond;
    --seconds;
  }
  const uint64_t label = kTai64Epoch + static_cast<uint64_t>(seconds);
  const uint32_t whitened = static_cast<uint32_t>(nanos) & kWhitenMask;

  Timestamp out;
  for (size_t i = 0; i < 8; ++i) out[i] = static_cast<uint8_t>(label >> (56 - 8 * i));
  for (size_t i = 0; i < 4; ++i) out[8 + i] = static_cast<uint8_t>(whitened >> (24 - 8 * i));
  return out;
}

bool tai64n_after(const Timestamp& a, const Timestamp& b) {
  // Both fields are big-endian, so byte order is time order.
  return std::lexicographical_compare(b.begin(), b.end(), a.begin(), a.end());
}

}  // namespace faraday::crypto
