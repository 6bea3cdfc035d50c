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
// control thread; errors (result.h) name the cause.
#pragma once

#include <string>

#include "control/cluster_settings.h"
#include "crypto/keys.h"
#include "proto/farad.pb.h"
#include "result.h"

namespace faraday::control {

// The CN of the PEM certificate at `path`; an error if it is unreadable or
// carries no valid node name.
Result<std::string> certificate_file_name(const std::string& path);

// This node's announcement (without its name: farad fills that in from the
// certificate); an error if it cannot be built or is invalid.
Result<proto::NodeInfo> build_announcement(const ClusterOptions& options,
                                           const crypto::Key& public_key);

}  // namespace faraday::control
