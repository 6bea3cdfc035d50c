#include "dataplane/inet.h"

namespace faraday::dataplane::inet {

namespace {

// acc + w with the carry out of bit 63 added back in.
uint64_t add(uint64_t acc, uint64_t w) {
  acc += w;
  return acc + (acc < w);
}

}  // namespace

uint64_t sum(const uint8_t* p, size_t n, uint64_t acc) {
  for (; n >= 8; p += 8, n -= 8) {
    uint64_t w;
    std::memcpy(&w, p, 8);
    acc = add(acc, w);
  }
  for (; n >= 2; p += 2, n -= 2) {
    uint16_t w;
    std::memcpy(&w, p, 2);
    acc = add(acc, w);
  }
  if (n == 1) {
    const uint8_t last[2] = {p[0], 0};
    uint16_t w;
    std::memcpy(&w, last, 2);
    acc = add(acc, w);
  }
  return acc;
}

uint16_t fold(uint64_t acc) {
  acc = (acc & 0xffffffff) + (acc >> 32);
  acc = (acc & 0xffffffff) + (acc >> 32);
  acc = (acc & 0xffff) + (acc >> 16);
  acc = (acc & 0xffff) + (acc >> 16);
  return static_cast<uint16_t>(acc);
}

}  // namespace faraday::dataplane::inet
