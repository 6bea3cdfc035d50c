// underlay.h: the frames of a NIC that faradayd owns (the DPDK underlay), where
// no kernel does L2/L3 for it: Ethernet II, ARP for IPv4, IPv6 neighbour
// discovery (RFC 4861), and the IPv4/IPv6 + UDP headers around WireGuard
// datagrams. Plain functions over byte buffers: a port calls them on its
// buffers' data, the tests and the fuzz target on arrays.
//
// Received frames are classified without trust: every length is checked against
// the buffer before it is read, IP and UDP checksums are verified (a port that
// verified them in hardware says so), and anything that is not for this node
// or not a message it handles is dropped with one counted reason.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>

#include "dataplane/clock.h"
#include "dataplane/net.h"
#include "result.h"

namespace faraday::dataplane {

using MacAddress = std::array<uint8_t, 6>;
std::optional<MacAddress> parse_mac(std::string_view text);  // "02:00:00:00:00:01"
std::string mac_to_string(const MacAddress& mac);

inline constexpr size_t kEthernetHeader = 14;
inline constexpr uint16_t kEtherIpv4 = 0x0800;
inline constexpr uint16_t kEtherArp = 0x0806;
inline constexpr uint16_t kEtherIpv6 = 0x86dd;
// Room a datagram needs in front of it to become a frame in place (IPv6, the
// larger header).
inline constexpr size_t kUnderlayHeadroom = kEthernetHeader + 40 + 8;

// This node on the port it owns.
struct UnderlayAddress {
  MacAddress mac{};
  uint16_t port = 0;  // the UDP port WireGuard listens on
  // Either or both families. prefix: the on-link subnet; gateway: where the
  // rest goes (unset: everything is on-link).
  struct V4 {
    std::array<uint8_t, 4> addr{};
    uint8_t prefix = 32;
    std::optional<std::array<uint8_t, 4>> gateway;
  };
  struct V6 {
    std::array<uint8_t, 16> addr{};
    uint8_t prefix = 128;
    std::optional<std::array<uint8_t, 16>> gateway;
  };
  std::optional<V4> v4;
  std::optional<V6> v6;
};

// Why a received frame was dropped. One reason per frame.
enum class FrameDrop : uint8_t {
  kTruncated,    // shorter than its headers, or than its IP length says
  kNotForUs,     // another MAC, IP address or UDP port
  kUnsupported,  // an EtherType, IP protocol or ICMPv6 message not handled here
  kBadIpHeader,  // wrong version, header length, total length or checksum
  kFragment,     // an IP fragment (WireGuard datagrams are never fragmented here)
  kBadUdp,       // a UDP length or checksum that does not hold
  kBadArp,       // ARP for other than Ethernet/IPv4, or an unknown operation
  kBadNd,        // ND with a hop limit other than 255, a bad checksum or option
  kCount,
};
const char* frame_drop_name(FrameDrop reason);

// What a received frame is, when it is kept.
struct Frame {
  enum class Kind : uint8_t {
    kDatagram,      // a UDP datagram to our port: payload_* and source are set
    kArpRequest,    // asks for our IPv4 address: answer with build_arp_reply
    kArpReply,      // tells a neighbour's address (learn it)
    kSolicitation,  // IPv6 NS for our address: answer with build_neighbor_advert
    kAdvertisement  // IPv6 NA: a neighbour's address (learn it)
  };
  Kind kind = Kind::kDatagram;
  MacAddress source_mac{};  // Ethernet source
  // kDatagram: where the UDP payload lies in the frame and who sent it.
  size_t payload_offset = 0;
  size_t payload_length = 0;
  Endpoint source;
  // ARP and ND: the neighbour's IP and link-layer address (what it says of
  // itself; for an NS without a source link-layer option, the frame's source).
  sa_family_t neighbor_family = AF_UNSPEC;
  std::array<uint8_t, 16> neighbor_ip{};
  MacAddress neighbor_mac{};
  // An NA's Override flag: without it, a MAC address already known is kept
  // (RFC 4861 section 7.2.5). Always true for ARP.
  bool neighbor_override = true;
};

// What a port's hardware already checked for a frame (DPDK's RX offload flags).
struct RxChecked {
  bool ip_checksum = false;
  bool l4_checksum = false;
};

Result<Frame, FrameDrop> classify_frame(std::span<const uint8_t> frame, const UnderlayAddress& self,
                                        RxChecked checked = {});

// Builders write a whole frame at out and return its length, or 0 if out is too
// small or self lacks the family.
size_t build_arp_reply(std::span<uint8_t> out, const UnderlayAddress& self, const Frame& request);
size_t build_arp_request(std::span<uint8_t> out, const UnderlayAddress& self,
                         const std::array<uint8_t, 4>& target);
size_t build_neighbor_advert(std::span<uint8_t> out, const UnderlayAddress& self,
                             const Frame& solicitation);
// To the target's solicited-node multicast address.
size_t build_neighbor_solicit(std::span<uint8_t> out, const UnderlayAddress& self,
                              const std::array<uint8_t, 16>& target);

// Whether ip is on self's link: in its subnet (or, for IPv6, link-local), and
// not the unspecified address.
bool on_link(const UnderlayAddress& self, sa_family_t family, const std::array<uint8_t, 16>& ip);

// Where a frame to `to` goes on the link: `to` itself when on-link, else the
// gateway. nullopt when self has no address of that family, or no gateway for
// an off-link address.
std::optional<Endpoint> next_hop(const UnderlayAddress& self, const Endpoint& to);

// Writes Ethernet + IP + UDP headers in front of the datagram that lies at
// payload[0, length) (with at least kUnderlayHeadroom bytes before it), from
// self to `to` through `via`. The UDP checksum is computed unless the port
// completes it (l4_offload: the pseudo-header sum is left in the field, as
// DPDK's TX checksum offload expects); the IPv4 header checksum likewise with
// ip_offload. Returns the frame's first byte, or nullptr if self lacks the
// family or the datagram is too long for one frame.
uint8_t* encapsulate(uint8_t* payload, size_t length, const UnderlayAddress& self,
                     const MacAddress& via, const Endpoint& to, bool ip_offload = false,
                     bool l4_offload = false);

// IP address -> MAC address for the neighbours of one port, with ageing as
// RFC 4861 describes it, simplified: an entry is used for kReachable after it
// was learnt, then used while a new request is sent (at most one a second per
// address), and forgotten kForget after it was last confirmed. One thread.
//
// Entries are made by lookup() (someone we send to) and by learn() with
// create (an on-link host that asked for us); answers only update entries
// that exist, so unsolicited replies cannot fill the table. When it is full,
// a lookup evicts the entry confirmed longest ago: a flood of askers can never
// lock out the gateway.
class NeighborTable {
 public:
  static constexpr Nanos kReachable = 30 * kSecond;
  static constexpr Nanos kForget = 300 * kSecond;
  static constexpr Nanos kRequestInterval = kSecond;
  static constexpr size_t kMaxEntries = 4096;

