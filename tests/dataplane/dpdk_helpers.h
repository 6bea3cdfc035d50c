// dpdk_helpers.h: what the DPDK tests (dpdk_port_test's program) share: rings,
// ports made from them, an IPv4 underlay address, and Ethernet frames.
#pragma once

#include <gtest/gtest.h>
#include <rte_eth_ring.h>
#include <rte_mbuf.h>
#include <rte_ring.h>
#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "dataplane/dpdk_port.h"
#include "dataplane/net.h"
#include "dataplane/underlay.h"

namespace faraday::dataplane::testing {

// The CPUs this program was given (by taskset, or CI) before the EAL pinned
// its main thread, and so every thread it starts, to the main lcore's CPU;
// recorded by the EAL environment's SetUp. Threads that stand for lcores of
// their own go back to these.
inline cpu_set_t& cpus_given() {
  static cpu_set_t set;
  return set;
}

// A vhost-user socket's path for this test program, removed with this
// object even when an assertion ends the test early.
struct SocketPath {
  explicit SocketPath(const std::string& tag)
      : path("/tmp/faraday-" + tag + "-" + std::to_string(getpid()) + ".sock") {}
  ~SocketPath() { unlink(path.c_str()); }
  SocketPath(const SocketPath&) = delete;
  SocketPath& operator=(const SocketPath&) = delete;
  const std::string path;
};

inline rte_ring* make_ring(const std::string& name) {
  rte_ring* r = rte_ring_create(name.c_str(), 1024, SOCKET_ID_ANY, RING_F_SP_ENQ | RING_F_SC_DEQ);
  EXPECT_NE(r, nullptr) << name;
  return r;
}

// A port that receives from `rx` and sends to `tx`, named net_ring_<name>
// (rte_eth_from_rings adds the prefix; the name must end in a digit).
inline std::unique_ptr<dpdk::Port> ring_port(const std::string& name, rte_ring* rx, rte_ring* tx) {
  EXPECT_GE(rte_eth_from_rings(name.c_str(), &rx, 1, &tx, 1, SOCKET_ID_ANY), 0) << name;
  Result<std::unique_ptr<dpdk::Port>> port = dpdk::Port::open({.device = "net_ring_" + name});
  EXPECT_TRUE(port) << port.error();
  return port ? std::move(*port) : nullptr;
}

// This node on a /24: `ep`'s IPv4 address and port, with `mac`.
inline UnderlayAddress underlay(const MacAddress& mac, const Endpoint& ep) {
  UnderlayAddress a;
  a.mac = mac;
  a.port = ep.port;
  UnderlayAddress::V4 v4;
  std::memcpy(v4.addr.data(), ep.addr.data(), 4);
  v4.prefix = 24;
  a.v4 = v4;
  return a;
}

// An mbuf from `pool` holding `bytes` (nullptr, and a test failure, if the
// pool is empty).
inline rte_mbuf* mbuf_with(rte_mempool* pool, const std::vector<uint8_t>& bytes) {
  rte_mbuf* m = rte_pktmbuf_alloc(pool);
  EXPECT_NE(m, nullptr);
  if (!m) return nullptr;
  std::memcpy(rte_pktmbuf_mtod(m, uint8_t*), bytes.data(), bytes.size());
  m->data_len = static_cast<uint16_t>(bytes.size());
  m->pkt_len = static_cast<uint32_t>(bytes.size());
  return m;
}

// Every mbuf waiting in `ring`, as bytes; the mbufs are freed.
inline std::vector<std::vector<uint8_t>> take_all(rte_ring* ring) {
  std::vector<std::vector<uint8_t>> got;
  void* m;
  while (rte_ring_dequeue(ring, &m) == 0) {
    auto* mbuf = static_cast<rte_mbuf*>(m);
    const uint8_t* d = rte_pktmbuf_mtod(mbuf, const uint8_t*);
    got.emplace_back(d, d + rte_pktmbuf_pkt_len(mbuf));
    rte_pktmbuf_free(mbuf);
  }
  return got;
}

// A DPDK application's side of a vhost-user socket: sends and receives frames
// on queue pair 0 of its virtio-user port.
struct VirtioApp {
  dpdk::Port& port;
  void send(const std::vector<uint8_t>& frame) {
    rte_mbuf* m = mbuf_with(port.pool(), frame);
    ASSERT_NE(m, nullptr);
    ASSERT_EQ(port.tx(0, &m, 1), 1);
  }
  std::vector<std::vector<uint8_t>> receive() {
    std::vector<std::vector<uint8_t>> got;
    rte_mbuf* m[32];
    const uint16_t n = port.rx(0, m, 32);
    for (uint16_t i = 0; i < n; ++i) {
      const uint8_t* d = rte_pktmbuf_mtod(m[i], const uint8_t*);
      got.emplace_back(d, d + rte_pktmbuf_pkt_len(m[i]));
      rte_pktmbuf_free(m[i]);
    }
    return got;
  }
};

// An Ethernet frame from `from` to `to` of EtherType `type` carrying `payload`.
inline std::vector<uint8_t> ethernet_frame(const MacAddress& to, const MacAddress& from,
                                           uint16_t type, const std::vector<uint8_t>& payload) {
  std::vector<uint8_t> f(kEthernetHeader + payload.size());
  std::memcpy(f.data(), to.data(), 6);
  std::memcpy(f.data() + 6, from.data(), 6);
  f[12] = static_cast<uint8_t>(type >> 8);
  f[13] = static_cast<uint8_t>(type);
  std::copy(payload.begin(), payload.end(), f.begin() + kEthernetHeader);
  return f;
}

}  // namespace faraday::dataplane::testing
