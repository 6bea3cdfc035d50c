// proto_test.cpp: the frame decoder (every split of a stream, every refusal)
// and NodeInfo's rules, table-driven.
#include <gtest/gtest.h>

#include <random>

#include "harness.h"
#include "proto/frame.h"
#include "proto/node_info.h"

namespace faraday::proto {
namespace {

std::span<const uint8_t> bytes(const std::string& s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

NodeMessage query(const std::string& name, uint64_t id) {
  NodeMessage m;
  m.set_version(kProtocolVersion);
  m.set_request_id(id);
  m.mutable_query()->set_name(name);
  return m;
}

TEST(FrameDecoder, EveryWayOfSplittingAStreamGivesTheSameFrames) {
  std::string stream;
  for (int i = 0; i < 5; ++i) append_frame(query("node-" + std::to_string(i), i + 1), stream);
  std::string big(40000, 'x');
  append_frame(query(big.substr(0, 64), 99), stream);
  std::mt19937 rng(7);
  for (int trial = 0; trial < 200; ++trial) {
    FrameDecoder d;
    std::vector<uint64_t> ids;
    size_t pos = 0;
    while (pos < stream.size()) {
      size_t n = std::min<size_t>(stream.size() - pos, 1 + rng() % (trial < 100 ? 3 : 200));
      auto err = d.feed(bytes(stream).subspan(pos, n), [&](std::span<const uint8_t> p) {
        NodeMessage m;
        EXPECT_EQ(decode(p, m), FrameError::kNone);
        ids.push_back(m.request_id());
        return true;
      });
      ASSERT_EQ(err, FrameError::kNone);
      pos += n;
    }
    EXPECT_EQ(ids, (std::vector<uint64_t>{1, 2, 3, 4, 5, 99}));
    EXPECT_EQ(d.buffered(), 0u);
  }
}

TEST(FrameDecoder, RefusesBadLengthsAndStaysFailed) {
  struct Case {
    std::string input;
    FrameError want;
  } cases[] = {
      {std::string("\0\0\0\0", 4), FrameError::kEmpty},
      {std::string("\0\x01\0\x01", 4), FrameError::kTooLarge},  // 65537
      {std::string("\xff\xff\xff\xff", 4), FrameError::kTooLarge},
  };
  for (const auto& c : cases) {
    FrameDecoder d;
    int frames = 0;
    // Split the header to make sure the check also runs on the buffered path.
    d.feed(bytes(c.input.substr(0, 2)), [&](auto) { return ++frames, true; });
    EXPECT_EQ(d.feed(bytes(c.input.substr(2)), [&](auto) { return ++frames, true; }), c.want);
    EXPECT_EQ(d.error(), c.want);
    EXPECT_EQ(d.buffered(), 0u);
    std::string ok;
    append_frame(query("a", 1), ok);
    EXPECT_EQ(d.feed(bytes(ok), [&](auto) { return ++frames, true; }), c.want);
    EXPECT_EQ(frames, 0);
  }
  // The largest allowed frame passes.
  std::string max(4, '\0');
  put_frame_header(kMaxFrameBytes, reinterpret_cast<uint8_t*>(max.data()));
  max += std::string(kMaxFrameBytes, 'z');
  FrameDecoder d;
  size_t got = 0;
  EXPECT_EQ(d.feed(bytes(max), [&](auto p) { return got = p.size(), true; }), FrameError::kNone);
  EXPECT_EQ(got, kMaxFrameBytes);
}

TEST(FrameDecoder, BuffersAtMostOneFrame) {
  FrameDecoder d;
  std::string header(4, '\0');
  put_frame_header(kMaxFrameBytes, reinterpret_cast<uint8_t*>(header.data()));
  d.feed(bytes(header), [](auto) { return true; });
  std::string chunk(1000, 'a');
  for (int i = 0; i < 60; ++i) d.feed(bytes(chunk), [](auto) { return true; });
  EXPECT_LE(d.buffered(), kMaxFrameBytes + kFrameHeaderBytes);
}

TEST(FrameDecoder, StopsWhenTheConsumerSaysSo) {
  std::string stream;
  for (int i = 0; i < 3; ++i) append_frame(query("n", i + 1), stream);
  FrameDecoder d;
  int frames = 0;
  d.feed(bytes(stream), [&](auto) { return ++frames < 2; });
  EXPECT_EQ(frames, 2);
  d.feed(bytes(stream), [&](auto) { return ++frames, true; });
  EXPECT_EQ(frames, 2);
}

TEST(Decode, ChecksParseVersionAndBody) {
  auto payload = [](const NodeMessage& m) { return m.SerializeAsString(); };
  NodeMessage m;
  NodeMessage good = query("x", 1);
  EXPECT_EQ(decode(bytes(payload(good)), m), FrameError::kNone);
  EXPECT_EQ(m.query().name(), "x");
  NodeMessage v2 = good;
  v2.set_version(2);
  EXPECT_EQ(decode(bytes(payload(v2)), m), FrameError::kBadVersion);
  NodeMessage v0 = good;
  v0.clear_version();
  EXPECT_EQ(decode(bytes(payload(v0)), m), FrameError::kBadVersion);
  NodeMessage empty;
  empty.set_version(1);
  EXPECT_EQ(decode(bytes(payload(empty)), m), FrameError::kNoBody);
  EXPECT_EQ(decode(bytes(std::string("\xff\xff\xff", 3)), m), FrameError::kMalformed);
  EXPECT_EQ(decode(bytes(std::string("\x0a\x05"
                                     "ab",
                                     4)),
                   m),
            FrameError::kMalformed);
}

TEST(NodeInfoRules, Names) {
  for (const char* ok : {"a", "node-1", "n.example.com", "A_b-9", "0abc"}) {
    EXPECT_TRUE(valid_node_name(ok)) << ok;
  }
  for (const char* bad : {"", "-a", ".a", "a b", "a/b", "é", "a\n"}) {
    EXPECT_FALSE(valid_node_name(bad)) << bad;
  }
  EXPECT_TRUE(valid_node_name(std::string(64, 'a')));
  EXPECT_FALSE(valid_node_name(std::string(65, 'a')));
}

TEST(NodeInfoRules, EachRuleIsEnforced) {
  NodeInfo good = testing::node_info(1);
  Status valid = check_node_info(good);
  EXPECT_TRUE(valid.ok()) << valid.error();
  struct Case {
    const char* what;
    std::function<void(NodeInfo&)> breakit;
    const char* says;
  } cases[] = {
      {"short key", [](NodeInfo& i) { i.set_public_key(std::string(31, 'k')); }, "31 bytes"},
      {"zero key", [](NodeInfo& i) { i.set_public_key(std::string(32, '\0')); }, "all zero"},
      {"endpoint size", [](NodeInfo& i) { i.mutable_underlay(0)->set_ip("abc"); }, "3 bytes"},
      {"port 0", [](NodeInfo& i) { i.mutable_underlay(0)->set_port(0); }, "port 0"},
      {"port big", [](NodeInfo& i) { i.mutable_underlay(0)->set_port(70000); }, "port 70000"},
      {"too many endpoints",
       [](NodeInfo& i) {
         for (int k = 0; k < 16; ++k) *i.add_underlay() = i.underlay(0);
       },
       "17 underlay"},
      {"prefix len", [](NodeInfo& i) { i.mutable_allowed_ips(0)->set_len(33); }, "length 33"},
      {"host bits", [](NodeInfo& i) { i.mutable_allowed_ips(1)->set_len(8); }, "host bits"},
      {"self overlap", [](NodeInfo& i) { *i.add_allowed_ips() = *parse_prefix("10.200.1.128/25"); },
       "overlap each other"},
      {"control", [](NodeInfo& i) { i.mutable_control()->set_port(0); }, "control"},
      {"too many prefixes",
       [](NodeInfo& i) {
         i.clear_allowed_ips();
         for (int k = 0; k < 65; ++k)
           *i.add_allowed_ips() = *parse_prefix("10.9." + std::to_string(k) + ".0/24");
       },
       "65 allowed IPs"},
  };
  for (const auto& c : cases) {
    NodeInfo bad = good;
    c.breakit(bad);
    Status broken = check_node_info(bad);
    ASSERT_FALSE(broken.ok()) << c.what;
    EXPECT_NE(broken.error().find(c.says), std::string::npos) << c.what << ": " << broken.error();
  }
}

TEST(NodeInfoRules, TextFormsRoundTrip) {
  for (const char* ep : {"192.0.2.1:51820", "[2001:db8::1]:1", "0.0.0.0:65535"}) {
    auto e = parse_endpoint(ep);
    ASSERT_TRUE(e) << ep;
    EXPECT_EQ(endpoint_text(*e), ep);
  }
  for (const char* bad : {"192.0.2.1", "192.0.2.1:0", "2001:db8::1:5", "x:1", "1.2.3.4:65536"}) {
    EXPECT_FALSE(parse_endpoint(bad)) << bad;
  }
  for (const char* p : {"10.0.0.0/8", "2001:db8::/32", "10.1.2.3/32", "::/0"}) {
    auto x = parse_prefix(p);
    ASSERT_TRUE(x) << p;
    EXPECT_EQ(prefix_text(*x), p);
  }
  EXPECT_EQ(prefix_text(*parse_prefix("10.1.2.3")), "10.1.2.3/32");
  EXPECT_FALSE(parse_prefix("10.1.2.3/24"));  // host bits
  EXPECT_FALSE(parse_prefix("10.1.2.0/33"));
  EXPECT_EQ(base64("hello"), "aGVsbG8=");
  EXPECT_EQ(base64(std::string(32, '\0')), "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=");
}

}  // namespace
}  // namespace faraday::proto
