#include "dataplane/counters.h"

namespace faraday::dataplane {

const char* drop_name(Drop reason) {
  switch (reason) {
    case Drop::kTooShort:
      return "too_short";
    case Drop::kUnknownType:
      return "unknown_type";
    case Drop::kBadSize:
      return "bad_size";
    case Drop::kBadMac1:
      return "bad_mac1";
    case Drop::kCookieSent:
      return "cookie_sent";
    case Drop::kRateLimited:
      return "rate_limited";
    case Drop::kHandshakeDecrypt:
      return "handshake_decrypt";
    case Drop::kUnknownPeer:
      return "unknown_peer";
    case Drop::kReplayedTimestamp:
      return "replayed_timestamp";
    case Drop::kInitiationFlood:
      return "initiation_flood";
    case Drop::kUnexpectedResponse:
      return "unexpected_response";
    case Drop::kBadCookieReply:
      return "bad_cookie_reply";
    case Drop::kNoPrivateKey:
      return "no_private_key";
    case Drop::kUnknownIndex:
      return "unknown_index";
    case Drop::kDecryptFailed:
      return "decrypt_failed";
    case Drop::kReplayDuplicate:
      return "replay_duplicate";
    case Drop::kReplayTooOld:
      return "replay_too_old";
    case Drop::kKeypairExpired:
      return "keypair_expired";
    case Drop::kBadInnerPacket:
      return "bad_inner_packet";
    case Drop::kSourceNotAllowed:
      return "source_not_allowed";
    case Drop::kNoRoute:
      return "no_route";
    case Drop::kNoEndpoint:
      return "no_endpoint";
    case Drop::kStagedOverflow:
      return "staged_overflow";
    case Drop::kTooBig:
      return "too_big";
    case Drop::kOutboxFull:
      return "outbox_full";
    case Drop::kCount:
      break;
  }
  return "?";
}

uint64_t Counters::dropped_total() const {
  uint64_t total = 0;
  for (uint64_t n : drops) total += n;
  return total;
}

}  // namespace faraday::dataplane
