// device_config.h: a ConfigUpdate applied to a Device and its DeviceState read
// back (config.h), the part of `wg set` and `wg show` that does not depend on
// the ports: keys, peers, endpoints, allowed IPs, keepalives. The port's own
// settings (listen port, fwmark) are the caller's. Shared by the kernel-socket
// Pipeline (pipeline.h) and the DPDK interface.
//
// Threads: the Device's configuring thread (its handshake context).
#pragma once

#include <cstdint>
#include <functional>
#include <string_view>

#include "dataplane/config.h"
#include "dataplane/device.h"

namespace faraday::dataplane {

enum class LogLevel : uint8_t { kInfo, kWarn, kError };
using LogSink = std::function<void(LogLevel, std::string_view)>;

// The private key, if the request has one. A caller with port settings of its
// own applies them between this and apply_peers, as the kernel path does.
void apply_private_key(Device& dev, const ConfigUpdate& req, const LogSink& log);
// The peers (replace_peers first) and their settings, then commit(). log_peers:
// whether peers added and removed are logged (requests through the UAPI) or
// left to the caller, which knows their names.
void apply_peers(Device& dev, const ConfigUpdate& req, bool log_peers, const LogSink& log);
// Both.
void apply_to_device(Device& dev, const ConfigUpdate& req, bool log_peers, const LogSink& log);
DeviceState device_state(const Device& dev, uint16_t listen_port, uint32_t fwmark);

}  // namespace faraday::dataplane
