// udp_port.h: the portable underlay, WireGuard datagrams over one kernel UDP socket,
// moved in bursts with recvmmsg/sendmmsg.
//
// The socket is dual-stack ([::]:port with IPV6_V6ONLY=0), so v4 and v6 peers share
// one port; v4 sources arrive as AF_INET endpoints (v4-mapped addresses are
// normalised). Without IPv6 it falls back to an AF_INET socket, and v6 destinations
// are then dropped and counted.
//
// Threads: recv_burst() and send_burst() may run concurrently on two threads (the
// kernel socket is thread-safe and each writes only its own counters); each is
// called by one thread at a time (a thread that takes it over learns what the
// last one did through a lock or an acquire, as turns.h hands a queue on).
// counters() may be read on any thread.
//
// Offloads (open(port, offload = true); offloads() says what is on and why not):
// - GSO send: send_burst() packs consecutive packets to one endpoint, all of one
//   length but the last (which may be shorter), into one message with a UDP_SEGMENT
//   cmsg, at most kGsoMaxSegments / kMaxDatagram bytes per message, one iovec per
//   packet (no copy); several such messages still go in one sendmmsg. A message the
//   kernel refuses is resent one datagram each; EIO (a device without checksum
//   offload) also turns GSO off on this port for good, and offloads() says why.
// - GRO receive: with UDP_GRO on, the kernel may hand one "super-datagram" of up to
//   64 KiB, cut every gso_size bytes (the UDP_GRO cmsg). recv_burst() then receives
//   into the port's own stage (up to kGroStageMessages slots of 64 KiB, so a
//   super-datagram is never truncated whatever the caller's slot size) and copies
//   each segment into its own caller slot at kHeadroom, in order, with the source
//   endpoint. Segments that do not fit the caller's span stay staged and come first
//   in the next call: nothing is lost and order is kept. pending() tells a caller
//   that staged segments remain (the socket may then not poll readable). A segment
//   larger than the caller's slot is dropped and counted rx_truncated, as without
//   GRO. The cost is one memcpy per datagram; without GRO, datagrams land directly in
//   the caller's slots as before.
//
// Several sockets on one port (UdpPortGroup, for N workers that each poll their
// own socket): SO_REUSEPORT lets N sockets bind the same [::]:port, and the
// kernel hands each incoming datagram to one of them by a hash of its 4-tuple,
// so one peer endpoint always lands on the same socket (one peer is one
// worker's; spreading needs many peers or endpoints). Each member is an
// ordinary UdpPort (its own fd, GRO stage and counters); sending from any of
// them leaves from the same port, so peers see one endpoint. Closing a member
// reshuffles the hash over the others, and what was queued on it is lost: the
// group is opened and replaced as a whole. See UdpPortGroup for the port choice
// and what SO_REUSEPORT lets other processes do.
// TODO(pktinfo): sticky source addresses (IP_PKTINFO / IPV6_RECVPKTINFO) so replies
// leave from the address the peer wrote to on multi-homed hosts.
#pragma once

#include <sys/socket.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "dataplane/counters.h"
#include "dataplane/packet.h"
#include "result.h"

namespace faraday::dataplane {

struct UdpPortCounters {
  // receive side (written by recv_burst)
  Counter rx_packets;
  Counter rx_bytes;
  Counter rx_truncated;     // larger than the packet's slot: dropped
  Counter rx_errors;        // recvmmsg failed with something other than EAGAIN
  Counter rx_gro_super;     // messages the kernel coalesced (more than one segment)
  Counter rx_gro_segments;  // datagrams those messages held (rx_packets counts each)
  // send side (written by send_burst)
  Counter tx_packets;
  Counter tx_bytes;
  Counter tx_invalid_endpoint;  // AF_UNSPEC, port 0, or v6 on a v4-only socket
  Counter tx_errors;            // per-datagram failures (EMSGSIZE, ENETUNREACH, ...)
  Counter tx_full;              // send_burst stopped early on EAGAIN/ENOBUFS
  Counter tx_gso_messages;      // messages sent with UDP_SEGMENT (two datagrams or more)
  Counter tx_gso_segments;      // datagrams those messages carried (tx_packets counts each)
  Counter tx_gso_fallbacks;     // GSO messages refused and resent one datagram each

