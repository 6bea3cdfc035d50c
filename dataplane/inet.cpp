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
  // 32-bit words, each summed into 64 bits: no carry to carry round (that would
  // take 2^32 words) and nothing chaining one add to the next. A 1450-byte
  // datagram's UDP checksum took as long as a fifth of its ChaCha20-Poly1305
  // (ipsec-mb) the old way, eight bytes per add-with-carry. The halves are
  // congruent to the 16-bit sum modulo 0xffff, which is all a one's-complement
  // sum keeps.
  uint64_t low = 0, high = 0;
  for (; n >= 16; p += 16, n -= 16) {
    uint64_t w0, w1;
    std::memcpy(&w0, p, 8);
    std::memcpy(&w1, p + 8, 8);
    low += (w0 & 0xffffffff) + (w1 & 0xffffffff);
    high += (w0 >> 32) + (w1 >> 32);
  }
  acc = add(acc, low);
  acc = add(acc, high);
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
