// node_info.cpp: see node_info.h.
#include "proto/node_info.h"

#include <arpa/inet.h>
#include <fmt/core.h>

#include <algorithm>
#include <array>
#include <charconv>

namespace faraday::proto {

bool valid_node_name(std::string_view name) {
  if (name.empty() || name.size() > kMaxNameBytes) return false;
  auto alnum = [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
  };
  if (!alnum(name[0])) return false;
  return std::all_of(name.begin(), name.end(),
                     [&](char c) { return alnum(c) || c == '.' || c == '_' || c == '-'; });
}

Status check_endpoint(const Endpoint& ep) {
  if (ep.ip().size() != 4 && ep.ip().size() != 16) {
    return faraday::Error{fmt::format("endpoint address is {} bytes, not 4 or 16", ep.ip().size())};
  }
  if (ep.port() == 0 || ep.port() > 65535)
    return faraday::Error{fmt::format("endpoint port {}", ep.port())};
  return {};
}

Status check_prefix(const Prefix& p) {
  size_t n = p.ip().size();
  if (n != 4 && n != 16)
    return faraday::Error{fmt::format("prefix address is {} bytes, not 4 or 16", n)};
  if (p.len() > n * 8)
    return faraday::Error{fmt::format("prefix length {} over {}", p.len(), n * 8)};
  for (size_t bit = p.len(); bit < n * 8; ++bit) {
    if (static_cast<uint8_t>(p.ip()[bit / 8]) & (0x80 >> (bit % 8))) {
      return faraday::Error{fmt::format("prefix {} has host bits set", prefix_text(p))};
    }
  }
  return {};
}

std::pair<PrefixBound, PrefixBound> prefix_range(const Prefix& p) {
  PrefixBound lo{}, hi{};
  lo[0] = hi[0] = static_cast<uint8_t>(p.ip().size());
  for (size_t i = 0; i < p.ip().size(); ++i) {
    lo[i + 1] = hi[i + 1] = static_cast<uint8_t>(p.ip()[i]);
  }
  for (size_t bit = p.len(); bit < p.ip().size() * 8; ++bit) hi[1 + bit / 8] |= 0x80 >> (bit % 8);
  return {lo, hi};
}

Status check_node_info(const NodeInfo& info) {
  if (info.public_key().size() != kPublicKeyBytes) {
    return faraday::Error{fmt::format("public key is {} bytes, not 32", info.public_key().size())};
  }
  if (std::all_of(info.public_key().begin(), info.public_key().end(),
                  [](char c) { return c == 0; })) {
    return faraday::Error{"public key is all zero"};
  }
  if (info.underlay_size() > kMaxUnderlay) {
    return faraday::Error{
        fmt::format("{} underlay endpoints, at most {}", info.underlay_size(), kMaxUnderlay)};
  }
  for (const auto& ep : info.underlay()) {
    if (Status s = check_endpoint(ep); !s) return faraday::Error{"underlay " + s.error()};
  }
  if (info.allowed_ips_size() > kMaxAllowedIps) {
    return faraday::Error{
        fmt::format("{} allowed IPs, at most {}", info.allowed_ips_size(), kMaxAllowedIps)};
  }
  struct Range {
    PrefixBound lo, hi;
    bool operator<(const Range& o) const { return lo < o.lo; }
  };
  Range ranges[kMaxAllowedIps];  // on the stack, left uninitialised: no allocation, no zeroing
  size_t n = 0;
  for (const auto& p : info.allowed_ips()) {
    if (Status s = check_prefix(p); !s) return faraday::Error{"allowed IP " + s.error()};
    auto [lo, hi] = prefix_range(p);
    ranges[n++] = {lo, hi};
  }
  std::sort(ranges, ranges + n);
  for (size_t i = 1; i < n; ++i) {
    if (ranges[i].lo <= ranges[i - 1].hi) {
      return faraday::Error{"allowed IPs overlap each other"};
    }
  }
  if (info.has_control()) {
    if (Status s = check_endpoint(info.control()); !s) {
      return faraday::Error{"control " + s.error()};
    }
  }
  return {};
}

namespace {

std::string address_text(const std::string& ip) {
  char buf[INET6_ADDRSTRLEN] = "?";
  if (ip.size() == 4) inet_ntop(AF_INET, ip.data(), buf, sizeof(buf));
  if (ip.size() == 16) inet_ntop(AF_INET6, ip.data(), buf, sizeof(buf));
  return buf;
}

std::optional<std::string> parse_address(std::string_view text) {
  std::string s(text);
  std::array<uint8_t, 16> out{};
  if (inet_pton(AF_INET, s.c_str(), out.data()) == 1) {
    return std::string(reinterpret_cast<const char*>(out.data()), 4);
  }
  if (inet_pton(AF_INET6, s.c_str(), out.data()) == 1) {
    return std::string(reinterpret_cast<const char*>(out.data()), 16);
  }
  return std::nullopt;
}

template <typename T>
std::optional<T> parse_number(std::string_view text, T max) {
  T v{};
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || end != text.data() + text.size() || v > max) return std::nullopt;
  return v;
}

}  // namespace

