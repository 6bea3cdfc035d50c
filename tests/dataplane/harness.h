// harness.h: two WireGuard cores wired together in memory, for the core tests.
//
//        a                         fake network                        b
//   10.0.0.1:1001   <----- wire (queue) --- filter hook ----->   10.0.0.2:1002
//   tunnel 192.168.0.1, fd00::1                            tunnel 192.168.0.2, fd00::2
//
// Each Node is a Device with its own keys; each is the other's only peer, with
// the other's tunnel addresses as allowed IPs and its underlay endpoint set.
// Time is a FakeClock that only moves when a test moves it.
//
// send() runs send_burst and puts what the device transmits (kPass packets and
// the outbox) on the wire; pump() delivers the wire to the devices' receive_burst
// until nothing is in flight, collecting what each side hands to its tunnel.
// The filter sees every datagram before delivery and may drop it, copy it away
// (to replay it later with receive()), or rewrite it (a new source address for
// roaming); capture() installs the common one, which copies every datagram
// away and then drops or delivers it. Every datagram put on the wire is also kept in `log`, so
// tests can count what each side sent.
//
// Test-only: one thread, no sockets.
#pragma once

#include <arpa/inet.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <deque>
#include <functional>
#include <memory>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

#include "crypto/aead.h"
#include "crypto/aead_batch.h"
#include "crypto/keys.h"
#include "crypto/x25519.h"
#include "dataplane/clock.h"
#include "dataplane/cookie.h"
#include "dataplane/counters.h"
#include "dataplane/device.h"
#include "dataplane/messages.h"
#include "dataplane/net.h"
#include "dataplane/noise.h"
#include "dataplane/packet.h"
#include "dataplane/peer.h"

namespace faraday::dataplane::testing {

using Bytes = std::vector<uint8_t>;

// ------------------------------------------------------------------ clock

class FakeClock final : public Clock {
 public:
  Nanos monotonic() const override { return monotonic_; }
  Nanos wall() const override { return wall_; }
  // Both clocks move together unless a test moves one alone.
  void advance(Nanos d) {
    monotonic_ += d;
    wall_ += d;
  }
  void advance_wall(Nanos d) { wall_ += d; }

