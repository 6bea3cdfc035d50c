// Cryptokey routing table: table-driven longest-prefix-match cases, a randomized
// comparison against a linear reference, value semantics, and inner IP header
// parsing.
#include "dataplane/allowedips.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <optional>
#include <ostream>
#include <random>
#include <string>
#include <utility>
#include <vector>

namespace faraday::dataplane {
namespace {

struct Addr {
  sa_family_t family = AF_UNSPEC;
  std::array<uint8_t, 16> bytes{};
};

Addr A(const std::string& text) {
  Addr a;
  if (inet_pton(AF_INET, text.c_str(), a.bytes.data()) == 1) {
    a.family = AF_INET;
  } else if (inet_pton(AF_INET6, text.c_str(), a.bytes.data()) == 1) {
    a.family = AF_INET6;
  } else {
    ADD_FAILURE() << "bad address in test: " << text;
  }
  return a;
}

Prefix P(const std::string& text) {
  auto p = Prefix::parse(text);
  EXPECT_TRUE(p.has_value()) << "bad prefix in test: " << text;
  return p.value_or(Prefix{});
}

// A raw prefix without the masking parse() does, to feed insert() unmasked input.
Prefix Raw(const std::string& addr, uint8_t cidr) {
  Addr a = A(addr);
  Prefix p;
  p.family = a.family;
  p.addr = a.bytes;
  p.cidr = cidr;
  return p;
}

std::optional<uint32_t> Lookup(const AllowedIps& t, const std::string& addr) {
  Addr a = A(addr);
  return t.lookup(a.family, a.bytes.data());
}

struct LpmCase {
  std::string name;
  std::vector<std::pair<Prefix, uint32_t>> inserts;
  std::vector<std::string> removes;     // each must be present
  std::vector<uint32_t> remove_values;  // applied after removes
  std::vector<std::pair<std::string, std::optional<uint32_t>>> lookups;
  size_t size;
};

void PrintTo(const LpmCase& c, std::ostream* os) {
  *os << c.name;
}

constexpr std::nullopt_t kMiss = std::nullopt;

std::vector<LpmCase> LpmCases() {
  const std::vector<std::pair<Prefix, uint32_t>> nested_v4 = {
      {P("10.0.0.0/8"), 1},  {P("10.1.0.0/16"), 2}, {P("10.1.2.0/24"), 3},
      {P("10.1.2.3/32"), 4}, {P("0.0.0.0/0"), 5},
  };
  return {
      {"V4Default",
       {{P("0.0.0.0/0"), 1}},
       {},
       {},
       {{"0.0.0.0", 1}, {"1.2.3.4", 1}, {"255.255.255.255", 1}, {"::", kMiss}, {"::1", kMiss}},
       1},
      {"V6Default",
       {{P("::/0"), 2}},
       {},
       {},
       {{"::", 2},
        {"2001:db8::1", 2},
        {"ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 2},
        {"::ffff:10.0.0.1", 2},
        {"10.0.0.1", kMiss},
        {"0.0.0.0", kMiss}},
       1},
      {"BothDefaults",
       {{P("0.0.0.0/0"), 1}, {P("::/0"), 2}},
       {},
       {},
       {{"10.0.0.1", 1}, {"::ffff:10.0.0.1", 2}, {"fe80::1", 2}},
       2},
      {"Host32",
       {{P("192.0.2.1/32"), 3}},
       {},
       {},
       {{"192.0.2.1", 3},
        {"192.0.2.0", kMiss},
        {"192.0.2.2", kMiss},
        {"193.0.2.1", kMiss},
        {"64.0.2.1", kMiss}},
       1},
      {"Host128",
       {{P("2001:db8::1/128"), 4}},
       {},
       {},
       {{"2001:db8::1", 4},
        {"2001:db8::", kMiss},
        {"2001:db8::3", kMiss},
        {"2001:db8:0:0:1::1", kMiss},
        {"a001:db8::1", kMiss}},
       1},
      {"BareAddressIsHost",
       {{P("192.0.2.9"), 5}, {P("fd00::9"), 6}},
       {},
       {},
       {{"192.0.2.9", 5}, {"192.0.2.8", kMiss}, {"fd00::9", 6}, {"fd00::8", kMiss}},
       2},
      {"MostSpecificWins",
       nested_v4,
       {},
       {},
       {{"10.1.2.3", 4},
        {"10.1.2.4", 3},
        {"10.1.2.255", 3},
        {"10.1.3.1", 2},
        {"10.1.255.255", 2},
        {"10.2.0.0", 1},
        {"10.255.255.255", 1},
        {"11.0.0.0", 5},
        {"9.255.255.255", 5}},
       5},
      {"InsertOrderIrrelevant",
       {{P("10.1.2.3/32"), 4},
        {P("0.0.0.0/0"), 5},
        {P("10.1.2.0/24"), 3},
        {P("10.0.0.0/8"), 1},
        {P("10.1.0.0/16"), 2}},
       {},
       {},
       {{"10.1.2.3", 4}, {"10.1.2.4", 3}, {"10.1.3.1", 2}, {"10.2.0.0", 1}, {"11.0.0.0", 5}},
       5},
      {"FallBackWhenSpecificRemoved",
       nested_v4,
       {"10.1.2.0/24", "10.1.2.3/32"},
       {},
       {{"10.1.2.3", 2}, {"10.1.2.4", 2}, {"10.1.3.1", 2}, {"10.2.0.0", 1}},
       3},
      {"RemoveMiddleKeepsBothSides",
       nested_v4,
       {"10.1.0.0/16"},
       {},
       {{"10.1.2.3", 4}, {"10.1.2.4", 3}, {"10.1.3.1", 1}, {"11.0.0.0", 5}},
       4},
      {"RemoveDefaultLeavesSpecific",
       nested_v4,
       {"0.0.0.0/0"},
       {},
       {{"10.1.2.3", 4}, {"11.0.0.0", kMiss}, {"10.9.9.9", 1}},
       4},
      {"RemoveEverything",
       nested_v4,
       {"10.1.2.3/32", "0.0.0.0/0", "10.1.0.0/16", "10.0.0.0/8", "10.1.2.0/24"},
       {},
       {{"10.1.2.3", kMiss}, {"11.0.0.0", kMiss}},
       0},
      {"SiblingsUnderBranch",
       {{P("10.0.0.0/24"), 1}, {P("10.0.1.0/24"), 2}, {P("10.0.2.0/23"), 3}},
       {"10.0.1.0/24"},
       {},
       {{"10.0.0.7", 1}, {"10.0.1.7", kMiss}, {"10.0.2.7", 3}, {"10.0.3.7", 3}},
       2},
      {"ReplaceIdenticalPrefix",
       {{P("10.0.0.0/8"), 1}, {P("10.0.0.0/8"), 7}},
       {},
       {},
       {{"10.9.9.9", 7}},
       1},
      {"ReplaceUnmaskedSpellingOfSamePrefix",
       {{P("10.0.0.0/8"), 1}, {Raw("10.200.1.1", 8), 8}},
       {},
       {},
       {{"10.9.9.9", 8}},
       1},
      {"UnmaskedInputIsMasked",
       {{Raw("10.1.2.3", 8), 1}, {Raw("fd00::ffff", 16), 2}},
       {"10.0.0.0/8", "fd00::/16"},
       {},
       {{"10.200.0.1", kMiss}, {"fd00:1::", kMiss}},
       0},
      {"UnmaskedInputMatchesWholePrefix",
       {{Raw("10.1.2.3", 8), 1}, {Raw("fd00::ffff", 16), 2}},
       {},
       {},
       {{"10.200.0.1", 1},
        {"10.0.0.0", 1},
        {"11.0.0.0", kMiss},
        {"fd00:1::", 2},
        {"fd01::", kMiss}},
       2},
      {"V4MappedIsNotV4",
       {{P("::ffff:10.0.0.1/128"), 1}, {P("::ffff:0:0/96"), 3}},
       {},
       {},
       {{"::ffff:10.0.0.1", 1}, {"::ffff:10.0.0.2", 3}, {"10.0.0.1", kMiss}, {"10.0.0.2", kMiss}},
       2},
      {"V4IsNotV4Mapped",
       {{P("10.0.0.1/32"), 2}, {P("0.0.0.0/0"), 4}},
       {},
       {},
       {{"10.0.0.1", 2}, {"::ffff:10.0.0.1", kMiss}, {"::a00:1", kMiss}},
       2},
      {"SameBitsDifferentFamily",
       {{P("10.0.0.0/8"), 1}, {P("a00::/8"), 2}},
       {},
       {},
       {{"10.1.1.1", 1}, {"a01::1", 2}, {"::", kMiss}, {"11.0.0.0", kMiss}},
       2},
      {"V6SplitBelowBit64",
       {{P("2001:db8::/64"), 1},
        {P("2001:db8::1:0/112"), 2},
        {P("2001:db8::2:0/112"), 3},
        {P("2001:db8::2:8000/113"), 4}},
       {},
       {},
       {{"2001:db8::5", 1},
        {"2001:db8::1:5", 2},
        {"2001:db8::2:5", 3},
        {"2001:db8::2:8005", 4},
        {"2001:db8::3:0", 1},
        {"2001:db8:0:1::", kMiss}},
       4},
      {"V6SplitAtBit64",
       {{P("fd00::/64"), 1}, {P("fd00::8000:0:0:0/65"), 2}},
       {},
       {},
       {{"fd00::1", 1}, {"fd00::7fff:0:0:0", 1}, {"fd00::8000:0:0:1", 2}},
       2},
      {"V6SplitAtBit63",
       {{P("fd00::/63"), 1}, {P("fd00:0:0:1::/64"), 2}},
       {},
       {},
       {{"fd00::1", 1}, {"fd00:0:0:1::1", 2}, {"fd00:0:0:2::1", kMiss}},
       2},
      {"RemoveValue",
       {{P("10.0.0.0/8"), 1},
        {P("10.1.0.0/16"), 2},
        {P("10.1.2.0/24"), 1},
        {P("fd00::/8"), 1},
        {P("fd00:1::/32"), 2},
        {P("::/0"), 1}},
       {},
       {1},
       {{"10.1.2.3", 2}, {"10.2.0.0", kMiss}, {"fd00:1::1", 2}, {"fd00::1", kMiss}, {"::1", kMiss}},
       2},
      {"RemoveValueAbsentIsNoop", {{P("10.0.0.0/8"), 1}}, {}, {9}, {{"10.0.0.1", 1}}, 1},
      {"RemoveValueThenRemove",
       nested_v4,
       {"10.1.2.3/32"},
       {5, 3},
       {{"10.1.2.3", 2}, {"10.1.2.4", 2}, {"11.0.0.0", kMiss}},
       2},
  };
}

class LpmTest : public ::testing::TestWithParam<LpmCase> {};

TEST_P(LpmTest, Lookup) {
  const LpmCase& c = GetParam();
  AllowedIps t;
  for (const auto& [prefix, value] : c.inserts) t.insert(prefix, value);
  for (const auto& r : c.removes) EXPECT_TRUE(t.remove(P(r))) << r;
  for (uint32_t v : c.remove_values) t.remove_value(v);
  for (const auto& [addr, want] : c.lookups) EXPECT_EQ(Lookup(t, addr), want) << addr;
  EXPECT_EQ(t.size(), c.size);
}

INSTANTIATE_TEST_SUITE_P(AllowedIps, LpmTest, ::testing::ValuesIn(LpmCases()),
                         [](const auto& info) { return info.param.name; });

TEST(AllowedIps, EmptyTable) {
  AllowedIps t;
  EXPECT_EQ(t.size(), 0u);
  EXPECT_TRUE(t.empty());
  EXPECT_EQ(Lookup(t, "10.0.0.1"), kMiss);
  EXPECT_EQ(Lookup(t, "::1"), kMiss);
  EXPECT_FALSE(t.remove(P("10.0.0.0/8")));
  EXPECT_TRUE(t.prefixes_of(0).empty());
}

TEST(AllowedIps, RemoveAbsent) {
  AllowedIps t;
  t.insert(P("10.0.0.0/24"), 1);
  t.insert(P("10.0.1.0/24"), 2);             // creates a valueless branch at 10.0.0.0/23
  EXPECT_FALSE(t.remove(P("10.0.0.0/23")));  // the branch is not a prefix
  EXPECT_FALSE(t.remove(P("10.0.0.0/25")));  // below an existing prefix
  EXPECT_FALSE(t.remove(P("10.0.0.0/16")));  // above
  EXPECT_FALSE(t.remove(P("10.0.2.0/24")));  // beside
  EXPECT_FALSE(t.remove(P("::/0")));         // other family
  EXPECT_FALSE(t.remove(P("::a00:0/120")));  // same bits, other family
  EXPECT_EQ(t.size(), 2u);
  EXPECT_TRUE(t.remove(P("10.0.0.0/24")));
  EXPECT_FALSE(t.remove(P("10.0.0.0/24")));  // already gone
  EXPECT_EQ(t.size(), 1u);
  EXPECT_EQ(Lookup(t, "10.0.1.1"), 2u);
}

TEST(AllowedIps, RemoveIsMaskedToo) {
  AllowedIps t;
  t.insert(P("10.0.0.0/8"), 1);
  EXPECT_TRUE(t.remove(Raw("10.9.8.7", 8)));
  EXPECT_EQ(t.size(), 0u);
}

TEST(AllowedIps, InvalidInputIgnored) {
  AllowedIps t;
  Prefix unspec;
  unspec.cidr = 0;
  t.insert(unspec, 1);
  Prefix too_long = P("10.0.0.0/8");
  too_long.cidr = 33;
  t.insert(too_long, 1);
  EXPECT_EQ(t.size(), 0u);
  EXPECT_FALSE(t.remove(too_long));
  t.insert(P("0.0.0.0/0"), 1);
  const uint8_t zeros[16] = {};
  EXPECT_EQ(t.lookup(AF_UNSPEC, zeros), kMiss);
  EXPECT_EQ(t.lookup(AF_UNIX, zeros), kMiss);
}

TEST(AllowedIps, PrefixesOfSorted) {
  AllowedIps t;
  t.insert(P("fd00::/8"), 1);
  t.insert(P("10.1.0.0/16"), 1);
  t.insert(P("192.0.2.0/24"), 2);
  t.insert(P("10.0.0.0/16"), 1);
  t.insert(P("10.0.0.0/8"), 1);
  t.insert(P("::/0"), 1);
  t.insert(P("0.0.0.0/0"), 1);
  t.insert(Raw("10.5.5.5", 32), 1);
  std::vector<std::string> got;
  for (const Prefix& p : t.prefixes_of(1)) got.push_back(p.to_string());
  const std::vector<std::string> want = {"0.0.0.0/0",   "10.0.0.0/8", "10.0.0.0/16", "10.1.0.0/16",
                                         "10.5.5.5/32", "::/0",       "fd00::/8"};
  EXPECT_EQ(got, want);
  ASSERT_EQ(t.prefixes_of(2).size(), 1u);
  EXPECT_EQ(t.prefixes_of(2)[0], P("192.0.2.0/24"));
  EXPECT_TRUE(t.prefixes_of(3).empty());
}

TEST(AllowedIps, CopyIsIndependent) {
  AllowedIps original;
  original.insert(P("10.0.0.0/8"), 1);
  original.insert(P("10.1.0.0/16"), 2);
  original.insert(P("fd00::/8"), 3);

  AllowedIps copy = original;
  copy.insert(P("10.1.2.0/24"), 4);
  copy.insert(P("10.0.0.0/8"), 9);  // replace
  EXPECT_TRUE(copy.remove(P("10.1.0.0/16")));
  copy.remove_value(3);

  EXPECT_EQ(original.size(), 3u);
  EXPECT_EQ(Lookup(original, "10.1.2.3"), 2u);
  EXPECT_EQ(Lookup(original, "10.2.0.0"), 1u);
  EXPECT_EQ(Lookup(original, "fd00::1"), 3u);

  EXPECT_EQ(copy.size(), 2u);
  EXPECT_EQ(Lookup(copy, "10.1.2.3"), 4u);
  EXPECT_EQ(Lookup(copy, "10.1.3.3"), 9u);
  EXPECT_EQ(Lookup(copy, "fd00::1"), kMiss);

  // And the other way round, through assignment.
  AllowedIps assigned;
  assigned.insert(P("192.0.2.0/24"), 7);
  assigned = original;
  original.clear();
  EXPECT_EQ(original.size(), 0u);
  EXPECT_EQ(Lookup(original, "10.1.2.3"), kMiss);
  EXPECT_EQ(assigned.size(), 3u);
  EXPECT_EQ(Lookup(assigned, "10.1.2.3"), 2u);
  EXPECT_EQ(Lookup(assigned, "192.0.2.1"), kMiss);

  AllowedIps moved = std::move(assigned);
  EXPECT_EQ(Lookup(moved, "fd00::1"), 3u);
}

TEST(AllowedIps, ClearThenReuse) {
  AllowedIps t;
  t.insert(P("10.0.0.0/8"), 1);
  t.insert(P("::/0"), 2);
  t.clear();
  EXPECT_EQ(t.size(), 0u);
  EXPECT_EQ(Lookup(t, "10.0.0.1"), kMiss);
  EXPECT_EQ(Lookup(t, "::1"), kMiss);
  t.insert(P("10.0.0.0/9"), 3);
  EXPECT_EQ(Lookup(t, "10.0.0.1"), 3u);
  EXPECT_EQ(Lookup(t, "10.128.0.1"), kMiss);
}

// ---- Randomized comparison against a linear reference ----

bool Covers(const Prefix& p, sa_family_t family, const uint8_t* addr) {
  if (p.family != family) return false;
  const unsigned whole = p.cidr / 8, rest = p.cidr % 8;
  if (std::memcmp(p.addr.data(), addr, whole) != 0) return false;
  if (rest == 0) return true;
  const uint8_t mask = static_cast<uint8_t>(0xff << (8 - rest));
  return (p.addr[whole] & mask) == (addr[whole] & mask);
}

class Reference {
 public:
  void insert(const Prefix& prefix, uint32_t value) {
    Prefix m = prefix.masked();
    for (auto& e : entries_) {
      if (e.first == m) {
        e.second = value;
        return;
      }
    }
    entries_.emplace_back(m, value);
  }
  bool remove(const Prefix& prefix) {
    Prefix m = prefix.masked();
    for (size_t i = 0; i < entries_.size(); ++i) {
      if (entries_[i].first == m) {
        entries_.erase(entries_.begin() + static_cast<std::ptrdiff_t>(i));
        return true;
      }
    }
    return false;
  }
  void remove_value(uint32_t value) {
    std::erase_if(entries_, [&](const auto& e) { return e.second == value; });
  }
  std::optional<uint32_t> lookup(sa_family_t family, const uint8_t* addr) const {
    std::optional<uint32_t> best;
    int best_cidr = -1;
    for (const auto& [p, v] : entries_) {
      if (p.cidr > best_cidr && Covers(p, family, addr)) {
        best = v;
        best_cidr = p.cidr;
      }
    }
    return best;
  }
  std::vector<Prefix> prefixes_of(uint32_t value) const {
    std::vector<Prefix> out;
    for (const auto& [p, v] : entries_)
      if (v == value) out.push_back(p);
    return out;
  }
  size_t size() const { return entries_.size(); }
  const std::vector<std::pair<Prefix, uint32_t>>& entries() const { return entries_; }

 private:
  std::vector<std::pair<Prefix, uint32_t>> entries_;
};

class RandomTable {
 public:
  explicit RandomTable(uint32_t seed) : rng_(seed) {
    // A few base addresses per family so prefixes overlap and nest a lot.
    for (int i = 0; i < 4; ++i) {
      std::array<uint8_t, 16> b{};
      for (auto& x : b) x = static_cast<uint8_t>(rng_());
      bases_.push_back(b);
    }
  }

  Prefix prefix() {
    Prefix p;
    p.family = rng_() % 2 ? AF_INET : AF_INET6;
    p.addr = address(p.family);
    // Mostly long prefixes near the bases, some short ones.
    unsigned max = p.max_cidr();
    unsigned r = rng_() % 8;
    p.cidr = static_cast<uint8_t>(r == 0 ? rng_() % (max + 1) : max - rng_() % (max / 4 + 1));
    return p;  // deliberately not masked
  }

  std::array<uint8_t, 16> address(sa_family_t family) {
    std::array<uint8_t, 16> a = bases_[rng_() % bases_.size()];
    // Flip a few random bits; sometimes many.
    unsigned bits = family == AF_INET ? 32 : 128;
    unsigned flips = rng_() % 4 == 0 ? bits : rng_() % 4;
    for (unsigned i = 0; i < flips; ++i) {
      unsigned bit = rng_() % bits;
      a[bit / 8] ^= static_cast<uint8_t>(0x80 >> (bit % 8));
    }
    if (family == AF_INET) std::fill(a.begin() + 4, a.end(), 0);
    return a;
  }

  uint32_t value() { return rng_() % 16; }
  std::mt19937& rng() { return rng_; }

 private:
  std::mt19937 rng_;
  std::vector<std::array<uint8_t, 16>> bases_;
};

void ExpectSame(const AllowedIps& t, const Reference& ref, RandomTable& gen, int lookups) {
  ASSERT_EQ(t.size(), ref.size());
  for (int i = 0; i < lookups; ++i) {
    sa_family_t family = gen.rng()() % 2 ? AF_INET : AF_INET6;
    auto addr = gen.address(family);
    ASSERT_EQ(t.lookup(family, addr.data()), ref.lookup(family, addr.data()))
        << "family " << family << " lookup #" << i;
  }
  // Every stored prefix's own address.
  for (const auto& [p, v] : ref.entries()) {
    ASSERT_EQ(t.lookup(p.family, p.addr.data()), ref.lookup(p.family, p.addr.data()))
        << p.to_string();
  }
  for (uint32_t v = 0; v < 16; ++v) {
    auto want = ref.prefixes_of(v);
    std::sort(want.begin(), want.end(), [](const Prefix& a, const Prefix& b) {
      if (a.family != b.family) return a.family == AF_INET;
      if (a.addr != b.addr) return a.addr < b.addr;
      return a.cidr < b.cidr;
    });
    ASSERT_EQ(t.prefixes_of(v), want) << "value " << v;
  }
}

TEST(AllowedIps, RandomAgainstLinearReference) {
  for (uint32_t seed = 1; seed <= 8; ++seed) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    RandomTable gen(seed);
    AllowedIps t;
    Reference ref;
    std::vector<Prefix> inserted;

    for (int i = 0; i < 1500; ++i) {
      Prefix p = gen.prefix();
      uint32_t v = gen.value();
      t.insert(p, v);
      ref.insert(p, v);
      inserted.push_back(p);
    }
    ExpectSame(t, ref, gen, 4000);

    // Remove a third of what was inserted (some twice, some never present).
    for (int i = 0; i < 500; ++i) {
      Prefix p = gen.rng()() % 8 ? inserted[gen.rng()() % inserted.size()] : gen.prefix();
      ASSERT_EQ(t.remove(p), ref.remove(p)) << p.to_string();
    }
    ExpectSame(t, ref, gen, 4000);

    // Drop a few values, then churn: interleaved inserts and removes reuse freed nodes.
    for (uint32_t v : {3u, 7u, 11u}) {
      t.remove_value(v);
      ref.remove_value(v);
    }
    ExpectSame(t, ref, gen, 2000);
    for (int i = 0; i < 2000; ++i) {
      if (gen.rng()() % 2) {
        Prefix p = gen.prefix();
        uint32_t v = gen.value();
        t.insert(p, v);
        ref.insert(p, v);
        inserted.push_back(p);
      } else {
        Prefix p = inserted[gen.rng()() % inserted.size()];
        ASSERT_EQ(t.remove(p), ref.remove(p)) << p.to_string();
      }
    }
    ExpectSame(t, ref, gen, 4000);

    // Copy, then empty the copy entirely; the original is untouched.
    AllowedIps copy = t;
    for (const Prefix& p : inserted) copy.remove(p);
    EXPECT_EQ(copy.size(), 0u);
    for (int i = 0; i < 200; ++i) {
      sa_family_t family = gen.rng()() % 2 ? AF_INET : AF_INET6;
      auto addr = gen.address(family);
      ASSERT_EQ(copy.lookup(family, addr.data()), kMiss);
    }
    ExpectSame(t, ref, gen, 1000);
  }
}

// ---- Inner IP header parsing ----

std::vector<uint8_t> V4Packet(size_t buffer, uint8_t ihl, uint16_t total_length) {
  std::vector<uint8_t> p(buffer, 0);
  if (buffer >= 1) p[0] = static_cast<uint8_t>(0x40 | ihl);
  if (buffer >= 4) {
    p[2] = static_cast<uint8_t>(total_length >> 8);
    p[3] = static_cast<uint8_t>(total_length);
  }
  const uint8_t src[4] = {192, 0, 2, 1}, dst[4] = {198, 51, 100, 2};
  if (buffer >= 20) {
    std::memcpy(&p[12], src, 4);
    std::memcpy(&p[16], dst, 4);
  }
  return p;
}

std::vector<uint8_t> V6Packet(size_t buffer, uint16_t payload_length) {
  std::vector<uint8_t> p(buffer, 0);
  if (buffer >= 1) p[0] = 0x60;
  if (buffer >= 6) {
    p[4] = static_cast<uint8_t>(payload_length >> 8);
    p[5] = static_cast<uint8_t>(payload_length);
  }
  if (buffer >= 40) {
    Addr src = A("2001:db8::1"), dst = A("2001:db8::2");
    std::memcpy(&p[8], src.bytes.data(), 16);
    std::memcpy(&p[24], dst.bytes.data(), 16);
  }
  return p;
}

struct HeaderCase {
  std::string name;
  std::vector<uint8_t> pkt;
  bool ok;
  size_t length;  // when ok
};

void PrintTo(const HeaderCase& c, std::ostream* os) {
  *os << c.name;
}

std::vector<HeaderCase> HeaderCases() {
  std::vector<uint8_t> version5 = V4Packet(20, 5, 20);
  version5[0] = 0x55;
  std::vector<uint8_t> version0 = V4Packet(40, 5, 40);
  version0[0] = 0x05;
  std::vector<uint8_t> v6_in_20 = V4Packet(20, 5, 20);
  v6_in_20[0] = 0x60;
  return {
      {"V4Minimal", V4Packet(20, 5, 20), true, 20},
      {"V4WithPayload", V4Packet(1420, 5, 1420), true, 1420},
      {"V4TrailingPadding", V4Packet(64, 5, 48), true, 48},
      {"V4WithOptions", V4Packet(28, 7, 28), true, 28},
      {"V4Max", V4Packet(65535, 5, 65535), true, 65535},
      {"V4Empty", {}, false, 0},
      {"V4OneByte", {0x45}, false, 0},
      {"V4Short", V4Packet(19, 5, 19), false, 0},
      {"V4TotalLengthTooBig", V4Packet(100, 5, 101), false, 0},
      {"V4TotalLengthZero", V4Packet(20, 5, 0), false, 0},
      {"V4TotalLengthBelowHeader", V4Packet(24, 6, 20), false, 0},
      {"V4IhlBelowFive", V4Packet(20, 4, 20), false, 0},
      {"V4IhlZero", V4Packet(20, 0, 20), false, 0},
      {"V6Minimal", V6Packet(40, 0), true, 40},
      {"V6WithPayload", V6Packet(1420, 1380), true, 1420},
      {"V6TrailingPadding", V6Packet(100, 20), true, 60},
      {"V6Short", V6Packet(39, 0), false, 0},
      {"V6PayloadTooBig", V6Packet(139, 100), false, 0},
      {"V6PayloadMaxButShort", V6Packet(1500, 65535), false, 0},
      {"VersionFive", version5, false, 0},
      {"VersionZero", version0, false, 0},
      {"V6NibbleInTwentyBytes", v6_in_20, false, 0},
  };
}

class InnerHeaderTest : public ::testing::TestWithParam<HeaderCase> {};

TEST_P(InnerHeaderTest, SourceAndDestination) {
  const HeaderCase& c = GetParam();
  std::span<const uint8_t> pkt(c.pkt);
  sa_family_t sfam = AF_UNSPEC, dfam = AF_UNSPEC;
  const uint8_t* src = nullptr;
  const uint8_t* dst = nullptr;
  size_t slen = 0, dlen = 0;
  ASSERT_EQ(inner_source(pkt, sfam, src, slen), c.ok);
  ASSERT_EQ(inner_destination(pkt, dfam, dst, dlen), c.ok);
  if (!c.ok) return;
  EXPECT_EQ(slen, c.length);
  EXPECT_EQ(dlen, c.length);
  EXPECT_EQ(sfam, dfam);
  const bool v4 = (c.pkt[0] >> 4) == 4;
  EXPECT_EQ(sfam, v4 ? AF_INET : AF_INET6);
  // The pointers are into the packet, at the header's address fields.
  EXPECT_EQ(src, pkt.data() + (v4 ? 12 : 8));
  EXPECT_EQ(dst, pkt.data() + (v4 ? 16 : 24));
  Addr want_src = A(v4 ? "192.0.2.1" : "2001:db8::1");
  Addr want_dst = A(v4 ? "198.51.100.2" : "2001:db8::2");
  const size_t n = v4 ? 4 : 16;
  EXPECT_EQ(std::memcmp(src, want_src.bytes.data(), n), 0);
  EXPECT_EQ(std::memcmp(dst, want_dst.bytes.data(), n), 0);
}

INSTANTIATE_TEST_SUITE_P(AllowedIps, InnerHeaderTest, ::testing::ValuesIn(HeaderCases()),
                         [](const auto& info) { return info.param.name; });

TEST(AllowedIps, InnerHeaderFeedsLookup) {
  AllowedIps t;
  t.insert(P("192.0.2.0/24"), 1);
  t.insert(P("198.51.100.0/24"), 2);
  auto pkt = V4Packet(60, 5, 60);
  sa_family_t family;
  const uint8_t* addr;
  size_t length;
  ASSERT_TRUE(inner_source(pkt, family, addr, length));
  EXPECT_EQ(t.lookup(family, addr), 1u);
  ASSERT_TRUE(inner_destination(pkt, family, addr, length));
  EXPECT_EQ(t.lookup(family, addr), 2u);
}

}  // namespace
}  // namespace faraday::dataplane
