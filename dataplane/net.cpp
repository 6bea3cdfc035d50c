#include "dataplane/net.h"

#include <arpa/inet.h>

#include <charconv>
#include <cstring>

namespace faraday::dataplane {

namespace {

bool parse_port(std::string_view s, uint16_t& out) {
  if (s.empty()) return false;
  unsigned v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size() || v > 65535) return false;
  out = static_cast<uint16_t>(v);
  return true;
}

// Parses a bare IPv4 or IPv6 address into family/addr.
bool parse_addr(std::string_view s, sa_family_t& family, std::array<uint8_t, 16>& addr) {
  char buf[INET6_ADDRSTRLEN + 1];
  if (s.empty() || s.size() >= sizeof(buf)) return false;
  std::memcpy(buf, s.data(), s.size());
  buf[s.size()] = '\0';
  addr = {};
  if (inet_pton(AF_INET, buf, addr.data()) == 1) {
    family = AF_INET;
    return true;
  }
  if (inet_pton(AF_INET6, buf, addr.data()) == 1) {
    family = AF_INET6;
    return true;
  }
  return false;
}

std::string addr_string(sa_family_t family, const std::array<uint8_t, 16>& addr) {
  char buf[INET6_ADDRSTRLEN];
  if (inet_ntop(family, addr.data(), buf, sizeof(buf)) == nullptr) return "?";
  return buf;
}

}  // namespace

std::optional<Endpoint> Endpoint::parse(std::string_view text) {
  Endpoint ep;
  std::string_view host, port;
  if (!text.empty() && text.front() == '[') {
    auto close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':')
      return std::nullopt;
    host = text.substr(1, close - 1);
    port = text.substr(close + 2);
    if (!parse_addr(host, ep.family, ep.addr) || ep.family != AF_INET6) return std::nullopt;
    static constexpr uint8_t kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (std::memcmp(ep.addr.data(), kMapped, sizeof(kMapped)) == 0) {
      // A v4-mapped address is the IPv4 peer it names, as from_sockaddr() has it.
      ep.family = AF_INET;
      std::memmove(ep.addr.data(), ep.addr.data() + 12, 4);
      std::memset(ep.addr.data() + 4, 0, 12);
    }
  } else {
    auto colon = text.rfind(':');
    if (colon == std::string_view::npos) return std::nullopt;
    host = text.substr(0, colon);
    port = text.substr(colon + 1);
    if (!parse_addr(host, ep.family, ep.addr) || ep.family != AF_INET) return std::nullopt;
  }
  if (!parse_port(port, ep.port)) return std::nullopt;
  return ep;
}

Endpoint Endpoint::from_sockaddr(const sockaddr* sa) {
  Endpoint ep;
  if (sa->sa_family == AF_INET) {
    const auto* in = reinterpret_cast<const sockaddr_in*>(sa);
    ep.family = AF_INET;
    ep.port = ntohs(in->sin_port);
    std::memcpy(ep.addr.data(), &in->sin_addr, 4);
  } else if (sa->sa_family == AF_INET6) {
    const auto* in6 = reinterpret_cast<const sockaddr_in6*>(sa);
    ep.port = ntohs(in6->sin6_port);
    if (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr)) {
      ep.family = AF_INET;
      std::memcpy(ep.addr.data(), in6->sin6_addr.s6_addr + 12, 4);
    } else {
      ep.family = AF_INET6;
      std::memcpy(ep.addr.data(), in6->sin6_addr.s6_addr, 16);
    }
  }
  return ep;
}

socklen_t Endpoint::to_sockaddr(sockaddr_storage& ss, bool v6_socket) const {
  std::memset(&ss, 0, sizeof(ss));
  if (family == AF_INET && !v6_socket) {
    auto* in = reinterpret_cast<sockaddr_in*>(&ss);
    in->sin_family = AF_INET;
    in->sin_port = htons(port);
    std::memcpy(&in->sin_addr, addr.data(), 4);
    return sizeof(sockaddr_in);
  }
  auto* in6 = reinterpret_cast<sockaddr_in6*>(&ss);
  in6->sin6_family = AF_INET6;
  in6->sin6_port = htons(port);
  if (family == AF_INET) {
    in6->sin6_addr.s6_addr[10] = 0xff;
    in6->sin6_addr.s6_addr[11] = 0xff;
    std::memcpy(in6->sin6_addr.s6_addr + 12, addr.data(), 4);
  } else {
    std::memcpy(in6->sin6_addr.s6_addr, addr.data(), 16);
  }
  return sizeof(sockaddr_in6);
}

std::string Endpoint::to_string() const {
  if (family == AF_INET) return addr_string(family, addr) + ":" + std::to_string(port);
  if (family == AF_INET6) return "[" + addr_string(family, addr) + "]:" + std::to_string(port);
  return "(none)";
}

Prefix Prefix::masked() const {
  Prefix p = *this;
  if (p.cidr > max_cidr()) p.cidr = max_cidr();
  unsigned bytes = family == AF_INET ? 4 : 16;
  for (unsigned i = 0; i < 16; ++i) {
    unsigned bit = i * 8;
    if (i >= bytes || bit >= p.cidr) {
      p.addr[i] = 0;
    } else if (p.cidr - bit < 8) {
      p.addr[i] &= static_cast<uint8_t>(0xff << (8 - (p.cidr - bit)));
    }
  }
  return p;
}

std::optional<Prefix> Prefix::parse(std::string_view text) {
  Prefix p;
  auto slash = text.find('/');
  if (!parse_addr(text.substr(0, slash), p.family, p.addr)) return std::nullopt;
  p.cidr = p.max_cidr();
  if (slash != std::string_view::npos) {
    auto len = text.substr(slash + 1);
    unsigned v = 0;
    auto [ptr, ec] = std::from_chars(len.data(), len.data() + len.size(), v);
    if (len.empty() || ec != std::errc() || ptr != len.data() + len.size() || v > p.max_cidr())
      return std::nullopt;
    p.cidr = static_cast<uint8_t>(v);
  }
  return p.masked();
}

std::string Prefix::to_string() const {
  return addr_string(family, addr) + "/" + std::to_string(cidr);
}

}  // namespace faraday::dataplane
