// Key text forms: hex (UAPI) and base64 (configuration), round trips and rejects.
#include "crypto/keys.h"

#include <gtest/gtest.h>

#include <string>

namespace faraday::crypto {
namespace {

Key sequence_key() {
  Key key;
  for (size_t i = 0; i < key.size(); ++i) key[i] = static_cast<uint8_t>(i);
  return key;
}

// `text` with the character at `at` replaced by `c`.
std::string with_char(std::string text, size_t at, char c) {
  text[at] = c;
  return text;
}

constexpr const char* kSequenceHex =
    "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
constexpr const char* kSequenceBase64 = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

TEST(Keys, HexRoundTripIsLowercase) {
  EXPECT_EQ(to_hex(sequence_key()), kSequenceHex);
  EXPECT_EQ(key_from_hex(kSequenceHex), sequence_key());
  Key high;
  high.fill(0xab);
  std::string expected;
  for (int i = 0; i < 32; ++i) expected += "ab";
  EXPECT_EQ(to_hex(high), expected);
  EXPECT_EQ(key_from_hex(to_hex(high)), high);
}

TEST(Keys, HexAcceptsUppercase) {
  EXPECT_EQ(key_from_hex("000102030405060708090A0B0C0D0E0F101112131415161718191A1B1C1D1E1F"),
            sequence_key());
  EXPECT_EQ(key_from_hex("000102030405060708090a0B0c0D0e0F101112131415161718191A1b1C1d1E1f"),
            sequence_key());
}

TEST(Keys, HexRejectsWrongLengthAndBadCharacters) {
  const std::string good = kSequenceHex;
  EXPECT_FALSE(key_from_hex(""));
  EXPECT_FALSE(key_from_hex(good.substr(0, 63)));
  EXPECT_FALSE(key_from_hex(good.substr(0, 62)));
  EXPECT_FALSE(key_from_hex(good + "0"));
  EXPECT_FALSE(key_from_hex(good + "00"));
  for (char bad : {'g', 'G', ' ', ':', '\0', 'x', '-'})
    EXPECT_FALSE(key_from_hex(with_char(good, 17, bad))) << static_cast<int>(bad);
  EXPECT_FALSE(key_from_hex(with_char(good, 63, 'z')));
}

TEST(Keys, Base64RoundTrip) {
  EXPECT_EQ(to_base64(sequence_key()), kSequenceBase64);
  EXPECT_EQ(key_from_base64(kSequenceBase64), sequence_key());
  // RFC 7748's Alice public key as `wg pubkey` prints it.
  const auto alice =
      key_from_hex("8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a");
  ASSERT_TRUE(alice);
  EXPECT_EQ(to_base64(*alice), "hSDwCYkwp1R0i33ctD73Wg2/Og0mOBr066SpjqqbTmo=");
  EXPECT_EQ(key_from_base64("hSDwCYkwp1R0i33ctD73Wg2/Og0mOBr066SpjqqbTmo="), alice);
  Key all_ones;
  all_ones.fill(0xff);
  EXPECT_EQ(key_from_base64(to_base64(all_ones)), all_ones);
}

TEST(Keys, Base64RejectsWrongLengthPaddingAndCharacters) {
  const std::string good = kSequenceBase64;
  EXPECT_FALSE(key_from_base64(""));
  EXPECT_FALSE(key_from_base64(good.substr(0, 43)));  // padding missing
  EXPECT_FALSE(key_from_base64(good + "="));
  EXPECT_FALSE(key_from_base64(good.substr(0, 42) + "=="));  // 31 bytes
  EXPECT_FALSE(key_from_base64(good.substr(0, 43) + "A"));   // no padding, 45th char absent
  // URL-safe alphabet, whitespace and other strays.
  const std::string alice = "hSDwCYkwp1R0i33ctD73Wg2/Og0mOBr066SpjqqbTmo=";
  EXPECT_FALSE(key_from_base64(with_char(alice, 22, '_')));
  for (char bad : {'-', '_', ' ', '.', '\0', '='})
    EXPECT_FALSE(key_from_base64(with_char(good, 10, bad))) << static_cast<int>(bad);
  // Non-canonical: 43 characters carry 258 bits, so the last one's 2 low bits are
  // unused and must be zero ('8' is 111100; 'x' is 110001).
  EXPECT_FALSE(key_from_base64(with_char(good, 42, 'x')));
}

TEST(Keys, IsZeroAndWipe) {
  Key key{};
  EXPECT_TRUE(is_zero(key));
  key[31] = 1;
  EXPECT_FALSE(is_zero(key));
  key = sequence_key();
  EXPECT_FALSE(is_zero(key));
  wipe(key);
  EXPECT_TRUE(is_zero(key));

  uint8_t buf[5] = {1, 2, 3, 4, 5};
  wipe(buf + 1, 3);
  EXPECT_EQ(buf[0], 1);
  EXPECT_EQ(buf[1], 0);
  EXPECT_EQ(buf[3], 0);
  EXPECT_EQ(buf[4], 5);
}

}  // namespace
}  // namespace faraday::crypto
