#include "dataplane/udp_port.h"

#include <netinet/in.h>
#include <netinet/udp.h>
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

// The largest UDP payload of one GSO message: one IP packet (65535) less the UDP
// header and the IPv4 or IPv6 header.
constexpr size_t kGsoMaxBytesV4 = kMaxDatagram - 8 - 20;
constexpr size_t kGsoMaxBytesV6 = kMaxDatagram - 8 - 40;
// One stage slot holds the largest super-datagram the kernel builds (64 KiB).
constexpr size_t kStageSlot = kMaxDatagram;

// The end of the GSO run that starts at pkts[i]: the following packets to the same
// endpoint, all as long as pkts[i] except the last, which may be shorter (the
// kernel's rule), within kGsoMaxSegments and one IP packet. i + 1 = no run.
size_t gso_run_end(std::span<const Packet> pkts, size_t i) {
  const Packet& head = pkts[i];
  uint32_t seg = head.length;
  if (seg == 0) return i + 1;
  size_t limit = head.endpoint.family == AF_INET ? kGsoMaxBytesV4 : kGsoMaxBytesV6;
  size_t total = seg;
  size_t j = i + 1;
  while (j < pkts.size() && j - i < kGsoMaxSegments) {
    const Packet& p = pkts[j];
    if (p.length == 0 || p.length > seg || total + p.length > limit ||
        !(p.endpoint == head.endpoint))
      break;
    total += p.length;
    ++j;
    if (p.length < seg) break;  // a shorter datagram ends the run
  }
  return j;
}

std::string errno_text(const char* what) {
  return std::string(what) + ": " + std::strerror(errno);
}

void set_buffer(int fd, int force_opt, int opt) {
  int size = kSocketBuffer;
  // The *FORCE variants ignore net.core.{r,w}mem_max but need CAP_NET_ADMIN.
  if (::setsockopt(fd, SOL_SOCKET, force_opt, &size, sizeof(size)) == 0) return;
  ::setsockopt(fd, SOL_SOCKET, opt, &size, sizeof(size));  // best effort: capped by the sysctl
}

struct BindError {
  std::string message;
  int err = 0;
  bool no_ipv6 = false;  // an AF_INET6 socket that this host cannot have
};

// A non-blocking, close-on-exec UDP socket bound to [::]:port, dual-stack (v6),
// or to 0.0.0.0:port; reuseport sets SO_REUSEPORT before the bind.
Result<int, BindError> bind_socket(uint16_t port, bool v6, bool reuseport) {
  auto fail = [](int fd, const std::string& what, bool no_ipv6 = false) {
    int err = errno;
    BindError e{what + ": " + std::strerror(err), err, no_ipv6};
    if (fd >= 0) ::close(fd);
    return e;
  };
  int fd = ::socket(v6 ? AF_INET6 : AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return fail(fd, v6 ? "socket(AF_INET6, SOCK_DGRAM)" : "socket(AF_INET, SOCK_DGRAM)", v6);
  int off = 0, on = 1;
  if (v6 && ::setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof(off)) != 0)
    return fail(fd, "setsockopt(IPV6_V6ONLY=0)");
  if (reuseport && ::setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &on, sizeof(on)) != 0)
    return fail(fd, "setsockopt(SO_REUSEPORT)");
  sockaddr_storage ss{};
  socklen_t len;
  if (v6) {
    auto& sa = reinterpret_cast<sockaddr_in6&>(ss);
    sa.sin6_family = AF_INET6;
    sa.sin6_port = htons(port);
    sa.sin6_addr = in6addr_any;
    len = sizeof(sa);
  } else {
    auto& sa = reinterpret_cast<sockaddr_in&>(ss);
    sa.sin_family = AF_INET;
    sa.sin_port = htons(port);
    sa.sin_addr.s_addr = htonl(INADDR_ANY);
    len = sizeof(sa);
  }
  if (::bind(fd, reinterpret_cast<const sockaddr*>(&ss), len) != 0) {
    bool no_ipv6 = v6 && (errno == EADDRNOTAVAIL || errno == EAFNOSUPPORT);
    return fail(fd, (v6 ? "bind [::]:" : "bind 0.0.0.0:") + std::to_string(port), no_ipv6);
  }
  return fd;
}

