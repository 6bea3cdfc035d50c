// messages.h: the four WireGuard message formats on the wire and their first
// check. classify() is the only entry point for bytes from the network: it
// decides the type from the 4-byte little-endian type field (reserved bytes
// must be zero) and checks the size, before anything else reads the message.
// Pure functions; any thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <variant>

#include "dataplane/counters.h"

namespace faraday::dataplane {

enum class MessageType : uint32_t {
  kInitiation = 1,
  kResponse = 2,
  kCookieReply = 3,
  kTransport = 4,
};

inline constexpr size_t kMacSize = 16;
inline constexpr size_t kTagSize = 16;
inline constexpr size_t kKeySize = 32;
inline constexpr size_t kTimestampSize = 12;
inline constexpr size_t kCookieNonceSize = 24;

// Byte-array layouts: alignment 1, no padding, read and written with memcpy.
struct MessageInitiation {
  uint8_t type[4];
  uint8_t sender[4];
  uint8_t ephemeral[kKeySize];
  uint8_t encrypted_static[kKeySize + kTagSize];
  uint8_t encrypted_timestamp[kTimestampSize + kTagSize];
  uint8_t mac1[kMacSize];
  uint8_t mac2[kMacSize];
};
struct MessageResponse {
  uint8_t type[4];
  uint8_t sender[4];
  uint8_t receiver[4];
  uint8_t ephemeral[kKeySize];
  uint8_t encrypted_nothing[kTagSize];
  uint8_t mac1[kMacSize];
  uint8_t mac2[kMacSize];
};
struct MessageCookieReply {
  uint8_t type[4];
  uint8_t receiver[4];
  uint8_t nonce[kCookieNonceSize];
  uint8_t encrypted_cookie[kMacSize + kTagSize];
};
struct MessageTransportHeader {
  uint8_t type[4];
  uint8_t receiver[4];
  uint8_t counter[8];
};

static_assert(sizeof(MessageInitiation) == 148);
static_assert(sizeof(MessageResponse) == 92);
static_assert(sizeof(MessageCookieReply) == 64);
static_assert(sizeof(MessageTransportHeader) == 16);

inline constexpr size_t kTransportHeaderSize = sizeof(MessageTransportHeader);
inline constexpr size_t kMinTransportSize = kTransportHeaderSize + kTagSize;  // a keepalive
inline constexpr size_t kPaddingMultiple = 16;

// Offsets of the MACs: mac1 covers everything before it, mac2 everything before it.
template <typename M>
constexpr size_t mac1_offset() {
  return offsetof(M, mac1);
}
template <typename M>
constexpr size_t mac2_offset() {
  return offsetof(M, mac2);
}

inline uint32_t load_le32(const uint8_t* p) {
  return uint32_t{p[0]} | uint32_t{p[1]} << 8 | uint32_t{p[2]} << 16 | uint32_t{p[3]} << 24;
}
inline void store_le32(uint8_t* p, uint32_t v) {
  p[0] = static_cast<uint8_t>(v);
  p[1] = static_cast<uint8_t>(v >> 8);
  p[2] = static_cast<uint8_t>(v >> 16);
  p[3] = static_cast<uint8_t>(v >> 24);
}
inline uint64_t load_le64(const uint8_t* p) {
  return uint64_t{load_le32(p)} | uint64_t{load_le32(p + 4)} << 32;
}
inline void store_le64(uint8_t* p, uint64_t v) {
  store_le32(p, static_cast<uint32_t>(v));
  store_le32(p + 4, static_cast<uint32_t>(v >> 32));
}

// Returns the message type, or the drop reason for a datagram that is not a
// well-formed WireGuard message of that type.
std::variant<MessageType, Drop> classify(std::span<const uint8_t> datagram);

// Length of a transport plaintext of `len` bytes after padding to 16, never
// growing past `mtu` (when mtu != 0), as the Linux driver pads.
size_t padded_length(size_t len, size_t mtu);

}  // namespace faraday::dataplane
