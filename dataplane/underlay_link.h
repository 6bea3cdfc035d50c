// underlay_link.h: the L2/L3 duties of a port faradayd owns (the DPDK underlay):
// what to do with each frame that arrives, and how a datagram leaves. Built on
// underlay.h's frames; the port supplies frames and sends what this returns.
//
//   receive(): a WireGuard datagram is handed back (where it lies in the frame,
//   who sent it); an ARP request or IPv6 neighbour solicitation for our address
//   is answered (the answer is written for the port to send) and its sender
//   learnt; a reply or advertisement is learnt; anything else is dropped and
//   counted by reason.
//   send(): puts the headers in front of a datagram for the next hop's MAC
//   address; while that is unknown the datagram is not framed (counted, and
//   Tx::unresolved says so, for the port to hold it) and a request for it is
//   written, at most one a second per address, as a kernel's neighbour table
//   would hold back.
//
// One thread (the port's); the counters may be read from any thread. With
// several lcores on one port each has its own link, and the neighbour frames
// one of them receives reach the others as News (share_news, hear).
#pragma once

#include <array>
#include <boost/lockfree/spsc_queue.hpp>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <vector>

#include "dataplane/counters.h"
#include "dataplane/underlay.h"

namespace faraday::dataplane {

class UnderlayLink {
 public:
  explicit UnderlayLink(const UnderlayAddress& self) : self_(self) {}

  const UnderlayAddress& self() const { return self_; }

  // Room an answer or a request needs (an IPv6 ND message with its option).
  static constexpr size_t kControlFrameSize = 128;

  enum class Rx : uint8_t {
    kDatagram,  // `frame` out-parameter says where the payload is
    kAnswer,    // an answer of *answer_length bytes is in `answer`: send it
    kLearnt,    // a neighbour's address was recorded; nothing to send
    kDropped,   // counted
  };
  Rx receive(std::span<const uint8_t> bytes, Nanos now, Frame& frame,
             std::span<uint8_t, kControlFrameSize> answer, size_t& answer_length,
             RxChecked checked = {});

  struct Tx {
    uint8_t* frame = nullptr;  // the frame's first byte, or nullptr: not sent
    size_t frame_length = 0;
    size_t request_length = 0;  // > 0: send this ARP request / NS (in `request`)
    bool unresolved = false;    // not sent: the next hop's MAC is not known yet
  };
  // payload[0, length) with kUnderlayHeadroom bytes free before it. Offload
  // flags as encapsulate() takes them.
  Tx send(uint8_t* payload, size_t length, const Endpoint& to, Nanos now,
          std::span<uint8_t, kControlFrameSize> request, bool ip_offload = false,
          bool l4_offload = false);

  // --- Several lcores, each with a link of its own on one port: an ARP or ND
  // frame arrives on one queue, but every lcore's table must hear it.
  // What a neighbour frame said, for the other lcores' links.
  struct News {
    sa_family_t family = AF_UNSPEC;
    std::array<uint8_t, 16> ip{};
    MacAddress mac{};
    bool create = false;  // an on-link asker: it may get an entry
    bool override = true;
    // Not a frame: this lcore asked for the neighbour (mac unset). The others
    // expect its answer too, so an answer that lands on any queue after they
    // heard this is learnt by every lcore's table: with turns (turns.h) any
    // lcore may send there. (One that came first is news for the asker only,
    // and an lcore that then needs the MAC asks itself.)
    bool asked = false;
  };
  static constexpr size_t kMaxNews = 16;
  // From now on every neighbour frame received, and every request sent, is
  // kept as News (up to kMaxNews until clear_news(); more are counted in
  // news_lost).
  void share_news() { sharing_ = true; }
  std::span<const News> news() const { return {news_.data(), news_count_}; }
  void clear_news() { news_count_ = 0; }
  // Another lcore's news, recorded as if its frame had arrived here.
  void hear(const News& n, Nanos now);

  // Forgets neighbours not heard from for NeighborTable::kForget.
  void expire(Nanos now) {
    last_.reset();
    neighbors_.expire(now);
  }

  struct Counters {
    std::array<Counter, static_cast<size_t>(FrameDrop::kCount)> drops{};
    Counter rx_datagrams;
    Counter answers;        // ARP replies and neighbour advertisements sent
    Counter learnt;         // neighbour entries recorded or refreshed
    Counter requests;       // ARP requests and solicitations sent
    Counter tx_unresolved;  // sends that found the next hop unknown (a held datagram's retries too)
    Counter tx_no_route;    // no next hop (no such family, no gateway) or too long
    Counter not_learnt;     // an answer nobody asked for (here), an off-link asker, or a full table
    Counter heard;          // entries recorded or refreshed from another lcore's news
    Counter news_lost;      // neighbour frames and requests other lcores did not hear of (kMaxNews)
    uint64_t dropped(FrameDrop r) const { return drops[static_cast<size_t>(r)]; }
  };
  const Counters& counters() const { return counters_; }
  size_t neighbors() const { return neighbors_.size(); }

 private:
  void learn(const Frame& f, Nanos now);
  void share(const News& n);

  UnderlayAddress self_;
  NeighborTable neighbors_;
  // send()'s last destination, at what time, and the table's answer for it.
  struct Last {
    Endpoint to;
    Nanos now;
    std::optional<MacAddress> mac;
  };
  std::optional<Last> last_;
  bool sharing_ = false;
  std::array<News, kMaxNews> news_{};
  size_t news_count_ = 0;
  Counters counters_;
};

// The neighbour news (UnderlayLink::News) of several lcores on one port: a
// lock-free ring from each lcore to each other, one producer and one consumer.
class NewsBoard {
 public:
  explicit NewsBoard(unsigned lcores);
  // Lcore `from`'s link's news to every other lcore; the link's list is
  // cleared. News a full ring has no room for is counted (lost()).
  void publish(unsigned from, UnderlayLink& link);
  // What the others published for lcore `to`, heard by its link.
  void deliver(unsigned to, UnderlayLink& link, Nanos now);
  // News lcore `from` had no room for, or every lcore's.
  uint64_t lost(unsigned from) const { return lost_[from]; }
  uint64_t lost() const { return total(lost_); }

 private:
  using Ring = boost::lockfree::spsc_queue<UnderlayLink::News, boost::lockfree::capacity<64>>;
  unsigned lcores_;
  std::vector<std::unique_ptr<Ring>> rings_;  // [from * lcores + to]
  std::vector<Counter> lost_;                 // per publishing lcore: each is written by one thread
};

}  // namespace faraday::dataplane
