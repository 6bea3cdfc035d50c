// node_info.h: the rules farad.proto states for names, endpoints, prefixes and
// NodeInfo, checked in one place (farad on Join/Update, nodes on Push), plus
// text forms for logs and configuration. Pure functions: any thread.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "proto/farad.pb.h"
#include "result.h"

namespace faraday::proto {

inline constexpr size_t kMaxNameBytes = 64;
inline constexpr int kMaxUnderlay = 16;
inline constexpr int kMaxAllowedIps = 64;
inline constexpr size_t kPublicKeyBytes = 32;

// 1..64 characters from [A-Za-z0-9._-], the first a letter or digit.
bool valid_node_name(std::string_view name);

// farad's port when an address names none.
inline constexpr uint16_t kFaradPort = 7450;

// [first, last] address of a prefix, as its bytes with a family byte (4 or 16)
// in front, so IPv4 and IPv6 ranges never compare equal and ranges of one
// family order like their addresses.
using PrefixBound = std::array<uint8_t, 17>;
std::pair<PrefixBound, PrefixBound> prefix_range(const Prefix& p);

// Success if `info` follows every rule of NodeInfo (the name is not checked
// here: farad compares it with the certificate), else the first broken rule.
// (proto::Error is farad's wire message; faraday::Error is result.h's.)
Status check_node_info(const NodeInfo& info);
Status check_endpoint(const Endpoint& ep);
Status check_prefix(const Prefix& p);

// "192.0.2.1:51820", "[2001:db8::1]:51820".
std::string endpoint_text(const Endpoint& ep);
// "10.0.0.0/24", "2001:db8::/64".
std::string prefix_text(const Prefix& p);
// Parse the forms above (a bare address is a /32 or /128 prefix). nullopt if
// the text is not one.
std::optional<Endpoint> parse_endpoint(std::string_view text);
std::optional<Prefix> parse_prefix(std::string_view text);
// The whole NodeInfo on one line for logs: key=<base64> underlay=[...] ...
std::string node_info_text(const NodeInfo& info);
std::string base64(std::string_view bytes);

}  // namespace faraday::proto
