// tun_port.h: the inner side, a Linux TUN interface (IFF_TUN | IFF_NO_PI): every
// read() is one IP packet from the host, every write() one IP packet to it.
//
// Threads: one owner. read_burst() and write_burst() may run concurrently on two
// threads (each writes only its own counters), but each from one thread only.
//
// TODO(mq): IFF_MULTI_QUEUE (one fd per worker) and IFF_VNET_HDR offloads (TSO/GSO
// super-packets from the host); single queue, no offloads for now.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <utility>

#include "dataplane/packet.h"
#include "result.h"

namespace faraday::dataplane {

struct TunPortCounters {
  uint64_t rx_packets = 0;  // read from the host
  uint64_t rx_bytes = 0;
  uint64_t rx_errors = 0;     // read() failed with something other than EAGAIN
  uint64_t rx_truncated = 0;  // larger than the slot (MTU raised past it): dropped
  uint64_t tx_packets = 0;    // written to the host
  uint64_t tx_bytes = 0;
  uint64_t tx_errors = 0;  // write() refused a packet (EINVAL for a malformed one, EIO)
  uint64_t tx_full = 0;    // write_burst stopped early on EAGAIN
};

// The kernel's rule for an interface name: 1 to 15 bytes, not "." or "..", no
// '/', ':', whitespace or NUL. The error says which part failed:
// "invalid interface name 'x': longer than 15 characters". The one check the
// TUN port, netlink, the UAPI socket path and the settings all use.
Status check_interface_name(std::string_view name);

class TunPort {
 public:
  static constexpr uint32_t kDefaultMtu = 1420;

  // Creates TUN interface `name`, or attaches to an existing one, non-blocking and
  // close-on-exec. Sets the MTU when mtu != 0; configures no addresses and leaves the
  // link state alone. The error names the cause (no /dev/net/tun, name too long,
  // EPERM without CAP_NET_ADMIN, exists but is not a TUN, ...).
  static Result<TunPort> open(const std::string& name, uint32_t mtu = kDefaultMtu);

  TunPort(TunPort&& other) noexcept;
  TunPort& operator=(TunPort&& other) noexcept;
  TunPort(const TunPort&) = delete;
  TunPort& operator=(const TunPort&) = delete;
  ~TunPort();

  int fd() const { return fd_; }
  const std::string& name() const { return name_; }  // as the kernel named it

  // One read() per packet into base + kHeadroom (at most max_payload() bytes,
  // larger ones are dropped and counted) until EAGAIN or pkts is full.
  // Sets offset = kHeadroom, length, and clears endpoint. Returns the count.
  size_t read_burst(std::span<Packet> pkts);
  // One write() per packet. Returns how many packets from the front were consumed
  // (written, or refused by the kernel and counted); below pkts.size() only on EAGAIN.
  size_t write_burst(std::span<Packet> pkts);

  // False once the interface is gone (deleted, or moved to another namespace).
  bool exists() const;

  const TunPortCounters& counters() const { return counters_; }

 private:
  TunPort(int fd, std::string name) : fd_(fd), name_(std::move(name)) {}

  int fd_ = -1;
  std::string name_;
  TunPortCounters counters_;
};

}  // namespace faraday::dataplane
