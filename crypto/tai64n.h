// tai64n.h: the TAI64N timestamp carried, encrypted, in handshake initiations
// (whitepaper §5.1, §5.4.2). A responder accepts an initiation only if its timestamp
// is strictly later than the last one from that peer, which defeats replays.
// Pure functions of their arguments (the caller supplies the clock); thread-safe.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>

namespace faraday::crypto {

inline constexpr size_t kTimestampSize = 12;
using Timestamp = std::array<uint8_t, kTimestampSize>;

// BE64(0x400000000000000a + seconds) || BE32(nanoseconds), from a Unix time in
// nanoseconds. Nanoseconds are rounded DOWN to a multiple of 2^24 (about 16.8 ms), as
// the Linux driver does, so the timestamp does not leak the precise clock.
Timestamp tai64n(int64_t unix_time_ns);

// True if a is strictly later than b.
bool tai64n_after(const Timestamp& a, const Timestamp& b);

}  // namespace faraday::crypto