 private:
  Nanos monotonic_ = 1000 * kSecond;             // an arbitrary boot time
  Nanos wall_ = Nanos{1'700'000'000} * kSecond;  // November 2023
};

// ------------------------------------------------------------------ options

// DeviceOptions with the jitter fixed at `jitter`, so every timer deadline is
// exact.
inline DeviceOptions fixed(Nanos jitter,
                           uint32_t under_load_threshold = DeviceOptions{}.under_load_threshold) {
  DeviceOptions o;
  o.fixed_jitter = jitter;
  o.under_load_threshold = under_load_threshold;
  return o;
}

// ------------------------------------------------------------------ printing

// Parameterized cases print as their name in failure messages. A test file
// brings it in with `using testing::PrintTo;` in the namespace of its cases,
// where gtest's argument-dependent lookup finds it.
template <typename T>
requires requires(const T& c) {
  c.name;
}
void PrintTo(const T& c, std::ostream* os) {
  *os << c.name;
}

// ------------------------------------------------------------------ addresses

inline Endpoint endpoint(std::string_view text) {
  auto ep = Endpoint::parse(text);
  EXPECT_TRUE(ep.has_value()) << text;
  return ep.value_or(Endpoint{});
}

inline Prefix prefix(std::string_view text) {
  auto p = Prefix::parse(text);
  EXPECT_TRUE(p.has_value()) << text;
  return p.value_or(Prefix{});
}

inline constexpr std::string_view kTunA4 = "192.168.0.1";
inline constexpr std::string_view kTunB4 = "192.168.0.2";
inline constexpr std::string_view kTunA6 = "fd00::1";
inline constexpr std::string_view kTunB6 = "fd00::2";

// ------------------------------------------------------------------ inner packets

// An IPv4 packet (20-byte header, protocol 17) of exactly `total` bytes; the
// payload is a pattern derived from `seed` so packets can be told apart.
inline Bytes ipv4_packet(std::string_view src, std::string_view dst, size_t total,
                         uint8_t seed = 0) {
  EXPECT_GE(total, 20u);
  EXPECT_LE(total, 65535u);
  Bytes p(total);
  p[0] = 0x45;
  p[2] = static_cast<uint8_t>(total >> 8);
  p[3] = static_cast<uint8_t>(total);
  p[8] = 64;
  p[9] = 17;
  EXPECT_EQ(inet_pton(AF_INET, std::string(src).c_str(), &p[12]), 1) << src;
  EXPECT_EQ(inet_pton(AF_INET, std::string(dst).c_str(), &p[16]), 1) << dst;
  for (size_t i = 20; i < total; ++i) p[i] = static_cast<uint8_t>(seed + i);
  return p;
}

// An IPv6 packet (40-byte header, next header 17) of exactly `total` bytes.
inline Bytes ipv6_packet(std::string_view src, std::string_view dst, size_t total,
                         uint8_t seed = 0) {
  EXPECT_GE(total, 40u);
  EXPECT_LE(total, 40u + 65535u);
  Bytes p(total);
  p[0] = 0x60;
  size_t payload = total - 40;
  p[4] = static_cast<uint8_t>(payload >> 8);
  p[5] = static_cast<uint8_t>(payload);
  p[6] = 17;
  p[7] = 64;
  EXPECT_EQ(inet_pton(AF_INET6, std::string(src).c_str(), &p[8]), 1) << src;
  EXPECT_EQ(inet_pton(AF_INET6, std::string(dst).c_str(), &p[24]), 1) << dst;
  for (size_t i = 40; i < total; ++i) p[i] = static_cast<uint8_t>(seed + i);
  return p;
}

// ------------------------------------------------------------------ datagrams

struct Datagram {
  Bytes bytes;
  Endpoint source;
  Endpoint destination;

  uint32_t type() const { return bytes.size() >= 4 ? load_le32(bytes.data()) : 0; }
  bool is(MessageType t) const { return type() == static_cast<uint32_t>(t); }
  bool is_keepalive() const { return is(MessageType::kTransport) && bytes.size() == 32; }
  bool is_data() const { return is(MessageType::kTransport) && bytes.size() > 32; }
  uint32_t receiver() const { return load_le32(bytes.data() + 4); }  // transport, response
  uint64_t counter() const { return load_le64(bytes.data() + 8); }   // transport
};

enum class Fate { kDeliver, kDrop };

struct Node {
  Node(std::string node_name, const Clock& clock, DeviceOptions options, std::string_view ep)
      : name(std::move(node_name)),
        aead(crypto::make_sodium_backend()),
        device(clock, *aead, options),
        private_key(crypto::x25519_generate_private()),
        public_key(crypto::x25519_public(private_key)),
        source(endpoint(ep)),
        addresses{source} {
    device.set_private_key(private_key);
  }

  std::string name;
  std::unique_ptr<crypto::AeadBackend> aead;
  Device device;
  crypto::Key private_key;
  crypto::Key public_key;
  Endpoint source;                  // the address its datagrams come from
  std::vector<Endpoint> addresses;  // the addresses the network delivers to it
  std::vector<Bytes> tunnel;        // inner packets delivered to its tunnel, in order

  Counters counters() const { return device.counters(); }
  uint64_t dropped(Drop reason) const { return counters().dropped(reason); }
};

struct LoggedDatagram {
  const Node* from;
  Datagram datagram;
  Nanos at;  // monotonic time it was put on the wire
};

class Network {
 public:
  explicit Network(DeviceOptions a_options = {}, DeviceOptions b_options = {})
      : a("a", clock, a_options, "10.0.0.1:1001"), b("b", clock, b_options, "10.0.0.2:1002") {
    connect(a, b, kTunB4, kTunB6);
    connect(b, a, kTunA4, kTunA6);
    // Published now, as a configuration change is: worker threads started
    // next must not depend on a handshake context's first commit() to route.
    a.device.commit();
    b.device.commit();
  }
  Network(const Network&) = delete;
  Network& operator=(const Network&) = delete;

