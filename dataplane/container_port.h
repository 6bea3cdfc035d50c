// container_port.h: containers' interfaces on the kernel path. faradayd makes
// a TAP device for each container (control/containers.h), moves it into the
// container's network namespace and keeps its file descriptor: the container
// sees an Ethernet interface whose one neighbour is faradayd, its gateway, and
// every packet it sends reaches faradayd and nothing else.
//
//   ContainerTap: one container's TAP. read_burst() takes the container's
//   frames: ARP requests and neighbour solicitations are answered at once (as
//   a proxy for every address, inner_link.h), IP packets whose source is the
//   container's own address are handed on at kHeadroom, anything else is
//   dropped and counted (a container cannot send as another). deliver() writes
//   one IP packet to the container behind an Ethernet header.
//
//   ContainerTable: the node's container prefix and the taps in it, by
//   address. The pipeline publishes a new table whenever the set changes
//   (RCU: workers read it during a burst), so a decrypted packet whose
//   destination lies in the prefix goes to its container's TAP, or is dropped
//   when no container holds that address; any other destination goes to the
//   host's TUN as before.
//
// Threads: read_burst() on the pipeline's thread only; deliver(), the
// counters, gone() and the table's lookups on any thread (a TAP's write()
// is the kernel's to serialise).
#pragma once

#include <poll.h>

#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "dataplane/counters.h"
#include "dataplane/device_config.h"
#include "dataplane/inner_link.h"
#include "dataplane/net.h"
#include "dataplane/packet.h"

namespace faraday::dataplane {

class ContainerTap {
 public:
  // Why a frame or packet was not passed on (beside InnerLink's reasons).
  enum class Drop : uint8_t {
    kNotOwnSource,  // an IP packet whose source is not the container's address
    kTruncated,     // shorter than its IP header
    kTooLarge,      // larger than the slot: the container's MTU was raised
    kReadError,     // read() failed with something other than EAGAIN
    kCount,
  };
  struct Counters {
    std::atomic<uint64_t> rx_frames{0};   // read from the container
    std::atomic<uint64_t> rx_packets{0};  // IP packets handed on
    std::atomic<uint64_t> rx_bytes{0};
    std::array<std::atomic<uint64_t>, static_cast<size_t>(Drop::kCount)> drops{};
    std::atomic<uint64_t> tx_packets{0};  // written to the container
    std::atomic<uint64_t> tx_bytes{0};
    std::atomic<uint64_t> tx_errors{0};  // write() refused (interface down, gone)
  };

  // fd: a TAP (IFF_TAP | IFF_NO_PI) opened non-blocking and close-on-exec,
  // now owned. name: the interface's name in the container's namespace, for
  // logs. address: the container's own address (a host prefix). ours:
  // faradayd's MAC address on the link. container: the TAP's own MAC address
  // (the container's side), where packets go until a frame says otherwise: a
  // container that only listens must get its first TCP segment unicast (its
  // kernel drops TCP sent to the broadcast address).
  ContainerTap(int fd, std::string name, Prefix address, MacAddress ours,
               MacAddress container = {});
  ~ContainerTap();
  ContainerTap(const ContainerTap&) = delete;
  ContainerTap& operator=(const ContainerTap&) = delete;

  int fd() const { return fd_; }
  const std::string& name() const { return name_; }
  const Prefix& address() const { return address_; }
  const MacAddress& mac() const { return ours_; }

  // Reads frames until EAGAIN or pkts is full (one read() each) and returns
  // how many IP packets were placed at the front of pkts (offset kHeadroom).
  // ARP and ND are answered on the spot. Sets gone() when the kernel
  // detached the TAP (its interface or its namespace was deleted).
  size_t read_burst(std::span<Packet> pkts);
  // Writes one IP packet (at p.offset, with at least kEthernetHeader bytes of
  // headroom, which it uses). False when the kernel refused it (counted).
  bool deliver(Packet& p);

  // The interface was deleted behind faradayd's back (or with its namespace).
  bool gone() const { return gone_.load(std::memory_order_acquire); }
  void set_gone() { gone_.store(true, std::memory_order_release); }

