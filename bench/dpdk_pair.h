// dpdk_pair.h: dpdk_bench's second part: two data paths (a Device and a
// dpdk::Lcore each, as faradayd on DPDK runs them) on two lcores, joined by an
// underlay "wire" of two rings (rte_eth_from_rings). The main lcore writes inner
// packets into a's inner port as fast as it takes them and runs a's lcore; lcore
// 1 runs b's and sinks what b delivers to its inner port. Nothing is set up in
// advance: the first packets resolve b's MAC and make the handshake (the clock
// stands still, so a lost one is not retried: the bench then says so and fails).
#pragma once

#include <string>

#include "crypto/aead_batch.h"
#include "dataplane/net.h"
#include "dataplane/underlay.h"

namespace faraday::bench {

// Needs an EAL started with lcores 0 and 1. Prints one line per size: what b
// delivered (Mpps, Gbit/s of inner bytes) and what was lost on the way.
// This node on a /24: `ep`'s IPv4 address and port, with `mac` (both parts of
// dpdk_bench use it).
dataplane::UnderlayAddress underlay(const dataplane::MacAddress& mac,
                                    const dataplane::Endpoint& ep);

void bench_pair(const std::string& backend, const crypto::AeadFactory& make, double seconds);

}  // namespace faraday::bench