  FakeClock clock;
  Node a;
  Node b;
  // Sees each datagram just before delivery.
  std::function<Fate(const Node& from, Datagram&)> filter;
  std::vector<LoggedDatagram> log;  // every datagram put on the wire, before the filter
  std::vector<Datagram> lost;       // addressed to nobody

  // From now on every datagram in flight is copied to `into` just before
  // delivery, and then delivered or dropped as `fate` says (to hold them for a
  // later receive(), or to look at them on the way). `into` must outlive the
  // filter; set `filter = nullptr` to stop.
  void capture(std::vector<Datagram>& into, Fate fate = Fate::kDrop) {
    filter = [&into, fate](const Node&, Datagram& d) {
      into.push_back(d);
      return fate;
    };
  }

  // send() and pump() with every datagram held instead of delivered; returns
  // them (to replay later with receive()) and leaves no filter behind.
  std::vector<Datagram> send_held(Node& from, const Bytes& inner) {
    std::vector<Datagram> held;
    capture(held);
    send(from, inner);
    pump();
    filter = nullptr;
    return held;
  }

  Node& other(const Node& n) { return &n == &a ? b : a; }
  // `from`'s view of the other node.
  Peer* peer_of(Node& from) { return from.device.find_peer(other(from).public_key); }

  // Makes `to` a peer of `from` with the given allowed IPs and to's endpoint.
  void connect(Node& from, Node& to, std::string_view v4, std::string_view v6) {
    Peer* p = from.device.add_peer(to.public_key);
    ASSERT_NE(p, nullptr);
    from.device.set_endpoint(*p, to.source);
    from.device.add_allowed_ip(*p, prefix(std::string(v4) + "/32"));
    from.device.add_allowed_ip(*p, prefix(std::string(v6) + "/128"));
  }

  // Moves a node to a new underlay address (roaming): it sends from there and
  // is reachable only there.
  void move(Node& n, std::string_view ep) {
    n.source = endpoint(ep);
    n.addresses = {n.source};
  }

  // send_burst on `from` with these inner packets; transmits the result.
  std::vector<Verdict> send(Node& from, const std::vector<Bytes>& inner) {
    PacketArena arena(std::max<size_t>(inner.size(), 1));
    std::vector<Verdict> verdicts(inner.size());
    for (size_t i = 0; i < inner.size(); ++i) {
      Packet& p = arena.packets()[i];
      p.reset();
      if (!inner[i].empty()) std::memcpy(p.data(), inner[i].data(), inner[i].size());
      p.length = static_cast<uint32_t>(inner[i].size());
    }
    std::span<Packet> pkts = arena.packets().first(inner.size());
    from.device.send_burst(pkts, verdicts);
    drain_outbox(from);
    for (size_t i = 0; i < inner.size(); ++i) {
      if (verdicts[i] != Verdict::kPass) continue;
      EXPECT_TRUE(pkts[i].endpoint.valid());
      transmit(from, Bytes(pkts[i].data(), pkts[i].data() + pkts[i].length), pkts[i].endpoint);
    }
    return verdicts;
  }
  Verdict send(Node& from, const Bytes& inner) { return send(from, std::vector<Bytes>{inner})[0]; }

  // receive_burst on `to` with these datagrams as one burst, bypassing the
  // filter; delivered packets go to its tunnel, what it sends goes on the wire.
  std::vector<Verdict> receive(Node& to, const std::vector<Datagram>& datagrams) {
    PacketArena arena(std::max<size_t>(datagrams.size(), 1));
    std::vector<Verdict> verdicts(datagrams.size());
    for (size_t i = 0; i < datagrams.size(); ++i) {
      Packet& p = arena.packets()[i];
      p.reset();
      EXPECT_LE(datagrams[i].bytes.size(), kMaxDatagram);
      if (!datagrams[i].bytes.empty())
        std::memcpy(p.data(), datagrams[i].bytes.data(), datagrams[i].bytes.size());
      p.length = static_cast<uint32_t>(datagrams[i].bytes.size());
      p.endpoint = datagrams[i].source;
    }
    std::span<Packet> pkts = arena.packets().first(datagrams.size());
    to.device.receive_burst(pkts, verdicts);
    for (size_t i = 0; i < datagrams.size(); ++i)
      if (verdicts[i] == Verdict::kPass)
        to.tunnel.emplace_back(pkts[i].data(), pkts[i].data() + pkts[i].length);
    drain_outbox(to);
    return verdicts;
  }
  Verdict receive(Node& to, const Datagram& d) { return receive(to, std::vector{d})[0]; }

