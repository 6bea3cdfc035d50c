// inner_link.cpp: see inner_link.h.
#include "dataplane/inner_link.h"

#include <cstring>

#include "dataplane/inet.h"

namespace faraday::dataplane {

namespace {

constexpr size_t kArpSenderIp = kEthernetHeader + 14;
constexpr size_t kArpTargetIp = kEthernetHeader + 24;
constexpr size_t kIpv6Next = kEthernetHeader + 6;
constexpr size_t kIpv6Source = kEthernetHeader + 8;
constexpr size_t kIcmpv6 = kEthernetHeader + 40;
constexpr size_t kNsTarget = kIcmpv6 + 8;
constexpr uint8_t kProtoIcmpv6 = 58;
constexpr uint8_t kNeighborSolicitation = 135;

bool all_zero(const uint8_t* p, size_t n) {
  for (size_t i = 0; i < n; ++i)
    if (p[i] != 0) return false;
  return true;
}

}  // namespace

InnerLink::Rx InnerLink::receive(std::span<const uint8_t> frame,
                                 std::span<uint8_t, kControlFrameSize> answer,
                                 size_t& answer_length) {
  answer_length = 0;
  if (frame.size() < kEthernetHeader) return drop(FrameDrop::kTruncated);
  const uint16_t type = inet::load_be16(frame.data() + 12);
  if (type == kEtherArp) return answer_arp(frame, answer, answer_length);
  if (type == kEtherIpv6 && frame.size() > kIcmpv6 && frame[kIpv6Next] == kProtoIcmpv6 &&
      frame[kIcmpv6] == kNeighborSolicitation)
    return answer_nd(frame, answer, answer_length);
  if (type != kEtherIpv4 && type != kEtherIpv6) return drop(FrameDrop::kUnsupported);
  // Multicast and broadcast (MLD reports, router solicitations, mDNS) are the
  // host's business with a link that has no routers and no groups.
  if (std::memcmp(frame.data(), ours_.data(), 6) != 0) return drop(FrameDrop::kNotForUs);
  if (frame.size() == kEthernetHeader ||
      frame[kEthernetHeader] >> 4 != (type == kEtherIpv4 ? 4 : 6))
    return drop(FrameDrop::kBadIpHeader);
  learn(frame.data() + 6);
  ++counters_.packets;
  return Rx::kPacket;
}

InnerLink::Rx InnerLink::answer_arp(std::span<const uint8_t> frame,
                                    std::span<uint8_t, kControlFrameSize> answer,
                                    size_t& answer_length) {
  if (frame.size() < kArpTargetIp + 4) return drop(FrameDrop::kTruncated);
  // Answered as the owner of whatever address is asked for.
  UnderlayAddress proxy;
  proxy.mac = ours_;
  proxy.v4 = UnderlayAddress::V4{};
  std::memcpy(proxy.v4->addr.data(), frame.data() + kArpTargetIp, 4);
  proxy.v4->prefix = 32;
  Result<Frame, FrameDrop> f = classify_frame(frame, proxy);
  if (!f) return drop(f.failure());
  const uint8_t* sender = frame.data() + kArpSenderIp;
  // A reply, a probe (sender 0.0.0.0) or a gratuitous request (sender = target):
  // none asks for a neighbour.
  if (f->kind != Frame::Kind::kArpRequest || all_zero(sender, 4) ||
      std::memcmp(sender, frame.data() + kArpTargetIp, 4) == 0) {
    ++counters_.ignored;
    return Rx::kDropped;
  }
  learn(f->source_mac.data());
  answer_length = build_arp_reply(answer, proxy, *f);
  if (answer_length == 0) return drop(FrameDrop::kBadArp);
  ++counters_.answers;
  return Rx::kAnswer;
}

InnerLink::Rx InnerLink::answer_nd(std::span<const uint8_t> frame,
                                   std::span<uint8_t, kControlFrameSize> answer,
                                   size_t& answer_length) {
  if (frame.size() < kNsTarget + 16) return drop(FrameDrop::kTruncated);
  // Duplicate address detection (from ::) asks about the host's own address.
  if (all_zero(frame.data() + kIpv6Source, 16)) {
    ++counters_.ignored;
    return Rx::kDropped;
  }
  UnderlayAddress proxy;
  proxy.mac = ours_;
  proxy.v6 = UnderlayAddress::V6{};
  std::memcpy(proxy.v6->addr.data(), frame.data() + kNsTarget, 16);
  Result<Frame, FrameDrop> f = classify_frame(frame, proxy);
  if (!f) return drop(f.failure());
  if (f->kind != Frame::Kind::kSolicitation) return drop(FrameDrop::kBadNd);
  learn(f->source_mac.data());
  answer_length = build_neighbor_advert(answer, proxy, *f);
  if (answer_length == 0) return drop(FrameDrop::kBadNd);
  ++counters_.answers;
  return Rx::kAnswer;
}

namespace {
constexpr uint64_t kLearnt = uint64_t{1} << 48;
}  // namespace

void InnerLink::learn(const uint8_t* mac) {
  if (std::memcmp(host_.data(), mac, 6) == 0) return;
  std::memcpy(host_.data(), mac, 6);
  if (!learnt_) return;
  uint64_t packed = kLearnt;
  for (int i = 0; i < 6; ++i) packed |= uint64_t{mac[i]} << (8 * i);
  learnt_->store(packed, std::memory_order_relaxed);
}

MacAddress InnerLink::host() const {
  if (!learnt_) return host_;
  const uint64_t packed = learnt_->load(std::memory_order_relaxed);
  if (!(packed & kLearnt)) return initial_host_;
  MacAddress mac;
  for (int i = 0; i < 6; ++i) mac[i] = static_cast<uint8_t>(packed >> (8 * i));
  return mac;
}

bool InnerLink::write_header(uint8_t* out, uint8_t first) const {
  const uint8_t version = first >> 4;
  if (version != 4 && version != 6) return false;
  static constexpr MacAddress kUnknown{};
  static constexpr MacAddress kBroadcast = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
  const MacAddress host = this->host();
  std::memcpy(out, (host == kUnknown ? kBroadcast : host).data(), 6);
  std::memcpy(out + 6, ours_.data(), 6);
  inet::store_be16(out + 12, version == 4 ? kEtherIpv4 : kEtherIpv6);
  return true;
}

}  // namespace faraday::dataplane
