// net.h: underlay endpoints and allowed-IP prefixes, the two address types the
// WireGuard core speaks in. Plain values: trivially copyable, no allocation, safe
// to copy between threads.
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace faraday::dataplane {

// An IPv4 or IPv6 address plus UDP port. IPv4 lives in the first 4 bytes of
// addr. A v4-mapped IPv6 address is always stored as AF_INET.
struct Endpoint {
  sa_family_t family = AF_UNSPEC;  // AF_INET, AF_INET6 or AF_UNSPEC (unset)
  uint16_t port = 0;               // host byte order
  std::array<uint8_t, 16> addr{};

  bool valid() const { return family == AF_INET || family == AF_INET6; }
  bool operator==(const Endpoint&) const = default;

  // "192.0.2.1:51820" or "[2001:db8::1]:51820". nullopt on anything else.
  static std::optional<Endpoint> parse(std::string_view text);
  static Endpoint from_sockaddr(const sockaddr* sa);
  // Fills ss as an AF_INET6 socket address when v6_socket (v4 as ::ffff:a.b.c.d),
  // else in the endpoint's own family. Returns the length to pass to the kernel.
  socklen_t to_sockaddr(sockaddr_storage& ss, bool v6_socket) const;
  std::string to_string() const;
};

// An allowed-IPs prefix: address plus prefix length (0..32 or 0..128).
// Bits past cidr are zero after parse() or masked().
struct Prefix {
  sa_family_t family = AF_UNSPEC;
  uint8_t cidr = 0;
  std::array<uint8_t, 16> addr{};

  bool operator==(const Prefix&) const = default;
  uint8_t max_cidr() const { return family == AF_INET ? 32 : 128; }
  Prefix masked() const;

  // "10.0.0.0/8", "fd00::/64", or a bare address (host prefix).
  static std::optional<Prefix> parse(std::string_view text);
  std::string to_string() const;
};

}  // namespace faraday::dataplane
