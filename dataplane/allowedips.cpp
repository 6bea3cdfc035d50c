#include "dataplane/allowedips.h"

#include <algorithm>
#include <bit>
#include <cassert>

namespace faraday::dataplane {

namespace {

constexpr unsigned kBits[2] = {32, 128};

int family_index(sa_family_t family) {
  if (family == AF_INET) return 0;
  if (family == AF_INET6) return 1;
  return -1;
}

uint64_t load_be64(const uint8_t* p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = (v << 8) | p[i];
  return v;
}

uint32_t load_be32(const uint8_t* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | p[3];
}

void store_be64(uint64_t v, uint8_t* p) {
  for (int i = 7; i >= 0; --i) {
    p[i] = static_cast<uint8_t>(v);
    v >>= 8;
  }
}

// addr (4 bytes for IPv4, 16 for IPv6) as a 128-bit key; IPv4 in the top bits.
template <typename Key>
Key load_key(int fi, const uint8_t* addr) {
  Key key;
  if (fi == 0) {
    key.hi = uint64_t{load_be32(addr)} << 32;
  } else {
    key.hi = load_be64(addr);
    key.lo = load_be64(addr + 8);
  }
  return key;
}

// The number of leading bits a and b share: 0..128.
template <typename Key>
unsigned common_bits(const Key& a, const Key& b) {
  uint64_t x = a.hi ^ b.hi;
  if (x != 0) return static_cast<unsigned>(std::countl_zero(x));
  return 64 + static_cast<unsigned>(std::countl_zero(a.lo ^ b.lo));
}

// Bit i (0 = most significant) of key; i < 128.
template <typename Key>
unsigned bit_at(const Key& key, unsigned i) {
  return i < 64 ? (key.hi >> (63 - i)) & 1 : (key.lo >> (127 - i)) & 1;
}

template <typename Key>
Key masked(Key key, unsigned cidr) {
  if (cidr == 0) {
    key.hi = 0;
    key.lo = 0;
  } else if (cidr <= 64) {
    key.hi &= ~uint64_t{0} << (64 - cidr);
    key.lo = 0;
  } else if (cidr < 128) {
    key.lo &= ~uint64_t{0} << (128 - cidr);
  }
  return key;
}

bool inner_header(std::span<const uint8_t> pkt, bool source, sa_family_t& family,
                  const uint8_t*& addr, size_t& length) {
  if (pkt.empty()) return false;
  switch (pkt[0] >> 4) {
    case 4: {
      if (pkt.size() < 20) return false;
      size_t header = (pkt[0] & 0x0fu) * 4u;
      size_t total = (size_t{pkt[2]} << 8) | pkt[3];
      if (header < 20 || total < header || total > pkt.size()) return false;
      family = AF_INET;
      addr = pkt.data() + (source ? 12 : 16);
      length = total;
      return true;
    }
    case 6: {
      if (pkt.size() < 40) return false;
      size_t total = 40 + ((size_t{pkt[4]} << 8) | pkt[5]);
      if (total > pkt.size()) return false;
      family = AF_INET6;
      addr = pkt.data() + (source ? 8 : 24);
      length = total;
      return true;
    }
    default:
      return false;
  }
}

}  // namespace

uint32_t AllowedIps::new_node(int family_index, const Key& key, uint8_t cidr) {
  uint32_t index;
  if (free_ != kNone) {
    index = free_;
    free_ = nodes_[index].child[0];
    nodes_[index] = Node{};
  } else {
    assert(nodes_.size() < kNone);
    index = static_cast<uint32_t>(nodes_.size());
    nodes_.emplace_back();
  }
  Node& node = nodes_[index];
  node.key = key;
  node.cidr = cidr;
  node.family_index = static_cast<uint8_t>(family_index);
  return index;
}

void AllowedIps::free_node(uint32_t index) {
  nodes_[index] = Node{};
  nodes_[index].child[0] = free_;
  free_ = index;
}

void AllowedIps::insert(const Prefix& prefix, uint32_t value) {
  int fi = family_index(prefix.family);
  if (fi < 0 || prefix.cidr > kBits[fi]) return;
  const uint8_t cidr = prefix.cidr;
  const Key key = masked(load_key<Key>(fi, prefix.addr.data()), cidr);

  // Indices only: new_node() may reallocate nodes_, so no references are held
  // across it.
  Slot slot;
  for (;;) {
    const uint32_t n = at(slot, fi);
    if (n == kNone) {
      const uint32_t leaf = new_node(fi, key, cidr);
      nodes_[leaf].value = value;
      nodes_[leaf].has_value = true;
      at(slot, fi) = leaf;
      ++size_;
      return;
    }
    const Key node_key = nodes_[n].key;
    const uint8_t node_cidr = nodes_[n].cidr;
    const unsigned common =
        std::min({common_bits(node_key, key), unsigned{node_cidr}, unsigned{cidr}});
    if (common == node_cidr && node_cidr == cidr) {  // identical prefix
      if (!nodes_[n].has_value) ++size_;
      nodes_[n].value = value;
      nodes_[n].has_value = true;
      return;
    }
    if (common == node_cidr) {  // the node covers the new prefix: descend
      slot = Slot{n, static_cast<uint8_t>(bit_at(key, node_cidr))};
      continue;
    }
    const uint32_t fresh = new_node(fi, key, cidr);
    nodes_[fresh].value = value;
    nodes_[fresh].has_value = true;
    ++size_;
    if (common == cidr) {  // the new prefix covers the node: it becomes the parent
      nodes_[fresh].child[bit_at(node_key, cidr)] = n;
      at(slot, fi) = fresh;
      return;
    }
    // They diverge below both: a valueless branch node at the common prefix.
    const uint32_t branch = new_node(fi, masked(key, common), static_cast<uint8_t>(common));
    nodes_[branch].child[bit_at(key, common)] = fresh;
    nodes_[branch].child[bit_at(node_key, common)] = n;
    at(slot, fi) = branch;
    return;
  }
}

bool AllowedIps::remove_masked(int fi, const Key& key, uint8_t cidr) {
  Slot parent_slot;  // where the parent of n is stored
  Slot slot;         // where n is stored
  uint32_t n = at(slot, fi);
  for (;;) {
    if (n == kNone) return false;
    const Node& node = nodes_[n];
    if (node.cidr > cidr || common_bits(node.key, key) < node.cidr) return false;
    if (node.cidr == cidr) break;
    parent_slot = slot;
    slot = Slot{n, static_cast<uint8_t>(bit_at(key, node.cidr))};
    n = node.child[slot.dir];
  }
  Node& node = nodes_[n];
  if (!node.has_value) return false;
  node.has_value = false;
  node.value = 0;
  --size_;
  if (node.child[0] != kNone && node.child[1] != kNone) return true;  // stays as a branch

  // Zero or one child: splice n out.
  const uint32_t only = node.child[0] != kNone ? node.child[0] : node.child[1];
  at(slot, fi) = only;
  free_node(n);
  if (only != kNone || slot.parent == kNone) return true;
  // n was a leaf, so its parent lost a child. A valueless parent is left with one
  // child and is spliced out too, keeping "no value => two children".
  const uint32_t p = slot.parent;
  if (nodes_[p].has_value) return true;
  at(parent_slot, fi) = nodes_[p].child[slot.dir ^ 1];
  free_node(p);
  return true;
}

bool AllowedIps::remove(const Prefix& prefix) {
  int fi = family_index(prefix.family);
  if (fi < 0 || prefix.cidr > kBits[fi]) return false;
  return remove_masked(fi, masked(load_key<Key>(fi, prefix.addr.data()), prefix.cidr), prefix.cidr);
}

void AllowedIps::remove_value(uint32_t value) {
  struct Entry {
    int fi;
    Key key;
    uint8_t cidr;
  };
  std::vector<Entry> doomed;
  for (const Node& node : nodes_) {
    if (node.has_value && node.value == value)
      doomed.push_back({node.family_index, node.key, node.cidr});
  }
  for (const Entry& e : doomed) remove_masked(e.fi, e.key, e.cidr);
}

std::optional<uint32_t> AllowedIps::lookup(sa_family_t family, const uint8_t* addr) const {
  const int fi = family_index(family);
  if (fi < 0) return std::nullopt;
  const Key key = load_key<Key>(fi, addr);
  const Node* nodes = nodes_.data();
  bool found = false;
  uint32_t value = 0;
  uint32_t n = roots_[fi];
  while (n != kNone) {
    const Node& node = nodes[n];
    if (common_bits(node.key, key) < node.cidr) break;
    if (node.has_value) {
      found = true;
      value = node.value;
    }
    if (node.cidr == 128) break;  // a full-length node has no children (and bit 128 doesn't exist)
    n = node.child[bit_at(key, node.cidr)];
  }
  if (!found) return std::nullopt;
  return value;
}

std::vector<Prefix> AllowedIps::prefixes_of(uint32_t value) const {
  std::vector<Prefix> out;
  for (const Node& node : nodes_) {
    if (!node.has_value || node.value != value) continue;
    Prefix p;
    p.cidr = node.cidr;
    if (node.family_index == 0) {
      p.family = AF_INET;
      uint32_t v4 = static_cast<uint32_t>(node.key.hi >> 32);
      for (int i = 3; i >= 0; --i) {
        p.addr[i] = static_cast<uint8_t>(v4);
        v4 >>= 8;
      }
    } else {
      p.family = AF_INET6;
      store_be64(node.key.hi, p.addr.data());
      store_be64(node.key.lo, p.addr.data() + 8);
    }
    out.push_back(p);
  }
  std::sort(out.begin(), out.end(), [](const Prefix& a, const Prefix& b) {
    const bool a4 = a.family == AF_INET, b4 = b.family == AF_INET;
    if (a4 != b4) return a4;
    if (a.addr != b.addr) return a.addr < b.addr;
    return a.cidr < b.cidr;
  });
  return out;
}

void AllowedIps::clear() {
  nodes_.clear();
  roots_[0] = roots_[1] = kNone;
  free_ = kNone;
  size_ = 0;
}

bool inner_source(std::span<const uint8_t> pkt, sa_family_t& family, const uint8_t*& addr,
                  size_t& length) {
  return inner_header(pkt, true, family, addr, length);
}

bool inner_destination(std::span<const uint8_t> pkt, sa_family_t& family, const uint8_t*& addr,
                       size_t& length) {
  return inner_header(pkt, false, family, addr, length);
}

}  // namespace faraday::dataplane
