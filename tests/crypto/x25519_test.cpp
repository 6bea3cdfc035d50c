// X25519: RFC 7748 §5.2 (single and iterated) and §6.1 (Diffie-Hellman), low-order
// points, and generated keys.
#include "crypto/x25519.h"

#include <gtest/gtest.h>

#include <string_view>

namespace faraday::crypto {
namespace {

Key k(std::string_view hex) {
  auto key = key_from_hex(hex);
  EXPECT_TRUE(key.has_value()) << hex;
  return key.value_or(Key{});
}

Key scalarmult(const Key& scalar, const Key& u) {
  Key out;
  EXPECT_TRUE(x25519(out, scalar, u));
  return out;
}

TEST(X25519, Rfc7748Section52Vectors) {
  EXPECT_EQ(
      to_hex(scalarmult(k("a546e36bf0527c9d3b16154b82465edd62144c0ac1fc5a18506a2244ba449ac4"),
                        k("e6db6867583030db3594c1a424b15f7c726624ec26b3353b10a903a6d0ab1c4c"))),
      "c3da55379de9c6908e94ea4df28d084f32eccf03491c71f754b4075577a28552");
  // The u-coordinate has its top bit set, which X25519 must ignore.
  EXPECT_EQ(
      to_hex(scalarmult(k("4b66e9d4d1b4673c5ad22691957d6af5c11b6421e0ea01d42ca4169e7918ba0d"),
                        k("e5210f12786811d3f4b7959d0538ae2c31dbe7106fc03c3efc4cd549c715a493"))),
      "95cbde9476e8907d7aade45cb4b873f88b595a68799fa152e6f8f7647aac7957");
}

// k = u = 9; repeat (k, u) = (X25519(k, u), k). The 1,000,000-round value is left out
// for time.
TEST(X25519, Rfc7748Section52Iterated) {
  Key kk{}, u{};
  kk[0] = 9;
  u[0] = 9;
  for (int i = 1; i <= 1000; ++i) {
    const Key next = scalarmult(kk, u);
    u = kk;
    kk = next;
    if (i == 1) {
      EXPECT_EQ(to_hex(kk), "422c8e7a6227d7bca1350b3e2bb7279f7897b87bb6854b783c60e80311ae3079");
    }
  }
  EXPECT_EQ(to_hex(kk), "684cf59ba83309552800ef566f2f4d3c1c3887c49360e3875f2eb94d99532c51");
}

TEST(X25519, Rfc7748Section61DiffieHellman) {
  const Key alice = k("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a");
  const Key bob = k("5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb");
  const Key alice_pub = x25519_public(alice);
  const Key bob_pub = x25519_public(bob);
  EXPECT_EQ(to_hex(alice_pub), "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a");
  EXPECT_EQ(to_hex(bob_pub), "de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f");
  const char* shared = "4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742";
  EXPECT_EQ(to_hex(scalarmult(alice, bob_pub)), shared);
  EXPECT_EQ(to_hex(scalarmult(bob, alice_pub)), shared);
}

// Points of order 2, 4 and 8: the shared secret is all zero whatever the private key,
// so x25519() must refuse (WireGuard drops such a handshake).
TEST(X25519, LowOrderPointsGiveFalseAndZeroOutput) {
  const Key priv = k("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a");
  for (const char* point : {
           "0000000000000000000000000000000000000000000000000000000000000000",
           "0100000000000000000000000000000000000000000000000000000000000000",
           "e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800",
       }) {
    Key shared;
    shared.fill(0xaa);
    EXPECT_FALSE(x25519(shared, priv, k(point))) << point;
    EXPECT_TRUE(is_zero(shared)) << point;
  }
}

TEST(X25519, GeneratedKeysAreClampedAndAgree) {
  const Key a = x25519_generate_private();
  const Key b = x25519_generate_private();
  EXPECT_NE(a, b);
  for (const Key& key : {a, b}) {
    EXPECT_EQ(key[0] & 7, 0);
    EXPECT_EQ(key[31] & 0x80, 0);
    EXPECT_EQ(key[31] & 0x40, 0x40);
  }
  Key ab, ba;
  ASSERT_TRUE(x25519(ab, a, x25519_public(b)));
  ASSERT_TRUE(x25519(ba, b, x25519_public(a)));
  EXPECT_EQ(ab, ba);

  Key base{};
  base[0] = 9;
  EXPECT_EQ(scalarmult(a, base), x25519_public(a));
}

TEST(X25519, SharedMayAliasThePrivateKey) {
  const Key alice = k("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a");
  Key inout = k("5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb");
  ASSERT_TRUE(x25519(inout, inout, x25519_public(alice)));
  EXPECT_EQ(to_hex(inout), "4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742");
}

}  // namespace
}  // namespace faraday::crypto