struct Bound {
  int fd = -1;
  bool v6 = false;
};

// Dual-stack [::]:port, or 0.0.0.0:port when this host has no IPv6.
Result<Bound, BindError> bind_any(uint16_t port, bool reuseport) {
  auto v6 = bind_socket(port, true, reuseport);
  if (v6) return Bound{*v6, true};
  if (!v6.failure().no_ipv6) return v6.failure();
  auto v4 = bind_socket(port, false, reuseport);
  if (!v4) return v4.failure();
  return Bound{*v4, false};
}

}  // namespace

Result<UdpPort> UdpPort::open(uint16_t port, bool offload) {
  auto bound = bind_any(port, false);
  if (!bound) return Error{bound.error()};
  return adopt(bound->fd, bound->v6, offload);
}

Result<UdpPort> UdpPort::adopt(int fd, bool v6, bool offload) {
  set_buffer(fd, SO_RCVBUFFORCE, SO_RCVBUF);
  set_buffer(fd, SO_SNDBUFFORCE, SO_SNDBUF);
  sockaddr_storage ss{};
  socklen_t len = sizeof(ss);
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) {
    std::string err = errno_text("getsockname");
    ::close(fd);
    return Error{err};
  }
  UdpPort udp(fd, Endpoint::from_sockaddr(reinterpret_cast<const sockaddr*>(&ss)).port, v6);
  udp.probe_offloads(offload);
  return udp;
}

// The GRO receive stage: recvmmsg lands here, drain_stage() hands out one datagram
// per caller slot. Messages [next, count) are pending; `offset` bytes of message
// `next` are already handed out.
struct UdpPort::GroStage {
  std::unique_ptr<uint8_t[]> bytes =
      std::make_unique_for_overwrite<uint8_t[]>(kGroStageMessages * kStageSlot);
  mmsghdr msgs[kGroStageMessages];
  iovec iov[kGroStageMessages];
  sockaddr_storage addrs[kGroStageMessages];
  alignas(cmsghdr) uint8_t control[kGroStageMessages][CMSG_SPACE(sizeof(int))];
  uint32_t length[kGroStageMessages];   // bytes received
  uint32_t segment[kGroStageMessages];  // segment size (gro_segment_size)
  bool skip[kGroStageMessages];         // truncated or without a source: dropped
  Endpoint source[kGroStageMessages];
  size_t count = 0;
  size_t next = 0;
  uint32_t offset = 0;

  uint8_t* slot(size_t m) { return bytes.get() + m * kStageSlot; }
};

UdpPort::UdpPort(int fd, uint16_t port, bool v6) : fd_(fd), port_(port), v6_(v6) {}

void UdpPort::probe_offloads(bool offload) {
  if (!offload) {
    gso_off_.set("not requested", 0);
    gro_off_.set("not requested", 0);
    return;
  }
  int value = 0;
  socklen_t len = sizeof(value);
  if (::getsockopt(fd_, SOL_UDP, UDP_SEGMENT, &value, &len) != 0)
    gso_off_.set("getsockopt(UDP_SEGMENT)", errno);
  int on = 1;
  if (::setsockopt(fd_, SOL_UDP, UDP_GRO, &on, sizeof(on)) != 0) {
    gro_off_.set("setsockopt(UDP_GRO)", errno);
    return;
  }
  stage_ = std::make_unique<GroStage>();
}

UdpPort::UdpPort(UdpPort&& other) noexcept {
  *this = std::move(other);
}

UdpPort& UdpPort::operator=(UdpPort&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = std::exchange(other.fd_, -1);
    port_ = other.port_;
    v6_ = other.v6_;
    gso_off_.set(other.gso_off_.what.load(), other.gso_off_.err.load());
    gro_off_.set(other.gro_off_.what.load(), other.gro_off_.err.load());
    stage_ = std::move(other.stage_);
    counters_ = other.counters_;
  }
  return *this;
}

UdpPort::~UdpPort() {
  if (fd_ >= 0) ::close(fd_);
}

