#include "crypto/aead_batch.h"

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include <sodium.h>

#include "crypto/aead.h"

namespace faraday::crypto {
namespace {

// One libsodium call per message; stateless, so any thread may use it.
class SodiumBackend final : public AeadBackend {
 public:
  const char* name() const override { return "sodium"; }

  void seal_burst(std::span<AeadJob> jobs) override {
    for (AeadJob& job : jobs) {
      aead_seal(job.data, job.data, job.length, job.counter, *job.key, {});
      job.ok = true;
    }
  }

  void open_burst(std::span<AeadJob> jobs) override {
    for (AeadJob& job : jobs) {
      job.ok = aead_open(job.data, job.data, job.length, job.counter, *job.key, {});
    }
  }
};

struct BackendInfo {
  const char* name;
  // An error saying why when the backend cannot run here.
  Result<std::unique_ptr<AeadBackend>> (*make)();
};

// Every backend this build knows, by the name --aead forces; select_aead_backend("")
// measures the ones that pass their self-test and takes the fastest.
const std::array kBackends = {
    BackendInfo{"sodium",
                [] { return Result<std::unique_ptr<AeadBackend>>(make_sodium_backend()); }},
    BackendInfo{"ipsec-mb", &make_ipsecmb_backend},
};

// ---- Self-test ----------------------------------------------------------------------

using Bytes = std::vector<uint8_t>;

Bytes unhex(const char* hex) {
  if (*hex == '\0') return {};
  Bytes out(std::strlen(hex) / 2);
  size_t len = 0;
  if (sodium_hex2bin(out.data(), out.size(), hex, std::strlen(hex), nullptr, &len, nullptr) != 0 ||
      len != out.size()) {
    std::abort();  // a typo in the tables below
  }
  return out;
}

Key unhex_key(const char* hex) {
  const Bytes bytes = unhex(hex);
  Key key{};
  if (bytes.size() != key.size()) std::abort();
  std::copy(bytes.begin(), bytes.end(), key.begin());
  return key;
}

// The 8 nonce bytes after WireGuard's 4 zero bytes, read as the LE64 counter.
uint64_t counter_from_hex(const char* hex) {
  const Bytes bytes = unhex(hex);
  if (bytes.size() != 8) std::abort();
  uint64_t counter = 0;
  for (size_t i = 0; i < 8; ++i) counter |= static_cast<uint64_t>(bytes[i]) << (8 * i);
  return counter;
}

// Known answers without associated data, as transport messages have. `expected` is the
// sealed output; for RFC 8439 A.5 only its ciphertext applies (the vector's tag also
// covers associated data, which a burst cannot carry), so expected_len stops there.
struct Vector {
  const char* key;
  const char* nonce;
  const char* plaintext;
  const char* expected;
};

constexpr const char* kA5Plaintext =
    "496e7465726e65742d4472616674732061726520647261667420646f63756d656e74732076616c69"
    "6420666f722061206d6178696d756d206f6620736978206d6f6e74687320616e64206d6179206265"
    "20757064617465642c207265706c616365642c206f72206f62736f6c6574656420627920"
    "6f7468657220646f63756d656e747320617420616e792074696d652e20497420697320696e617070"
    "726f70726961746520746f2075736520496e7465726e65742d447261667473206173207265666572"
    "656e6365206d6174657269616c206f7220746f2063697465207468656d206f74686572207468616e"
    "206173202fe2809c776f726b20696e2070726f67726573732e2fe2809d";

constexpr const char* kA5Ciphertext =
    "64a0861575861af460f062c79be643bd5e805cfd345cf389f108670ac76c8cb24c6cfc18755d43ee"
    "a09ee94e382d26b0bdb7b73c321b0100d4f03b7f355894cf332f830e710b97ce98c8a84abd0b9481"
    "14ad176e008d33bd60f982b1ff37c8559797a06ef4f0ef61c186324e2b3506383606907b6a7c02b0"
    "f9f6157b53c867e4b9166c767b804d46a59b5216cde7a4e99040c5a40433225ee282a1b0a06c523e"
    "af4534d7f83fa1155b0047718cbc546a0d072b04b3564eea1b422273f548271a0bb2316053fa7699"
    "1955ebd63159434ecebb4e466dae5a1073a6727627097a1049e617d91d361094fa68f0ff77987130"
    "305beaba2eda04df997b714d6c6f2c29a6ad5cb4022b02709b";

const std::array kVectors = {
    // RFC 8439 Appendix A.5: nonce 00000000 || 0102030405060708.
    Vector{"1c9240a5eb55d38af333888604f6b5f0473917c1402b80099dca5cbc207075c0", "0102030405060708",
           kA5Plaintext, kA5Ciphertext},
    // Linux lib/crypto/chacha20poly1305-selftest.c enc_*002 (empty: a keepalive) and
    // enc_*005 (one byte); both use WireGuard's 64-bit nonce and no associated data.
    Vector{"4cf5968338e6ae7f2d292576d5752786919a277afb46c5ef9481795714594068", "cabf33713245778e",
           "", "eae01e9e2c91aae1db5d993f8af76992"},
    Vector{"66ca9c232a4b4b310e92898bf493c78798a3d839f8f4a701c02e0aa67e5a7887", "201caa5f9cbf9230",
           "2d", "bfe15b0bdb6bf55e6c5d84443981c19cac"},
};

// Seals every vector in one burst, checks the known answers, opens them back, then
// checks that a forged tag fails without touching the buffer.
bool known_answers(AeadBackend& backend) {
  std::vector<Key> keys;
  std::vector<Bytes> plain, buffers;
  std::vector<AeadJob> jobs;
  for (const Vector& v : kVectors) {
    keys.push_back(unhex_key(v.key));
    plain.push_back(unhex(v.plaintext));
  }
  for (size_t i = 0; i < kVectors.size(); ++i) {
    Bytes buf = plain[i];
    buf.resize(buf.size() + kTagSize);
    buffers.push_back(std::move(buf));
    jobs.push_back(AeadJob{&keys[i], counter_from_hex(kVectors[i].nonce), buffers[i].data(),
                           static_cast<uint32_t>(plain[i].size()), false});
  }

  backend.seal_burst(jobs);
  for (size_t i = 0; i < jobs.size(); ++i) {
    const Bytes expected = unhex(kVectors[i].expected);
    if (!jobs[i].ok || !std::equal(expected.begin(), expected.end(), buffers[i].begin())) {
      return false;
    }
    jobs[i].length += kTagSize;
  }

  backend.open_burst(jobs);
  for (size_t i = 0; i < jobs.size(); ++i) {
    if (!jobs[i].ok || !std::equal(plain[i].begin(), plain[i].end(), buffers[i].begin())) {
      return false;
    }
  }

  // Re-seal the one-byte vector and flip a tag bit.
  AeadJob forged = jobs.back();
  forged.length -= kTagSize;
  backend.seal_burst(std::span(&forged, 1));
  forged.length += kTagSize;
  buffers.back().back() ^= 0x01;
  const Bytes before = buffers.back();
  backend.open_burst(std::span(&forged, 1));
  return !forged.ok && buffers.back() == before;
}

// A burst of mixed sizes, each with its own key and counter, must match the reference
// single-message path byte for byte, and open back.
bool matches_reference(AeadBackend& backend) {
  constexpr std::array<uint32_t, 10> kSizes = {0, 1, 15, 16, 17, 63, 64, 65, 255, 1420};
  std::vector<Key> keys(kSizes.size());
  std::vector<Bytes> buffers, expected;
  std::vector<AeadJob> jobs;
  for (size_t i = 0; i < kSizes.size(); ++i) {
    for (size_t j = 0; j < kKeySize; ++j) keys[i][j] = static_cast<uint8_t>(i * 31 + j);
    Bytes buf(kSizes[i] + kTagSize);
    for (size_t j = 0; j < kSizes[i]; ++j) buf[j] = static_cast<uint8_t>(j * 7 + i);
    const uint64_t counter = (uint64_t{1} << (i * 6)) + i;
    Bytes ref(buf.size());
    aead_seal(ref.data(), buf.data(), kSizes[i], counter, keys[i], {});
    expected.push_back(std::move(ref));
    buffers.push_back(std::move(buf));
    jobs.push_back(AeadJob{&keys[i], counter, buffers[i].data(), kSizes[i], false});
  }

  backend.seal_burst(jobs);
  for (size_t i = 0; i < jobs.size(); ++i) {
    if (!jobs[i].ok || buffers[i] != expected[i]) return false;
    jobs[i].length += kTagSize;
  }
  backend.open_burst(jobs);
  for (size_t i = 0; i < jobs.size(); ++i) {
    Bytes plain(kSizes[i]);
    if (!jobs[i].ok ||
        !aead_open(plain.data(), expected[i].data(), expected[i].size(), jobs[i].counter, keys[i],
                   {}) ||
        !std::equal(plain.begin(), plain.end(), buffers[i].begin())) {
      return false;
    }
  }
  return true;
}

// ---- Choosing ------------------------------------------------------------------------

struct Candidate {
  std::unique_ptr<AeadBackend> backend;
  double gbps;
  const BackendInfo* info;
};

// More instances of the backend `info` describes; null when one cannot be made.
AeadFactory factory_of(const BackendInfo* info) {
  return [info]() -> std::unique_ptr<AeadBackend> {
    auto made = info->make();
    return made ? std::move(*made) : nullptr;
  };
}

// Each backend is timed in kMeasureRounds slices of kMeasureSlice, taking turns, and
// keeps its best slice: on a shared machine a slice that lost the CPU to someone else
// says nothing about the cipher, and taking turns gives every backend the same weather.
constexpr auto kMeasureSlice = std::chrono::milliseconds(1);
constexpr int kMeasureRounds = 5;

// `item`, after ", " unless it is the first of the list.
std::string then_item(const std::string& so_far, const std::string& item) {
  return (so_far.empty() ? "" : ", ") + item;
}

std::string unknown_name(std::string_view forced) {
  std::string text = "unknown AEAD backend '" + std::string(forced) + "' (known:";
  for (const BackendInfo& info : kBackends) text += std::string(" ") + info.name;
  return text + ")";
}

// Gbit/s of sealing 1420-byte messages (a full-MTU transport payload) in bursts of 32,
// measured for about kMeasureSlice after one warm-up burst. Sealing the same buffers
// over and over is fine: the content does not change the cost.
double measure_gbps(AeadBackend& backend) {
  constexpr size_t kBurst = 32;
  constexpr uint32_t kSize = 1420;
  Key key{};
  for (size_t i = 0; i < key.size(); ++i) key[i] = static_cast<uint8_t>(i);
  std::vector<uint8_t> storage(kBurst * (kSize + kTagSize), 0x5a);
  std::array<AeadJob, kBurst> jobs{};
  for (size_t i = 0; i < kBurst; ++i)
    jobs[i] = AeadJob{&key, i, storage.data() + i * (kSize + kTagSize), kSize, false};

  backend.seal_burst(jobs);
  using Clock = std::chrono::steady_clock;
  const Clock::time_point start = Clock::now();
  Clock::duration elapsed{};
  uint64_t bytes = 0;
  while (elapsed < kMeasureSlice) {
    for (AeadJob& job : jobs) job.counter += kBurst;
    backend.seal_burst(jobs);
    bytes += kBurst * kSize;
    elapsed = Clock::now() - start;
  }
  return static_cast<double>(bytes) * 8 / std::chrono::duration<double, std::nano>(elapsed).count();
}

// "ipsec-mb (avx512): 21.3 Gbit/s vs sodium 4.9 Gbit/s in a 5 ms start-up measurement
// each (best 1 ms turn of 5); self-tests passed", plus the backends that could not run and why.
std::string explain(const std::vector<Candidate>& ranked, const std::string& failed) {
  char figure[32];
  std::string text = ranked[0].backend->describe() + ": ";
  for (size_t i = 0; i < ranked.size(); ++i) {
    std::snprintf(figure, sizeof(figure), "%.1f Gbit/s", ranked[i].gbps);
    if (i == 1) text += " vs ";
    if (i > 1) text += ", ";
    if (i > 0) text += std::string(ranked[i].backend->name()) + " ";
    text += figure;
  }
  text += " in a " + std::to_string(kMeasureRounds * kMeasureSlice.count()) +
          " ms start-up measurement";
  text += ranked.size() > 1 ? " each" : "";
  text += " (best " + std::to_string(kMeasureSlice.count()) + " ms turn of " +
          std::to_string(kMeasureRounds) + ")";
  text += ranked.size() > 1 ? "; self-tests passed" : "; self-test passed";
  if (!failed.empty()) text += "; not usable: " + failed;
  return text;
}

}  // namespace

std::unique_ptr<AeadBackend> make_sodium_backend() {
  return std::make_unique<SodiumBackend>();
}

bool aead_self_test(AeadBackend& backend) {
  return known_answers(backend) && matches_reference(backend);
}

Result<AeadChoice> select_aead_backend(std::string_view forced) {
  std::vector<Candidate> passed;
  std::string failed;
  bool known = false;
  for (const BackendInfo& info : kBackends) {
    if (!forced.empty() && forced != info.name) continue;
    known = true;
    auto made = info.make();
    std::string why = !made ? made.error() : aead_self_test(**made) ? "" : "self-test failed";
    if (!why.empty()) {
      failed += then_item(failed, std::string(info.name) + ": " + why);
      continue;
    }
    passed.push_back(Candidate{std::move(*made), 0, &info});
  }

  if (passed.empty())
    return Error{known ? "no usable AEAD backend (" + failed + ")" : unknown_name(forced)};
  if (!forced.empty()) {
    std::string reason =
        passed[0].backend->describe() + ": forced by configuration; self-test passed";
    return AeadChoice{std::move(passed[0].backend), std::move(reason), factory_of(passed[0].info)};
  }
  for (int round = 0; round < kMeasureRounds; ++round)
    for (Candidate& c : passed) c.gbps = std::max(c.gbps, measure_gbps(*c.backend));
  std::stable_sort(passed.begin(), passed.end(),
                   [](const Candidate& a, const Candidate& b) { return a.gbps > b.gbps; });
  std::string reason = explain(passed, failed);
  return AeadChoice{std::move(passed[0].backend), std::move(reason), factory_of(passed[0].info)};
}

}  // namespace faraday::crypto
