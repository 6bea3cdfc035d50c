#include "crypto/keys.h"

#include <sodium.h>

namespace faraday::crypto {
namespace {

constexpr size_t kHexSize = 2 * kKeySize;  // 64
constexpr size_t kBase64Size =
    sodium_base64_ENCODED_LEN(kKeySize, sodium_base64_VARIANT_ORIGINAL) - 1;  // 44

}  // namespace

// libsodium's codecs run in constant time, which matters: private and preshared keys
// pass through these functions.

std::string to_hex(const Key& key) {
  std::string out(kHexSize + 1, '\0');
  sodium_bin2hex(out.data(), out.size(), key.data(), key.size());
  out.resize(kHexSize);
  return out;
}

namespace {

// Decodes one key with `decode` (a libsodium *2bin call writing into key, len);
// nullopt, with nothing left in memory, unless it is exactly kKeySize bytes.
template <typename Decode>
std::optional<Key> decode_key(std::string_view text, size_t encoded_size, Decode decode) {
  if (text.size() != encoded_size) return std::nullopt;
  Key key;
  size_t len = 0;
  if (decode(key, len) != 0 || len != kKeySize) {
    wipe(key);
    return std::nullopt;
  }
  return key;
}

}  // namespace

std::optional<Key> key_from_hex(std::string_view text) {
  return decode_key(text, kHexSize, [&](Key& key, size_t& len) {
    return sodium_hex2bin(key.data(), key.size(), text.data(), text.size(), nullptr, &len, nullptr);
  });
}

std::string to_base64(const Key& key) {
  std::string out(kBase64Size + 1, '\0');
  sodium_bin2base64(out.data(), out.size(), key.data(), key.size(), sodium_base64_VARIANT_ORIGINAL);
  out.resize(kBase64Size);
  return out;
}

// libsodium rejects bad characters, wrong padding and non-zero trailing bits, so each
// key has exactly one accepted encoding.
std::optional<Key> key_from_base64(std::string_view text) {
  return decode_key(text, kBase64Size, [&](Key& key, size_t& len) {
    return sodium_base642bin(key.data(), key.size(), text.data(), text.size(), nullptr, &len,
                             nullptr, sodium_base64_VARIANT_ORIGINAL);
  });
}

bool is_zero(const Key& key) {
  return sodium_is_zero(key.data(), key.size()) == 1;
}

void wipe(void* data, size_t len) {
  sodium_memzero(data, len);
}

}  // namespace faraday::crypto