  UdpPortCounters& operator+=(const UdpPortCounters& o);  // the sockets of one group
};

// The kernel's limits for one UDP_SEGMENT message (UDP_MAX_SEGMENTS in the kernel's
// include/linux/udp.h; the payload must also fit one IP packet).
inline constexpr size_t kGsoMaxSegments = 64;
// Messages recvmmsg fetches into the GRO stage at most per call.
inline constexpr size_t kGroStageMessages = kBurstSize;

class UdpPort {
 public:
  // Binds [::]:port (port 0 = the kernel picks; see port()). Non-blocking,
  // close-on-exec, large SO_RCVBUF/SO_SNDBUF (the *FORCE variants when permitted).
  // The error names the failing step and errno. offload: try UDP GSO and GRO (see
  // the top); false keeps one datagram per message both ways (tests, benches).
  static Result<UdpPort> open(uint16_t port, bool offload = true);

  UdpPort(UdpPort&& other) noexcept;
  UdpPort& operator=(UdpPort&& other) noexcept;
  UdpPort(const UdpPort&) = delete;
  UdpPort& operator=(const UdpPort&) = delete;
  ~UdpPort();

  int fd() const { return fd_; }
  uint16_t port() const { return port_; }
  bool dual_stack() const { return v6_; }  // false: AF_INET fallback
  bool gso() const { return gso_off_.what.load(std::memory_order_acquire) == nullptr; }
  bool gro() const { return gro_off_.what == nullptr; }
  // "UDP GSO+GRO", "UDP GRO; GSO off: <reason>", ...: for the start-up log line.
  std::string offloads() const;
  // GRO only: segments of a received super-datagram are staged for the next call.
  bool pending() const;

  // The segment size of a received message of len bytes: the UDP_GRO cmsg's
  // gso_size when it is in (0, len), else len (one datagram). Defensive: a missing,
  // short, zero or oversized cmsg means one datagram.
  static uint32_t gro_segment_size(const msghdr& h, uint32_t len);

  // Receives up to pkts.size() datagrams without blocking. For each: payload at
  // base + kHeadroom (offset = kHeadroom), length set, endpoint = source. Returns the
  // number filled (0 if nothing is ready). With GRO, super-datagrams are split into
  // one slot per datagram (see the top).
  size_t recv_burst(std::span<Packet> pkts);

  // Sends each packet's payload to its endpoint without blocking. Returns how many
  // packets from the front were consumed: handed to the kernel, or dropped and
  // counted (invalid endpoint, per-datagram error). A result below pkts.size() means
  // the socket buffer is full (EAGAIN/ENOBUFS): pkts[result..] were not sent, and
  // the caller may retry them later or drop them.
  size_t send_burst(std::span<Packet> pkts);

  // SO_MARK (the fwmark, for policy routing); 0 clears it. Needs CAP_NET_ADMIN.
  Status set_mark(uint32_t mark);

  const UdpPortCounters& counters() const { return counters_; }

 private:
  friend class UdpPortGroup;
  // Takes a bound socket: buffers, port (getsockname), offloads. Closes fd on error.
  static Result<UdpPort> adopt(int fd, bool v6, bool offload);

  struct GroStage;  // the GRO receive stage (udp_port.cpp)
  // Why an offload is off: a step (a string literal) and its errno; what == nullptr
  // means on. GSO can be turned off by the sending thread while the owner reads.
  struct OffReason {
    std::atomic<const char*> what{nullptr};
    std::atomic<int> err{0};
    void set(const char* w, int e) {
      err.store(e, std::memory_order_relaxed);
      what.store(w, std::memory_order_release);
    }
  };

