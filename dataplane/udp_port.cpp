#include "dataplane/udp_port.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <utility>

namespace faraday::dataplane {

namespace {

// wireguard-go and the Linux driver ask for a few MiB; bursts of 64 x 64 KiB fit.
constexpr int kSocketBuffer = 7 << 20;

std::string errno_text(const char* what) {
  return std::string(what) + ": " + std::strerror(errno);
}

void set_buffer(int fd, int force_opt, int opt) {
  int size = kSocketBuffer;
  // The *FORCE variants ignore net.core.{r,w}mem_max but need CAP_NET_ADMIN.
  if (::setsockopt(fd, SOL_SOCKET, force_opt, &size, sizeof(size)) == 0) return;
  ::setsockopt(fd, SOL_SOCKET, opt, &size, sizeof(size));  // best effort: capped by the sysctl
}

}  // namespace

Result<UdpPort> UdpPort::open(uint16_t port) {
  bool v6 = true;
  int fd = ::socket(AF_INET6, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd >= 0) {
    int off = 0;
    if (::setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof(off)) != 0) {
      std::string err = errno_text("setsockopt(IPV6_V6ONLY=0)");
      ::close(fd);
      return Error{err};
    }
    sockaddr_in6 sa{};
    sa.sin6_family = AF_INET6;
    sa.sin6_port = htons(port);
    sa.sin6_addr = in6addr_any;
    if (::bind(fd, reinterpret_cast<const sockaddr*>(&sa), sizeof(sa)) != 0) {
      if (errno != EADDRNOTAVAIL && errno != EAFNOSUPPORT) {
        std::string err = errno_text(("bind [::]:" + std::to_string(port)).c_str());
        ::close(fd);
        return Error{err};
      }
      ::close(fd);
      fd = -1;  // IPv6 disabled on this host: fall back below
    }
  }
  if (fd < 0) {
    v6 = false;
    fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return Error{errno_text("socket(AF_INET, SOCK_DGRAM)")};
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(port);
    sa.sin_addr.s_addr = htonl(INADDR_ANY);
    if (::bind(fd, reinterpret_cast<const sockaddr*>(&sa), sizeof(sa)) != 0) {
      std::string err = errno_text(("bind 0.0.0.0:" + std::to_string(port)).c_str());
      ::close(fd);
      return Error{err};
    }
  }
  set_buffer(fd, SO_RCVBUFFORCE, SO_RCVBUF);
  set_buffer(fd, SO_SNDBUFFORCE, SO_SNDBUF);

  sockaddr_storage ss{};
  socklen_t len = sizeof(ss);
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) {
    std::string err = errno_text("getsockname");
    ::close(fd);
    return Error{err};
  }
  return UdpPort(fd, Endpoint::from_sockaddr(reinterpret_cast<const sockaddr*>(&ss)).port, v6);
}

UdpPort::UdpPort(UdpPort&& other) noexcept
    : fd_(std::exchange(other.fd_, -1)),
      port_(other.port_),
      v6_(other.v6_),
      counters_(other.counters_) {}

UdpPort& UdpPort::operator=(UdpPort&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = std::exchange(other.fd_, -1);
    port_ = other.port_;
    v6_ = other.v6_;
    counters_ = other.counters_;
  }
  return *this;
}

UdpPort::~UdpPort() {
  if (fd_ >= 0) ::close(fd_);
}

