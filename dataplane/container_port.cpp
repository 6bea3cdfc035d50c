// container_port.cpp: see container_port.h.
#include "dataplane/container_port.h"

#include <fmt/core.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "dataplane/rcu.h"

namespace faraday::dataplane {

namespace {

constexpr size_t kIpv4Header = 20;
constexpr size_t kIpv6Header = 40;

// The source (source = true) or destination address of an IP packet, and
// its family; AF_UNSPEC when the packet is too short for its version.
sa_family_t ip_address(const uint8_t* ip, size_t length, bool source, const uint8_t*& addr) {
  if (length >= kIpv4Header && ip[0] >> 4 == 4) {
    addr = ip + (source ? 12 : 16);
    return AF_INET;
  }
  if (length >= kIpv6Header && ip[0] >> 4 == 6) {
    addr = ip + (source ? 8 : 24);
    return AF_INET6;
  }
  return AF_UNSPEC;
}

bool in_prefix(const Prefix& p, sa_family_t family, const uint8_t* addr) {
  if (p.family != family) return false;
  const size_t bytes = p.cidr / 8;
  if (std::memcmp(p.addr.data(), addr, bytes) != 0) return false;
  const unsigned bits = p.cidr % 8;
  if (bits == 0) return true;
  const uint8_t mask = static_cast<uint8_t>(0xff00 >> bits);
  return (p.addr[bytes] & mask) == (addr[bytes] & mask);
}

size_t address_bytes(sa_family_t family) {
  return family == AF_INET ? 4 : 16;
}

}  // namespace

const char* to_string(ContainerTap::Drop d) {
  switch (d) {
    case ContainerTap::Drop::kNotOwnSource:
      return "not_own_source";
    case ContainerTap::Drop::kTruncated:
      return "truncated";
    case ContainerTap::Drop::kTooLarge:
      return "too_large";
    case ContainerTap::Drop::kReadError:
      return "read_error";
    case ContainerTap::Drop::kCount:
      break;
  }
  return "?";
}

ContainerTap::ContainerTap(int fd, std::string name, Prefix address, MacAddress ours,
                           MacAddress container)
    : fd_(fd), name_(std::move(name)), address_(address), ours_(ours), link_(ours, container) {
  link_.share_host(&learnt_);
}

ContainerTap::~ContainerTap() {
  if (fd_ >= 0) ::close(fd_);
}

bool ContainerTap::own_source(const uint8_t* ip, size_t length) {
  const uint8_t* src = nullptr;
  const sa_family_t family = ip_address(ip, length, true, src);
  if (family == AF_UNSPEC) {
    drop(Drop::kTruncated);
    return false;
  }
  if (family != address_.family ||
      std::memcmp(src, address_.addr.data(), address_bytes(family)) != 0) {
    drop(Drop::kNotOwnSource);
    return false;
  }
  return true;
}

size_t ContainerTap::read_burst(std::span<Packet> pkts) {
  size_t kept = 0;
  std::array<uint8_t, InnerLink::kControlFrameSize> answer;
  for (size_t reads = 0; kept < pkts.size() && reads < 2 * pkts.size(); ++reads) {
    Packet& p = pkts[kept];
    p.reset();
    // The frame's Ethernet header goes into the headroom, so that the IP
    // packet starts at kHeadroom as every port leaves it.
    uint8_t* frame = p.base + kHeadroom - kEthernetHeader;
    const size_t room = p.max_payload() + kEthernetHeader;
    const ssize_t n = ::read(fd_, frame, room + 1);
    if (n < 0) {
      if (errno == EAGAIN || errno == EINTR) break;
      // EBADFD: the TAP was detached, its interface deleted.
      if (errno == EBADFD || errno == EIO || errno == ENXIO) {
        set_gone();
      } else {
        drop(Drop::kReadError);
      }
      break;
    }
    counters_.rx_frames.fetch_add(1, std::memory_order_relaxed);
    if (static_cast<size_t>(n) > room) {
      drop(Drop::kTooLarge);
      continue;
    }
    size_t answer_length = 0;
    switch (link_.receive({frame, static_cast<size_t>(n)}, answer, answer_length)) {
      case InnerLink::Rx::kAnswer:
        if (::write(fd_, answer.data(), answer_length) < 0)
          counters_.tx_errors.fetch_add(1, std::memory_order_relaxed);
        continue;
      case InnerLink::Rx::kDropped:
        continue;
      case InnerLink::Rx::kPacket:
        break;
    }
    p.length = static_cast<uint32_t>(n - kEthernetHeader);
    if (!own_source(p.data(), p.length)) continue;
    counters_.rx_packets.fetch_add(1, std::memory_order_relaxed);
    counters_.rx_bytes.fetch_add(p.length, std::memory_order_relaxed);
    ++kept;
  }
  return kept;
}

bool ContainerTap::deliver(Packet& p) {
  if (p.offset < kEthernetHeader || p.length == 0 ||
      !link_.write_header(p.data() - kEthernetHeader, p.data()[0])) {
    counters_.tx_errors.fetch_add(1, std::memory_order_relaxed);
    return false;
  }
  const ssize_t n = ::write(fd_, p.data() - kEthernetHeader, p.length + kEthernetHeader);
  if (n < 0) {
    if (errno == EBADFD) set_gone();
    counters_.tx_errors.fetch_add(1, std::memory_order_relaxed);
    return false;
  }
  counters_.tx_packets.fetch_add(1, std::memory_order_relaxed);
  counters_.tx_bytes.fetch_add(p.length, std::memory_order_relaxed);
  return true;
}

ContainerTable::ContainerTable(Prefix prefix, std::vector<std::shared_ptr<ContainerTap>> taps)
    : prefix_(prefix), taps_(std::move(taps)) {}

ContainerTable::Dst ContainerTable::find(const Packet& p, ContainerTap*& tap) const {
  const uint8_t* dst = nullptr;
  const sa_family_t family = ip_address(p.data(), p.length, false, dst);
  if (family == AF_UNSPEC || !in_prefix(prefix_, family, dst)) return Dst::kHost;
  for (const auto& t : taps_) {
    if (t->address().family == family &&
        std::memcmp(t->address().addr.data(), dst, address_bytes(family)) == 0) {
      tap = t.get();
      return Dst::kContainer;
    }
  }
  return Dst::kNone;
}

size_t ContainerTable::divert(std::span<Packet> pkts, Counter& unknown) const {
  size_t kept = 0;
  for (Packet& p : pkts) {
    ContainerTap* tap = nullptr;
    switch (find(p, tap)) {
      case Dst::kHost:
        std::swap(pkts[kept++], p);
        break;
      case Dst::kContainer:
        tap->deliver(p);
        break;
      case Dst::kNone:
        ++unknown;
        break;
    }
  }
  return kept;
}

size_t ContainerTable::from_container(ContainerTap& tap, std::span<Packet> pkts,
                                      Counter& unknown) const {
  return divert(pkts.first(tap.read_burst(pkts)), unknown);
}

void ContainerPorts::set(std::optional<Prefix> prefix,
                         std::vector<std::shared_ptr<ContainerTap>> taps, bool readers) {
  polled_.clear();  // they may go with the old table: the next pass polls anew
  std::unique_ptr<const ContainerTable> next;
  if (prefix) next = std::make_unique<ContainerTable>(*prefix, std::move(taps));
  table_.store(next.get(), std::memory_order_release);
  // The old table (and a removed TAP with it, closing its descriptor) goes
  // once no worker can hold it.
  if (readers) rcu_synchronize();
  owned_ = std::move(next);
}

void ContainerPorts::append_pollfds(std::vector<pollfd>& fds) {
  polled_.clear();
  if (!owned_) return;
  for (const auto& tap : owned_->taps())
    if (!tap->gone()) {
      polled_.push_back(tap.get());
      fds.push_back({tap->fd(), POLLIN, 0});
    }
}

void ContainerPorts::serve(std::span<const pollfd> fds,
                           const std::function<void(std::span<Packet>)>& to_mesh,
                           const LogSink& log) {
  for (size_t i = 0; i < fds.size() && i < polled_.size(); ++i) {
    ContainerTap& tap = *polled_[i];
    // DEL marks its TAP gone before deleting it: that one is not news.
    const bool was_gone = tap.gone();
    if (fds[i].revents & POLLIN) {
      const size_t mesh = owned_->from_container(tap, rx_.packets(), unknown_);
      if (mesh > 0) to_mesh(rx_.packets().first(mesh));
    }
    if (fds[i].revents & (POLLERR | POLLHUP | POLLNVAL)) tap.set_gone();
    if (!was_gone && tap.gone() && log)
      log(LogLevel::kWarn,
          fmt::format("container interface {} ({}) is gone: deleted, or with its network "
                      "namespace; its address stays allocated until the container is deleted",
                      tap.name(), tap.address().to_string()));
  }
}

}  // namespace faraday::dataplane
