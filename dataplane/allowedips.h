// allowedips.h: cryptokey routing. A longest-prefix-match table from IPv4/IPv6
// prefixes to a uint32_t value (a peer slot), checked on send (inner destination
// picks the peer) and on receive (inner source must map to the sending peer).
//
// IPv4 and IPv6 live in separate tries: an IPv4 address is never matched by an
// IPv6 prefix (not even ::ffff:0:0/96) and an IPv6 address never by an IPv4 one.
//
// Threading: AllowedIps is a plain value with no locks. Today one table lives in
// each Device and is edited and read on the Device's thread (the pipeline's):
// configuration calls edit it, the send and receive paths call lookup(). Copies
// are deep and independent, and the const members never write, so a copy can be
// published to other threads read-only. lookup() never allocates, never locks
// and makes no virtual calls.
//
// Representation: a path-compressed binary trie per family whose nodes live in
// one std::vector and refer to each other by index, so copying is one vector copy.
// Every node without a value has exactly two children.
#pragma once

#include <sys/socket.h>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "dataplane/net.h"

namespace faraday::dataplane {

class AllowedIps {
 public:
  // Maps prefix (masked first: 10.1.2.3/8 is 10.0.0.0/8) to value, replacing the
  // value of an identical prefix. Ignored unless the family is AF_INET/AF_INET6
  // and cidr <= max_cidr().
  void insert(const Prefix& prefix, uint32_t value);
  // Removes exactly this prefix (masked first). false if it was absent.
  bool remove(const Prefix& prefix);
  // Removes every prefix that maps to value.
  void remove_value(uint32_t value);
  // Longest-prefix match. addr is 4 bytes (AF_INET) or 16 bytes (AF_INET6) in
  // network order; any other family yields nullopt.
  std::optional<uint32_t> lookup(sa_family_t family, const uint8_t* addr) const;
  // The prefixes mapping to value, sorted: IPv4 first, then by address, then cidr.
  std::vector<Prefix> prefixes_of(uint32_t value) const;
  size_t size() const { return size_; }  // number of prefixes
  bool empty() const { return size_ == 0; }
  void clear();

 private:
  static constexpr uint32_t kNone = UINT32_MAX;

  // A 128-bit key, most significant bit first; IPv4 sits in the top 32 bits.
  struct Key {
    uint64_t hi = 0;
    uint64_t lo = 0;
  };
  struct Node {
    Key key;                             // masked to cidr
    uint32_t child[2] = {kNone, kNone};  // by the bit at position cidr
    uint32_t value = 0;
    uint8_t cidr = 0;
    uint8_t family_index = 0;  // 0 IPv4, 1 IPv6
    bool has_value = false;
  };
  // Where a node index is stored: roots_[family] when parent is kNone, else
  // nodes_[parent].child[dir].
  struct Slot {
    uint32_t parent = kNone;
    uint8_t dir = 0;
  };

  uint32_t& at(Slot s, int family_index) {
    return s.parent == kNone ? roots_[family_index] : nodes_[s.parent].child[s.dir];
  }
  uint32_t new_node(int family_index, const Key& key, uint8_t cidr);
  void free_node(uint32_t index);
  bool remove_masked(int family_index, const Key& key, uint8_t cidr);

  std::vector<Node> nodes_;
  uint32_t roots_[2] = {kNone, kNone};  // [0] IPv4, [1] IPv6
  uint32_t free_ = kNone;               // free list, chained through child[0]
  size_t size_ = 0;
};

// Parse the inner IP header of a packet to or from the tunnel. false if the buffer
// is too short for the header, the version nibble is neither 4 nor 6, or the
// header's own length disagrees with the buffer (IPv4: IHL < 5, total length below
// the header length or above pkt.size(); IPv6: 40 + payload length > pkt.size()).
// On success family/addr point at the address inside pkt (4 or 16 bytes) and
// length is the packet's length per its header (the caller trims to it).
// Pure functions: any thread.
bool inner_source(std::span<const uint8_t> pkt, sa_family_t& family, const uint8_t*& addr,
                  size_t& length);
bool inner_destination(std::span<const uint8_t> pkt, sa_family_t& family, const uint8_t*& addr,
                       size_t& length);

}  // namespace faraday::dataplane
