// announcement.h: who this node is and what it announces to farad.
//
//   - Its name is its certificate's subject CN, read the way farad reads it
//     (proto/tls.h), so the node knows its own name before it connects.
//   - Its NodeInfo: its WireGuard public key; the underlay endpoints from the
//     settings, or else the local address the kernel would use to reach farad
//     (no packet is sent) with the WireGuard port; its overlay address and
//     container prefix as allowed IPs; its control endpoint (the links'
//     listening address, or the first underlay address when that is
//     unspecified). The result passes proto::check_node_info.
//
// Plain functions, called once at start-up (and on SIGHUP for the name) on the
// control thread; errors come back as text naming the cause.
#pragma once

#include <optional>
#include <string>

#include "control/cluster_settings.h"
#include "crypto/keys.h"
#include "proto/farad.pb.h"

namespace faraday::control {

// The CN of the PEM certificate at `path`; nullopt and *error if unreadable
// or no valid node name.
std::optional<std::string> certificate_file_name(const std::string& path, std::string* error);

// This node's announcement (without its name: farad fills that in from the
// certificate); nullopt and *error if it cannot be built or is invalid.
std::optional<proto::NodeInfo> build_announcement(const ClusterOptions& options,
                                                  const crypto::Key& public_key,
                                                  std::string* error);

}  // namespace faraday::control
