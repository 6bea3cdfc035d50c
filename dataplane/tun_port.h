// tun_port.h: the inner side, a Linux TUN interface (IFF_TUN | IFF_NO_PI).
//
// Two modes, chosen once by open():
//   - vnet (the default when the kernel agrees): IFF_VNET_HDR with the offloads
//     TUN_F_CSUM | TSO4 | TSO6 | TSO_ECN (and USO4 | USO6 where the kernel has
//     them). Every read() is a virtio_net_hdr and one IP packet, possibly a TCP
//     or UDP super-packet of up to 64 KiB, read into one buffer the port owns
//     and split into the caller's slots by dataplane/tso.h; every write() is a
//     virtio_net_hdr and one IP packet, a TCP super-packet when dataplane/gro.h
//     coalesced adjacent segments of one flow.
//   - plain (the kernel refused, or open(..., offload = false)): every read() is
//     one IP packet from the host, every write() one IP packet to it.
//
// Threads: read_burst() and write_burst() may run concurrently on two threads
// (each writes only its own counters and buffers); each is called by one thread
// at a time (a thread that takes it over learns what the last one did through a
// lock or an acquire, as turns.h hands a queue on). counters() may be read on
// any thread.
//
// Queues (IFF_MULTI_QUEUE, for N workers that each poll their own fd): open(...,
// multi_queue = true) or open_queues() make the first queue, open_queue() the
// others. Each queue is a TunPort of its own: its own fd, buffers, pending
// super-packet and counters; nothing mutable is shared, so N threads may each
// own one. What the kernel shares is the interface, and with it its flags: the
// first queue's IFF_VNET_HDR, header size and TUNSETOFFLOAD are the device's,
// and a later queue attached with other flags would silently get them anyway,
// so open_queue() attaches with exactly the first queue's flags and offloads,
// and never falls back to another mode.
//   - Spreading: the kernel picks the queue of a packet it hands to the TUN by
//     the flow's symmetric hash (addresses and ports), except that a flow whose
//     packets were written on a queue in the last few seconds goes back out on
//     that queue (the driver's flow table). A worker that writes a flow's
//     decrypted packets thus gets the host's replies of that flow.
//   - Lifetime: the interface lives while any queue is open (or while it is
//     persistent, e.g. made by `ip tuntap add ... multi_queue`): closing the
//     first queue does not remove it, closing the last one does. exists() on
//     any queue answers for the interface. When the interface is deleted every
//     queue is detached at once (poll reports POLLERR, reads fail).
//   - Ownership: attaching to an interface someone else holds stays an error
//     (EBUSY for a single-queue one); for a multi-queue interface the kernel
//     would let a second process add a queue and take a share of the flows, so
//     open() refuses one that already has a queue attached (counted in
//     /sys/class/net/<name>/queues; not checked when sysfs does not show it).
//     Neither mode makes the interface persistent or sets its owner.
//   - Fallback: when the kernel refuses IFF_MULTI_QUEUE (a kernel without it,
//     or an existing single-queue interface of that name) open() opens one
//     queue as before, multi_queue() is false and multi_queue_refused() says
//     why, for a one-time "TUN multi-queue unavailable: ..." log line.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <array>
#include <memory>

#include "dataplane/counters.h"
#include "dataplane/gro.h"
#include "dataplane/packet.h"
#include "dataplane/tso.h"
#include "result.h"

namespace faraday::dataplane {

struct TunPortCounters {
  Counter rx_packets;  // read from the host
  Counter rx_bytes;
  Counter rx_errors;       // read() failed with something other than EAGAIN
  Counter rx_truncated;    // larger than the slot (MTU raised past it): dropped
  Counter rx_super;        // vnet: reads that were GSO super-packets (TCP or UDP)
  Counter rx_segments;     // vnet: packets split out of them (also in rx_packets)
  Counter rx_bad_offload;  // vnet: reads dropped because tso_parse refused them
  std::array<Counter, kTsoDropCount> rx_bad_offload_by{};  // ... by TsoDrop
  Counter tx_packets;                                      // written to the host
  Counter tx_bytes;
  Counter tx_errors;     // write() refused a packet (EINVAL for a malformed one, EIO)
  Counter tx_full;       // write_burst stopped early on EAGAIN
  Counter tx_super;      // vnet: writes that were coalesced TCP super-packets
  Counter tx_coalesced;  // vnet: packets carried by them (also in tx_packets)

  TunPortCounters& operator+=(const TunPortCounters& o);  // the queues of one interface
};

// " hdr_len=2 ip_options=1" for the non-zero rx_bad_offload_by counters: for the
// stats log.
std::string bad_offload_reasons(const TunPortCounters& c);

// The kernel's rule for an interface name: 1 to 15 bytes, not "." or "..", no
// '/', ':', whitespace or NUL. The error says which part failed:
// "invalid interface name 'x': longer than 15 characters". The one check the
// TUN port, netlink, the UAPI socket path and the settings all use.
Status check_interface_name(std::string_view name);

class TunPort {
 public:
  static constexpr uint32_t kDefaultMtu = 1420;
  // The kernel's limit on the queues of one TUN (MAX_TAP_QUEUES).
  static constexpr size_t kMaxQueues = 256;

