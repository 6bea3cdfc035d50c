// device_config.cpp: see device_config.h.
#include "dataplane/device_config.h"

#include <fmt/core.h>

#include <string>

#include "crypto/keys.h"

namespace faraday::dataplane {
namespace {

void say(const LogSink& log, LogLevel level, const std::string& line) {
  if (log) log(level, line);
}

void apply_peer(Device& dev, const PeerUpdate& ps, bool log_peers, const LogSink& log) {
  const std::string name = crypto::to_base64(ps.public_key);
  if (ps.remove) {
    if (log_peers && dev.find_peer(ps.public_key))
      say(log, LogLevel::kInfo, fmt::format("peer {} removed", name));
    dev.remove_peer(ps.public_key);
    return;
  }
  Peer* peer = dev.find_peer(ps.public_key);
  if (!peer) {
    if (ps.update_only) return;
    peer = dev.add_peer(ps.public_key);
    if (!peer) {
      say(log, LogLevel::kWarn,
          fmt::format("peer {} ignored: it is this interface's own public key", name));
      return;
    }
    if (log_peers) say(log, LogLevel::kInfo, fmt::format("peer {} added", name));
  }
  if (ps.preshared_key) dev.set_preshared_key(*peer, *ps.preshared_key);
  if (ps.endpoint) dev.set_endpoint(*peer, *ps.endpoint);
  if (ps.replace_allowed_ips) dev.clear_allowed_ips(*peer);
  for (const Prefix& prefix : ps.allowed_ips) dev.add_allowed_ip(*peer, prefix);
  if (ps.persistent_keepalive) dev.set_persistent_keepalive(*peer, *ps.persistent_keepalive);
}

}  // namespace

void apply_private_key(Device& dev, const ConfigUpdate& req, const LogSink& log) {
  if (!req.private_key) return;
  dev.set_private_key(crypto::is_zero(*req.private_key) ? std::nullopt : req.private_key);
  if (dev.identity().present)
    say(log, LogLevel::kInfo,
        fmt::format("private key set; public key {}",
                    crypto::to_base64(dev.identity().public_key)));
  else
    say(log, LogLevel::kInfo, "private key cleared");
}

void apply_peers(Device& dev, const ConfigUpdate& req, bool log_peers, const LogSink& log) {
  if (req.replace_peers) {
    dev.remove_all_peers();
    say(log, LogLevel::kInfo, "all peers removed");
  }
  for (const PeerUpdate& ps : req.peers) apply_peer(dev, ps, log_peers, log);
  dev.commit();
}

void apply_to_device(Device& dev, const ConfigUpdate& req, bool log_peers, const LogSink& log) {
  apply_private_key(dev, req, log);
  apply_peers(dev, req, log_peers, log);
}

DeviceState device_state(const Device& dev, uint16_t listen_port, uint32_t fwmark) {
  DeviceState s;
  if (dev.identity().present) s.private_key = dev.identity().private_key;
  s.listen_port = listen_port;
  s.fwmark = fwmark;
  for (const Peer* p : dev.peers()) {
    PeerState ps;
    ps.public_key = p->public_key;
    ps.preshared_key = p->handshake.preshared_key;
    if (p->endpoint.valid()) ps.endpoint = p->endpoint;
    ps.persistent_keepalive = p->persistent_keepalive;
    ps.allowed_ips = dev.allowed_ips(*p);
    ps.last_handshake_sec = p->last_handshake_wall / kSecond;
    ps.last_handshake_nsec = p->last_handshake_wall % kSecond;
    ps.rx_bytes = p->rx_bytes;
    ps.tx_bytes = p->tx_bytes;
    s.peers.push_back(std::move(ps));
  }
  return s;
}

}  // namespace faraday::dataplane
