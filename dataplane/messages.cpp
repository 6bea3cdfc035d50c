#include "dataplane/messages.h"

namespace faraday::dataplane {

std::variant<MessageType, Drop> classify(std::span<const uint8_t> datagram) {
  if (datagram.size() < 4) return Drop::kTooShort;
  switch (load_le32(datagram.data())) {
    case static_cast<uint32_t>(MessageType::kInitiation):
      if (datagram.size() != sizeof(MessageInitiation)) return Drop::kBadSize;
      return MessageType::kInitiation;
    case static_cast<uint32_t>(MessageType::kResponse):
      if (datagram.size() != sizeof(MessageResponse)) return Drop::kBadSize;
      return MessageType::kResponse;
    case static_cast<uint32_t>(MessageType::kCookieReply):
      if (datagram.size() != sizeof(MessageCookieReply)) return Drop::kBadSize;
      return MessageType::kCookieReply;
    case static_cast<uint32_t>(MessageType::kTransport):
      if (datagram.size() < kMinTransportSize) return Drop::kTooShort;
      return MessageType::kTransport;
    default:
      return Drop::kUnknownType;
  }
}

size_t padded_length(size_t len, size_t mtu) {
  size_t padded = (len + kPaddingMultiple - 1) / kPaddingMultiple * kPaddingMultiple;
  if (mtu != 0 && padded > mtu) padded = len > mtu ? len : mtu;
  return padded;
}

}  // namespace faraday::dataplane
