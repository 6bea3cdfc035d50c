// The wire formats: classify() for every type, size and reserved-byte
// combination, padded_length(), the layouts and the little-endian helpers.
#include "dataplane/messages.h"

#include <gtest/gtest.h>

#include <cstring>
#include <ostream>
#include <set>
#include <string>
#include <variant>
#include <vector>

namespace faraday::dataplane {
namespace {

using Result = std::variant<MessageType, Drop>;

std::string describe(const Result& r) {
  if (const Drop* d = std::get_if<Drop>(&r)) return std::string("drop ") + drop_name(*d);
  return "type " + std::to_string(static_cast<uint32_t>(std::get<MessageType>(r)));
}

std::vector<uint8_t> datagram(uint32_t type_word, size_t size) {
  std::vector<uint8_t> d(size, 0xa5);
  uint8_t word[4];
  store_le32(word, type_word);
  if (size > 0) std::memcpy(d.data(), word, std::min<size_t>(size, 4));
  return d;
}

struct ClassifyCase {
  uint32_t type_word;  // the first four bytes, little-endian
  size_t size;
  Result want;
};

void PrintTo(const ClassifyCase& c, std::ostream* os) {
  *os << "word " << c.type_word << ", " << c.size << " bytes";
}

class Classify : public ::testing::TestWithParam<ClassifyCase> {};

TEST_P(Classify, Table) {
  const ClassifyCase& c = GetParam();
  std::vector<uint8_t> d = datagram(c.type_word, c.size);
  Result got = classify(d);
  EXPECT_EQ(describe(got), describe(c.want));
}

constexpr MessageType kInit = MessageType::kInitiation;
constexpr MessageType kResp = MessageType::kResponse;
constexpr MessageType kCookie = MessageType::kCookieReply;
constexpr MessageType kData = MessageType::kTransport;

INSTANTIATE_TEST_SUITE_P(
    Core, Classify,
    ::testing::Values(
        // Too short to hold a type.
        ClassifyCase{1, 0, Drop::kTooShort}, ClassifyCase{1, 1, Drop::kTooShort},
        ClassifyCase{4, 3, Drop::kTooShort},
        // Initiation: exactly 148.
        ClassifyCase{1, 4, Drop::kBadSize}, ClassifyCase{1, 92, Drop::kBadSize},
        ClassifyCase{1, 147, Drop::kBadSize}, ClassifyCase{1, 148, kInit},
        ClassifyCase{1, 149, Drop::kBadSize}, ClassifyCase{1, 65535, Drop::kBadSize},
        // Response: exactly 92.
        ClassifyCase{2, 4, Drop::kBadSize}, ClassifyCase{2, 91, Drop::kBadSize},
        ClassifyCase{2, 92, kResp}, ClassifyCase{2, 93, Drop::kBadSize},
        ClassifyCase{2, 148, Drop::kBadSize},
        // Cookie reply: exactly 64.
        ClassifyCase{3, 4, Drop::kBadSize}, ClassifyCase{3, 63, Drop::kBadSize},
        ClassifyCase{3, 64, kCookie}, ClassifyCase{3, 65, Drop::kBadSize},
        ClassifyCase{3, 92, Drop::kBadSize},
        // Transport: at least header + tag (a keepalive), any length above.
        ClassifyCase{4, 4, Drop::kTooShort}, ClassifyCase{4, 16, Drop::kTooShort},
        ClassifyCase{4, 31, Drop::kTooShort}, ClassifyCase{4, 32, kData},
        ClassifyCase{4, 33, kData}, ClassifyCase{4, 64, kData}, ClassifyCase{4, 148, kData},
        ClassifyCase{4, 1452, kData}, ClassifyCase{4, 65535, kData},
        // Unknown types, whatever the size.
        ClassifyCase{0, 4, Drop::kUnknownType}, ClassifyCase{0, 148, Drop::kUnknownType},
        ClassifyCase{5, 32, Drop::kUnknownType}, ClassifyCase{5, 148, Drop::kUnknownType},
        ClassifyCase{0xff, 64, Drop::kUnknownType},
        ClassifyCase{0xffffffff, 92, Drop::kUnknownType},
        // Reserved bytes (1..3) not zero: unknown, even with the right size.
        ClassifyCase{0x00000101, 148, Drop::kUnknownType},
        ClassifyCase{0x00010001, 148, Drop::kUnknownType},
        ClassifyCase{0x01000001, 148, Drop::kUnknownType},
        ClassifyCase{0x00000102, 92, Drop::kUnknownType},
        ClassifyCase{0x80000003, 64, Drop::kUnknownType},
        ClassifyCase{0x00000104, 32, Drop::kUnknownType},
        ClassifyCase{0x00ff0004, 100, Drop::kUnknownType},
        // A type byte in a reserved position only.
        ClassifyCase{0x01000000, 148, Drop::kUnknownType},
        ClassifyCase{0x00000400, 32, Drop::kUnknownType}),
    [](const auto& info) {
      return "t" + std::to_string(info.param.type_word) + "_n" + std::to_string(info.param.size);
    });

// The reference rule, written from the whitepaper, against every combination
// of type byte, reserved bytes and interesting size.
TEST(Classify, EveryCombination) {
  const std::vector<size_t> sizes = {0,  1,  2,  3,  4,  15,  16,  31,  32,  33,   63,
                                     64, 65, 91, 92, 93, 147, 148, 149, 200, 1452, 65535};
  const std::vector<uint8_t> type_bytes = {0, 1, 2, 3, 4, 5, 0x41, 0xff};
  const std::vector<uint32_t> reserved_patterns = {0, 0x000001, 0x000100, 0x010000, 0xffffff};
  for (uint8_t t : type_bytes) {
    for (uint32_t reserved : reserved_patterns) {
      for (size_t n : sizes) {
        uint32_t word = t | reserved << 8;
        Result want;
        if (n < 4) {
          want = Drop::kTooShort;
        } else if (reserved != 0 || t < 1 || t > 4) {
          want = Drop::kUnknownType;
        } else if (t == 4) {
          want = n >= 32 ? Result{kData} : Result{Drop::kTooShort};
        } else {
          const size_t exact[] = {0, 148, 92, 64};
          want = n == exact[t] ? Result{static_cast<MessageType>(t)} : Result{Drop::kBadSize};
        }
        std::vector<uint8_t> d = datagram(word, n);
        EXPECT_EQ(describe(classify(d)), describe(want)) << "word " << word << " size " << n;
      }
    }
  }
}

struct PaddingCase {
  size_t len;
  size_t mtu;
  size_t want;
};

void PrintTo(const PaddingCase& c, std::ostream* os) {
  *os << c.len << " bytes, mtu " << c.mtu;
}

class PaddedLength : public ::testing::TestWithParam<PaddingCase> {};

TEST_P(PaddedLength, Table) {
  const PaddingCase& c = GetParam();
  EXPECT_EQ(padded_length(c.len, c.mtu), c.want);
}

INSTANTIATE_TEST_SUITE_P(
    Core, PaddedLength,
    ::testing::Values(
        // A keepalive stays empty.
        PaddingCase{0, 1420, 0}, PaddingCase{0, 0, 0},
        // Up to the next multiple of 16.
        PaddingCase{1, 1420, 16}, PaddingCase{15, 1420, 16}, PaddingCase{16, 1420, 16},
        PaddingCase{17, 1420, 32}, PaddingCase{20, 1420, 32}, PaddingCase{40, 1420, 48},
        PaddingCase{1280, 1420, 1280}, PaddingCase{1281, 1420, 1296}, PaddingCase{1408, 1420, 1408},
        // Never past the MTU...
        PaddingCase{1409, 1420, 1420}, PaddingCase{1419, 1420, 1420}, PaddingCase{1420, 1420, 1420},
        // ...and never shrinking a packet already larger than it.
        PaddingCase{1421, 1420, 1421}, PaddingCase{1500, 1420, 1500}, PaddingCase{9000, 1420, 9000},
        // An MTU that is not a multiple of 16.
        PaddingCase{1, 1, 1}, PaddingCase{7, 10, 10}, PaddingCase{10, 10, 10},
        PaddingCase{11, 10, 11},
        // No MTU: padding only.
        PaddingCase{1409, 0, 1424}, PaddingCase{9000, 0, 9008}, PaddingCase{65535, 0, 65536}),
    [](const auto& info) {
      return std::to_string(info.param.len) + "_mtu" + std::to_string(info.param.mtu);
    });

TEST(PaddedLength, Properties) {
  for (size_t mtu : {size_t{0}, size_t{576}, size_t{1280}, size_t{1420}, size_t{1423}}) {
    for (size_t len = 0; len <= 2000; ++len) {
      size_t p = padded_length(len, mtu);
      EXPECT_GE(p, len);
      EXPECT_LT(p - len, kPaddingMultiple);
      if (mtu == 0 || len <= mtu) {
        EXPECT_TRUE(p % kPaddingMultiple == 0 || p == mtu) << len << " " << mtu;
      }
      if (mtu != 0 && len <= mtu) {
        EXPECT_LE(p, mtu);
      }
      if (mtu != 0 && len > mtu) {
        EXPECT_EQ(p, len);
      }
    }
  }
}

TEST(Layout, OffsetsOfTheMacs) {
  EXPECT_EQ(mac1_offset<MessageInitiation>(), 116u);
  EXPECT_EQ(mac2_offset<MessageInitiation>(), 132u);
  EXPECT_EQ(mac1_offset<MessageResponse>(), 60u);
  EXPECT_EQ(mac2_offset<MessageResponse>(), 76u);
  EXPECT_EQ(offsetof(MessageCookieReply, nonce), 8u);
  EXPECT_EQ(offsetof(MessageCookieReply, encrypted_cookie), 32u);
  EXPECT_EQ(offsetof(MessageTransportHeader, counter), 8u);
  EXPECT_EQ(kMinTransportSize, 32u);
}

TEST(Layout, LittleEndianHelpers) {
  uint8_t b[8];
  store_le32(b, 0x04030201);
  EXPECT_EQ(b[0], 1);
  EXPECT_EQ(b[3], 4);
  EXPECT_EQ(load_le32(b), 0x04030201u);
  store_le64(b, 0x0807060504030201ULL);
  for (int i = 0; i < 8; ++i) EXPECT_EQ(b[i], i + 1);
  EXPECT_EQ(load_le64(b), 0x0807060504030201ULL);
  store_le64(b, UINT64_MAX);
  EXPECT_EQ(load_le64(b), UINT64_MAX);
}

TEST(Counters, EveryReasonHasADistinctName) {
  std::set<std::string> names;
  for (size_t i = 0; i < static_cast<size_t>(Drop::kCount); ++i) {
    std::string name = drop_name(static_cast<Drop>(i));
    EXPECT_NE(name, "?") << i;
    EXPECT_TRUE(names.insert(name).second) << name;
  }
  Counters c;
  c.drop(Drop::kTooShort);
  c.drop(Drop::kOutboxFull);
  c.drop(Drop::kOutboxFull);
  EXPECT_EQ(c.dropped(Drop::kOutboxFull), 2u);
  EXPECT_EQ(c.dropped_total(), 3u);
}

}  // namespace
}  // namespace faraday::dataplane
