// standalone.h: `faradayd standalone IFNAME`, a drop-in for `wireguard-go -f
// IFNAME`. Creates the TUN interface, serves the cross-platform UAPI at
// /var/run/wireguard/IFNAME.sock for wg(8), and moves packets between the TUN
// device and a kernel UDP socket in bursts through the WireGuard core.
//
// One thread runs everything (event loop on poll(2)) except the AEAD, whose
// bursts --workers cores share (crypto/aead_parallel.h); it returns when asked to
// stop by SIGTERM/SIGINT, when the interface is deleted, or when the UAPI
// socket file is removed, and leaves nothing behind.
#pragma once

#include <cstdint>
#include <string>

namespace faraday::control {

struct StandaloneOptions {
  std::string ifname;
  uint32_t mtu = 1420;
  std::string aead_backend;        // empty: the fastest that passes its self-test
  unsigned workers = 0;            // cores sharing each burst's AEAD; 0: every CPU we may use
  uint32_t stats_interval_s = 10;  // drop counters logged at most this often, when they change
};

// Returns the process exit code.
int run_standalone(const StandaloneOptions& options);

}  // namespace faraday::control