std::string UdpPort::offloads() const {
  std::string text = "UDP";
  std::string off;
  const char* sep = " ";
  auto add = [&](const char* name, const OffReason& r) {
    const char* what = r.what.load(std::memory_order_acquire);
    if (what == nullptr) {
      text += sep;
      text += name;
      sep = "+";
      return;
    }
    off += std::string(off.empty() ? "" : "; ") + name + " off: " + what;
    int err = r.err.load(std::memory_order_relaxed);
    if (err != 0) off += std::string(": ") + std::strerror(err);
  };
  add("GSO", gso_off_);
  add("GRO", gro_off_);
  if (off.empty()) return text;
  return text + (text.size() > 3 ? "; " : " ") + off;
}

bool UdpPort::pending() const {
  return stage_ && stage_->next < stage_->count;
}

uint32_t UdpPort::gro_segment_size(const msghdr& h, uint32_t len) {
  if (h.msg_control == nullptr) return len;
  // CMSG_NXTHDR takes a non-const msghdr; it only reads it.
  auto& mh = const_cast<msghdr&>(h);
  for (cmsghdr* c = CMSG_FIRSTHDR(&mh); c != nullptr; c = CMSG_NXTHDR(&mh, c)) {
    if (c->cmsg_level != SOL_UDP || c->cmsg_type != UDP_GRO) continue;
    if (c->cmsg_len < CMSG_LEN(sizeof(int))) return len;
    int gso = 0;
    std::memcpy(&gso, CMSG_DATA(c), sizeof(gso));
    if (gso > 0 && static_cast<uint32_t>(gso) < len) return static_cast<uint32_t>(gso);
    return len;
  }
  return len;
}

size_t UdpPort::recv_burst(std::span<Packet> pkts) {
  return stage_ ? recv_gro(pkts) : recv_direct(pkts);
}

size_t UdpPort::recv_direct(std::span<Packet> pkts) {
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

// Staged segments first (they are older), then fresh messages until the span is
// full or the socket is drained.
size_t UdpPort::recv_gro(std::span<Packet> pkts) {
  size_t filled = drain_stage(pkts);
  while (filled < pkts.size()) {
    size_t want = std::min(kGroStageMessages, pkts.size() - filled);
    if (!refill_stage(want)) break;
    filled += drain_stage(pkts.subspan(filled));
    if (stage_->count < want) break;  // the queue is drained
  }
  return filled;
}

// Receives up to want messages into the (empty) stage; false if none came.
bool UdpPort::refill_stage(size_t want) {
  GroStage& st = *stage_;
  st.count = st.next = 0;
  st.offset = 0;
  std::memset(st.msgs, 0, sizeof(mmsghdr) * want);
  for (size_t m = 0; m < want; ++m) {
    st.iov[m] = {st.slot(m), kStageSlot};
    msghdr& h = st.msgs[m].msg_hdr;
    h.msg_name = &st.addrs[m];
    h.msg_namelen = sizeof(st.addrs[m]);
    h.msg_iov = &st.iov[m];
    h.msg_iovlen = 1;
    h.msg_control = st.control[m];
    h.msg_controllen = sizeof(st.control[m]);
  }
  int got;
  do {
    got = ::recvmmsg(fd_, st.msgs, static_cast<unsigned>(want), MSG_DONTWAIT, nullptr);
  } while (got < 0 && errno == EINTR);
  if (got <= 0) {
    if (got < 0 && errno != EAGAIN && errno != EWOULDBLOCK) ++counters_.rx_errors;
    return false;
  }
  for (size_t m = 0; m < static_cast<size_t>(got); ++m) {
    const msghdr& h = st.msgs[m].msg_hdr;
    uint32_t len = st.msgs[m].msg_len;
    st.skip[m] = (h.msg_flags & MSG_TRUNC) != 0 || h.msg_namelen < sizeof(sa_family_t);
    if (st.skip[m]) {
      ++counters_.rx_truncated;  // cannot happen with 64 KiB slots; never pass it on
      continue;
    }
    st.length[m] = len;
    st.segment[m] = gro_segment_size(h, len);
    st.source[m] = Endpoint::from_sockaddr(reinterpret_cast<const sockaddr*>(&st.addrs[m]));
    if (st.segment[m] < len) {
      ++counters_.rx_gro_super;
      counters_.rx_gro_segments += (len + st.segment[m] - 1) / st.segment[m];
    }
  }
  st.count = static_cast<size_t>(got);
  return true;
}

// Hands out staged datagrams, one per slot of pkts, in order; returns how many.
size_t UdpPort::drain_stage(std::span<Packet> pkts) {
  if (!stage_) return 0;
  GroStage& st = *stage_;
  size_t out = 0;
  while (st.next < st.count && out < pkts.size()) {
    size_t m = st.next;
    if (st.skip[m]) {
      ++st.next;
      continue;
    }
    uint32_t n = std::min(st.segment[m], st.length[m] - st.offset);
    Packet& dst = pkts[out];
    if (n > dst.max_payload()) {
      ++counters_.rx_truncated;  // larger than the caller's slot, as without GRO
    } else {
      std::memcpy(dst.base + kHeadroom, st.slot(m) + st.offset, n);
      dst.offset = kHeadroom;
      dst.length = n;
      dst.endpoint = st.source[m];
      ++counters_.rx_packets;
      counters_.rx_bytes += n;
      ++out;
    }
    st.offset += n;
    if (st.offset >= st.length[m]) {
      ++st.next;
      st.offset = 0;
    }
  }
  return out;
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
    size_t done = send_run(pkts.subspan(i, j - i), gso());
    i += done;
    if (i < j) return i;  // socket full
  }
  return i;
}

