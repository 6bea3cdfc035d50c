#include "dataplane/tun_port.h"

#include <fcntl.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <system_error>

namespace faraday::dataplane {

namespace {

constexpr const char* kTunDevice = "/dev/net/tun";

// linux/if_tun.h of older kernels lacks the USO flags (Linux 6.2).
constexpr unsigned kTunFUso4 = 0x20;
constexpr unsigned kTunFUso6 = 0x40;
constexpr unsigned kTunOffloads = TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6 | TUN_F_TSO_ECN;

// Vnet mode's read buffer: the header and the largest super-packet the kernel
// builds for a TUN (GSO_LEGACY_MAX_SIZE, 64 KiB), plus room to see truncation.
constexpr size_t kVnetHdrSize = sizeof(VirtioNetHdr);
constexpr size_t kSuperPacketMax = 65536;
constexpr size_t kVnetBufferSize = kVnetHdrSize + kSuperPacketMax + 64;

std::string errno_text(const std::string& what) {
  return what + ": " + std::strerror(errno);
}

std::string open_error() {
  switch (errno) {
    case ENOENT:
    case ENODEV:
    case ENXIO:
      return errno_text(std::string("open ") + kTunDevice +
                        " (no TUN support here: load the tun module, or pass the device into "
                        "the container)");
    case EACCES:
    case EPERM:
      return errno_text(std::string("open ") + kTunDevice + " (not permitted)");
    default:
      return errno_text(std::string("open ") + kTunDevice);
  }
}

std::string setiff_error(const std::string& name) {
  switch (errno) {
    case EPERM:
      return errno_text("TUNSETIFF " + name + " (needs CAP_NET_ADMIN)");
    case EBUSY:
      return errno_text("TUNSETIFF " + name + " (attached by another process)");
    case EINVAL:
      return errno_text("TUNSETIFF " + name +
                        " (exists but is not a TUN device with these flags, or invalid name)");
    default:
      return errno_text("TUNSETIFF " + name);
  }
}

// TUNSETIFF on a fresh fd of /dev/net/tun; returns the fd and the kernel's name.
// On failure errno is still TUNSETIFF's (or open's).
Result<std::pair<int, std::string>> attach(const std::string& name, short flags) {
  int fd = ::open(kTunDevice, O_RDWR | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) return Error{open_error()};
  ifreq ifr{};
  ifr.ifr_flags = flags;
  std::memcpy(ifr.ifr_name, name.data(), name.size());  // empty: the kernel picks tunN
  if (::ioctl(fd, TUNSETIFF, &ifr) != 0) {
    int err = errno;
    std::string text = setiff_error(name);
    ::close(fd);
    errno = err;
    return Error{text};
  }
  return std::pair{fd, std::string(ifr.ifr_name, strnlen(ifr.ifr_name, IFNAMSIZ))};
}

// The queues attached to interface name, as sysfs shows them (rx-0, rx-1, ...
// follow the TUN's attached queues); 0 when sysfs does not show the interface.
size_t attached_queues(const std::string& name) {
  std::error_code ec;
  size_t n = 0;
  std::filesystem::directory_iterator it("/sys/class/net/" + name + "/queues", ec);
  for (; !ec && it != std::filesystem::directory_iterator(); it.increment(ec))
    if (it->path().filename().string().starts_with("rx-")) ++n;
  return n;
}

struct Attached {
  int fd = -1;
  std::string name;
  short flags = 0;         // as attached: IFF_MULTI_QUEUE only if the kernel took it
  std::string mq_refused;  // asked for multi-queue, but the kernel refused it
};

// attach() with flags, first with IFF_MULTI_QUEUE added when multi_queue; when
// the kernel refuses that but takes the flags alone, one queue it is, and
// mq_refused says why. A multi-queue interface that already had a queue is
// refused: another process would share its flows.
Result<Attached> attach_first(const std::string& name, short flags, bool multi_queue) {
  std::string refused;
  if (multi_queue) {
    auto mq = attach(name, static_cast<short>(flags | IFF_MULTI_QUEUE));
    if (mq) {
      auto [fd, actual] = *mq;
      if (size_t n = attached_queues(actual); n > 1) {
        ::close(fd);
        return Error{"TUNSETIFF " + actual + " (multi-queue interface already attached, " +
                     std::to_string(n - 1) + " queue(s), by another process or port)"};
      }
      return Attached{fd, actual, static_cast<short>(flags | IFF_MULTI_QUEUE), ""};
    }
    refused = "IFF_MULTI_QUEUE refused: " +
              (errno == EINVAL ? errno_text("TUNSETIFF " + name) +
                                     " (the kernel lacks it, or the interface exists without it)"
                               : mq.error());
  }
  auto one = attach(name, flags);
  if (!one) return one.failure();
  return Attached{one->first, one->second, flags, std::move(refused)};
}

struct Offloads {
  std::string text;  // for offloads()
  unsigned mask = 0;
};

// Header size and offloads on a fd attached with IFF_VNET_HDR.
Result<Offloads> enable_offloads(int fd) {
  int size = static_cast<int>(kVnetHdrSize);
  if (::ioctl(fd, TUNSETVNETHDRSZ, &size) != 0) return Error{errno_text("TUNSETVNETHDRSZ")};
  constexpr unsigned kWithUso = kTunOffloads | kTunFUso4 | kTunFUso6;
  if (::ioctl(fd, TUNSETOFFLOAD, kWithUso) == 0)
    return Offloads{"TSO4/6+USO, checksum offload", kWithUso};
  if (::ioctl(fd, TUNSETOFFLOAD, kTunOffloads) == 0)
    return Offloads{"TSO4/6, checksum offload", kTunOffloads};
  return Error{errno_text("TUNSETOFFLOAD")};
}

// The same header size and offload mask on another queue's fd: no fallback, the
// device already has them.
Status repeat_offloads(int fd, unsigned mask) {
  int size = static_cast<int>(kVnetHdrSize);
  if (::ioctl(fd, TUNSETVNETHDRSZ, &size) != 0) return Error{errno_text("TUNSETVNETHDRSZ")};
  if (::ioctl(fd, TUNSETOFFLOAD, mask) != 0) return Error{errno_text("TUNSETOFFLOAD")};
  return {};
}

Status set_mtu(const std::string& name, uint32_t mtu) {
  int sock = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (sock < 0) sock = ::socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  ifreq mreq{};
  std::memcpy(mreq.ifr_name, name.data(), name.size());
  mreq.ifr_mtu = static_cast<int>(mtu);
  if (sock < 0 || ::ioctl(sock, SIOCSIFMTU, &mreq) != 0) {
    std::string err = errno_text("SIOCSIFMTU " + name + " to " + std::to_string(mtu));
    if (sock >= 0) ::close(sock);
    return Error{err};
  }
  ::close(sock);
  return {};
}

}  // namespace

std::string bad_offload_reasons(const TunPortCounters& c) {
  std::string out;
  for (size_t i = 0; i < kTsoDropCount; ++i)
    if (c.rx_bad_offload_by[i] != 0)
      out += std::string(" ") + tso_drop_name(static_cast<TsoDrop>(i)) + "=" +
             std::to_string(c.rx_bad_offload_by[i]);
  return out;
}

Status check_interface_name(std::string_view name) {
  auto invalid = [&](const std::string& why) {
    return Error{"invalid interface name '" + std::string(name) + "': " + why};
  };
  if (name.empty()) return invalid("empty");
  if (name.size() >= IFNAMSIZ)
    return invalid("too long (max " + std::to_string(IFNAMSIZ - 1) + " characters)");
  if (name == "." || name == "..") return invalid("'.' and '..' are not names");
  for (char c : name) {
    if (c == '/' || c == ':' || c == '\0' || std::isspace(static_cast<unsigned char>(c)))
      return invalid("no '/', ':', whitespace or NUL allowed");
  }
  return {};
}

Result<TunPort> TunPort::open(const std::string& name, uint32_t mtu, bool offload,
                              bool multi_queue) {
  if (auto ok = check_interface_name(name); !ok) return ok.failure();
  if (mtu > 65535) return Error{"MTU " + std::to_string(mtu) + " out of range"};

  auto finish = [mtu](TunPort port) -> Result<TunPort> {
    if (mtu != 0)
      if (auto ok = set_mtu(port.name_, mtu); !ok) return ok.failure();
    return port;
  };
  std::string offloads = "none (disabled)";
  if (offload) {
    auto vnet = attach_first(name, IFF_TUN | IFF_NO_PI | IFF_VNET_HDR, multi_queue);
    if (vnet) {
      TunPort port(vnet->fd, vnet->name, vnet->flags, vnet->mq_refused);
      auto enabled = enable_offloads(port.fd_);
      if (enabled) {
        port.vnet_hdr_ = true;
        port.offload_flags_ = enabled->mask;
        port.offloads_ = enabled->text;
        port.rx_buffer_ = std::make_unique_for_overwrite<uint8_t[]>(kVnetBufferSize);
        return finish(std::move(port));
      }
      offloads = "none (" + enabled.error() + ")";
    } else {
      offloads = "none (IFF_VNET_HDR refused: " + vnet.error() + ")";
    }
  }
  auto plain = attach_first(name, IFF_TUN | IFF_NO_PI, multi_queue);
  if (!plain) return plain.failure();
  TunPort port(plain->fd, plain->name, plain->flags, plain->mq_refused);
  port.offloads_ = std::move(offloads);
  return finish(std::move(port));
}

Result<std::vector<TunPort>> TunPort::open_queues(const std::string& name, uint32_t mtu,
                                                  bool offload, size_t queues) {
  if (queues == 0 || queues > kMaxQueues)
    return Error{"TUN queues " + std::to_string(queues) + ": want 1.." +
                 std::to_string(kMaxQueues)};
  auto first = open(name, mtu, offload, queues > 1);
  if (!first) return first.failure();
  std::vector<TunPort> out;
  out.reserve(queues);
  out.push_back(std::move(*first));
  while (out.size() < queues && out.front().multi_queue()) {
    auto q = out.front().open_queue();
    if (!q)
      return Error{"TUN queue " + std::to_string(out.size() + 1) + " of " + std::to_string(queues) +
                   ": " + q.error()};
    out.push_back(std::move(*q));
  }
  return out;
}

Result<TunPort> TunPort::open_queue() const {
  if (!multi_queue())
    return Error{"TUN multi-queue unavailable: " + (multi_queue_refused_.empty()
                                                        ? std::string("not requested at open")
                                                        : multi_queue_refused_)};
  Error gone{"interface " + name_ + " is gone"};
  if (fd_ < 0 || !same_interface()) return gone;
  auto a = attach(name_, flags_);
  if (!a) return a.failure();
  TunPort q(a->first, a->second, flags_, "");
  // Deleted between the check and TUNSETIFF, which then made a new one: q's
  // destructor removes that again.
  if (q.ifindex_ != ifindex_) return gone;
  q.offloads_ = offloads_;
  if (vnet_hdr_) {
    if (auto ok = repeat_offloads(q.fd_, offload_flags_); !ok) return ok.failure();
    q.vnet_hdr_ = true;
    q.offload_flags_ = offload_flags_;
    q.rx_buffer_ = std::make_unique_for_overwrite<uint8_t[]>(kVnetBufferSize);
  }
  return q;
}

bool TunPort::multi_queue() const {
  return (flags_ & IFF_MULTI_QUEUE) != 0;
}

TunPort::TunPort(int fd, std::string name, short flags, std::string multi_queue_refused)
    : fd_(fd),
      name_(std::move(name)),
      ifindex_(::if_nametoindex(name_.c_str())),
      flags_(flags),
      multi_queue_refused_(std::move(multi_queue_refused)) {}

TunPort::TunPort(TunPort&& other) noexcept {
  *this = std::move(other);
}

TunPort& TunPort::operator=(TunPort&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = std::exchange(other.fd_, -1);
    name_ = std::move(other.name_);
    ifindex_ = other.ifindex_;
    flags_ = other.flags_;
    vnet_hdr_ = other.vnet_hdr_;
    offload_flags_ = other.offload_flags_;
    offloads_ = std::move(other.offloads_);
    multi_queue_refused_ = std::move(other.multi_queue_refused_);
    counters_ = other.counters_;
    rx_buffer_ = std::move(other.rx_buffer_);
    pending_length_ = std::exchange(other.pending_length_, 0);
    plan_ = other.plan_;
    next_segment_ = other.next_segment_;
  }
  return *this;
}

