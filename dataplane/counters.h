// counters.h: every reason the core drops a datagram or packet, and the counters
// that record them. The counters are the metrics: each drop increments exactly
// one reason.
//
// Threading: each set of counters has one writer at a time (a worker, or the
// handshake context; a port's counters pass from thread to thread with the
// queue's turn, which orders each writer after the last) and may be read by
// any thread at any time (the control thread sums them for status and logs).
// Each Counter is a relaxed atomic written with a plain load and store, so the
// writer pays no locked instruction and a reader sees every value whole.
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace faraday::dataplane {

enum class Drop : uint8_t {
  // Any message from the network.
  kTooShort,     // shorter than the smallest message
  kUnknownType,  // type byte not 1..4, or reserved bytes not zero
  kBadSize,      // handshake message of the wrong length
  // Handshake messages (initiation, response, cookie reply).
  kBadMac1,             // mac1 does not verify: not for us, or garbage
  kCookieSent,          // under load without a valid mac2: answered with a cookie reply
  kRateLimited,         // per-source handshake rate limit exceeded
  kHandshakeDecrypt,    // static, timestamp or empty payload failed to authenticate
  kUnknownPeer,         // initiation from a public key we don't have
  kReplayedTimestamp,   // TAI64N not newer than the last one from that peer
  kInitiationFlood,     // initiations from one peer faster than every 20 ms
  kUnexpectedResponse,  // response or cookie reply for no handshake in flight
  kBadCookieReply,      // cookie reply that fails to decrypt
  kNoPrivateKey,        // handshake while this device has no private key
  // Transport data.
  kUnknownIndex,      // receiver index matches no live keypair
  kDecryptFailed,     // AEAD tag does not verify
  kReplayDuplicate,   // counter already seen
  kReplayTooOld,      // counter behind the anti-replay window
  kKeypairExpired,    // keypair older than REJECT_AFTER_TIME or past REJECT_AFTER_MESSAGES
  kBadInnerPacket,    // decrypted payload is not a well-formed IPv4/IPv6 packet
  kSourceNotAllowed,  // inner source address not in the sending peer's allowed IPs
  // Tunnel side (packets to send).
  kNoRoute,         // destination matches no peer's allowed IPs
  kNoEndpoint,      // peer has no known endpoint yet
  kStagedOverflow,  // too many packets waiting for a handshake; oldest dropped
  kTooBig,          // inner packet larger than a datagram can carry
  kOutboxFull,      // generated message had nowhere to go this round
  // Between a worker and the handshake context.
  kHandoffFull,  // a worker's ring to the handshake context was full: message dropped
  kCount,
};

const char* drop_name(Drop reason);

// One counter: one writer at a time, any reader (see the top of this file).
class Counter {
 public:
  Counter() = default;
  Counter(uint64_t v) : v_(v) {}  // NOLINT: a Counter stands for its value
  Counter(const Counter& o) : v_(o.get()) {}
  Counter& operator=(const Counter& o) {
    v_.store(o.get(), std::memory_order_relaxed);
    return *this;
  }
  operator uint64_t() const { return get(); }  // NOLINT
  uint64_t get() const { return v_.load(std::memory_order_relaxed); }
  // The writer's increments: not atomic read-modify-writes (one writer).
  Counter& operator++() { return *this += 1; }
  Counter& operator+=(uint64_t n) {
    v_.store(get() + n, std::memory_order_relaxed);
    return *this;
  }

 private:
  std::atomic<uint64_t> v_{0};
};

// The sum of counters each written by its own thread (one per queue, lcore...).
inline uint64_t total(const std::vector<Counter>& counters) {
  uint64_t sum = 0;
  for (const Counter& c : counters) sum += c;
  return sum;
}

struct Counters {
  std::array<Counter, static_cast<size_t>(Drop::kCount)> drops{};
  Counter rx_datagrams;  // datagrams handed to the core
  Counter rx_data;       // transport packets decrypted and accepted
  Counter tx_data;       // transport packets encrypted
  Counter handshakes_completed;
  Counter cookies_sent;

  void drop(Drop reason) { ++drops[static_cast<size_t>(reason)]; }
  uint64_t dropped(Drop reason) const { return drops[static_cast<size_t>(reason)]; }
  uint64_t dropped_total() const;
  // Adds every counter of o into this one (this one's writer only).
  Counters& operator+=(const Counters& o);
};

// "rx_datagrams=3 rx_data=2 tx_data=2 handshakes=1 cookies_sent=0 dropped=1
// bad_mac=1": every counter, the drop reasons that are not zero by name; the
// daemons' "stats:" log line, which scripts read.
std::string stats_text(const Counters& c);

}  // namespace faraday::dataplane
