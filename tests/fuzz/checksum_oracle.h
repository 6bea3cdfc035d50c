// checksum_oracle.h: the Internet checksum written the plain way (big-endian
// 16-bit words, RFC 1071), for fuzz targets that check or repair checksums
// without trusting the product's own (dataplane/inet.h).
#pragma once

#include <cstddef>
#include <cstdint>

namespace faraday::fuzz {

inline uint32_t sum16(const uint8_t* p, size_t n, uint32_t acc) {
  for (size_t i = 0; i + 1 < n; i += 2) acc += static_cast<uint32_t>(p[i] << 8 | p[i + 1]);
  if (n % 2) acc += static_cast<uint32_t>(p[n - 1] << 8);
  return acc;
}

inline uint16_t fold16(uint32_t acc) {
  while (acc > 0xffff) acc = (acc & 0xffff) + (acc >> 16);
  return static_cast<uint16_t>(acc);
}

inline void put16(uint8_t* p, uint16_t v) {
  p[0] = static_cast<uint8_t>(v >> 8);
  p[1] = static_cast<uint8_t>(v);
}

}  // namespace faraday::fuzz
