// config.h: an interface's configuration as values: a change to apply
// (ConfigUpdate, what `wg set` and the cluster control thread ask for) and a
// snapshot of the state (DeviceState, what `wg show` prints). Plain data, no
// parsing: control/uapi.h turns the UAPI's text into and out of these, and
// Pipeline::apply()/state() (pipeline.h) apply and read them on the data
// path's thread. Callable from any thread; they are only values.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "crypto/keys.h"
#include "dataplane/net.h"

namespace faraday::dataplane {

// One peer's part of a change ("public_key=..." section of a UAPI set).
struct PeerUpdate {
  crypto::Key public_key{};
  bool remove = false;
  bool update_only = false;
  std::optional<crypto::Key> preshared_key;  // all-zero key = clear it
  std::optional<Endpoint> endpoint;
  std::optional<uint16_t> persistent_keepalive;  // seconds, 0 = off
  bool replace_allowed_ips = false;
  std::vector<Prefix> allowed_ips;  // masked to their cidr
};

struct ConfigUpdate {
  std::optional<crypto::Key> private_key;  // all-zero = clear
  std::optional<uint16_t> listen_port;     // 0 = let the kernel pick
  std::optional<uint32_t> fwmark;          // 0 = clear
  bool replace_peers = false;
  std::vector<PeerUpdate> peers;  // in request order; a key may appear more than once
};

// Why a ConfigUpdate could not be applied (e.g. the listen port is taken).
struct ApplyError {
  int errno_value = 0;
  std::string message;  // for logs; never contains key material
};

struct PeerState {
  crypto::Key public_key{};
  crypto::Key preshared_key{};
  std::optional<Endpoint> endpoint;
  uint16_t persistent_keepalive = 0;
  std::vector<Prefix> allowed_ips;
  int64_t last_handshake_sec = 0, last_handshake_nsec = 0;  // 0/0 = never
  uint64_t rx_bytes = 0, tx_bytes = 0;
};

struct DeviceState {
  std::optional<crypto::Key> private_key;  // omitted from the UAPI reply when unset or zero
  uint16_t listen_port = 0;                // omitted when 0
  uint32_t fwmark = 0;                     // omitted when 0
  std::vector<PeerState> peers;
};

}  // namespace faraday::dataplane
