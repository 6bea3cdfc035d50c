// uapi_test.cpp: the wg(8) UAPI text: parse_set() and format_get(). The socket
// server is in uapi_server_test.cpp.
#include "control/uapi.h"

#include "tests/control/uapi_values.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <net/if.h>
#include <netinet/ip.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

namespace faraday::control::uapi {
namespace {

using dataplane::Endpoint;
using dataplane::Prefix;

using namespace test_values;  // key_of, hex_of, prefix, endpoint

SetRequest parse_ok(std::string_view body) {
  auto r = parse_set(body);
  if (!r) {
    ADD_FAILURE() << "rejected: " << r.error();
    return {};
  }
  return *std::move(r);
}

// ---- parse_set ----------------------------------------------------------------------

TEST(UapiParse, DeviceKeys) {
  auto req = parse_ok("private_key=" + hex_of(0x11) +
                      "\nlisten_port=51820\nfwmark=4294967295\nreplace_peers=true\n");
  ASSERT_TRUE(req.private_key.has_value());
  EXPECT_EQ(*req.private_key, key_of(0x11));
  EXPECT_EQ(req.listen_port, 51820);
  EXPECT_EQ(req.fwmark, 4294967295u);
  EXPECT_TRUE(req.replace_peers);
  EXPECT_TRUE(req.peers.empty());
}

TEST(UapiParse, EmptyBodyIsANoOp) {
  auto req = parse_ok("");
  EXPECT_FALSE(req.private_key || req.listen_port || req.fwmark || req.replace_peers);
  EXPECT_TRUE(req.peers.empty());
}

TEST(UapiParse, AllZeroKeysMeanClear) {
  auto req = parse_ok("private_key=" + hex_of(0) + "\npublic_key=" + hex_of(1) +
                      "\npreshared_key=" + hex_of(0) + "\n");
  ASSERT_TRUE(req.private_key.has_value());
  EXPECT_TRUE(crypto::is_zero(*req.private_key));
  ASSERT_EQ(req.peers.size(), 1u);
  ASSERT_TRUE(req.peers[0].preshared_key.has_value());
  EXPECT_TRUE(crypto::is_zero(*req.peers[0].preshared_key));
}

TEST(UapiParse, PeerKeys) {
  std::string body = "public_key=" + hex_of(0xaa) +
                     "\n"
                     "protocol_version=1\n"
                     "update_only=true\n"
                     "preshared_key=" +
                     hex_of(0xbb) +
                     "\n"
                     "endpoint=192.0.2.7:51820\n"
                     "persistent_keepalive_interval=25\n"
                     "replace_allowed_ips=true\n"
                     "allowed_ip=10.1.0.0/16\n"
                     "allowed_ip=fd00:1::/64\n"
                     "public_key=" +
                     hex_of(0xcc) +
                     "\n"
                     "endpoint=[2001:db8::1]:4242\n"
                     "allowed_ip=0.0.0.0/0\n"
                     "public_key=" +
                     hex_of(0xdd) + "\nremove=true\n";
  auto req = parse_ok(body);
  ASSERT_EQ(req.peers.size(), 3u);

  const PeerSet& a = req.peers[0];
  EXPECT_EQ(a.public_key, key_of(0xaa));
  EXPECT_TRUE(a.update_only);
  EXPECT_FALSE(a.remove);
  EXPECT_EQ(a.preshared_key, key_of(0xbb));
  EXPECT_EQ(a.endpoint, endpoint("192.0.2.7:51820"));
  EXPECT_EQ(a.persistent_keepalive, 25);
  EXPECT_TRUE(a.replace_allowed_ips);
  ASSERT_EQ(a.allowed_ips.size(), 2u);
  EXPECT_EQ(a.allowed_ips[0], prefix("10.1.0.0/16"));
  EXPECT_EQ(a.allowed_ips[1], prefix("fd00:1::/64"));

  const PeerSet& b = req.peers[1];
  EXPECT_EQ(b.public_key, key_of(0xcc));
  ASSERT_TRUE(b.endpoint.has_value());
  EXPECT_EQ(b.endpoint->family, AF_INET6);
  EXPECT_EQ(b.endpoint->port, 4242);
  EXPECT_EQ(b.endpoint, endpoint("[2001:db8::1]:4242"));
  EXPECT_FALSE(b.preshared_key.has_value());
  EXPECT_FALSE(b.persistent_keepalive.has_value());
  EXPECT_FALSE(b.replace_allowed_ips);
  ASSERT_EQ(b.allowed_ips.size(), 1u);
  EXPECT_EQ(b.allowed_ips[0], prefix("0.0.0.0/0"));

  EXPECT_EQ(req.peers[2].public_key, key_of(0xdd));
  EXPECT_TRUE(req.peers[2].remove);
}

TEST(UapiParse, HostBitsAreMaskedAndUppercaseHexAccepted) {
  std::string upper = hex_of(0xab);
  for (auto& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  auto req = parse_ok("public_key=" + upper + "\nallowed_ip=10.1.2.3/24\nallowed_ip=fd00::1/128");
  ASSERT_EQ(req.peers.size(), 1u);
  EXPECT_EQ(req.peers[0].public_key, key_of(0xab));
  ASSERT_EQ(req.peers[0].allowed_ips.size(), 2u);
  EXPECT_EQ(req.peers[0].allowed_ips[0].to_string(), "10.1.2.0/24");  // and no final '\n'
  EXPECT_EQ(req.peers[0].allowed_ips[1].to_string(), "fd00::1/128");
}

TEST(UapiParse, WhatWgSetSends) {
  // Byte for byte what `wg set tst0 peer K allowed-ips 10.0.0.0/24 endpoint
  // 127.0.0.1:1234` writes after "set=1".
  auto req = parse_ok("public_key=" + hex_of(0x42) +
                      "\nendpoint=127.0.0.1:1234\nreplace_allowed_ips=true\n"
                      "allowed_ip=10.0.0.0/24\n");
  ASSERT_EQ(req.peers.size(), 1u);
  EXPECT_EQ(req.peers[0].endpoint, endpoint("127.0.0.1:1234"));
  EXPECT_TRUE(req.peers[0].replace_allowed_ips);
  EXPECT_EQ(req.peers[0].allowed_ips, std::vector<Prefix>{prefix("10.0.0.0/24")});
}

struct RejectCase {
  const char* name;
  std::string body;
  int errno_value;
  Reject reason;
};

class UapiParseReject : public testing::TestWithParam<RejectCase> {};

TEST_P(UapiParseReject, IsRejectedWithErrnoAndReason) {
  const RejectCase& c = GetParam();
  auto r = parse_set(c.body);
  ASSERT_FALSE(r.ok()) << c.name;
  const Error& e = r.failure();
  EXPECT_EQ(e.errno_value, c.errno_value) << c.name << ": " << e.message;
  EXPECT_EQ(e.reason, c.reason) << c.name << ": " << e.message;
  EXPECT_FALSE(e.message.empty());
}

const std::string kPeer = "public_key=" + hex_of(0x01) + "\n";

INSTANTIATE_TEST_SUITE_P(
    Table, UapiParseReject,
    testing::Values(
        RejectCase{"bad_hex", "private_key=" + std::string(64, 'g') + "\n", EINVAL,
                   Reject::kInvalidValue},
        RejectCase{"short_key", "private_key=abcd\n", EINVAL, Reject::kInvalidValue},
        RejectCase{"long_key", "public_key=" + hex_of(1) + "00\n", EINVAL, Reject::kInvalidValue},
        RejectCase{"empty_key", "public_key=\n", EINVAL, Reject::kInvalidValue},
        RejectCase{"bad_psk", kPeer + "preshared_key=xyz\n", EINVAL, Reject::kInvalidValue},
        RejectCase{"unknown_key", "foo=bar\n", EINVAL, Reject::kUnknownKey},
        RejectCase{"empty_key_name", "=1\n", EINVAL, Reject::kUnknownKey},
        RejectCase{"key_case", "Listen_Port=1\n", EINVAL, Reject::kUnknownKey},
        RejectCase{"get_only_key", kPeer + "rx_bytes=5\n", EINVAL, Reject::kUnknownKey},
        RejectCase{"device_key_in_peer", kPeer + "listen_port=1\n", EINVAL, Reject::kUnknownKey},
        RejectCase{"endpoint_before_peer", "endpoint=192.0.2.1:1\n", EINVAL, Reject::kNeedsPeer},
        RejectCase{"allowed_ip_before_peer", "allowed_ip=10.0.0.0/8\n", EINVAL, Reject::kNeedsPeer},
        RejectCase{"remove_before_peer", "remove=true\n", EINVAL, Reject::kNeedsPeer},
        RejectCase{"protocol_before_peer", "protocol_version=1\n", EINVAL, Reject::kNeedsPeer},
        RejectCase{"port_too_big", "listen_port=65536\n", EINVAL, Reject::kInvalidValue},
        RejectCase{"port_negative", "listen_port=-1\n", EINVAL, Reject::kInvalidValue},
        RejectCase{"port_empty", "listen_port=\n", EINVAL, Reject::kInvalidValue},
        RejectCase{"port_space", "listen_port= 1\n", EINVAL, Reject::kInvalidValue},
        RejectCase{"port_hex", "listen_port=0x10\n", EINVAL, Reject::kInvalidValue},
        RejectCase{"port_huge", "listen_port=99999999999999999999999\n", EINVAL,
                   Reject::kInvalidValue},
        RejectCase{"fwmark_too_big", "fwmark=4294967296\n", EINVAL, Reject::kInvalidValue},
        RejectCase{"keepalive_too_big", kPeer + "persistent_keepalive_interval=65536\n", EINVAL,
                   Reject::kInvalidValue},
        RejectCase{"cidr_too_long_v4", kPeer + "allowed_ip=10.0.0.0/33\n", EINVAL,
                   Reject::kInvalidValue},
        RejectCase{"cidr_too_long_v6", kPeer + "allowed_ip=fd00::/129\n", EINVAL,
                   Reject::kInvalidValue},
        RejectCase{"cidr_missing", kPeer + "allowed_ip=10.0.0.0\n", EINVAL, Reject::kInvalidValue},
        RejectCase{"cidr_empty", kPeer + "allowed_ip=10.0.0.0/\n", EINVAL, Reject::kInvalidValue},
        RejectCase{"cidr_bad_addr", kPeer + "allowed_ip=10.0.0.256/8\n", EINVAL,
                   Reject::kInvalidValue},
        RejectCase{"endpoint_no_port", kPeer + "endpoint=192.0.2.1\n", EINVAL,
                   Reject::kInvalidValue},
        RejectCase{"endpoint_port_zero", kPeer + "endpoint=192.0.2.1:0\n", EINVAL,
                   Reject::kInvalidValue},
        RejectCase{"endpoint_v6_unbracketed", kPeer + "endpoint=2001:db8::1:80\n", EINVAL,
                   Reject::kInvalidValue},
        RejectCase{"endpoint_hostname", kPeer + "endpoint=example.com:80\n", EINVAL,
                   Reject::kInvalidValue},
        RejectCase{"replace_peers_false", "replace_peers=false\n", EINVAL, Reject::kInvalidValue},
        RejectCase{"remove_yes", kPeer + "remove=yes\n", EINVAL, Reject::kInvalidValue},
        RejectCase{"missing_equals", "listen_port\n", EPROTO, Reject::kMalformedLine},
        RejectCase{"empty_line_inside", "listen_port=1\n\nfwmark=1\n", EPROTO,
                   Reject::kMalformedLine},
        RejectCase{"crlf", "listen_port=1\r\n", EINVAL, Reject::kInvalidValue},
        RejectCase{"protocol_version_2", kPeer + "protocol_version=2\n", EINVAL,
                   Reject::kProtocolVersion},
        RejectCase{"protocol_version_empty", kPeer + "protocol_version=\n", EINVAL,
                   Reject::kProtocolVersion}),
    [](const testing::TestParamInfo<RejectCase>& info) { return info.param.name; });

TEST(UapiParse, ErrorsNameTheLineButNeverEchoKeys) {
  std::string secret = hex_of(0x5a);
  secret[63] = 'z';
  auto r = parse_set("listen_port=1\nprivate_key=" + secret + "\n");
  ASSERT_FALSE(r.ok());
  const auto& e = r.failure();
  EXPECT_NE(e.message.find("line 2"), std::string::npos) << e.message;
  EXPECT_NE(e.message.find("private_key"), std::string::npos) << e.message;
  EXPECT_EQ(e.message.find(secret.substr(0, 16)), std::string::npos) << e.message;
}

TEST(UapiParse, ErrorsEscapeControlBytes) {
  auto r = parse_set(std::string("fo\x1b[2Jo\x01=1\n"));
  ASSERT_FALSE(r.ok());
  const auto& e = r.failure();
  EXPECT_EQ(e.message.find('\x1b'), std::string::npos);
  EXPECT_NE(e.message.find("\\x1b"), std::string::npos) << e.message;
}

// ---- format_get ---------------------------------------------------------------------

TEST(UapiFormat, ExactText) {
  std::string expected = "private_key=" + hex_of(0x11) +
                         "\n"
                         "listen_port=51820\n"
                         "public_key=" +
                         hex_of(0x22) +
                         "\n"
                         "preshared_key=" +
                         hex_of(0x33) +
                         "\n"
                         "protocol_version=1\n"
                         "endpoint=192.0.2.1:51820\n"
                         "last_handshake_time_sec=1700000000\n"
                         "last_handshake_time_nsec=123456789\n"
                         "tx_bytes=2000\n"
                         "rx_bytes=1000\n"
                         "persistent_keepalive_interval=25\n"
                         "allowed_ip=10.0.0.0/24\n"
                         "allowed_ip=fd00::/64\n"
                         "public_key=" +
                         hex_of(0x44) +
                         "\n"
                         "preshared_key=" +
                         hex_of(0x00) +
                         "\n"
                         "protocol_version=1\n"
                         "endpoint=[2001:db8::2]:1234\n"
                         "last_handshake_time_sec=0\n"
                         "last_handshake_time_nsec=0\n"
                         "tx_bytes=0\n"
                         "rx_bytes=0\n"
                         "persistent_keepalive_interval=0\n"
                         "errno=0\n\n";
  EXPECT_EQ(format_get(sample_state()), expected);
}

TEST(UapiFormat, EmptyDevice) {
  EXPECT_EQ(format_get(DeviceState{}), "errno=0\n\n");
  DeviceState zero;
  zero.private_key = key_of(0);
  zero.fwmark = 7;
  EXPECT_EQ(format_get(zero), "fwmark=7\nerrno=0\n\n");
}

}  // namespace
}  // namespace faraday::control::uapi