size_t UdpPort::recv_burst(std::span<Packet> pkts) {
  mmsghdr msgs[kBurstSize];
  iovec iov[kBurstSize];
  sockaddr_storage addrs[kBurstSize];
  size_t filled = 0;
  while (filled < pkts.size()) {
    size_t want = std::min(kBurstSize, pkts.size() - filled);
    std::memset(msgs, 0, sizeof(mmsghdr) * want);
    for (size_t i = 0; i < want; ++i) {
      Packet& p = pkts[filled + i];
      iov[i].iov_base = p.base + kHeadroom;
      iov[i].iov_len = p.max_payload();
      msgs[i].msg_hdr.msg_name = &addrs[i];
      msgs[i].msg_hdr.msg_namelen = sizeof(addrs[i]);
      msgs[i].msg_hdr.msg_iov = &iov[i];
      msgs[i].msg_hdr.msg_iovlen = 1;
    }
    int got = ::recvmmsg(fd_, msgs, static_cast<unsigned>(want), MSG_DONTWAIT, nullptr);
    if (got < 0) {
      if (errno == EINTR) continue;
      if (errno != EAGAIN && errno != EWOULDBLOCK) ++counters_.rx_errors;
      break;
    }
    size_t kept = 0;
    for (size_t i = 0; i < static_cast<size_t>(got); ++i) {
      const msghdr& h = msgs[i].msg_hdr;
      if ((h.msg_flags & MSG_TRUNC) != 0 || h.msg_namelen < sizeof(sa_family_t)) {
        ++counters_.rx_truncated;  // larger than the slot: never pass it on
        continue;
      }
      Packet& dst = pkts[filled + kept];
      if (kept != i)
        std::memcpy(dst.base + kHeadroom, pkts[filled + i].base + kHeadroom, msgs[i].msg_len);
      dst.offset = kHeadroom;
      dst.length = msgs[i].msg_len;
      dst.endpoint = Endpoint::from_sockaddr(reinterpret_cast<const sockaddr*>(&addrs[i]));
      ++counters_.rx_packets;
      counters_.rx_bytes += msgs[i].msg_len;
      ++kept;
    }
    filled += kept;
    if (static_cast<size_t>(got) < want) break;  // the queue is drained
  }
  return filled;
}

size_t UdpPort::send_burst(std::span<Packet> pkts) {
  auto sendable = [this](const Packet& p) {
    const Endpoint& ep = p.endpoint;
    return ep.valid() && ep.port != 0 && (v6_ || ep.family == AF_INET);
  };
  size_t i = 0;
  while (i < pkts.size()) {
    if (!sendable(pkts[i])) {
      ++counters_.tx_invalid_endpoint;
      ++i;
      continue;
    }
    size_t j = i;
    while (j < pkts.size() && j - i < kBurstSize && sendable(pkts[j])) ++j;
    size_t done = send_run(pkts.subspan(i, j - i));
    i += done;
    if (i < j) return i;  // socket full
  }
  return i;
}

size_t UdpPort::send_run(std::span<Packet> pkts) {
  mmsghdr msgs[kBurstSize];
  iovec iov[kBurstSize];
  sockaddr_storage addrs[kBurstSize];
  std::memset(msgs, 0, sizeof(mmsghdr) * pkts.size());
  for (size_t i = 0; i < pkts.size(); ++i) {
    iov[i].iov_base = pkts[i].data();
    iov[i].iov_len = pkts[i].length;
    msgs[i].msg_hdr.msg_name = &addrs[i];
    msgs[i].msg_hdr.msg_namelen = pkts[i].endpoint.to_sockaddr(addrs[i], v6_);
    msgs[i].msg_hdr.msg_iov = &iov[i];
    msgs[i].msg_hdr.msg_iovlen = 1;
  }
  size_t k = 0;
  while (k < pkts.size()) {
    int sent = ::sendmmsg(fd_, msgs + k, static_cast<unsigned>(pkts.size() - k), MSG_DONTWAIT);
    if (sent < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOBUFS) {
        ++counters_.tx_full;
        return k;
      }
      ++counters_.tx_errors;  // this datagram cannot go (EMSGSIZE, unreachable): drop it
      ++k;
      continue;
    }
    for (size_t s = 0; s < static_cast<size_t>(sent); ++s) {
      ++counters_.tx_packets;
      counters_.tx_bytes += pkts[k + s].length;
    }
    k += static_cast<size_t>(sent);
  }
  return k;
}

}  // namespace faraday::dataplane