  // Delivers everything in flight, and what that provokes, until quiet.
  // Returns the number of datagrams delivered.
  size_t pump() {
    size_t delivered = 0;
    for (int round = 0; !wire_.empty(); ++round) {
      if (round > 1000) {
        ADD_FAILURE() << "the network never went quiet";
        break;
      }
      std::deque<std::pair<const Node*, Datagram>> batch;
      batch.swap(wire_);
      std::vector<Datagram> to_a, to_b;
      for (auto& [from, d] : batch) {
        if (filter && filter(*from, d) == Fate::kDrop) continue;
        Node* to = owner(d.destination);
        if (!to) {
          lost.push_back(std::move(d));
          continue;
        }
        (to == &a ? to_a : to_b).push_back(std::move(d));
      }
      delivered += to_a.size() + to_b.size();
      if (!to_a.empty()) receive(a, to_a);
      if (!to_b.empty()) receive(b, to_b);
    }
    return delivered;
  }

  // Runs both devices' timers at the current time and transmits the result.
  void tick() {
    a.device.tick();
    drain_outbox(a);
    b.device.tick();
    drain_outbox(b);
  }

  // The event loop: moves the clock to each timer deadline up to `until`,
  // ticking and pumping at each, then to `until` itself (without a tick).
  void run_until(Nanos until) {
    for (int i = 0; i < 100000; ++i) {
      Nanos next = std::min(a.device.next_deadline(), b.device.next_deadline());
      if (next > until) break;
      if (next > clock.monotonic()) clock.advance(next - clock.monotonic());
      tick();
      pump();
    }
    if (until > clock.monotonic()) clock.advance(until - clock.monotonic());
  }
  void run_for(Nanos d) { run_until(clock.monotonic() + d); }

  // The first packet from a to b: handshake and delivery. Afterwards both sides
  // have a confirmed session (a initiated it).
  void establish() {
    EXPECT_EQ(send(a, ipv4_packet(kTunA4, kTunB4, 60)), Verdict::kConsumed);
    pump();
    ASSERT_NE(peer_of(a)->current, nullptr);
    ASSERT_NE(peer_of(b)->current, nullptr);
    a.tunnel.clear();
    b.tunnel.clear();
  }

  // How many datagrams matching `pred` `from` has put on the wire so far.
  template <typename Pred>
  size_t sent_where(const Node& from, Pred pred) const {
    return static_cast<size_t>(std::count_if(log.begin(), log.end(), [&](const LoggedDatagram& l) {
      return l.from == &from && pred(l.datagram);
    }));
  }
  // How many datagrams of this kind `from` has put on the wire so far.
  size_t sent(const Node& from, MessageType type) const {
    return sent_where(from, [type](const Datagram& d) { return d.is(type); });
  }
  size_t sent_keepalives(const Node& from) const {
    return sent_where(from, [](const Datagram& d) { return d.is_keepalive(); });
  }
  size_t sent_data(const Node& from) const {
    return sent_where(from, [](const Datagram& d) { return d.is_data(); });
  }
  // When `from` put datagrams matching `pred` on the wire.
  template <typename Pred>
  std::vector<Nanos> times(const Node& from, Pred pred) const {
    std::vector<Nanos> out;
    for (const LoggedDatagram& l : log)
      if (l.from == &from && pred(l.datagram)) out.push_back(l.at);
    return out;
  }
  std::vector<Nanos> times(const Node& from, MessageType type) const {
    return times(from, [type](const Datagram& d) { return d.is(type); });
  }
  // The datagrams `from` put on the wire, in order.
  std::vector<Datagram> sent_by(const Node& from) const {
    std::vector<Datagram> out;
    for (const LoggedDatagram& l : log)
      if (l.from == &from) out.push_back(l.datagram);
    return out;
  }
  // Puts what a device left in its outbox (after a direct call on it, e.g.
  // set_persistent_keepalive) on the wire.
  void flush(Node& n) { drain_outbox(n); }
  size_t in_flight() const { return wire_.size(); }
  void discard_in_flight() { wire_.clear(); }

