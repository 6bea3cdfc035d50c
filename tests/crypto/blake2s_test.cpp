// BLAKE2s, MAC, HMAC and KDF: RFC 7693 and the BLAKE2 reference KAT, OpenSSL as an
// independent HMAC-BLAKE2s / BLAKE2s-MAC, and WireGuard's two protocol constants.
#include "crypto/blake2s.h"

#include <gtest/gtest.h>

#include <array>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <sodium.h>

#if FARADAY_TEST_OPENSSL
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#endif

namespace faraday::crypto {
namespace {

using Bytes = std::vector<uint8_t>;

std::span<const uint8_t> bytes(std::string_view s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

std::string hex(std::span<const uint8_t> data) {
  std::string out(data.size() * 2 + 1, '\0');
  sodium_bin2hex(out.data(), out.size(), data.data(), data.size());
  out.pop_back();
  return out;
}

Bytes sequence(size_t n, uint8_t start = 0) {
  Bytes out(n);
  for (size_t i = 0; i < n; ++i) out[i] = static_cast<uint8_t>(start + i);
  return out;
}

using HmacFn = Key (*)(std::span<const uint8_t> key, std::span<const uint8_t> data);

// KDF_3 computed by hand from an HMAC, as the whitepaper writes it:
// t0 = HMAC(ck, input), t1 = HMAC(t0, 0x1), t2 = HMAC(t0, t1 || 0x2),
// t3 = HMAC(t0, t2 || 0x3).
std::array<Key, 3> kdf3_by_hand(HmacFn hmac_fn, const Key& ck, std::span<const uint8_t> input) {
  const Key t0 = hmac_fn(ck, input);
  const uint8_t one = 1;
  std::array<Key, 3> t;
  t[0] = hmac_fn(t0, {&one, 1});
  for (uint8_t i = 2; i <= 3; ++i) {
    Bytes in(t[i - 2].begin(), t[i - 2].end());
    in.push_back(i);
    t[i - 1] = hmac_fn(t0, in);
  }
  return t;
}

// kdf() with three outputs gives kdf3_by_hand(hmac_fn, ...); returns those.
std::array<Key, 3> expect_kdf3_matches(HmacFn hmac_fn, const Key& ck,
                                       std::span<const uint8_t> input) {
  const std::array<Key, 3> want = kdf3_by_hand(hmac_fn, ck, input);
  Key t1, t2, t3;
  kdf(ck, input, &t1, &t2, &t3);
  EXPECT_EQ(hex(t1), hex(want[0]));
  EXPECT_EQ(hex(t2), hex(want[1]));
  EXPECT_EQ(hex(t3), hex(want[2]));
  return want;
}

TEST(Blake2s, Rfc7693AppendixB) {
  EXPECT_EQ(hex(hash(bytes("abc"))),
            "508c5e8c327c14e2e1a72ba34eeb452f37458b209ed63a294d999b4c86675982");
  EXPECT_EQ(hex(hash(bytes(""))),
            "69217a3079908094e11121d042354a7c1f55b6482ca1a51e1b250dfd1ed0eef9");
  EXPECT_EQ(hash(bytes("a"), bytes("bc")), hash(bytes("abc")));
}

// blake2s-kat.txt from the BLAKE2 reference: key 00..1f, inputs "" and 00.
TEST(Blake2s, KeyedReferenceVectors) {
  const Bytes key = sequence(32);
  uint8_t out[kHashSize];
  Blake2s empty(key, kHashSize);
  empty.final(out);
  EXPECT_EQ(hex(out), "48a8997da407876b3d79c0d92325ad3b89cbb754d86ab71aee047ad345fd2c49");

  Blake2s one(key, kHashSize);
  const uint8_t zero = 0;
  one.update({&zero, 1});
  one.final(out);
  EXPECT_EQ(hex(out), "40d15fee7c328830166ac3f918650f807e7e01e177258cdc0a39b11f598066f1");
}

TEST(Blake2s, IncrementalMatchesOneShotAcrossBlockBoundaries) {
  const Bytes data = sequence(300, 7);
  const Key whole = hash(data);
  for (size_t split : {0, 1, 63, 64, 65, 128, 299, 300}) {
    Blake2s h;
    h.update(std::span(data).first(split));
    h.update(std::span(data).subspan(split));
    Key out;
    h.final(out);
    EXPECT_EQ(out, whole) << "split " << split;
  }
}

TEST(Blake2s, CopyForksTheState) {
  Blake2s a;
  a.update(bytes("prefix"));
  Blake2s b = a;
  a.update(bytes("-one"));
  b.update(bytes("-two"));
  Key ha, hb;
  a.final(ha);
  b.final(hb);
  EXPECT_EQ(ha, hash(bytes("prefix-one")));
  EXPECT_EQ(hb, hash(bytes("prefix-two")));
}

TEST(Blake2s, MacIsKeyedBlake2sWith16ByteOutput) {
  const Bytes key = sequence(32);
  uint8_t out[kMacSize];
  mac(out, key, bytes("abc"));
  uint8_t expected[kMacSize];
  Blake2s h(key, kMacSize);
  h.update(bytes("abc"));
  h.final(expected);
  EXPECT_EQ(hex(out), hex(expected));
  // A 16-byte BLAKE2s is not a truncated 32-byte one (the length is a parameter).
  uint8_t full[kHashSize];
  Blake2s h32(key, kHashSize);
  h32.update(bytes("abc"));
  h32.final(full);
  EXPECT_NE(hex(out), hex(std::span(full).first(kMacSize)));
}

// The protocol constants of Noise_IKpsk2 as WireGuard instantiates it; the expected
// values are those published in boringtun (noise/handshake.rs: INITIAL_CHAIN_KEY,
// INITIAL_CHAIN_HASH).
TEST(Blake2s, WireGuardInitialChainingKeyAndHash) {
  const Key ck = hash(bytes("Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s"));
  EXPECT_EQ(hex(ck), "60e26daef327efc02ec335e2a025d2d016eb4206f87277f52d38d1988b78cd36");
  const Key h = hash(ck, bytes("WireGuard v1 zx2c4 Jason@zx2c4.com"));
  EXPECT_EQ(hex(h), "2211b361081ac566691243db458ad5322d9c6c662293e8b70ee19c65ba079ef3");
}

// HMAC written out from RFC 2104 over hash(), to pin the block size and padding.
Key hmac_by_definition(std::span<const uint8_t> key, std::span<const uint8_t> data) {
  Bytes k(64, 0);
  if (key.size() > 64) {
    const Key short_key = hash(key);
    std::copy(short_key.begin(), short_key.end(), k.begin());
  } else {
    std::copy(key.begin(), key.end(), k.begin());
  }
  Bytes ipad = k, opad = k;
  for (uint8_t& b : ipad) b ^= 0x36;
  for (uint8_t& b : opad) b ^= 0x5c;
  const Key inner = hash(ipad, data);
  return hash(opad, inner);
}

TEST(Blake2s, HmacMatchesRfc2104Construction) {
  for (size_t key_len : {0, 1, 32, 63, 64, 65, 200}) {
    const Bytes key = sequence(key_len, 3);
    const Bytes data = sequence(key_len + 5, 11);
    EXPECT_EQ(hmac(key, data), hmac_by_definition(key, data)) << "key length " << key_len;
  }
}

#if FARADAY_TEST_OPENSSL
Key openssl_hmac(std::span<const uint8_t> key, std::span<const uint8_t> data) {
  Key out{};
  size_t out_len = 0;
  const unsigned char* result =
      EVP_Q_mac(nullptr, "HMAC", nullptr, "BLAKE2S-256", nullptr, key.data(), key.size(),
                data.data(), data.size(), out.data(), out.size(), &out_len);
  EXPECT_NE(result, nullptr);
  EXPECT_EQ(out_len, out.size());
  return out;
}

TEST(Blake2s, HmacMatchesOpenSsl) {
  for (size_t key_len : {1, 16, 32, 64, 65, 200}) {
    const Bytes key = sequence(key_len, 5);
    for (size_t data_len : {0, 1, 33, 64, 1000}) {
      const Bytes data = sequence(data_len, 9);
      EXPECT_EQ(hex(hmac(key, data)), hex(openssl_hmac(key, data)))
          << "key " << key_len << " data " << data_len;
    }
  }
}

TEST(Blake2s, MacMatchesOpenSslBlake2sMac) {
  const Bytes key = sequence(32, 1);
  for (size_t data_len : {0, 1, 64, 116, 148}) {  // 116, 148: mac1/mac2 inputs
    const Bytes data = sequence(data_len, 2);
    size_t size = kMacSize;
    const OSSL_PARAM params[] = {OSSL_PARAM_construct_size_t(OSSL_MAC_PARAM_SIZE, &size),
                                 OSSL_PARAM_construct_end()};
    uint8_t expected[kMacSize] = {};
    size_t out_len = 0;
    ASSERT_NE(EVP_Q_mac(nullptr, "BLAKE2SMAC", nullptr, nullptr, params, key.data(), key.size(),
                        data.data(), data.size(), expected, sizeof expected, &out_len),
              nullptr);
    ASSERT_EQ(out_len, kMacSize);
    uint8_t out[kMacSize];
    mac(out, key, data);
    EXPECT_EQ(hex(out), hex(expected)) << "data " << data_len;
  }
}

TEST(Blake2s, KdfMatchesOpenSslHmac) {
  const Key ck = hash(bytes("Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s"));
  const Bytes input = sequence(32, 0x40);
  expect_kdf3_matches(openssl_hmac, ck, input);
}
#else
TEST(Blake2s, HmacMatchesOpenSsl) {
  GTEST_SKIP() << "built without libcrypto (libssl-dev)";
}
#endif

// KDF_n computed by hand from hmac(), as the whitepaper writes it, and the
// outputs one asks for alone.
TEST(Blake2s, KdfMatchesHandComputation) {
  const Key ck = hash(bytes("chaining key"));
  const Bytes input = sequence(32, 0x80);
  const std::array<Key, 3> by_hand = expect_kdf3_matches(hmac, ck, input);

  Key only1;
  kdf(ck, input, &only1);
  EXPECT_EQ(only1, by_hand[0]);
  Key a, b;
  kdf(ck, {}, &a, &b);  // empty input, as Noise's Split() uses
  const uint8_t one = 1;
  EXPECT_EQ(a, hmac(hmac(ck, {}), {&one, 1}));
  Key only3;
  kdf(ck, input, nullptr, nullptr, &only3);  // t3 without t1/t2 still chains
  EXPECT_EQ(only3, by_hand[2]);
}

TEST(Blake2s, KdfOutputsMayAliasTheChainingKey) {
  const Bytes input = sequence(32, 1);
  Key ck = hash(bytes("ck"));
  Key expected1, expected2;
  kdf(ck, input, &expected1, &expected2);
  Key key;
  kdf(ck, input, &ck, &key);  // the handshake's ck, k = KDF2(ck, dh)
  EXPECT_EQ(ck, expected1);
  EXPECT_EQ(key, expected2);
}

}  // namespace
}  // namespace faraday::crypto