size_t UdpPort::send_run(std::span<Packet> pkts, bool gso) {
  mmsghdr msgs[kBurstSize];
  iovec iov[kBurstSize];
  sockaddr_storage addrs[kBurstSize];
  alignas(cmsghdr) uint8_t control[kBurstSize][CMSG_SPACE(sizeof(uint16_t))];
  uint16_t first[kBurstSize + 1];  // message m carries pkts[first[m], first[m + 1])
  size_t n = 0;
  for (size_t i = 0; i < pkts.size(); ++n) {
    size_t end = gso ? gso_run_end(pkts, i) : i + 1;
    for (size_t k = i; k < end; ++k) iov[k] = {pkts[k].data(), pkts[k].length};
    msghdr& h = msgs[n].msg_hdr;
    h = {};
    h.msg_name = &addrs[n];
    h.msg_namelen = pkts[i].endpoint.to_sockaddr(addrs[n], v6_);
    h.msg_iov = &iov[i];
    h.msg_iovlen = end - i;
    if (end - i > 1) {
      h.msg_control = control[n];
      h.msg_controllen = sizeof(control[n]);
      cmsghdr* c = CMSG_FIRSTHDR(&h);
      c->cmsg_level = SOL_UDP;
      c->cmsg_type = UDP_SEGMENT;
      c->cmsg_len = CMSG_LEN(sizeof(uint16_t));
      auto seg = static_cast<uint16_t>(pkts[i].length);
      std::memcpy(CMSG_DATA(c), &seg, sizeof(seg));
    }
    first[n] = static_cast<uint16_t>(i);
    i = end;
  }
  first[n] = static_cast<uint16_t>(pkts.size());
  size_t m = 0;
  while (m < n) {
    int sent = ::sendmmsg(fd_, msgs + m, static_cast<unsigned>(n - m), MSG_DONTWAIT);
    if (sent < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOBUFS) {
        ++counters_.tx_full;
        return first[m];
      }
      size_t count = first[m + 1] - first[m];
      if (count > 1) {
        size_t done = send_fallback(pkts.subspan(first[m], count), errno);
        if (done < count) return first[m] + done;
      } else {
        ++counters_.tx_errors;  // this datagram cannot go (EMSGSIZE, unreachable): drop it
      }
      ++m;
      continue;
    }
    for (size_t end = m + static_cast<size_t>(sent); m < end; ++m) {
      size_t count = first[m + 1] - first[m];
      for (size_t k = first[m]; k < first[m + 1]; ++k) counters_.tx_bytes += pkts[k].length;
      counters_.tx_packets += count;
      if (count > 1) {
        ++counters_.tx_gso_messages;
        counters_.tx_gso_segments += count;
      }
    }
  }
  return pkts.size();
}

