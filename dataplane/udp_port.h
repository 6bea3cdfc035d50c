// udp_port.h: the portable underlay, WireGuard datagrams over one kernel UDP socket,
// moved in bursts with recvmmsg/sendmmsg.
//
// The socket is dual-stack ([::]:port with IPV6_V6ONLY=0), so v4 and v6 peers share
// one port; v4 sources arrive as AF_INET endpoints (v4-mapped addresses are
// normalised). Without IPv6 it falls back to an AF_INET socket, and v6 destinations
// are then dropped and counted.
//
// Threads: one owner. recv_burst() and send_burst() may run concurrently on two
// threads (the kernel socket is thread-safe and each writes only its own counters),
// but each of them from one thread only; read counters from the owner.
//
// TODO(gso): UDP GSO (UDP_SEGMENT) on send and GRO (UDP_GRO) on receive, so a burst
// to one peer becomes one super-datagram. Needs a packet layout with a segment size;
// not done yet.
// TODO(pktinfo): sticky source addresses (IP_PKTINFO / IPV6_RECVPKTINFO) so replies
// leave from the address the peer wrote to on multi-homed hosts.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

#include "dataplane/packet.h"
#include "result.h"

namespace faraday::dataplane {

struct UdpPortCounters {
  // receive side (written by recv_burst)
  uint64_t rx_packets = 0;
  uint64_t rx_bytes = 0;
  uint64_t rx_truncated = 0;  // larger than the packet's slot: dropped
  uint64_t rx_errors = 0;     // recvmmsg failed with something other than EAGAIN
  // send side (written by send_burst)
  uint64_t tx_packets = 0;
  uint64_t tx_bytes = 0;
  uint64_t tx_invalid_endpoint = 0;  // AF_UNSPEC, port 0, or v6 on a v4-only socket
  uint64_t tx_errors = 0;            // per-datagram failures (EMSGSIZE, ENETUNREACH, ...)
  uint64_t tx_full = 0;              // send_burst stopped early on EAGAIN/ENOBUFS
};

class UdpPort {
 public:
  // Binds [::]:port (port 0 = the kernel picks; see port()). Non-blocking,
  // close-on-exec, large SO_RCVBUF/SO_SNDBUF (the *FORCE variants when permitted).
  // The error names the failing step and errno.
  static Result<UdpPort> open(uint16_t port);

  UdpPort(UdpPort&& other) noexcept;
  UdpPort& operator=(UdpPort&& other) noexcept;
  UdpPort(const UdpPort&) = delete;
  UdpPort& operator=(const UdpPort&) = delete;
  ~UdpPort();

  int fd() const { return fd_; }
  uint16_t port() const { return port_; }
  bool dual_stack() const { return v6_; }  // false: AF_INET fallback

  // Receives up to pkts.size() datagrams without blocking. For each: payload at
  // base + kHeadroom (offset = kHeadroom), length set, endpoint = source. Returns the
  // number filled (0 if nothing is ready).
  size_t recv_burst(std::span<Packet> pkts);

  // Sends each packet's payload to its endpoint without blocking. Returns how many
  // packets from the front were consumed: handed to the kernel, or dropped and
  // counted (invalid endpoint, per-datagram error). A result below pkts.size() means
  // the socket buffer is full (EAGAIN/ENOBUFS): pkts[result..] were not sent, and
  // the caller may retry them later or drop them.
  size_t send_burst(std::span<Packet> pkts);

  const UdpPortCounters& counters() const { return counters_; }

 private:
  UdpPort(int fd, uint16_t port, bool v6) : fd_(fd), port_(port), v6_(v6) {}
  // Sends pkts (all with valid endpoints); returns how many were consumed.
  size_t send_run(std::span<Packet> pkts);

  int fd_ = -1;
  uint16_t port_ = 0;
  bool v6_ = false;
  UdpPortCounters counters_;
};

}  // namespace faraday::dataplane
