// cluster.h: `faradayd cluster`, a member of a Faraday cluster (DESIGN.md,
// "faradayd control thread" and "Failure model").
//
// Two threads. The data path (interface.h: dataplane/data_path.h) moves packets between the TUN
// interface and the UDP socket on its own thread, or, with dataplane = "dpdk",
// between a TAP and a NIC it drives itself (dpdk_standalone.h); farad and the
// links use the host's network either way. The control thread runs an
// io_context with everything else:
// - the connection to farad (farad_client.h): join with this node's NodeInfo,
//   heartbeat when idle, reconnect with backoff and jitter, resync after a
//   farad restart; every pushed member becomes a WireGuard peer (programmed
//   into the data path through its lock-free command ring), routes for its
//   allowed IPs (netlink), and a link;
// - the links to the other members (links.h), pinged at ping-interval;
// - the silence rule (peer_health.h, sans-IO): a member not heard on its link
//   for `silence` is reported to farad with Query, again every ping-interval
//   while it stays silent. It is removed only when farad answers ABSENT; on
//   PRESENT, UNKNOWN or when farad cannot be asked it is kept. A removed
//   member that joins again is pushed by farad and added again;
// - the local control socket (ctl_server.h, proto/ctl.h): `status` and `query NAME`;
// - trust: a Removal pushed by farad (a member revoked, or its certificate
//   expired) removes that peer at once, the one removal that does not wait
//   for silence; SIGHUP re-reads the TLS files and closes links whose peer
//   certificate no longer verifies (links.h);
// - signals: SIGTERM/SIGINT leave the cluster (Leave to farad, at most 2 s),
//   close the links and remove the interface; SIGUSR1 logs the counters;
//   SIGHUP reloads the TLS files.
#pragma once

#include "control/cluster_settings.h"

namespace faraday::control {

// Runs until stopped; returns the process exit code (0 after a clean stop, 1
// when something could not be set up, with the reason logged).
int run_cluster(const ClusterOptions& options);

}  // namespace faraday::control
