// underlay_link.cpp: see underlay_link.h.
#include "dataplane/underlay_link.h"

#include <cstring>

namespace faraday::dataplane {

void UnderlayLink::learn(const Frame& f, Nanos now) {
  // An asker on our link is about to be talked to: it may get an entry. An
  // answer only updates the entry of someone we asked for (or know).
  const bool asked_us = f.kind == Frame::Kind::kArpRequest || f.kind == Frame::Kind::kSolicitation;
  const bool create = asked_us && on_link(self_, f.neighbor_family, f.neighbor_ip);
  last_.reset();
  if (neighbors_.learn(f.neighbor_family, f.neighbor_ip, f.neighbor_mac, now, create,
                       f.neighbor_override))
    ++counters_.learnt;
  else
    ++counters_.not_learnt;
  share(News{f.neighbor_family, f.neighbor_ip, f.neighbor_mac, create, f.neighbor_override});
}

void UnderlayLink::share(const News& n) {
  if (!sharing_) return;
  if (news_count_ == news_.size()) {
    ++counters_.news_lost;
    return;
  }
  news_[news_count_++] = n;
}

void UnderlayLink::hear(const News& n, Nanos now) {
  last_.reset();
  if (n.asked) {
    neighbors_.expect(n.family, n.ip, now);
    return;
  }
  if (neighbors_.learn(n.family, n.ip, n.mac, now, n.create, n.override)) ++counters_.heard;
}

UnderlayLink::Rx UnderlayLink::receive(std::span<const uint8_t> bytes, Nanos now, Frame& frame,
                                       std::span<uint8_t, kControlFrameSize> answer,
                                       size_t& answer_length, RxChecked checked) {
  answer_length = 0;
  auto r = classify_frame(bytes, self_, checked);
  if (!r) {
    ++counters_.drops[static_cast<size_t>(r.failure())];
    return Rx::kDropped;
  }
  frame = *r;
  switch (frame.kind) {
    case Frame::Kind::kDatagram:
      ++counters_.rx_datagrams;
      return Rx::kDatagram;
    case Frame::Kind::kArpRequest:
      learn(frame, now);  // the asker will be talked to next
      answer_length = build_arp_reply(answer, self_, frame);
      break;
    case Frame::Kind::kSolicitation:
      learn(frame, now);
      answer_length = build_neighbor_advert(answer, self_, frame);
      break;
    case Frame::Kind::kArpReply:
    case Frame::Kind::kAdvertisement:
      learn(frame, now);
      return Rx::kLearnt;
  }
  if (answer_length == 0) return Rx::kLearnt;
  ++counters_.answers;
  return Rx::kAnswer;
}

UnderlayLink::Tx UnderlayLink::send(uint8_t* payload, size_t length, const Endpoint& to, Nanos now,
                                    std::span<uint8_t, kControlFrameSize> request, bool ip_offload,
                                    bool l4_offload) {
  Tx tx;
  // A burst's datagrams mostly go to one place, at one `now`: asked again, the
  // table would give the same MAC and no second request, so the last answer
  // stands until the table changes (learn, expire).
  if (!last_ || last_->now != now || last_->to != to) {
    std::optional<Endpoint> hop = next_hop(self_, to);
    if (!hop) {
      ++counters_.tx_no_route;
      return tx;
    }
    NeighborTable::Lookup found = neighbors_.lookup(*hop, now);
    if (found.ask) {
      if (hop->family == AF_INET) {
        std::array<uint8_t, 4> target;
        std::memcpy(target.data(), hop->addr.data(), 4);
        tx.request_length = build_arp_request(request, self_, target);
      } else {
        tx.request_length = build_neighbor_solicit(request, self_, hop->addr);
      }
      if (tx.request_length) {
        ++counters_.requests;
        share(News{.family = hop->family, .ip = hop->addr, .asked = true});
      }
    }
    last_ = Last{to, now, found.mac};
  }
  if (!last_->mac) {
    ++counters_.tx_unresolved;
    tx.unresolved = true;
    return tx;
  }
  tx.frame = encapsulate(payload, length, self_, *last_->mac, to, ip_offload, l4_offload);
  if (!tx.frame) {
    ++counters_.tx_no_route;
    return tx;
  }
  tx.frame_length = static_cast<size_t>(payload + length - tx.frame);
  return tx;
}

NewsBoard::NewsBoard(unsigned lcores) : lcores_(lcores), lost_(lcores) {
  for (unsigned i = 0; i < lcores * lcores; ++i) rings_.push_back(std::make_unique<Ring>());
}

void NewsBoard::publish(unsigned from, UnderlayLink& link) {
  for (const UnderlayLink::News& n : link.news())
    for (unsigned to = 0; to < lcores_; ++to)
      if (to != from && !rings_[from * lcores_ + to]->push(n)) ++lost_[from];
  link.clear_news();
}

void NewsBoard::deliver(unsigned to, UnderlayLink& link, Nanos now) {
  for (unsigned from = 0; from < lcores_; ++from)
    if (from != to)
      rings_[from * lcores_ + to]->consume_all(
          [&](const UnderlayLink::News& n) { link.hear(n, now); });
}

}  // namespace faraday::dataplane
