// TAI64N: layout, whitening to 2^24 ns, and ordering.
#include "crypto/tai64n.h"

#include <gtest/gtest.h>

#include <string>

namespace faraday::crypto {
namespace {

constexpr int64_t kSecond = 1'000'000'000;

std::string hex(const Timestamp& t) {
  static const char* digits = "0123456789abcdef";
  std::string out;
  for (uint8_t b : t) {
    out += digits[b >> 4];
    out += digits[b & 15];
  }
  return out;
}

TEST(Tai64n, Layout) {
  EXPECT_EQ(hex(tai64n(0)), "400000000000000a00000000");
  // 1700000000 s = 0x6553f100; 0.5 s = 0x1dcd6500 ns, whitened to 0x1d000000.
  EXPECT_EQ(hex(tai64n(1700000000 * kSecond + 500'000'000)), "400000006553f10a1d000000");
  // The largest nanosecond value rounds down to 0x3b000000 (< 1e9 = 0x3b9aca00).
  EXPECT_EQ(hex(tai64n(kSecond - 1)), "400000000000000a3b000000");
}

TEST(Tai64n, NanosecondsRoundDownToMultiplesOf2To24) {
  constexpr int64_t kStep = int64_t{1} << 24;
  const int64_t base = 1700000000 * kSecond;  // 0 ns into the second
  EXPECT_EQ(tai64n(base), tai64n(base + kStep - 1));
  EXPECT_TRUE(tai64n_after(tai64n(base + kStep), tai64n(base + kStep - 1)));
  for (int64_t ns : {int64_t{1}, int64_t{123456789}, kSecond - 1}) {
    const Timestamp t = tai64n(base + ns);
    const uint32_t nanos =
        (uint32_t{t[8]} << 24) | (uint32_t{t[9]} << 16) | (uint32_t{t[10]} << 8) | uint32_t{t[11]};
    EXPECT_EQ(nanos % kStep, 0u);
    EXPECT_LE(nanos, static_cast<uint32_t>(ns));
    EXPECT_GT(nanos + kStep, static_cast<uint32_t>(ns));
  }
}

TEST(Tai64n, NegativeTimesFloorTowardsThePast) {
  // One nanosecond before the epoch is second -1, nanoseconds 999999999 -> 0x3b000000.
  EXPECT_EQ(hex(tai64n(-1)), "40000000000000093b000000");
  EXPECT_TRUE(tai64n_after(tai64n(0), tai64n(-1)));
}

TEST(Tai64n, OrderingIsStrict) {
  const int64_t now = 1700000000 * kSecond + 900'000'000;
  const Timestamp t = tai64n(now);
  EXPECT_FALSE(tai64n_after(t, t));
  EXPECT_TRUE(tai64n_after(tai64n(now + kSecond), t));
  EXPECT_FALSE(tai64n_after(t, tai64n(now + kSecond)));
  // A later second beats larger nanoseconds in an earlier one.
  const Timestamp late_in_second = tai64n(1700000000 * kSecond + 999'000'000);
  const Timestamp next_second = tai64n(1700000001 * kSecond);
  EXPECT_TRUE(tai64n_after(next_second, late_in_second));
  EXPECT_FALSE(tai64n_after(late_in_second, next_second));
  // Timestamps decades apart.
  EXPECT_TRUE(tai64n_after(tai64n(4102444800 * kSecond), tai64n(946684800 * kSecond)));
}

}  // namespace
}  // namespace faraday::crypto
