// fuzz_messages: every byte string the network can send, through the whole
// receive path of a Device that has a key, a peer and allowed IPs. The input
// is split into datagrams at each 0xff 0xfe pair so one run can mix message
// types. Nothing may crash, leak or read out of bounds; every datagram must
// end with exactly one verdict.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>

#include "crypto/aead_batch.h"
#include "crypto/x25519.h"
#include "dataplane/device.h"

namespace {

using namespace faraday;
using namespace faraday::dataplane;

class FixedClock final : public Clock {
 public:
  Nanos monotonic() const override { return mono; }
  Nanos wall() const override { return 1'700'000'000 * kSecond + mono; }
  Nanos mono = 1000 * kSecond;
};

struct Target {
  FixedClock clock;
  std::unique_ptr<crypto::AeadBackend> aead = crypto::make_sodium_backend();
  std::unique_ptr<Device> dev;
  PacketArena arena{kBurstSize};

  Target() {
    DeviceOptions options;
    options.under_load_threshold = 4;  // reach the cookie path quickly
    dev = std::make_unique<Device>(clock, *aead, options);
    crypto::Key priv{};
    priv[5] = 1;
    dev->set_private_key(priv);
    crypto::Key peer_priv{};
    peer_priv[5] = 2;
    Peer* peer = dev->add_peer(crypto::x25519_public(peer_priv));
    if (!peer) __builtin_trap();  // the keys above must differ after clamping
    dev->add_allowed_ip(*peer, *Prefix::parse("10.0.0.0/8"));
    dev->set_endpoint(*peer, *Endpoint::parse("192.0.2.1:51820"));
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static Target t;
  auto pkts = t.arena.packets();
  size_t n = 0;
  size_t start = 0;
  for (size_t i = 0; i <= size && n < pkts.size(); ++i) {
    bool split = i == size || (i + 1 < size && data[i] == 0xff && data[i + 1] == 0xfe);
    if (!split) continue;
    size_t len = std::min<size_t>(i - start, kMaxDatagram);
    Packet& p = pkts[n++];
    p.reset();
    std::memcpy(p.data(), data + start, len);
    p.length = static_cast<uint32_t>(len);
    p.endpoint = *Endpoint::parse("198.51.100.7:4000");
    start = i + 2;
  }
  Verdict verdicts[kBurstSize];
  t.dev->receive_burst(pkts.first(n), {verdicts, n});
  t.dev->clear_outbox();
  t.clock.mono += kMillisecond;
  return 0;
}