TunPort::~TunPort() {
  if (fd_ >= 0) ::close(fd_);
}

size_t TunPort::read_burst(std::span<Packet> pkts) {
  return vnet_hdr_ ? read_vnet(pkts) : read_plain(pkts);
}

size_t TunPort::read_plain(std::span<Packet> pkts) {
  size_t n = 0;
  while (n < pkts.size()) {
    Packet& p = pkts[n];
    ssize_t got = ::read(fd_, p.base + kHeadroom, p.max_payload());
    if (got < 0) {
      if (errno == EINTR) continue;
      if (errno != EAGAIN && errno != EWOULDBLOCK) ++counters_.rx_errors;
      break;
    }
    if (got == 0) break;  // nothing more (the device went away)
    if (static_cast<size_t>(got) > p.max_payload()) {
      ++counters_.rx_truncated;  // the kernel cut it to the slot: never pass it on
      continue;
    }
    p.offset = kHeadroom;
    p.length = static_cast<uint32_t>(got);
    p.endpoint = {};
    ++counters_.rx_packets;
    counters_.rx_bytes += static_cast<uint64_t>(got);
    ++n;
  }
  return n;
}

bool TunPort::read_super() {
  for (;;) {
    ssize_t got = ::read(fd_, rx_buffer_.get(), kVnetBufferSize);
    if (got < 0) {
      if (errno == EINTR) continue;
      if (errno != EAGAIN && errno != EWOULDBLOCK) ++counters_.rx_errors;
      return false;
    }
    if (got == 0) return false;  // nothing more (the device went away)
    auto size = static_cast<size_t>(got);
    if (size < kVnetHdrSize || size > kVnetHdrSize + kSuperPacketMax) {
      ++counters_.rx_truncated;  // no header, or cut to the buffer: never pass it on
      continue;
    }
    VirtioNetHdr hdr;
    std::memcpy(&hdr, rx_buffer_.get(), kVnetHdrSize);
    std::span<uint8_t> pkt(rx_buffer_.get() + kVnetHdrSize, size - kVnetHdrSize);
    auto plan = tso_parse(hdr, pkt);
    if (!plan) {
      ++counters_.rx_bad_offload;
      ++counters_.rx_bad_offload_by[static_cast<size_t>(plan.failure())];
      continue;
    }
    plan_ = *plan;
    pending_length_ = static_cast<uint32_t>(pkt.size());
    next_segment_ = 0;
    if (plan_.kind != TsoPlan::Kind::kWhole) ++counters_.rx_super;
    return true;
  }
}

