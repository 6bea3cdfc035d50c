// tso.h: splits what a TUN opened with IFF_VNET_HDR and TSO/USO offloads hands
// us (a virtio_net_hdr and one IP packet, possibly a 64 KiB super-packet) into
// the IP packets the kernel would have sent without the offload. Pure and
// syscall-free: TunPort reads, tso_parse validates, tso_segment writes segments
// into the caller's slots.
//
// What is accepted (anything else is dropped with a TsoDrop reason, and nothing
// is ever read outside the bytes given):
//   - gso_type NONE: the packet is passed on as it is; with NEEDS_CSUM the
//     checksum at csum_start + csum_offset is completed first (the kernel left
//     the pseudo-header sum there).
//   - TCPV4 / TCPV6 (ECN bit allowed): IPv4 without options and not a fragment,
//     or IPv6 whose next header is TCP (no extension headers). The TCP payload
//     is cut every gso_size bytes; each segment gets its own IPv4 total length,
//     id (+i) and header checksum, or IPv6 payload length; sequence number +
//     offset; FIN and PSH only on the last segment, CWR only on the first; and
//     a full TCP checksum over the pseudo-header.
//   - UDP_L4 (USO), IPv4 or IPv6 as above with UDP: UDP length and checksum per
//     segment.
// The header length is taken from the packet (the IP and L4 headers), not from
// hdr_len, which the kernel may set to the linear part of its buffer; hdr_len
// and csum_start are still checked against the data.
//
// Thread-safety: none needed; the functions touch only what is passed in.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include "dataplane/gro.h"  // VirtioNetHdr and its constants
#include "dataplane/packet.h"
#include "result.h"

namespace faraday::dataplane {

inline constexpr uint8_t kVirtioNetHdrGsoUdpL4 = 5;   // VIRTIO_NET_HDR_GSO_UDP_L4
inline constexpr uint8_t kVirtioNetHdrGsoEcn = 0x80;  // VIRTIO_NET_HDR_GSO_ECN

// Why a read from the TUN was dropped. Counted per reason by the TUN port.
enum class TsoDrop : uint8_t {
  kBadGsoType,       // a gso_type we did not enable (or unknown)
  kGsoSizeZero,      // GSO without a segment size
  kHdrLen,           // hdr_len beyond the data
  kCsumStart,        // csum_start/csum_offset beyond the data, or not the L4 header
  kIpVersion,        // not IPv4/IPv6, or not the version gso_type names
  kIpHeader,         // IP header truncated, bad IHL, or its length disagrees with the data
  kIpOptions,        // IPv4 options in a super-packet
  kIpFragment,       // an IPv4 fragment in a super-packet
  kIpv6NextHeader,   // IPv6 extension header (or another protocol) before TCP/UDP
  kL4Protocol,       // IPv4 protocol is not the one gso_type names
  kL4Header,         // TCP/UDP header truncated or a bad TCP data offset
  kTooManySegments,  // more segments than kTsoMaxSegments
  kSegmentTooLarge,  // one segment does not fit the caller's slot
  kCount,
};
inline constexpr size_t kTsoDropCount = static_cast<size_t>(TsoDrop::kCount);
// "bad_gso_type", "gso_size_zero", ...: for the stats log.
const char* tso_drop_name(TsoDrop reason);

// A 64 KiB super-packet with the smallest TCP segment (MSS 88 for IPv4) has
// about 750 segments; nothing legitimate has more.
inline constexpr uint32_t kTsoMaxSegments = 1024;

// A validated super-packet (or single packet): what tso_segment needs.
struct TsoPlan {
  enum class Kind : uint8_t { kWhole, kTcp, kUdp } kind = Kind::kWhole;
  bool ipv6 = false;
  uint32_t ip_header = 0;  // bytes of IP header (20 or 40)
  uint32_t header = 0;     // IP + L4 header bytes, copied into every segment
  uint32_t gso_size = 0;   // payload bytes per segment (kWhole: the payload)
  uint32_t length = 0;     // bytes of IP packet given
  uint32_t segments = 1;   // how many packets tso_segment produces in all
  // Bytes of segment i (IP packet).
  uint32_t segment_length(uint32_t i) const {
    uint32_t start = i * gso_size;
    uint32_t rest = length - header - start;
    return header + (rest < gso_size ? rest : gso_size);
  }
};

// Validates `hdr` against `pkt` (the bytes after the virtio_net_hdr). kWhole
// with NEEDS_CSUM: completes that checksum in pkt (which is why pkt is mutable).
Result<TsoPlan, TsoDrop> tso_parse(const VirtioNetHdr& hdr, std::span<uint8_t> pkt);

// Writes segments first, first+1, ... of `plan` into out[0], out[1], ... (each at
// kHeadroom, length set, endpoint cleared), as many as out holds and the plan
// has. Returns how many were written, or kSegmentTooLarge (nothing usable) if
// one of them does not fit its slot's max_payload().
Result<size_t, TsoDrop> tso_segment(const TsoPlan& plan, std::span<const uint8_t> pkt,
                                    uint32_t first, std::span<Packet> out);

// tso_parse, then every segment into out (kSegmentTooLarge if out is too short).
Result<size_t, TsoDrop> tso_split(const VirtioNetHdr& hdr, std::span<uint8_t> pkt,
                                  std::span<Packet> out);

}  // namespace faraday::dataplane