  const Counters& counters() const { return counters_; }
  const InnerLink::Counters& link_counters() const { return link_.counters(); }
  uint64_t dropped(Drop d) const {
    return counters_.drops[static_cast<size_t>(d)].load(std::memory_order_relaxed);
  }

 private:
  void drop(Drop d) {
    counters_.drops[static_cast<size_t>(d)].fetch_add(1, std::memory_order_relaxed);
  }
  // Whether an IP packet of `length` bytes at `ip` comes from the container.
  bool own_source(const uint8_t* ip, size_t length);

  int fd_ = -1;
  std::string name_;
  Prefix address_;
  MacAddress ours_;
  std::atomic<uint64_t> learnt_{0};  // the container's MAC address (inner_link.h)
  InnerLink link_;
  std::atomic<bool> gone_{false};
  Counters counters_;
};

const char* to_string(ContainerTap::Drop d);

class ContainerTable {
 public:
  ContainerTable(Prefix prefix, std::vector<std::shared_ptr<ContainerTap>> taps);

  enum class Dst : uint8_t {
    kHost,       // not in the container prefix
    kContainer,  // the container's tap is in `tap`
    kNone,       // in the prefix, but no container holds the address
  };
  // The destination of the IP packet at p.data() (p.length bytes).
  Dst find(const Packet& p, ContainerTap*& tap) const;

  // What a data path does with a burst of `tap`'s packets (read_burst() into
  // pkts): packets to another container of the node are delivered to it,
  // those to a prefix address nobody holds are counted in `unknown` and
  // dropped; returns how many are left at the front of pkts, for the mesh.
  size_t from_container(ContainerTap& tap, std::span<Packet> pkts, Counter& unknown) const;
  // Decrypted packets: those to a container are delivered to it, those to a
  // prefix address nobody holds counted and dropped; returns how many are left
  // at the front of pkts, for the host.
  size_t divert(std::span<Packet> pkts, Counter& unknown) const;

  const Prefix& prefix() const { return prefix_; }
  const std::vector<std::shared_ptr<ContainerTap>>& taps() const { return taps_; }

 private:
  Prefix prefix_;
  std::vector<std::shared_ptr<ContainerTap>> taps_;
};

// The containers' side of a data path: the table its workers read (RCU:
// set() publishes a new one and frees the old after a grace period), and the
// TAPs' descriptors, polled by the loop of the handshake context.
class ContainerPorts {
 public:
  explicit ContainerPorts(uint32_t mtu) : rx_(kBurstSize, slot_size(mtu)) {}
  ~ContainerPorts() { table_.store(nullptr, std::memory_order_relaxed); }
  ContainerPorts(const ContainerPorts&) = delete;
  ContainerPorts& operator=(const ContainerPorts&) = delete;

  // The handshake context's thread. No prefix: no table, every packet is
  // the host's. readers: worker threads may hold the table (wait for them
  // before the old one goes).
  void set(std::optional<Prefix> prefix, std::vector<std::shared_ptr<ContainerTap>> taps,
           bool readers);
  // Where workers load the table (null: none).
  const std::atomic<const ContainerTable*>* table() const { return &table_; }

  // The loop: the descriptors of the TAPs still there, then, with poll's
  // revents on exactly those, serve(): each ready TAP's packets for the mesh
  // (a burst at a time) go to `to_mesh`, which seals and sends them; a TAP
  // the kernel detached is logged once and polled no more.
  void append_pollfds(std::vector<pollfd>& fds);
  void serve(std::span<const pollfd> fds, const std::function<void(std::span<Packet>)>& to_mesh,
             const LogSink& log);
  // Packets from a container to a prefix address nobody holds.
  uint64_t unknown() const { return unknown_; }

 private:
  std::unique_ptr<const ContainerTable> owned_;
  std::atomic<const ContainerTable*> table_{nullptr};
  std::vector<ContainerTap*> polled_;
  PacketArena rx_;
  Counter unknown_;
};

}  // namespace faraday::dataplane
