// inet.h: what every parser and builder of IP headers in the data path shares:
// big-endian fields and the Internet checksum (RFC 1071).
//
// The checksum is summed over the bytes as they lie in memory, as 32-bit words
// added into 64 bits (then folded with end-around carry); byte order does not matter to a
// one's-complement sum as long as the folded result is stored back the same way (RFC 1071 section
// 2), which store_checksum() and store_folded() do. A field given as a host value joins a sum
// through field().
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

namespace faraday::dataplane::inet {

inline constexpr uint8_t kProtoTcp = 6;
inline constexpr uint8_t kProtoUdp = 17;
inline constexpr uint8_t kProtoIcmpv6 = 58;
inline constexpr uint32_t kIpv4Header = 20;  // without options
inline constexpr uint32_t kIpv6Header = 40;
inline constexpr uint32_t kUdpHeader = 8;

inline uint16_t load_be16(const uint8_t* p) {
  return static_cast<uint16_t>(p[0] << 8 | p[1]);
}
inline uint32_t load_be32(const uint8_t* p) {
  return uint32_t{p[0]} << 24 | uint32_t{p[1]} << 16 | uint32_t{p[2]} << 8 | p[3];
}
inline void store_be16(uint8_t* p, uint32_t v) {
  p[0] = static_cast<uint8_t>(v >> 8);
  p[1] = static_cast<uint8_t>(v);
}
inline void store_be32(uint8_t* p, uint32_t v) {
  store_be16(p, v >> 16);
  store_be16(p + 2, v);
}

// Adds n bytes at p to the running sum acc.
uint64_t sum(const uint8_t* p, size_t n, uint64_t acc = 0);

// A 16-bit field, given in host order, as sum() would have read it.
inline uint64_t field(uint32_t v) {
  uint8_t b[2];
  store_be16(b, v);
  uint16_t w;
  std::memcpy(&w, b, 2);
  return w;
}

// The sum folded to 16 bits (in memory order).
inline uint16_t fold(uint64_t acc) {
  acc = (acc & 0xffffffff) + (acc >> 32);
  acc = (acc & 0xffffffff) + (acc >> 32);
  acc = (acc & 0xffff) + (acc >> 16);
  acc = (acc & 0xffff) + (acc >> 16);
  return static_cast<uint16_t>(acc);
}

// Whether bytes that include their checksum field sum to "all ones".
inline bool verifies(uint64_t acc) {
  return fold(acc) == 0xffff;
}

// Stores the checksum of acc at p: the complement of the folded sum.
inline void store_checksum(uint8_t* p, uint64_t acc) {
  auto v = static_cast<uint16_t>(~fold(acc));
  std::memcpy(p, &v, 2);
}

// The same for a UDP (or any L4) checksum, with 0 written as 0xffff: the same
// value, and UDP's "no checksum" kept out (RFC 768).
inline void store_udp_checksum(uint8_t* p, uint64_t acc) {
  auto v = static_cast<uint16_t>(~fold(acc));
  if (v == 0) v = 0xffff;
  std::memcpy(p, &v, 2);
}

// Stores the folded sum itself: the seed a checksum offload completes
// (CHECKSUM_PARTIAL: the pseudo-header sum in the L4 checksum field).
inline void store_folded(uint8_t* p, uint64_t acc) {
  uint16_t v = fold(acc);
  std::memcpy(p, &v, 2);
}

// The pseudo-header of an L4 checksum (RFC 768 / RFC 8200 section 8.1) of the
// IPv4 or IPv6 packet at ip, for an L4 length of l4_length (< 65536).
inline uint64_t pseudo_header(const uint8_t* ip, bool ipv6, uint8_t proto, uint32_t l4_length) {
  uint64_t acc = ipv6 ? sum(ip + 8, 32) : sum(ip + 12, 8);
  acc = (acc & 0xffffffff) + (acc >> 32);  // room for the rest without a carry out
  return acc + field(proto) + field(l4_length);
}

}  // namespace faraday::dataplane::inet
