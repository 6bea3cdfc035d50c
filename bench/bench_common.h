// bench_common.h: what dataplane_bench's parts share: a clock that never moves, a
// Device with an endpoint, delivering one device's outbox to another, inner IPv4
// packets, and the figures (packets over seconds) every table prints.
// One thread (the bench's main thread) uses all of it.
#pragma once

#include <errno.h>  // program_invocation_short_name

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <span>
#include <vector>

#include "crypto/aead_batch.h"
#include "crypto/x25519.h"
#include "dataplane/device.h"

namespace faraday::bench {

using namespace faraday::dataplane;

class FixedClock final : public Clock {
 public:
  Nanos monotonic() const override { return 1000 * kSecond; }
  Nanos wall() const override { return 1'700'000'000 * kSecond; }
};

inline constexpr size_t kSlot = 2048;  // bytes per buffer: enough for 1420 + overhead
inline constexpr size_t kSizes[] = {64, 512, 1420};

[[noreturn]] inline void fail(const char* what) {
  std::fprintf(stderr, "%s: %s\n", program_invocation_short_name, what);
  std::exit(1);
}

// A Device's AEAD, switched between others between rounds, so one set of
// devices (and one handshake) serves several ways of running it.
class SwitchAead final : public crypto::AeadBackend {
 public:
  crypto::AeadBackend* inner = nullptr;
  const char* name() const override { return inner->name(); }
  void seal_burst(std::span<crypto::AeadJob> jobs) override { inner->seal_burst(jobs); }
  void open_burst(std::span<crypto::AeadJob> jobs) override { inner->open_burst(jobs); }
};

struct Node {
  Node(const Clock& clock, crypto::AeadBackend& aead, const char* ep)
      : dev(clock, aead), endpoint(*Endpoint::parse(ep)) {
    dev.set_private_key(crypto::x25519_generate_private());
  }
  Device dev;
  Endpoint endpoint;
};

// Moves everything in `from`'s outbox into `to`, as the network would.
inline void deliver(Node& from, Node& to) {
  auto box = from.dev.outbox();
  std::vector<Verdict> v(box.size());
  for (Packet& p : box) p.endpoint = from.endpoint;
  to.dev.receive_burst(box, v);
  from.dev.clear_outbox();
}

// Makes a and b each other's only peer, with 10.0.0.1 behind a and 10.0.0.2
// behind b; a knows b's endpoint, and b knows a's when b_knows_a (otherwise b
// learns it from a's first message). Returns a's view of b.
inline Peer* pair_up(Node& a, Node& b, bool b_knows_a = true) {
  Peer* pb = a.dev.add_peer(b.dev.identity().public_key);
  Peer* pa = b.dev.add_peer(a.dev.identity().public_key);
  a.dev.add_allowed_ip(*pb, *Prefix::parse("10.0.0.2/32"));
  b.dev.add_allowed_ip(*pa, *Prefix::parse("10.0.0.1/32"));
  a.dev.set_endpoint(*pb, b.endpoint);
  if (b_knows_a) b.dev.set_endpoint(*pa, a.endpoint);
  return pb;
}

// pair_up, then the handshake in memory: a keepalive from a stages and
// initiates; response; confirmation.
inline void shake_hands(Node& a, Node& b) {
  Peer* pb = pair_up(a, b);
  a.dev.set_persistent_keepalive(*pb, 25);
  deliver(a, b);
  deliver(b, a);
  deliver(a, b);
  if (!b.dev.find_peer(a.dev.identity().public_key)->current) fail("handshake did not complete");
}

// Writes an IPv4/UDP packet of `size` bytes from `src` to `dst` (host byte order).
inline void write_inner(uint8_t* p, size_t size, uint32_t src = 0x0a000001,
                        uint32_t dst = 0x0a000002) {
  std::memset(p, 0xab, size);
  p[0] = 0x45;
  p[1] = 0;
  p[2] = static_cast<uint8_t>(size >> 8);
  p[3] = static_cast<uint8_t>(size);
  p[9] = 17;
  for (int i = 0; i < 4; ++i) {
    p[12 + i] = static_cast<uint8_t>(src >> (24 - 8 * i));
    p[16 + i] = static_cast<uint8_t>(dst >> (24 - 8 * i));
  }
}

// Packet buffers of kSlot bytes each, owned here.
struct Buffers {
  explicit Buffers(size_t count) : storage(count * kSlot), pkts(count) {
    for (size_t i = 0; i < count; ++i) {
      pkts[i].base = storage.data() + i * kSlot;
      pkts[i].capacity = kSlot;
      pkts[i].reset();
    }
  }
  std::vector<uint8_t> storage;
  std::vector<Packet> pkts;
};

struct Figures {
  double seconds = 0;
  size_t packets = 0;
  size_t turns = 0;    // queue workers: bursts read from the other worker's queue
  size_t crowded = 0;  // queue workers: sleeps while the machine was crowded
  double gbps(size_t size) const { return packets / seconds * size * 8 / 1e9; }
  double mpps() const { return packets / seconds / 1e6; }
};

}  // namespace faraday::bench