 private:
  Node* owner(const Endpoint& ep) {
    for (Node* n : {&a, &b})
      if (std::find(n->addresses.begin(), n->addresses.end(), ep) != n->addresses.end()) return n;
    return nullptr;
  }

  void transmit(Node& from, Bytes bytes, const Endpoint& to) {
    Datagram d{std::move(bytes), from.source, to};
    log.push_back({&from, d, clock.monotonic()});
    wire_.emplace_back(&from, std::move(d));
  }

  void drain_outbox(Node& n) {
    for (Packet& p : n.device.outbox()) {
      EXPECT_TRUE(p.endpoint.valid());
      transmit(n, Bytes(p.data(), p.data() + p.length), p.endpoint);
    }
    n.device.clear_outbox();
  }

  std::deque<std::pair<const Node*, Datagram>> wire_;
};

// ------------------------------------------------------------------ crafting

// An initiation from `from` to the peer with public key `to`, made with the
// noise functions directly (not through a Device), so a test controls its
// timestamp; MACs from `maker` (mac2 only when it holds a cookie).
inline Bytes craft_initiation(const crypto::Key& from_private, const crypto::Key& to_public,
                              Nanos wall, Nanos now, CookieMaker& maker, uint32_t index = 7) {
  StaticIdentity id;
  id.set(from_private);
  Handshake hs;
  hs.remote_static = to_public;
  EXPECT_TRUE(hs.precompute(id));
  MessageInitiation msg;
  EXPECT_TRUE(noise_create_initiation(msg, hs, id, index, wall));
  Bytes out(sizeof(msg));
  std::memcpy(out.data(), &msg, sizeof(msg));
  maker.add_macs(out, mac1_offset<MessageInitiation>(), now);
  hs.clear_session();
  id.clear();
  return out;
}

inline Bytes craft_initiation(const crypto::Key& from_private, const crypto::Key& to_public,
                              Nanos wall, Nanos now, uint32_t index = 7) {
  CookieMaker maker;
  maker.set_peer_public_key(to_public);
  return craft_initiation(from_private, to_public, wall, now, maker, index);
}

// A transport datagram encrypted with `kp`'s send key at `counter`, carrying
// `plain` (not padded), as the peer on the other end of kp would receive it.
inline Bytes craft_transport(const Keypair& kp, uint64_t counter, const Bytes& plain) {
  Bytes out(kTransportHeaderSize + plain.size() + kTagSize);
  store_le32(out.data(), static_cast<uint32_t>(MessageType::kTransport));
  store_le32(out.data() + 4, kp.remote_index);
  store_le64(out.data() + 8, counter);
  crypto::aead_seal(out.data() + kTransportHeaderSize, plain.data(), plain.size(), counter,
                    kp.send_key, {});
  return out;
}

// ------------------------------------------------------------------ counters

// The drop reasons whose counts differ between two snapshots, as "name+n" text,
// so a failure names every reason that moved.
inline std::string drop_changes(const Counters& before, const Counters& after) {
  std::string out;
  for (size_t i = 0; i < static_cast<size_t>(Drop::kCount); ++i) {
    if (before.drops[i] == after.drops[i]) continue;
    if (!out.empty()) out += ' ';
    out += drop_name(static_cast<Drop>(i));
    out += '+';
    out += std::to_string(after.drops[i] - before.drops[i]);
  }
  return out;
}

}  // namespace faraday::dataplane::testing
