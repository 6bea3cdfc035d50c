// counters.h: every reason the core drops a datagram or packet, and the counters
// that record them. The counters are the metrics: each drop increments exactly
// one reason. Owned by one thread (the worker or handshake context that drops);
// read through a snapshot copy.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>

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
  kCount,
};

const char* drop_name(Drop reason);

struct Counters {
  std::array<uint64_t, static_cast<size_t>(Drop::kCount)> drops{};
  uint64_t rx_datagrams = 0;  // datagrams handed to the core
  uint64_t rx_data = 0;       // transport packets decrypted and accepted
  uint64_t tx_data = 0;       // transport packets encrypted
  uint64_t handshakes_completed = 0;
  uint64_t cookies_sent = 0;

  void drop(Drop reason) { ++drops[static_cast<size_t>(reason)]; }
  uint64_t dropped(Drop reason) const { return drops[static_cast<size_t>(reason)]; }
  uint64_t dropped_total() const;
};

}  // namespace faraday::dataplane