size_t TunPort::read_vnet(std::span<Packet> pkts) {
  size_t n = 0;
  while (n < pkts.size()) {
    if (pending_length_ == 0 && !read_super()) break;
    // Keep a super-packet's segments together in one burst when they fit one.
    if (n > 0 && plan_.segments - next_segment_ > pkts.size() - n) break;
    std::span<const uint8_t> pkt(rx_buffer_.get() + kVnetHdrSize, pending_length_);
    auto made = tso_segment(plan_, pkt, next_segment_, pkts.subspan(n));
    if (!made) {
      ++counters_.rx_bad_offload;
      ++counters_.rx_bad_offload_by[static_cast<size_t>(made.failure())];
      pending_length_ = 0;
      continue;
    }
    for (size_t i = n; i < n + *made; ++i) counters_.rx_bytes += pkts[i].length;
    counters_.rx_packets += *made;
    if (plan_.kind != TsoPlan::Kind::kWhole) counters_.rx_segments += *made;
    n += *made;
    next_segment_ += static_cast<uint32_t>(*made);
    if (next_segment_ == plan_.segments) pending_length_ = 0;
  }
  return n;
}

size_t TunPort::write_burst(std::span<Packet> pkts) {
  return vnet_hdr_ ? write_vnet(pkts) : write_plain(pkts);
}