size_t UdpPort::send_fallback(std::span<Packet> pkts, int err) {
  ++counters_.tx_gso_fallbacks;
  // EIO: the route's device cannot checksum segments; it will not learn to.
  // Other refusals (EINVAL for a segment above the path MTU, EMSGSIZE) concern
  // this message only.
  if (err == EIO && gso()) gso_off_.set("sendmsg with UDP_SEGMENT", EIO);
  return send_run(pkts, false);
}

Status UdpPort::set_mark(uint32_t mark) {
  if (::setsockopt(fd_, SOL_SOCKET, SO_MARK, &mark, sizeof(mark)) != 0)
    return Error{errno_text(("setsockopt(SO_MARK=" + std::to_string(mark) + ")").c_str())};
  return {};
}

Result<UdpPortGroup> UdpPortGroup::open(uint16_t port, size_t count, bool offload) {
  if (count == 0 || count > kMaxSockets)
    return Error{"UDP sockets " + std::to_string(count) + ": want 1.." +
                 std::to_string(kMaxSockets)};
  UdpPortGroup group;
  group.offload_ = offload;
  if (count == 1) {
    auto one = UdpPort::open(port, offload);
    if (!one) return one.failure();
    group.port_ = one->port();
    group.v6_ = one->dual_stack();
    group.ports_.push_back(std::move(*one));
    return group;
  }
  // SO_REUSEPORT sockets on chosen, all of one family (the probe's).
  auto bind_members = [&](uint16_t chosen, bool v6) -> Result<std::vector<UdpPort>, BindError> {
    std::vector<UdpPort> members;
    members.reserve(count);
    while (members.size() < count) {
      auto fd = bind_socket(chosen, v6, true);
      if (!fd) return fd.failure();
      auto member = UdpPort::adopt(*fd, v6, offload);
      if (!member) return BindError{member.error()};
      members.push_back(std::move(*member));
    }
    return members;
  };
  constexpr int kPortZeroTries = 4;
  for (int attempt = 1;; ++attempt) {
    auto probe = bind_any(port, false);  // see the header: no SO_REUSEPORT here
    if (!probe) return Error{probe.error()};
    sockaddr_storage ss{};
    socklen_t len = sizeof(ss);
    int got = ::getsockname(probe->fd, reinterpret_cast<sockaddr*>(&ss), &len);
    std::string err = got != 0 ? errno_text("getsockname") : "";
    ::close(probe->fd);
    if (got != 0) return Error{err};
    uint16_t chosen = Endpoint::from_sockaddr(reinterpret_cast<const sockaddr*>(&ss)).port;
    auto members = bind_members(chosen, probe->v6);
    if (members) {
      group.ports_ = std::move(*members);
      group.port_ = chosen;
      group.v6_ = probe->v6;
      return group;
    }
    // Port 0: someone took the probe's port before the members bound it.
    if (port != 0 || members.failure().err != EADDRINUSE || attempt == kPortZeroTries)
      return Error{members.error()};
  }
}

Result<UdpPortGroup> UdpPortGroup::reopen(uint16_t port) const {
  return open(port, ports_.size(), offload_);
}

Status UdpPortGroup::set_mark(uint32_t mark) {
  Status first;
  for (UdpPort& p : ports_)
    if (auto ok = p.set_mark(mark); !ok && first.ok()) first = ok;
  return first;
}

UdpPortCounters& UdpPortCounters::operator+=(const UdpPortCounters& o) {
  rx_packets += o.rx_packets;
  rx_bytes += o.rx_bytes;
  rx_truncated += o.rx_truncated;
  rx_errors += o.rx_errors;
  rx_gro_super += o.rx_gro_super;
  rx_gro_segments += o.rx_gro_segments;
  tx_packets += o.tx_packets;
  tx_bytes += o.tx_bytes;
  tx_invalid_endpoint += o.tx_invalid_endpoint;
  tx_errors += o.tx_errors;
  tx_full += o.tx_full;
  tx_gso_messages += o.tx_gso_messages;
  tx_gso_segments += o.tx_gso_segments;
  tx_gso_fallbacks += o.tx_gso_fallbacks;
  return *this;
}

}  // namespace faraday::dataplane
