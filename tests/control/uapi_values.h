// uapi_values.h: the values the UAPI tests write requests and expectations
// with: a key filled with one byte (and its hex, as wg(8) sends it), a prefix
// and an endpoint from text, and a sample device state. Shared by uapi_test.cpp and
// uapi_server_test.cpp.
#pragma once

#include <cstdint>
#include <string>

#include "control/uapi.h"
#include "crypto/keys.h"
#include "dataplane/net.h"

namespace faraday::control::uapi::test_values {

inline crypto::Key key_of(uint8_t fill) {
  crypto::Key k;
  k.fill(fill);
  return k;
}
inline std::string hex_of(uint8_t fill) {
  return crypto::to_hex(key_of(fill));
}
inline dataplane::Prefix prefix(const char* text) {
  return *dataplane::Prefix::parse(text);
}
inline dataplane::Endpoint endpoint(const char* text) {
  return *dataplane::Endpoint::parse(text);
}

// A device with a private key, a port and two peers (one with every field set):
// what the fake device behind the server reports and what format_get prints.
inline DeviceState sample_state() {
  DeviceState s;
  s.private_key = key_of(0x11);
  s.listen_port = 51820;
  PeerState a;
  a.public_key = key_of(0x22);
  a.preshared_key = key_of(0x33);
  a.endpoint = endpoint("192.0.2.1:51820");
  a.persistent_keepalive = 25;
  a.allowed_ips = {prefix("10.0.0.0/24"), prefix("fd00::/64")};
  a.last_handshake_sec = 1700000000;
  a.last_handshake_nsec = 123456789;
  a.rx_bytes = 1000;
  a.tx_bytes = 2000;
  PeerState b;
  b.public_key = key_of(0x44);
  b.endpoint = endpoint("[2001:db8::2]:1234");
  s.peers = {a, b};
  return s;
}

}  // namespace faraday::control::uapi::test_values
