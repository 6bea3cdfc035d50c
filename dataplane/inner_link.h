// inner_link.h: the L2 duties of an inner port that is a TAP (DPDK's net_tap):
// the host's kernel sees an Ethernet interface on which faradayd is the one
// neighbour, the next hop for every address the host sends into the mesh. The
// same for a vhost-user socket (net_vhost), where the "host" is a DPDK
// application attached with virtio-user.
//
//   receive(): a frame from the host. An IPv4 or IPv6 packet to our MAC address
//   is handed on (it starts after the Ethernet header); an ARP request or IPv6
//   neighbour solicitation for any address is answered with our MAC address,
//   as a proxy for the whole mesh, except the host's questions about its own
//   address (a gratuitous request, an ARP probe, duplicate address detection:
//   answering them would tell the host its address is taken); ARP replies and
//   other ICMPv6 to a group are dropped, anything else counted by reason.
//   Every frame that is kept tells the host's MAC address.
//   write_header(): the Ethernet header in front of a packet to the host.
//
// Several lcores serve one inner port, an InnerLink each: with share_host
// they write what any of them last heard of the host's MAC address (a
// vhost-user application may send on fewer queue pairs than it receives on,
// and a new one may come with a new address).
//
// Parsing and answers are underlay.h's (fuzzed with it). One thread (the
// lcore's); the counters and the shared host may be read from any thread.
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <span>

#include "dataplane/counters.h"
#include "dataplane/underlay.h"

namespace faraday::dataplane {

class InnerLink {
 public:
  // ours: the port's MAC address; host: the kernel interface's, until a frame
  // says otherwise (all zero: not known yet, and packets go to the broadcast
  // address until the host's first frame tells it; a vhost-user application's).
  InnerLink(const MacAddress& ours, const MacAddress& host)
      : ours_(ours), host_(host), initial_host_(host) {}

  static constexpr size_t kControlFrameSize = 128;

  enum class Rx : uint8_t {
    kPacket,   // an IP packet at kEthernetHeader: hand it on
    kAnswer,   // send answer[0, *answer_length) back to the host
    kDropped,  // counted
  };
  Rx receive(std::span<const uint8_t> frame, std::span<uint8_t, kControlFrameSize> answer,
             size_t& answer_length);

  // Writes the kEthernetHeader bytes before an IP packet whose first byte is
  // `first` (the version nibble picks the EtherType); false for neither version.
  bool write_header(uint8_t* out, uint8_t first) const;

  // The host's MAC address as the InnerLinks sharing `learnt` last heard it
  // (0: none yet), kept there by each of them. Before receive().
  void share_host(std::atomic<uint64_t>* learnt) { learnt_ = learnt; }

  // The host's MAC address, as this link or the ones it shares with heard it.
  MacAddress host() const;
  struct Counters {
    std::array<Counter, static_cast<size_t>(FrameDrop::kCount)> drops{};
    Counter packets;  // IP packets handed on
    Counter answers;  // ARP replies and neighbour advertisements written
    Counter ignored;  // gratuitous ARP, ARP probes, ARP replies and DAD: no answer
    uint64_t dropped(FrameDrop r) const { return drops[static_cast<size_t>(r)]; }
  };
  const Counters& counters() const { return counters_; }

 private:
  Rx drop(FrameDrop reason) {
    ++counters_.drops[static_cast<size_t>(reason)];
    return Rx::kDropped;
  }
  Rx answer_arp(std::span<const uint8_t> frame, std::span<uint8_t, kControlFrameSize> answer,
                size_t& answer_length);
  Rx answer_nd(std::span<const uint8_t> frame, std::span<uint8_t, kControlFrameSize> answer,
               size_t& answer_length);
  void learn(const uint8_t* mac);

  MacAddress ours_;
  MacAddress host_;
  // What host() says while learnt_ holds nothing yet: host_ is this link's
  // thread's to write, so other threads never read it.
  const MacAddress initial_host_;
  std::atomic<uint64_t>* learnt_ = nullptr;  // the address in the low 48 bits, bit 48 set
  Counters counters_;
};

}  // namespace faraday::dataplane