size_t TunPort::write_plain(std::span<Packet> pkts) {
  size_t n = 0;
  while (n < pkts.size()) {
    const Packet& p = pkts[n];
    ssize_t put = ::write(fd_, p.data(), p.length);
    if (put < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        ++counters_.tx_full;
        break;
      }
      ++counters_.tx_errors;  // refused (malformed, device down): drop this one
    } else {
      ++counters_.tx_packets;
      counters_.tx_bytes += p.length;
    }
    ++n;
  }
  return n;
}

// One writev() per planned write (gro.h): a run of one flow's TCP segments goes
// as one GSO super-packet, anything else alone behind a zero header. The run's
// first packet has its headers rewritten by the plan; on EAGAIN they are put
// back, so the caller can retry the same packets.
size_t TunPort::write_vnet(std::span<Packet> pkts) {
  std::array<iovec, kGroMaxSegments + 1> iov;
  std::array<uint8_t, kGroMaxHeader> saved;
  size_t n = 0;
  while (n < pkts.size()) {
    Packet& first = pkts[n];
    size_t keep = std::min<size_t>(first.length, saved.size());
    std::memcpy(saved.data(), first.data(), keep);
    TunWrite w = plan_tun_write(pkts.subspan(n));
    iov[0] = {&w.hdr, kVnetHdrSize};
    iov[1] = {first.data(), first.length};
    uint64_t bytes = first.length;
    for (size_t i = 1; i < w.count; ++i) {
      Packet& seg = pkts[n + i];
      uint32_t off = tcp_payload_offset(seg);
      iov[i + 1] = {seg.data() + off, seg.length - off};
      bytes += seg.length;
    }
    ssize_t put = ::writev(fd_, iov.data(), static_cast<int>(w.count + 1));
    if (put < 0 && errno == EINTR) {
      std::memcpy(first.data(), saved.data(), keep);
      continue;
    }
    if (put < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      std::memcpy(first.data(), saved.data(), keep);
      ++counters_.tx_full;
      break;
    }
    if (put < 0) {
      counters_.tx_errors += w.count;  // refused (malformed, device down): drop the run
    } else {
      counters_.tx_packets += w.count;
      counters_.tx_bytes += bytes;
      if (w.count > 1) {
        ++counters_.tx_super;
        counters_.tx_coalesced += w.count;
      }
    }
    n += w.count;
  }
  return n;
}

bool TunPort::exists() const {
  return !name_.empty() && ::if_nametoindex(name_.c_str()) != 0;
}

bool TunPort::same_interface() const {
  return ifindex_ != 0 && ::if_nametoindex(name_.c_str()) == ifindex_;
}

TunPortCounters& TunPortCounters::operator+=(const TunPortCounters& o) {
  rx_packets += o.rx_packets;
  rx_bytes += o.rx_bytes;
  rx_errors += o.rx_errors;
  rx_truncated += o.rx_truncated;
  rx_super += o.rx_super;
  rx_segments += o.rx_segments;
  rx_bad_offload += o.rx_bad_offload;
  for (size_t i = 0; i < rx_bad_offload_by.size(); ++i)
    rx_bad_offload_by[i] += o.rx_bad_offload_by[i];
  tx_packets += o.tx_packets;
  tx_bytes += o.tx_bytes;
  tx_errors += o.tx_errors;
  tx_full += o.tx_full;
  tx_super += o.tx_super;
  tx_coalesced += o.tx_coalesced;
  return *this;
}

}  // namespace faraday::dataplane