  // Records what a neighbour said of itself: updates its entry (keeping a
  // known MAC unless override), or makes one if create. False when nothing
  // was recorded (no entry and not create, or the table is full).
  bool learn(sa_family_t family, const std::array<uint8_t, 16>& ip, const MacAddress& mac,
             Nanos now, bool create = true, bool override = true);
  // Another lcore asked for this neighbour: an entry without a MAC, so its
  // answer is recorded here too when it comes later. This table still asks
  // itself when it needs the MAC first (the answer may have come before the
  // news of the request did). Nothing when there is an entry already.
  void expect(sa_family_t family, const std::array<uint8_t, 16>& ip, Nanos now);
  struct Lookup {
    std::optional<MacAddress> mac;  // usable now
    bool ask = false;               // send a request (ARP / NS) for it now
  };
  // Also notes the request it tells the caller to send.
  Lookup lookup(const Endpoint& ip, Nanos now);
  // Drops entries not confirmed for kForget.
  void expire(Nanos now);
  size_t size() const;

 private:
  using Key = std::pair<sa_family_t, std::array<uint8_t, 16>>;
  struct Entry {
    std::optional<MacAddress> mac;
    Nanos confirmed = 0;
    std::optional<Nanos> asked;
  };
  // The entry of a neighbour, made (without a MAC) if there is none; the
  // oldest goes when the table is full.
  Entry& entry(sa_family_t family, const std::array<uint8_t, 16>& ip, Nanos now);
  std::map<Key, Entry> entries_;
};

}  // namespace faraday::dataplane