std::string endpoint_text(const Endpoint& ep) {
  if (ep.ip().size() == 16) return fmt::format("[{}]:{}", address_text(ep.ip()), ep.port());
  return fmt::format("{}:{}", address_text(ep.ip()), ep.port());
}

std::string prefix_text(const Prefix& p) {
  return fmt::format("{}/{}", address_text(p.ip()), p.len());
}

std::optional<Endpoint> parse_endpoint(std::string_view text) {
  size_t colon = text.rfind(':');
  if (colon == std::string_view::npos) return std::nullopt;
  std::string_view host = text.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  } else if (host.find(':') != std::string_view::npos) {
    return std::nullopt;  // IPv6 needs brackets
  }
  auto ip = parse_address(host);
  auto port = parse_number<uint32_t>(text.substr(colon + 1), 65535);
  if (!ip || !port || *port == 0) return std::nullopt;
  Endpoint ep;
  ep.set_ip(*ip);
  ep.set_port(*port);
  return ep;
}

std::optional<Prefix> parse_prefix(std::string_view text) {
  size_t slash = text.find('/');
  auto ip = parse_address(text.substr(0, slash));
  if (!ip) return std::nullopt;
  uint32_t max = static_cast<uint32_t>(ip->size() * 8);
  uint32_t len = max;
  if (slash != std::string_view::npos) {
    auto l = parse_number<uint32_t>(text.substr(slash + 1), max);
    if (!l) return std::nullopt;
    len = *l;
  }
  Prefix p;
  p.set_ip(*ip);
  p.set_len(len);
  if (!check_prefix(p).ok()) return std::nullopt;
  return p;
}

std::string base64(std::string_view bytes) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 2 < bytes.size(); i += 3) {
    uint32_t v = (uint32_t{static_cast<uint8_t>(bytes[i])} << 16) |
                 (uint32_t{static_cast<uint8_t>(bytes[i + 1])} << 8) |
                 static_cast<uint8_t>(bytes[i + 2]);
    for (int s = 18; s >= 0; s -= 6) out.push_back(kAlphabet[(v >> s) & 63]);
  }
  if (i < bytes.size()) {
    uint32_t v = uint32_t{static_cast<uint8_t>(bytes[i])} << 16;
    if (i + 1 < bytes.size()) v |= uint32_t{static_cast<uint8_t>(bytes[i + 1])} << 8;
    out.push_back(kAlphabet[(v >> 18) & 63]);
    out.push_back(kAlphabet[(v >> 12) & 63]);
    out.push_back(i + 1 < bytes.size() ? kAlphabet[(v >> 6) & 63] : '=');
    out.push_back('=');
  }
  return out;
}

std::string node_info_text(const NodeInfo& info) {
  std::string underlay, ips;
  for (const auto& ep : info.underlay()) {
    underlay += (underlay.empty() ? "" : ",") + endpoint_text(ep);
  }
  for (const auto& p : info.allowed_ips()) ips += (ips.empty() ? "" : ",") + prefix_text(p);
  return fmt::format("key={} underlay=[{}] allowed_ips=[{}] control={}", base64(info.public_key()),
                     underlay, ips, info.has_control() ? endpoint_text(info.control()) : "-");
}

}  // namespace faraday::proto
