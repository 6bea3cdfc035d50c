// keys.h: the 32-byte key type shared by every WireGuard primitive, and its text
// forms (hex for the UAPI, base64 for configuration files and logs of public keys).
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace faraday::crypto {

inline constexpr size_t kKeySize = 32;
using Key = std::array<uint8_t, kKeySize>;

std::string to_hex(const Key& key);
std::optional<Key> key_from_hex(std::string_view text);  // exactly 64 hex digits
std::string to_base64(const Key& key);
std::optional<Key> key_from_base64(std::string_view text);  // 44 chars, one '='

bool is_zero(const Key& key);  // constant time
// Overwrites the key in a way the compiler cannot elide.
void wipe(void* data, size_t len);
inline void wipe(Key& key) {
  wipe(key.data(), key.size());
}

}  // namespace faraday::crypto
