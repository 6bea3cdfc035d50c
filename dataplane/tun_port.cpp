#include "dataplane/tun_port.h"

#include <fcntl.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstring>

namespace faraday::dataplane {

namespace {

constexpr const char* kTunDevice = "/dev/net/tun";

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

}  // namespace

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

Result<TunPort> TunPort::open(const std::string& name, uint32_t mtu) {
  if (auto ok = check_interface_name(name); !ok) return ok.failure();
  if (mtu > 65535) return Error{"MTU " + std::to_string(mtu) + " out of range"};

  int fd = ::open(kTunDevice, O_RDWR | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) return Error{open_error()};

  ifreq ifr{};
  ifr.ifr_flags = IFF_TUN | IFF_NO_PI;
  std::memcpy(ifr.ifr_name, name.data(), name.size());  // empty: the kernel picks tunN
  if (::ioctl(fd, TUNSETIFF, &ifr) != 0) {
    std::string err = setiff_error(name);
    ::close(fd);
    return Error{err};
  }
  std::string actual(ifr.ifr_name, strnlen(ifr.ifr_name, IFNAMSIZ));

  if (mtu != 0) {
    int sock = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (sock < 0) sock = ::socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    ifreq mreq{};
    std::memcpy(mreq.ifr_name, actual.data(), actual.size());
    mreq.ifr_mtu = static_cast<int>(mtu);
    if (sock < 0 || ::ioctl(sock, SIOCSIFMTU, &mreq) != 0) {
      std::string err = errno_text("SIOCSIFMTU " + actual + " to " + std::to_string(mtu));
      if (sock >= 0) ::close(sock);
      ::close(fd);
      return Error{err};
    }
    ::close(sock);
  }
  return TunPort(fd, std::move(actual));
}

TunPort::TunPort(TunPort&& other) noexcept
    : fd_(std::exchange(other.fd_, -1)),
      name_(std::move(other.name_)),
      counters_(other.counters_) {}

TunPort& TunPort::operator=(TunPort&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = std::exchange(other.fd_, -1);
    name_ = std::move(other.name_);
    counters_ = other.counters_;
  }
  return *this;
}

TunPort::~TunPort() {
  if (fd_ >= 0) ::close(fd_);
}

size_t TunPort::read_burst(std::span<Packet> pkts) {
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

size_t TunPort::write_burst(std::span<Packet> pkts) {
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

bool TunPort::exists() const {
  return !name_.empty() && ::if_nametoindex(name_.c_str()) != 0;
}

}  // namespace faraday::dataplane