  // Creates TUN interface `name`, or attaches to an existing one, non-blocking and
  // close-on-exec. Sets the MTU when mtu != 0; configures no addresses and leaves the
  // link state alone. The error names the cause (no /dev/net/tun, name too long,
  // EPERM without CAP_NET_ADMIN, exists but is not a TUN, ...). offload: try vnet
  // mode first, falling back to plain mode when the kernel refuses (offloads()
  // says why); false: plain mode. multi_queue: attach with IFF_MULTI_QUEUE so that
  // open_queue() can add queues, falling back to one queue when the kernel refuses
  // (multi_queue_refused() says why); an existing multi-queue interface that
  // already has a queue attached is refused. false: one queue, as before (an
  // existing multi-queue interface is then refused with EINVAL, as before).
  static Result<TunPort> open(const std::string& name, uint32_t mtu = kDefaultMtu,
                              bool offload = true, bool multi_queue = false);
  // open(name, mtu, offload, queues > 1), then open_queue() until there are
  // `queues` (1 to kMaxQueues). Fewer only when the kernel refused multi-queue:
  // then exactly one, and front().multi_queue_refused() says why. An error if any
  // queue fails (those already open are closed again).
  static Result<std::vector<TunPort>> open_queues(const std::string& name, uint32_t mtu,
                                                  bool offload, size_t queues);
  // Another queue of this port's interface, in the same mode with the same offloads,
  // sharing nothing mutable with this one. An error when this port is not
  // multi-queue ("TUN multi-queue unavailable: ..."), when the interface is gone
  // (it is not made anew), or when the kernel refuses (E2BIG past kMaxQueues).
  // Reads only what open() set: may run while other threads use this port.
  Result<TunPort> open_queue() const;

  TunPort(TunPort&& other) noexcept;
  TunPort& operator=(TunPort&& other) noexcept;
  TunPort(const TunPort&) = delete;
  TunPort& operator=(const TunPort&) = delete;
  ~TunPort();

  int fd() const { return fd_; }
  const std::string& name() const { return name_; }  // as the kernel named it
  bool vnet_hdr() const { return vnet_hdr_; }
  // For the start-up log: "TSO4/6+USO, checksum offload", "TSO4/6, checksum
  // offload", or "none (TUNSETOFFLOAD: Invalid argument)" and the like.
  const std::string& offloads() const { return offloads_; }
  // True when attached with IFF_MULTI_QUEUE (open_queue() works).
  bool multi_queue() const;
  // Why multi-queue is off although it was asked for ("IFF_MULTI_QUEUE refused:
  // ..."); empty when it is on or was not asked for.
  const std::string& multi_queue_refused() const { return multi_queue_refused_; }

  // Fills pkts from the front until EAGAIN or pkts is full; sets offset =
  // kHeadroom, length, and clears endpoint. Returns the count. Plain: one read()
  // per packet into base + kHeadroom (at most max_payload() bytes, larger ones
  // are dropped and counted). Vnet: one read() per (super-)packet into the port's
  // buffer, then split into the slots; a super-packet whose segments do not all
  // fit the slots left stays pending for the next call, which starts with it (a
  // call with no slot used yet takes as many of its segments as fit).
  size_t read_burst(std::span<Packet> pkts);
  // True while read() data waits in the port's buffer: call read_burst again
  // without waiting for the fd (poll() does not see it).
  bool pending() const { return pending_length_ != 0; }
  // Plain: one write() per packet. Vnet: adjacent TCP segments of one flow are
  // coalesced into one GSO super-packet per writev() (dataplane/gro.h), other
  // packets go one per writev() behind a zero virtio_net_hdr. Returns how many
  // packets from the front were consumed (written, or refused by the kernel and
  // counted); below pkts.size() only on EAGAIN. The first packet of a coalesced
  // run has its IP and TCP headers rewritten, except when it was not consumed.
  size_t write_burst(std::span<Packet> pkts);

  // False once the interface is gone (deleted, or moved to another namespace).
  bool exists() const;

  const TunPortCounters& counters() const { return counters_; }

 private:
  TunPort(int fd, std::string name, short flags, std::string multi_queue_refused);
  size_t read_plain(std::span<Packet> pkts);
  size_t write_plain(std::span<Packet> pkts);
  size_t write_vnet(std::span<Packet> pkts);
  size_t read_vnet(std::span<Packet> pkts);
  bool read_super();  // one read() into rx_buffer_ that tso_parse accepts; false: none
  // Still the interface this port attached to (not gone, not made anew).
  bool same_interface() const;

  int fd_ = -1;
  std::string name_;
  unsigned ifindex_ = 0;  // at attach time
  short flags_ = 0;       // the TUNSETIFF flags, IFF_MULTI_QUEUE included: every queue's
  bool vnet_hdr_ = false;
  unsigned offload_flags_ = 0;  // vnet: the TUNSETOFFLOAD mask the kernel took
  std::string offloads_;
  std::string multi_queue_refused_;
  TunPortCounters counters_;
  // Vnet mode only: the virtio_net_hdr and packet of the last read(), allocated
  // once; pending_length_ packet bytes, segments from next_segment_ on not yet
  // handed out.
  std::unique_ptr<uint8_t[]> rx_buffer_;
  uint32_t pending_length_ = 0;
  TsoPlan plan_;
  uint32_t next_segment_ = 0;
};

}  // namespace faraday::dataplane
