// ChaCha20-Poly1305 with WireGuard's nonce, XChaCha20-Poly1305, and the batched
// backend: RFC 8439 §2.8.2 and A.5, draft-irtf-cfrg-xchacha A.3.1, forgeries, bursts.
#include "crypto/aead.h"
#include "crypto/aead_batch.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include <sodium.h>

namespace faraday::crypto {
namespace {

using Bytes = std::vector<uint8_t>;

Bytes unhex(std::string_view text) {
  Bytes out(text.size() / 2 + 1);
  size_t len = 0;
  EXPECT_EQ(
      sodium_hex2bin(out.data(), out.size(), text.data(), text.size(), nullptr, &len, nullptr), 0);
  out.resize(len);
  return out;
}

Key key_of(std::string_view text) {
  const Bytes b = unhex(text);
  Key k{};
  std::copy(b.begin(), b.end(), k.begin());
  return k;
}

Bytes bytes(std::string_view s) {
  return Bytes(s.begin(), s.end());
}

Bytes concat(Bytes a, const Bytes& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

const std::string_view kSunscreen =
    "Ladies and Gentlemen of the class of '99: If I could offer you only one tip for the "
    "future, sunscreen would be it.";

// RFC 8439 Appendix A.5. Its nonce 00000000 || 0102030405060708 is WireGuard's format
// with counter 0x0807060504030201.
struct A5 {
  Key key = key_of("1c9240a5eb55d38af333888604f6b5f0473917c1402b80099dca5cbc207075c0");
  uint64_t counter = 0x0807060504030201;
  Bytes ad = unhex("f33388860000000000004e91");
  Bytes plaintext = bytes(
      "Internet-Drafts are draft documents valid for a maximum of six months and may be "
      "updated, replaced, or obsoleted by other documents at any time. It is inappropriate "
      "to use Internet-Drafts as reference material or to cite them other than as "
      "/\xe2\x80\x9cwork in progress./\xe2\x80\x9d");
  Bytes ciphertext = unhex(
      "64a0861575861af460f062c79be643bd5e805cfd345cf389f108670ac76c8cb24c6cfc18755d43ee"
      "a09ee94e382d26b0bdb7b73c321b0100d4f03b7f355894cf332f830e710b97ce98c8a84abd0b9481"
      "14ad176e008d33bd60f982b1ff37c8559797a06ef4f0ef61c186324e2b3506383606907b6a7c02b0"
      "f9f6157b53c867e4b9166c767b804d46a59b5216cde7a4e99040c5a40433225ee282a1b0a06c523e"
      "af4534d7f83fa1155b0047718cbc546a0d072b04b3564eea1b422273f548271a0bb2316053fa7699"
      "1955ebd63159434ecebb4e466dae5a1073a6727627097a1049e617d91d361094fa68f0ff77987130"
      "305beaba2eda04df997b714d6c6f2c29a6ad5cb4022b02709b");
  Bytes tag = unhex("eead9d67890cbb22392336fea1851f38");
};

// §2.8.2's nonce (07000000 || 4041424344454647) has a non-zero prefix, so it cannot be
// expressed as a WireGuard counter; it pins the libsodium primitive the wrapper calls.
TEST(Aead, Rfc8439Section282Primitive) {
  const Key key = key_of("808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f");
  const Bytes nonce = unhex("070000004041424344454647");
  const Bytes ad = unhex("50515253c0c1c2c3c4c5c6c7");
  const Bytes plaintext = bytes(kSunscreen);
  Bytes out(plaintext.size() + kTagSize);
  unsigned long long out_len = 0;
  ASSERT_EQ(crypto_aead_chacha20poly1305_ietf_encrypt(out.data(), &out_len, plaintext.data(),
                                                      plaintext.size(), ad.data(), ad.size(),
                                                      nullptr, nonce.data(), key.data()),
            0);
  EXPECT_EQ(out, unhex("d31a8d34648e60db7b86afbc53ef7ec2a4aded51296e08fea9e2b5a736ee62d6"
                       "3dbea45e8ca9671282fafb69da92728b1a71de0a9e060b2905d6a5b67ecd3b36"
                       "92ddbd7f2d778b8c9803aee328091b58fab324e4fad675945585808b4831d7bc"
                       "3ff4def08e4b7a9de576d26586cec64b6116"
                       "1ae10b594f09e26a7e902ecbd0600691"));
}

TEST(Aead, Rfc8439A5SealThroughWireGuardNonce) {
  const A5 v;
  Bytes out(v.plaintext.size() + kTagSize);
  aead_seal(out.data(), v.plaintext.data(), v.plaintext.size(), v.counter, v.key, v.ad);
  EXPECT_EQ(out, concat(v.ciphertext, v.tag));

  Bytes in_place = v.plaintext;
  in_place.resize(in_place.size() + kTagSize);
  aead_seal(in_place.data(), in_place.data(), v.plaintext.size(), v.counter, v.key, v.ad);
  EXPECT_EQ(in_place, concat(v.ciphertext, v.tag));
}

TEST(Aead, Rfc8439A5OpenThroughWireGuardNonce) {
  const A5 v;
  const Bytes sealed = concat(v.ciphertext, v.tag);
  Bytes out(v.ciphertext.size());
  ASSERT_TRUE(aead_open(out.data(), sealed.data(), sealed.size(), v.counter, v.key, v.ad));
  EXPECT_EQ(out, v.plaintext);

  Bytes in_place = sealed;
  ASSERT_TRUE(aead_open(in_place.data(), in_place.data(), in_place.size(), v.counter, v.key, v.ad));
  in_place.resize(v.plaintext.size());
  EXPECT_EQ(in_place, v.plaintext);
}

TEST(Aead, OpenRejectsForgeriesAndLeavesDestinationUntouched) {
  const A5 v;
  const Bytes sealed = concat(v.ciphertext, v.tag);
  auto rejects = [&](Bytes msg, uint64_t counter, const Key& key, const Bytes& ad) {
    const Bytes before = msg;
    const bool ok = aead_open(msg.data(), msg.data(), msg.size(), counter, key, ad);
    return !ok && msg == before;
  };
  Bytes bad_tag = sealed;
  bad_tag.back() ^= 0x80;
  EXPECT_TRUE(rejects(bad_tag, v.counter, v.key, v.ad));
  Bytes bad_body = sealed;
  bad_body[0] ^= 0x01;
  EXPECT_TRUE(rejects(bad_body, v.counter, v.key, v.ad));
  EXPECT_TRUE(rejects(sealed, v.counter + 1, v.key, v.ad));
  EXPECT_TRUE(rejects(sealed, v.counter, v.key, {}));
  Key other = v.key;
  other[31] ^= 1;
  EXPECT_TRUE(rejects(sealed, v.counter, other, v.ad));
  EXPECT_TRUE(rejects(Bytes(kTagSize - 1, 0), 0, v.key, {}));
  EXPECT_TRUE(rejects(Bytes(), 0, v.key, {}));
}

TEST(Aead, EmptyPlaintextIsJustATag) {
  const Key key = key_of("4cf5968338e6ae7f2d292576d5752786919a277afb46c5ef9481795714594068");
  uint8_t tag[kTagSize];
  aead_seal(tag, nullptr, 0, 0x8e7745327133bfca, key, {});
  EXPECT_EQ(Bytes(tag, tag + kTagSize), unhex("eae01e9e2c91aae1db5d993f8af76992"));
  EXPECT_TRUE(aead_open(nullptr, tag, kTagSize, 0x8e7745327133bfca, key, {}));
}

// draft-irtf-cfrg-xchacha-03 Appendix A.3.1.
TEST(Aead, XChaChaDraftA31) {
  const Key key = key_of("808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f");
  const Bytes nonce = unhex("404142434445464748494a4b4c4d4e4f5051525354555657");
  const Bytes ad = unhex("50515253c0c1c2c3c4c5c6c7");
  const Bytes plaintext = bytes(kSunscreen);
  const Bytes expected = unhex(
      "bd6d179d3e83d43b9576579493c0e939572a1700252bfaccbed2902c21396cbb"
      "731c7f1b0b4aa6440bf3a82f4eda7e39ae64c6708c54c216cb96b72e1213b452"
      "2f8c9ba40db5d945b11b69b982c1bb9e3f3fac2bc369488f76b2383565d3fff9"
      "21f9664c97637da9768812f615c68b13b52e"
      "c0875924c1c7987947deafd8780acf49");

  Bytes out(plaintext.size() + kTagSize);
  xaead_seal(out.data(), plaintext.data(), plaintext.size(), nonce.data(), key, ad);
  EXPECT_EQ(out, expected);

  Bytes in_place = expected;
  ASSERT_TRUE(xaead_open(in_place.data(), in_place.data(), in_place.size(), nonce.data(), key, ad));
  in_place.resize(plaintext.size());
  EXPECT_EQ(in_place, plaintext);

  Bytes forged = expected;
  forged[5] ^= 0x04;
  const Bytes before = forged;
  EXPECT_FALSE(xaead_open(forged.data(), forged.data(), forged.size(), nonce.data(), key, ad));
  EXPECT_EQ(forged, before);
  EXPECT_FALSE(xaead_open(forged.data(), expected.data(), kTagSize - 1, nonce.data(), key, ad));
}

// ---- Batch backend ----

AeadJob job(const Key& key, uint64_t counter, Bytes& buf, size_t length) {
  return AeadJob{&key, counter, buf.data(), static_cast<uint32_t>(length), false};
}

TEST(AeadBatch, SodiumBackendNameAndSelfTest) {
  auto backend = make_sodium_backend();
  ASSERT_NE(backend, nullptr);
  EXPECT_STREQ(backend->name(), "sodium");
  EXPECT_TRUE(aead_self_test(*backend));
}

// A.5 through the burst interface: a transport message carries no associated data, so
// only the ciphertext is the RFC's (ChaCha20's keystream does not depend on it); the
// tag must equal aead_seal's with empty AD.
TEST(AeadBatch, Rfc8439A5ThroughBurst) {
  const A5 v;
  auto backend = make_sodium_backend();
  Bytes buf = v.plaintext;
  buf.resize(buf.size() + kTagSize);
  AeadJob j = job(v.key, v.counter, buf, v.plaintext.size());
  backend->seal_burst({&j, 1});
  EXPECT_TRUE(j.ok);
  EXPECT_EQ(Bytes(buf.begin(), buf.begin() + v.ciphertext.size()), v.ciphertext);
  Bytes reference(buf.size());
  aead_seal(reference.data(), v.plaintext.data(), v.plaintext.size(), v.counter, v.key, {});
  EXPECT_EQ(buf, reference);

  j.length += kTagSize;
  backend->open_burst({&j, 1});
  EXPECT_TRUE(j.ok);
  EXPECT_EQ(Bytes(buf.begin(), buf.begin() + v.plaintext.size()), v.plaintext);
}

TEST(AeadBatch, MixedSizeBurstRoundTrips) {
  const std::vector<size_t> sizes = {0, 1, 64, 1420, 65535};
  auto backend = make_sodium_backend();
  std::vector<Key> keys(sizes.size());
  std::vector<Bytes> plain, bufs;
  std::vector<AeadJob> jobs;
  for (size_t i = 0; i < sizes.size(); ++i) {
    randombytes_buf(keys[i].data(), keys[i].size());
    Bytes p(sizes[i]);
    if (!p.empty()) randombytes_buf(p.data(), p.size());
    plain.push_back(p);
    p.resize(p.size() + kTagSize);
    bufs.push_back(std::move(p));
  }
  for (size_t i = 0; i < sizes.size(); ++i)
    jobs.push_back(job(keys[i], i * 1000, bufs[i], sizes[i]));

  backend->seal_burst(jobs);
  for (size_t i = 0; i < sizes.size(); ++i) {
    EXPECT_TRUE(jobs[i].ok);
    Bytes reference(sizes[i] + kTagSize);
    aead_seal(reference.data(), plain[i].data(), sizes[i], i * 1000, keys[i], {});
    EXPECT_EQ(bufs[i], reference) << "size " << sizes[i];
    jobs[i].length += kTagSize;
    jobs[i].ok = false;
  }

  backend->open_burst(jobs);
  for (size_t i = 0; i < sizes.size(); ++i) {
    EXPECT_TRUE(jobs[i].ok) << "size " << sizes[i];
    EXPECT_TRUE(std::equal(plain[i].begin(), plain[i].end(), bufs[i].begin()));
  }
}

TEST(AeadBatch, CorruptedTagFailsAloneWithDataUnchanged) {
  auto backend = make_sodium_backend();
  Key key{};
  key[0] = 42;
  std::vector<Bytes> bufs(3, Bytes(100 + kTagSize, 0x5a));
  std::vector<AeadJob> jobs;
  for (size_t i = 0; i < bufs.size(); ++i) jobs.push_back(job(key, i, bufs[i], 100));
  backend->seal_burst(jobs);
  for (AeadJob& j : jobs) j.length += kTagSize;

  bufs[1].back() ^= 0x01;
  const Bytes corrupted = bufs[1];
  backend->open_burst(jobs);
  EXPECT_TRUE(jobs[0].ok);
  EXPECT_FALSE(jobs[1].ok);
  EXPECT_TRUE(jobs[2].ok);
  EXPECT_EQ(bufs[1], corrupted);

  AeadJob runt = job(key, 0, bufs[0], kTagSize - 1);  // shorter than a tag
  backend->open_burst({&runt, 1});
  EXPECT_FALSE(runt.ok);
}

// A backend that gets one byte wrong must not pass the self-test.
class OffByOneBackend final : public AeadBackend {
 public:
  const char* name() const override { return "broken"; }
  void seal_burst(std::span<AeadJob> jobs) override {
    inner_->seal_burst(jobs);
    for (AeadJob& j : jobs) j.data[j.length] ^= 1;  // first tag byte
  }
  void open_burst(std::span<AeadJob> jobs) override { inner_->open_burst(jobs); }

 private:
  std::unique_ptr<AeadBackend> inner_ = make_sodium_backend();
};

TEST(AeadBatch, SelfTestCatchesABrokenBackend) {
  OffByOneBackend broken;
  EXPECT_FALSE(aead_self_test(broken));
}

TEST(AeadBatch, SelectBackend) {
  auto best = select_aead_backend("");
  ASSERT_TRUE(best.ok()) << best.error();
  // Which one wins is the machine's business; the reason names it and its figures.
  const std::string& reason = best->reason;
  EXPECT_EQ(reason.rfind(best->backend->describe() + ": ", 0), 0u) << reason;
  EXPECT_NE(reason.find("Gbit/s"), std::string::npos) << reason;
  EXPECT_NE(reason.find("passed"), std::string::npos) << reason;

  auto forced = select_aead_backend("sodium");
  ASSERT_TRUE(forced.ok()) << forced.error();
  EXPECT_STREQ(forced->backend->name(), "sodium");
  EXPECT_EQ(forced->reason, "sodium: forced by configuration; self-test passed");
}

TEST(AeadBatch, ForcingAnUnknownNameFailsAndListsTheKnownOnes) {
  auto unknown = select_aead_backend("ipsec-mb-nonexistent");
  ASSERT_FALSE(unknown.ok());
  EXPECT_EQ(unknown.error(),
            "unknown AEAD backend 'ipsec-mb-nonexistent' (known: sodium ipsec-mb)");
  EXPECT_FALSE(select_aead_backend("nope"));
}

// ---- The intel-ipsec-mb backend, checked against the libsodium one ----

class IpsecMb : public ::testing::Test {
 protected:
  void SetUp() override {
    auto made = make_ipsecmb_backend();
    if (!made) GTEST_SKIP() << "ipsec-mb backend not available: " << made.error();
    ipsecmb_ = std::move(*made);
  }

  // One message per entry, each with its own buffer (room for the tag) and random
  // plaintext; keys[i % keys.size()] and counters[i] as given.
  struct Burst {
    std::vector<Bytes> bufs;
    std::vector<AeadJob> jobs;
  };
  static Burst burst(const std::vector<Key>& keys, const std::vector<size_t>& sizes,
                     const std::vector<uint64_t>& counters) {
    Burst b;
    for (size_t i = 0; i < sizes.size(); ++i) {
      Bytes buf(sizes[i] + kTagSize);
      randombytes_buf(buf.data(), buf.size());
      b.bufs.push_back(std::move(buf));
    }
    for (size_t i = 0; i < sizes.size(); ++i)
      b.jobs.push_back(job(keys[i % keys.size()], counters[i], b.bufs[i], sizes[i]));
    return b;
  }

  static std::vector<Key> random_keys(size_t n) {
    std::vector<Key> keys(n);
    for (Key& k : keys) randombytes_buf(k.data(), k.size());
    return keys;
  }

  // Seals `b` through ipsec-mb and a copy through sodium; expects the same bytes, then
  // opens ipsec-mb's output back through ipsec-mb.
  void expect_agreement(Burst& b) {
    Burst ref = b;
    for (size_t i = 0; i < ref.jobs.size(); ++i) ref.jobs[i].data = ref.bufs[i].data();
    const std::vector<Bytes> plain = b.bufs;
    ipsecmb_->seal_burst(b.jobs);
    sodium_->seal_burst(ref.jobs);
    for (size_t i = 0; i < b.jobs.size(); ++i) {
      EXPECT_TRUE(b.jobs[i].ok);
      EXPECT_EQ(b.bufs[i], ref.bufs[i]) << "message " << i << ", " << b.jobs[i].length << " B";
      b.jobs[i].length += kTagSize;
      b.jobs[i].ok = false;
    }
    ipsecmb_->open_burst(b.jobs);
    for (size_t i = 0; i < b.jobs.size(); ++i) {
      EXPECT_TRUE(b.jobs[i].ok) << "message " << i;
      EXPECT_TRUE(std::equal(plain[i].begin(), plain[i].end() - kTagSize, b.bufs[i].begin()));
    }
  }

  std::unique_ptr<AeadBackend> ipsecmb_;
  std::unique_ptr<AeadBackend> sodium_ = make_sodium_backend();
};

TEST_F(IpsecMb, NameAndSelfTest) {
  EXPECT_STREQ(ipsecmb_->name(), "ipsec-mb");
  EXPECT_EQ(ipsecmb_->describe().rfind("ipsec-mb (", 0), 0u) << ipsecmb_->describe();
  EXPECT_TRUE(aead_self_test(*ipsecmb_));
}

TEST_F(IpsecMb, ForcedByName) {
  auto forced = select_aead_backend("ipsec-mb");
  ASSERT_TRUE(forced.ok()) << forced.error();
  EXPECT_STREQ(forced->backend->name(), "ipsec-mb");
  EXPECT_NE(forced->reason.find("forced by configuration"), std::string::npos) << forced->reason;
}

// Every size from 0 to 1500 once, shuffled into bursts of 1 to 80 (more than one
// round of the backend's in-flight window), each message with its own key and counter.
TEST_F(IpsecMb, SealAgreesWithSodiumForEverySizeUpTo1500) {
  std::mt19937_64 rng(1500);
  std::vector<size_t> sizes(1501);
  for (size_t i = 0; i < sizes.size(); ++i) sizes[i] = i;
  std::shuffle(sizes.begin(), sizes.end(), rng);
  for (size_t at = 0; at < sizes.size();) {
    const size_t n = std::min<size_t>(1 + rng() % 80, sizes.size() - at);
    std::vector<size_t> part(sizes.begin() + at, sizes.begin() + at + n);
    std::vector<uint64_t> counters(n);
    for (uint64_t& c : counters) c = rng();
    const std::vector<Key> keys = random_keys(n);  // the jobs point into it
    Burst b = burst(keys, part, counters);
    expect_agreement(b);
    at += n;
  }
}

// Three keys interleaved, counters at the edges of the 64-bit space and in order, as a
// worker serving three peers sees them; 200 messages, so several in-flight rounds.
TEST_F(IpsecMb, BurstMixingKeysAndCountersAgreesWithSodium) {
  std::mt19937_64 rng(3);
  const std::vector<uint64_t> edges = {0, 1, 0xffffffff, 0x100000000, ~uint64_t{0} - 1};
  std::vector<size_t> sizes;
  std::vector<uint64_t> counters;
  for (size_t i = 0; i < 200; ++i) {
    sizes.push_back(i % 7 == 0 ? 1420 : rng() % 1501);
    counters.push_back(i < edges.size() ? edges[i] : 1000 + i / 3);
  }
  const std::vector<Key> keys = random_keys(3);
  Burst b = burst(keys, sizes, counters);
  expect_agreement(b);
}

TEST_F(IpsecMb, ForgedMessageFailsAndLeavesDataUnchanged) {
  for (size_t size : {0, 1, 63, 64, 65, 1420, 1500}) {
    for (size_t flip : {size_t{0}, size + kTagSize - 1}) {  // first byte, last tag byte
      const std::vector<Key> keys = random_keys(1);
      Burst b = burst(keys, {size}, {7});
      ipsecmb_->seal_burst(b.jobs);
      b.jobs[0].length += kTagSize;
      b.bufs[0][flip] ^= 0x80;
      const Bytes forged = b.bufs[0];
      ipsecmb_->open_burst(b.jobs);
      EXPECT_FALSE(b.jobs[0].ok) << size << " B, byte " << flip;
      EXPECT_EQ(b.bufs[0], forged) << size << " B, byte " << flip;
    }
  }
}

// Good and forged messages (bad tag, bad ciphertext, wrong counter, a runt) in one
// burst: exactly the forged ones fail, keep their bytes, and the rest open.
TEST_F(IpsecMb, MixedBurstGivesExactlyTheRightOkFlags) {
  constexpr size_t kCount = 150;
  std::mt19937_64 rng(150);
  std::vector<size_t> sizes(kCount);
  std::vector<uint64_t> counters(kCount);
  for (size_t i = 0; i < kCount; ++i) {
    sizes[i] = rng() % 1501;
    counters[i] = i;
  }
  const std::vector<Key> keys = random_keys(2);
  Burst b = burst(keys, sizes, counters);
  const std::vector<Bytes> plain = b.bufs;
  ipsecmb_->seal_burst(b.jobs);
  std::vector<bool> forged(kCount);
  for (size_t i = 0; i < kCount; ++i) {
    b.jobs[i].length += kTagSize;
    forged[i] = rng() % 3 == 0;
    if (!forged[i]) continue;
    if (i % 3 == 0) b.bufs[i].back() ^= 0x01;                     // tag
    if (i % 3 == 1) b.bufs[i][rng() % b.bufs[i].size()] ^= 0x10;  // anywhere
    if (i % 3 == 2) b.jobs[i].counter += 1;                       // replayed under another nonce
  }
  forged[kCount - 1] = true;
  b.jobs[kCount - 1].length = kTagSize - 1;  // a runt
  const std::vector<Bytes> sent = b.bufs;

  ipsecmb_->open_burst(b.jobs);
  for (size_t i = 0; i < kCount; ++i) {
    EXPECT_EQ(b.jobs[i].ok, !forged[i]) << "message " << i;
    if (forged[i]) {
      EXPECT_EQ(b.bufs[i], sent[i]) << "message " << i;
    } else {
      EXPECT_TRUE(std::equal(plain[i].begin(), plain[i].end() - kTagSize, b.bufs[i].begin()));
    }
  }
}

}  // namespace
}  // namespace faraday::crypto
