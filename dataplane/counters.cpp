#include "dataplane/counters.h"

#include <fmt/core.h>

#include <array>

namespace faraday::dataplane {

const char* drop_name(Drop reason) {
  // In Drop's order; the size check makes a reason added without a name fail to build.
  static constexpr std::array<const char*, 26> kNames = {
      "too_short",         "unknown_type",        "bad_size",
      "bad_mac1",          "cookie_sent",         "rate_limited",
      "handshake_decrypt", "unknown_peer",        "replayed_timestamp",
      "initiation_flood",  "unexpected_response", "bad_cookie_reply",
      "no_private_key",    "unknown_index",       "decrypt_failed",
      "replay_duplicate",  "replay_too_old",      "keypair_expired",
      "bad_inner_packet",  "source_not_allowed",  "no_route",
      "no_endpoint",       "staged_overflow",     "too_big",
      "outbox_full",       "handoff_full"};
  static_assert(kNames.size() == static_cast<size_t>(Drop::kCount));
  auto i = static_cast<size_t>(reason);
  return i < kNames.size() ? kNames[i] : "?";
}

uint64_t Counters::dropped_total() const {
  uint64_t total = 0;
  for (uint64_t n : drops) total += n;
  return total;
}

std::string stats_text(const Counters& c) {
  std::string text =
      fmt::format("rx_datagrams={} rx_data={} tx_data={} handshakes={} cookies_sent={} dropped={}",
                  c.rx_datagrams, c.rx_data, c.tx_data, c.handshakes_completed, c.cookies_sent,
                  c.dropped_total());
  for (size_t i = 0; i < c.drops.size(); ++i)
    if (c.drops[i] != 0) text += fmt::format(" {}={}", drop_name(static_cast<Drop>(i)), c.drops[i]);
  return text;
}

Counters& Counters::operator+=(const Counters& o) {
  for (size_t i = 0; i < drops.size(); ++i) drops[i] += o.drops[i];
  rx_datagrams += o.rx_datagrams;
  rx_data += o.rx_data;
  tx_data += o.tx_data;
  handshakes_completed += o.handshakes_completed;
  cookies_sent += o.cookies_sent;
  return *this;
}

}  // namespace faraday::dataplane