  UdpPort(int fd, uint16_t port, bool v6);
  void probe_offloads(bool offload);
  // Sends pkts (all with valid endpoints); returns how many were consumed. gso:
  // pack runs into UDP_SEGMENT messages.
  size_t send_run(std::span<Packet> pkts, bool gso);
  // A GSO message the kernel refused with err: resend its packets one each.
  size_t send_fallback(std::span<Packet> pkts, int err);
  size_t recv_direct(std::span<Packet> pkts);
  size_t recv_gro(std::span<Packet> pkts);
  bool refill_stage(size_t want);
  size_t drain_stage(std::span<Packet> pkts);

  int fd_ = -1;
  uint16_t port_ = 0;
  bool v6_ = false;
  OffReason gso_off_;
  OffReason gro_off_;
  std::unique_ptr<GroStage> stage_;  // set while GRO is on
  UdpPortCounters counters_;
};

// N UdpPorts bound to one port with SO_REUSEPORT, one per worker.
//
// The port. A probe socket without SO_REUSEPORT binds it first and is closed
// again before the members bind: a port that anyone holds, with or without
// SO_REUSEPORT, is refused with the error a single UdpPort gives ("bind [::]:P:
// Address already in use"), and port 0 gets a port no one holds. Without the
// probe, a member bound to port 0 with SO_REUSEPORT may be given a port that a
// reuseport socket of the same user already has, and silently join its group
// (the kernel treats such a port as free for port 0). The members then bind the
// probe's port; for port 0, a port taken in between is tried again.
//
// The risk. Linux lets any later socket with SO_REUSEPORT join the group when it
// binds the same address and port in the same network namespace under the same
// effective UID (for faradayd that is usually root), and then it receives its
// share of the datagrams (which it cannot decrypt: a loss, not a leak). Nothing
// here stops that once the group is bound; the probe only keeps us from joining
// someone else's. Possible hardening, not done: a reuseport BPF program
// (SO_ATTACH_REUSEPORT_EBPF with a REUSEPORT_SOCKARRAY of our own sockets) picks
// only members we put in the map, so an intruder gets nothing; a classic BPF
// program or SO_INCOMING_CPU would instead steer by the receiving CPU, keeping a
// flow on the core its NIC queue interrupts (worth it with one worker per core
// and matching IRQ affinity).
//
// One socket (count 1) is a plain UdpPort::open(): no SO_REUSEPORT, no probe,
// the same errors as before.
//
// Threads: as UdpPort, per member; open/reopen/set_mark from the owner.
class UdpPortGroup {
 public:
  // As many as workers (crypto::kMaxLanes); each member with GRO has its own
  // 4 MiB stage.
  static constexpr size_t kMaxSockets = 64;

  // count sockets (1 to kMaxSockets) on [::]:port (port 0: the kernel picks one
  // port for all), each as UdpPort::open(port, offload) would make it.
  static Result<UdpPortGroup> open(uint16_t port, size_t count, bool offload = true);

  // A port change (wg set listen-port): a complete new group of the same size and
  // offload choice on port. This group is untouched and keeps receiving until the
  // caller, its workers quiet, replaces it with the result; on error nothing
  // changed. Both ports are bound in between. port == port() is refused (the port
  // is in use, by this group); the fwmark is the caller's to set again.
  Result<UdpPortGroup> reopen(uint16_t port) const;

  // SO_MARK on every member; the first error (the others are still tried).
  Status set_mark(uint32_t mark);

  size_t size() const { return ports_.size(); }
  UdpPort& operator[](size_t i) { return ports_[i]; }
  const UdpPort& operator[](size_t i) const { return ports_[i]; }
  std::span<UdpPort> ports() { return ports_; }
  std::span<const UdpPort> ports() const { return ports_; }
  uint16_t port() const { return port_; }
  bool dual_stack() const { return v6_; }
  bool reuseport() const { return ports_.size() > 1; }

 private:
  UdpPortGroup() = default;

  std::vector<UdpPort> ports_;
  uint16_t port_ = 0;
  bool v6_ = false;
  bool offload_ = true;
};

}  // namespace faraday::dataplane
