// gro.h: plans TUN writes that coalesce a burst's decrypted TCP segments into
// super-packets (receive-side GRO for a TUN opened with IFF_VNET_HDR and the
// TUN_F_CSUM|TUN_F_TSO4|TUN_F_TSO6 offloads). Pure and syscall-free: the TUN
// port calls plan_tun_write and turns each plan into one writev().
//
// A run of packets is coalesced only when the kernel could have built the same
// super-packet by GRO, and anything unusual is simply written alone:
//   - adjacent packets of one burst, order kept; at most kGroMaxSegments of them
//     and at most kGroMaxLength bytes of IP packet in all;
//   - IPv4 without options, not a fragment (MF = 0, offset 0), header checksum
//     valid, same source/destination/TOS/TTL/DF; without DF the IP IDs count up
//     by one per segment (as the kernel's TSO would rebuild them);
//   - IPv6 whose next header is TCP (no extension headers), same addresses,
//     traffic class, flow label and hop limit;
//   - TCP checksum valid (a CHECKSUM_PARTIAL super-packet is never verified
//     again, so a damaged segment must reach the kernel alone and be dropped);
//     same ports, ack number, window, header length and option bytes; flags ACK
//     only, or ACK|PSH on the last segment of a run (a PSH ends the run); no
//     SYN/FIN/RST/URG/ECE/CWR and no reserved bits;
//   - contiguous sequence numbers; every payload non-empty and as long as the
//     first's, except the last of the run, which may be shorter (and ends it).
// The Packet's length must be its IP packet's length exactly (the receive path
// trims WireGuard's padding).
//
// Thread-safety: none needed; the functions touch only the packets passed in.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include "dataplane/packet.h"

namespace faraday::dataplane {

// The kernel's GRO stops at 64 KiB of IP packet; UDP GRO at 64 segments, which
// is also our declared burst size.
inline constexpr size_t kGroMaxSegments = 64;
inline constexpr uint32_t kGroMaxLength = 65535;
// The most leading bytes of a run's first packet plan_tun_write may rewrite: an
// IPv6 header and the longest TCP header (a caller that may have to undo the
// plan saves this much).
inline constexpr size_t kGroMaxHeader = 40 + 60;

// struct virtio_net_hdr of linux/virtio_net.h, which C++ cannot include (a
// member of another struct there is named `class`). Same layout and names; the
// fields are in host byte order, as the TUN driver reads them unless told
// otherwise (TUNSETVNETLE/BE).
struct VirtioNetHdr {
  uint8_t flags;
  uint8_t gso_type;
  uint16_t hdr_len;      // bytes of IP + TCP header in the super-packet
  uint16_t gso_size;     // TCP payload bytes per segment
  uint16_t csum_start;   // where the checksummed bytes begin (the TCP header)
  uint16_t csum_offset;  // where the checksum goes, from csum_start
};
static_assert(sizeof(VirtioNetHdr) == 10, "struct virtio_net_hdr is 10 bytes");
inline constexpr uint8_t kVirtioNetHdrFNeedsCsum = 1;  // VIRTIO_NET_HDR_F_NEEDS_CSUM
inline constexpr uint8_t kVirtioNetHdrGsoNone = 0;     // VIRTIO_NET_HDR_GSO_NONE
inline constexpr uint8_t kVirtioNetHdrGsoTcpv4 = 1;    // VIRTIO_NET_HDR_GSO_TCPV4
inline constexpr uint8_t kVirtioNetHdrGsoTcpv6 = 4;    // VIRTIO_NET_HDR_GSO_TCPV6

// One TUN write: a virtio_net_hdr, then pkts[first] whole, then for each of the
// following count-1 packets only its TCP payload (bytes from
// tcp_payload_offset(pkt) to pkt.length).
struct TunWrite {
  VirtioNetHdr hdr;
  size_t count;
};

// Plans the write that starts at pkts[0]: the longest run of leading packets that
// may be coalesced (count >= 1; 0 only for an empty span). count == 1: hdr is all
// zero (no GSO, no checksum offload) and pkts[0] is untouched. count > 1: pkts[0]'s
// IP and TCP headers are rewritten in place to describe the super-packet (IPv4
// total length and header checksum, or IPv6 payload length; PSH if the last
// segment had it; the TCP checksum field holds the folded pseudo-header sum, as
// the kernel expects for CHECKSUM_PARTIAL) and hdr describes the GSO:
// gso_type TCPV4/TCPV6, gso_size = the first segment's payload, hdr_len = IP+TCP
// header bytes, NEEDS_CSUM with csum_start = IP header length, csum_offset = 16.
// The other packets of the run are only read.
TunWrite plan_tun_write(std::span<Packet> pkts);

// Offset of the TCP payload in a packet that plan_tun_write put in a run of
// count > 1 (IP header + TCP header bytes).
uint32_t tcp_payload_offset(const Packet& pkt);

}  // namespace faraday::dataplane
