// dataplane_bench: the in-memory data path on one core. Two Devices complete a
// handshake in memory (fake clock, no sockets); then, for 64, 512 and 1420-byte
// inner packets, device A encrypts bursts of kBurstSize (send_burst: route,
// pad, seal, header) and device B decrypts them (receive_burst: index, open,
// replay window, allowed-IPs check). Beside each figure, in the same run and on
// the same buffers, the raw libsodium ChaCha20-Poly1305 seal/open of the same
// sizes: the ceiling the data path is measured against.
//
//   build/bench/dataplane_bench [SECONDS_PER_SIZE]
#include <sodium.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <vector>

#include "crypto/aead_batch.h"
#include "crypto/x25519.h"
#include "dataplane/device.h"

namespace {

using namespace faraday;
using namespace faraday::dataplane;
using Seconds = std::chrono::duration<double>;

class FixedClock final : public Clock {
 public:
  Nanos monotonic() const override { return 1000 * kSecond; }
  Nanos wall() const override { return 1'700'000'000 * kSecond; }
};

constexpr size_t kSlot = 2048;   // bytes per buffer: enough for 1420 + overhead
constexpr size_t kBursts = 512;  // bursts per round
constexpr size_t kPackets = kBursts * kBurstSize;

[[noreturn]] void fail(const char* what) {
  std::fprintf(stderr, "dataplane_bench: %s\n", what);
  std::exit(1);
}

struct Node {
  explicit Node(const Clock& clock, crypto::AeadBackend& aead, const char* ep)
      : dev(clock, aead), endpoint(*Endpoint::parse(ep)) {
    dev.set_private_key(crypto::x25519_generate_private());
  }
  Device dev;
  Endpoint endpoint;
};

// Moves everything in `from`'s outbox into `to`, as the network would.
void deliver(Node& from, Node& to) {
  auto box = from.dev.outbox();
  std::vector<Verdict> v(box.size());
  for (Packet& p : box) p.endpoint = from.endpoint;
  to.dev.receive_burst(box, v);
  from.dev.clear_outbox();
}

// Writes an IPv4/UDP packet of `size` bytes from 10.0.0.1 to 10.0.0.2.
void write_inner(uint8_t* p, size_t size) {
  std::memset(p, 0xab, size);
  p[0] = 0x45;
  p[1] = 0;
  p[2] = static_cast<uint8_t>(size >> 8);
  p[3] = static_cast<uint8_t>(size);
  p[9] = 17;
  const uint8_t src[4] = {10, 0, 0, 1}, dst[4] = {10, 0, 0, 2};
  std::memcpy(p + 12, src, 4);
  std::memcpy(p + 16, dst, 4);
}

struct Figures {
  double seconds = 0;
  size_t packets = 0;
};

void report(const char* what, size_t size, const Figures& f, const Figures& base) {
  double pps = f.packets / f.seconds, base_pps = base.packets / base.seconds;
  std::printf(
      "%-24s %5zu B  %8.2f Gbit/s  %7.3f Mpps   libsodium %8.2f Gbit/s  %7.3f Mpps   "
      "ratio %.2f\n",
      what, size, pps * size * 8 / 1e9, pps / 1e6, base_pps * size * 8 / 1e9, base_pps / 1e6,
      pps / base_pps);
}

}  // namespace

int main(int argc, char** argv) {
  double seconds_per_size = argc > 1 ? std::atof(argv[1]) : 2.0;
  if (sodium_init() < 0) fail("sodium_init failed");
  FixedClock clock;
  auto selected = crypto::select_aead_backend("sodium");
  if (!selected) fail(selected.error().c_str());
  std::unique_ptr<crypto::AeadBackend> aead = std::move(*selected);
  Node a(clock, *aead, "10.99.0.1:51820"), b(clock, *aead, "10.99.0.2:51820");
  Peer* pb = a.dev.add_peer(b.dev.identity().public_key);
  Peer* pa = b.dev.add_peer(a.dev.identity().public_key);
  a.dev.add_allowed_ip(*pb, *Prefix::parse("10.0.0.2/32"));
  b.dev.add_allowed_ip(*pa, *Prefix::parse("10.0.0.1/32"));
  a.dev.set_endpoint(*pb, b.endpoint);
  b.dev.set_endpoint(*pa, a.endpoint);

  std::vector<uint8_t> storage(kPackets * kSlot);
  std::vector<Packet> pkts(kPackets);
  for (size_t i = 0; i < kPackets; ++i) pkts[i].base = storage.data() + i * kSlot;
  std::vector<Verdict> verdicts(kBurstSize);

  // Handshake: a keepalive from a stages and initiates; response; confirmation.
  a.dev.set_persistent_keepalive(*pb, 25);
  deliver(a, b);
  deliver(b, a);
  deliver(a, b);
  if (!b.dev.find_peer(a.dev.identity().public_key)->current) fail("handshake did not complete");

  std::printf("in-memory data path, one core, bursts of %zu, AEAD backend %s\n", kBurstSize,
              aead->name());
  const crypto::Key key{};
  for (size_t size : {64, 512, 1420}) {
    Figures enc, dec, seal, open;
    while (enc.seconds < seconds_per_size) {
      for (Packet& p : pkts) {
        p.reset();
        write_inner(p.data(), size);
        p.length = static_cast<uint32_t>(size);
      }
      auto t0 = std::chrono::steady_clock::now();
      for (size_t i = 0; i < kPackets; i += kBurstSize) {
        a.dev.send_burst({&pkts[i], kBurstSize}, verdicts);
        if (verdicts[0] != Verdict::kPass || verdicts[kBurstSize - 1] != Verdict::kPass)
          fail("encrypt: packet not passed");
      }
      auto t1 = std::chrono::steady_clock::now();
      for (Packet& p : pkts) p.endpoint = a.endpoint;
      auto t2 = std::chrono::steady_clock::now();
      for (size_t i = 0; i < kPackets; i += kBurstSize) {
        b.dev.receive_burst({&pkts[i], kBurstSize}, verdicts);
        if (verdicts[0] != Verdict::kPass || verdicts[kBurstSize - 1] != Verdict::kPass)
          fail("decrypt: packet not passed");
      }
      auto t3 = std::chrono::steady_clock::now();
      enc.seconds += Seconds(t1 - t0).count();
      dec.seconds += Seconds(t3 - t2).count();
      enc.packets += kPackets;
      dec.packets += kPackets;

      // The baseline: libsodium alone, in place, on the same buffers.
      auto t4 = std::chrono::steady_clock::now();
      uint64_t counter = 0;
      for (Packet& p : pkts) {
        uint8_t nonce[12] = {};
        std::memcpy(nonce + 4, &++counter, 8);
        crypto_aead_chacha20poly1305_ietf_encrypt_detached(
            p.base + kHeadroom, p.base + kHeadroom + size, nullptr, p.base + kHeadroom, size,
            nullptr, 0, nullptr, nonce, key.data());
      }
      auto t5 = std::chrono::steady_clock::now();
      counter = 0;
      for (Packet& p : pkts) {
        uint8_t nonce[12] = {};
        std::memcpy(nonce + 4, &++counter, 8);
        if (crypto_aead_chacha20poly1305_ietf_decrypt_detached(
                p.base + kHeadroom, nullptr, p.base + kHeadroom, size, p.base + kHeadroom + size,
                nullptr, 0, nonce, key.data()) != 0)
          fail("libsodium open failed");
      }
      auto t6 = std::chrono::steady_clock::now();
      seal.seconds += Seconds(t5 - t4).count();
      open.seconds += Seconds(t6 - t5).count();
      seal.packets += kPackets;
      open.packets += kPackets;
    }
    report("encrypt (send_burst)", size, enc, seal);
    report("decrypt (receive_burst)", size, dec, open);
  }
  return 0;
}
