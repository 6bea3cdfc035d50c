// uapi_test.cpp: the wg(8) UAPI (parse_set, format_get, the socket Server), and the
// kernel ports under it (UdpPort on loopback; TunPort when running as root).
#include "control/uapi.h"

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

#include "dataplane/packet.h"
#include "dataplane/tun_port.h"
#include "dataplane/udp_port.h"

namespace faraday::control::uapi {
namespace {

using dataplane::Endpoint;
using dataplane::Prefix;

crypto::Key key_of(uint8_t fill) {
  crypto::Key k;
  k.fill(fill);
  return k;
}
std::string hex_of(uint8_t fill) {
  return crypto::to_hex(key_of(fill));
}

Prefix prefix(const char* text) {
  return *Prefix::parse(text);
}
Endpoint endpoint(const char* text) {
  return *Endpoint::parse(text);
}

SetRequest parse_ok(std::string_view body) {
  auto r = parse_set(body);
  if (auto* e = std::get_if<Error>(&r)) {
    ADD_FAILURE() << "rejected: " << e->message;
    return {};
  }
  return std::get<SetRequest>(std::move(r));
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
  ASSERT_TRUE(std::holds_alternative<Error>(r)) << c.name;
  const Error& e = std::get<Error>(r);
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
  ASSERT_TRUE(std::holds_alternative<Error>(r));
  const auto& e = std::get<Error>(r);
  EXPECT_NE(e.message.find("line 2"), std::string::npos) << e.message;
  EXPECT_NE(e.message.find("private_key"), std::string::npos) << e.message;
  EXPECT_EQ(e.message.find(secret.substr(0, 16)), std::string::npos) << e.message;
}

TEST(UapiParse, ErrorsEscapeControlBytes) {
  auto r = parse_set(std::string("fo\x1b[2Jo\x01=1\n"));
  ASSERT_TRUE(std::holds_alternative<Error>(r));
  const auto& e = std::get<Error>(r);
  EXPECT_EQ(e.message.find('\x1b'), std::string::npos);
  EXPECT_NE(e.message.find("\\x1b"), std::string::npos) << e.message;
}

// ---- format_get ---------------------------------------------------------------------

DeviceState sample_state() {
  DeviceState s;
  s.private_key = key_of(0x11);
  s.listen_port = 51820;
  PeerState a;
  a.public_key = key_of(0x22);
  a.preshared_key = key_of(0x33);
  a.endpoint = endpoint("192.0.2.1:51820");
  a.persistent_keepalive = 25;
  a.allowed_ips = {prefix("10.0.0.0/24"), prefix("fd00::/64")};
  a.last_handshake_sec = 1700000000;
  a.last_handshake_nsec = 123456789;
  a.rx_bytes = 1000;
  a.tx_bytes = 2000;
  PeerState b;
  b.public_key = key_of(0x44);
  b.endpoint = endpoint("[2001:db8::2]:1234");
  s.peers = {a, b};
  return s;
}

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

// ---- Server -------------------------------------------------------------------------

// A Server in a private temporary directory, with a fake device behind it.
class UapiServer : public testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/uapi_test.XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    path_ = dir_ + "/tst0.sock";
    state_ = sample_state();
    server_ = start(path_);
    ASSERT_NE(server_, nullptr);
  }
  void TearDown() override {
    for (int fd : fds_) ::close(fd);
    server_.reset();
    std::filesystem::remove_all(dir_);
  }

  std::unique_ptr<Server> start(const std::string& path) {
    auto r = Server::listen_at(
        path, [this] { return state_; },
        [this](const SetRequest& req) -> std::optional<Error> {
          applied_.push_back(req);
          if (fail_with_) return Error{fail_with_, "refused by the test", Reject::kApplyFailed};
          if (req.listen_port) state_.listen_port = *req.listen_port;
          return std::nullopt;
        });
    if (auto* e = std::get_if<Error>(&r)) {
      ADD_FAILURE() << e->message;
      return nullptr;
    }
    return std::get<std::unique_ptr<Server>>(std::move(r));
  }

  int connect_client() {
    int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un sa{};
    sa.sun_family = AF_UNIX;
    std::strncpy(sa.sun_path, path_.c_str(), sizeof(sa.sun_path) - 1);
    EXPECT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)), 0) << strerror(errno);
    fds_.push_back(fd);
    return fd;
  }

  // Runs the server until fd has a complete reply ("errno=N\n\n") or EOF.
  std::string read_reply(int fd, bool* eof = nullptr) {
    std::string got;
    for (int i = 0; i < 2000; ++i) {
      server_->handle();
      char buf[4096];
      ssize_t n = ::recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
      if (n > 0) got.append(buf, static_cast<size_t>(n));
      if (n == 0 || (n < 0 && errno != EAGAIN)) {
        if (eof) *eof = true;
        return got;
      }
      auto at = got.rfind("errno=");
      if (at != std::string::npos && got.size() >= 2 && got.ends_with("\n\n")) return got;
      if (n < 0) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    ADD_FAILURE() << "no reply, got '" << got << "'";
    return got;
  }

  std::string exchange(int fd, std::string_view request) {
    EXPECT_EQ(::send(fd, request.data(), request.size(), MSG_NOSIGNAL),
              static_cast<ssize_t>(request.size()));
    return read_reply(fd);
  }

  std::string dir_, path_;
  DeviceState state_;
  std::vector<SetRequest> applied_;
  int fail_with_ = 0;
  std::unique_ptr<Server> server_;
  std::vector<int> fds_;
};

TEST_F(UapiServer, SocketModeAndPath) {
  struct stat st {};
  ASSERT_EQ(::stat(path_.c_str(), &st), 0);
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_EQ(server_->path(), path_);
  EXPECT_TRUE(server_->socket_file_present());
  // No temporary name left behind.
  size_t entries = 0;
  for ([[maybe_unused]] auto& e : std::filesystem::directory_iterator(dir_)) ++entries;
  EXPECT_EQ(entries, 1u);
}

TEST_F(UapiServer, GetReturnsTheState) {
  int fd = connect_client();
  EXPECT_EQ(exchange(fd, "get=1\n\n"), format_get(state_));
  EXPECT_EQ(server_->counters().get_requests, 1u);
}

TEST_F(UapiServer, SetThenGetOnOneConnection) {
  int fd = connect_client();
  std::string set = "set=1\nlisten_port=4242\npublic_key=" + hex_of(0x77) +
                    "\nendpoint=[::1]:9\nallowed_ip=10.9.0.0/16\n\n";
  EXPECT_EQ(exchange(fd, set), "errno=0\n\n");
  ASSERT_EQ(applied_.size(), 1u);
  EXPECT_EQ(applied_[0].listen_port, 4242);
  ASSERT_EQ(applied_[0].peers.size(), 1u);
  EXPECT_EQ(applied_[0].peers[0].public_key, key_of(0x77));
  std::string get = exchange(fd, "get=1\n\n");
  EXPECT_NE(get.find("listen_port=4242\n"), std::string::npos) << get;
  EXPECT_EQ(server_->counters().set_requests, 1u);
}

TEST_F(UapiServer, RequestArrivingOneByteAtATime) {
  int fd = connect_client();
  std::string set = "set=1\nfwmark=9\n\n";
  for (char c : set) {
    ASSERT_EQ(::send(fd, &c, 1, MSG_NOSIGNAL), 1);
    server_->handle();
  }
  EXPECT_EQ(read_reply(fd), "errno=0\n\n");
  ASSERT_EQ(applied_.size(), 1u);
  EXPECT_EQ(applied_[0].fwmark, 9u);
}

TEST_F(UapiServer, PipelinedRequestsAnsweredInOrder) {
  int fd = connect_client();
  std::string both = "set=1\nlisten_port=1000\n\nget=1\n\nset=1\nbogus=1\n\n";
  ASSERT_EQ(::send(fd, both.data(), both.size(), MSG_NOSIGNAL), static_cast<ssize_t>(both.size()));
  std::string got;
  for (int i = 0; i < 100 && !got.ends_with("errno=22\n\n"); ++i) got += read_reply(fd);
  state_.listen_port = 1000;
  EXPECT_EQ(got, "errno=0\n\n" + format_get(state_) + "errno=22\n\n");
}

TEST_F(UapiServer, ManyClientsInterleaved) {
  std::vector<int> clients;
  for (int i = 0; i < 8; ++i) clients.push_back(connect_client());
  std::string req = "get=1\n\n";
  for (size_t at = 0; at < req.size(); ++at) {
    for (int fd : clients) ASSERT_EQ(::send(fd, &req[at], 1, MSG_NOSIGNAL), 1);
    server_->handle();
  }
  for (int fd : clients) EXPECT_EQ(read_reply(fd), format_get(state_));
  EXPECT_EQ(server_->counters().connections, 8u);
  EXPECT_EQ(server_->counters().get_requests, 8u);
}

TEST_F(UapiServer, BadSetIsAnsweredAndCountedAndConnectionStaysUsable) {
  int fd = connect_client();
  EXPECT_EQ(exchange(fd, "set=1\nfoo=bar\n\n"), "errno=22\n\n");
  EXPECT_EQ(exchange(fd, "set=1\nlisten_port\n\n"), "errno=71\n\n");  // EPROTO
  EXPECT_EQ(exchange(fd, "set=1\npublic_key=" + hex_of(1) + "\nprotocol_version=2\n\n"),
            "errno=22\n\n");
  EXPECT_EQ(exchange(fd, "get=1\nextra=1\n\n"), "errno=22\n\n");
  EXPECT_TRUE(applied_.empty());
  const auto& c = server_->counters();
  EXPECT_EQ(c.rejected_by(Reject::kUnknownKey), 1u);
  EXPECT_EQ(c.rejected_by(Reject::kMalformedLine), 1u);
  EXPECT_EQ(c.rejected_by(Reject::kProtocolVersion), 1u);
  EXPECT_EQ(c.rejected_by(Reject::kUnknownOperation), 1u);
  ASSERT_TRUE(server_->last_rejection().has_value());
  EXPECT_EQ(exchange(fd, "get=1\n\n"), format_get(state_));
}

TEST_F(UapiServer, ApplyFailureReturnsItsErrno) {
  fail_with_ = EADDRINUSE;
  int fd = connect_client();
  EXPECT_EQ(exchange(fd, "set=1\nlisten_port=53\n\n"),
            "errno=" + std::to_string(EADDRINUSE) + "\n\n");
  EXPECT_EQ(server_->counters().rejected_by(Reject::kApplyFailed), 1u);
}

TEST_F(UapiServer, UnknownOperationIsAnsweredThenClosed) {
  int fd = connect_client();
  ASSERT_GT(::send(fd, "hello=1\n", 8, MSG_NOSIGNAL), 0);
  bool eof = false;
  EXPECT_EQ(read_reply(fd, &eof), "errno=22\n\n");
  std::string rest = read_reply(fd, &eof);
  EXPECT_TRUE(eof);
  EXPECT_TRUE(rest.empty());
  EXPECT_EQ(server_->client_count(), 0u);
  EXPECT_EQ(server_->counters().rejected_by(Reject::kUnknownOperation), 1u);
}

TEST_F(UapiServer, OversizedRequestGetsEmsgsizeAndIsClosed) {
  int fd = connect_client();
  ASSERT_EQ(::fcntl(fd, F_SETFL, O_NONBLOCK), 0);
  std::string chunk = "set=1\n";
  while (chunk.size() < 64 * 1024) chunk += "listen_port=1\n";
  size_t sent = 0;
  std::string reply;
  bool closed = false;
  for (int i = 0; i < 20000 && !closed; ++i) {
    ssize_t n = ::send(fd, chunk.data(), chunk.size(), MSG_NOSIGNAL);
    if (n > 0) sent += static_cast<size_t>(n);
    if (n < 0 && errno != EAGAIN) closed = true;  // EPIPE: the server gave up on us
    server_->handle();
    char buf[256];
    ssize_t r = ::recv(fd, buf, sizeof(buf), 0);
    if (r > 0) reply.append(buf, static_cast<size_t>(r));
    if (r == 0) closed = true;
  }
  EXPECT_TRUE(closed);
  EXPECT_GE(sent, kMaxRequestBytes);
  EXPECT_EQ(reply, "errno=" + std::to_string(EMSGSIZE) + "\n\n");
  EXPECT_EQ(server_->counters().rejected_by(Reject::kTooLarge), 1u);
  EXPECT_TRUE(applied_.empty());
  EXPECT_EQ(server_->client_count(), 0u);
}

TEST_F(UapiServer, ClientHangingUpMidRequestIsForgotten) {
  int fd = connect_client();
  ASSERT_GT(::send(fd, "set=1\nlisten_port=1", 19, MSG_NOSIGNAL), 0);
  server_->handle();
  EXPECT_EQ(server_->client_count(), 1u);
  ::shutdown(fd, SHUT_RDWR);
  server_->handle();
  EXPECT_EQ(server_->client_count(), 0u);
  EXPECT_EQ(server_->counters().aborted_requests, 1u);
  EXPECT_TRUE(applied_.empty());
}

TEST_F(UapiServer, HalfClosedClientStillGetsItsAnswer) {
  int fd = connect_client();
  ASSERT_GT(::send(fd, "get=1\n\n", 7, MSG_NOSIGNAL), 0);
  ::shutdown(fd, SHUT_WR);
  EXPECT_EQ(read_reply(fd), format_get(state_));
  server_->handle();
  EXPECT_EQ(server_->client_count(), 0u);
}

TEST_F(UapiServer, TooManyClientsAreRefused) {
  std::vector<int> clients;
  for (size_t i = 0; i < kMaxClients + 3; ++i) {
    clients.push_back(connect_client());
    server_->handle();  // keep the listen backlog short so connect() never blocks
  }
  EXPECT_EQ(server_->client_count(), kMaxClients);
  EXPECT_EQ(server_->counters().rejected_by(Reject::kTooManyClients), 3u);
  // The first ones still work.
  EXPECT_EQ(exchange(clients[0], "get=1\n\n"), format_get(state_));
}

TEST_F(UapiServer, PollSetCoversListenerAndClients) {
  connect_client();
  server_->handle();
  std::vector<pollfd> fds;
  server_->append_pollfds(fds);
  ASSERT_EQ(fds.size(), 2u);
  EXPECT_EQ(fds[0].events, POLLIN);
  EXPECT_EQ(fds[1].events, POLLIN);
}

TEST_F(UapiServer, RefusesASecondServerWhileLive) {
  auto r = Server::listen_at(
      path_, [] { return DeviceState{}; },
      [](const SetRequest&) { return std::optional<Error>{}; });
  ASSERT_TRUE(std::holds_alternative<Error>(r));
  EXPECT_EQ(std::get<Error>(r).errno_value, EADDRINUSE);
  EXPECT_TRUE(server_->socket_file_present());  // untouched
}

TEST_F(UapiServer, ReplacesAStaleSocketAndUnlinksOnExit) {
  server_.reset();
  EXPECT_FALSE(std::filesystem::exists(path_));
  // A stale socket: bound, then its process "died" without unlinking.
  int stale = ::socket(AF_UNIX, SOCK_STREAM, 0);
  sockaddr_un sa{};
  sa.sun_family = AF_UNIX;
  std::strncpy(sa.sun_path, path_.c_str(), sizeof(sa.sun_path) - 1);
  ASSERT_EQ(::bind(stale, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)), 0);
  ::close(stale);
  server_ = start(path_);
  ASSERT_NE(server_, nullptr);
  int fd = connect_client();
  EXPECT_EQ(exchange(fd, "get=1\n\n"), format_get(state_));
}

TEST_F(UapiServer, NoticesWhenItsSocketFileIsRemoved) {
  ASSERT_EQ(::unlink(path_.c_str()), 0);
  EXPECT_FALSE(server_->socket_file_present());
}

TEST_F(UapiServer, RefusesToClobberANonSocket) {
  std::string file = dir_ + "/plain.sock";
  ::close(::open(file.c_str(), O_CREAT | O_WRONLY, 0600));
  auto r = Server::listen_at(
      file, [] { return DeviceState{}; }, [](const SetRequest&) { return std::optional<Error>{}; });
  ASSERT_TRUE(std::holds_alternative<Error>(r));
  EXPECT_EQ(std::get<Error>(r).errno_value, EEXIST);
}

TEST(UapiServerListen, RejectsBadInterfaceNames) {
  auto get = [] { return DeviceState{}; };
  auto set = [](const SetRequest&) { return std::optional<Error>{}; };
  for (const char* name : {"", "..", "a/b", "sixteen-chars-xx"}) {
    auto r = Server::listen(name, get, set);
    ASSERT_TRUE(std::holds_alternative<Error>(r)) << name;
    EXPECT_EQ(std::get<Error>(r).errno_value, EINVAL) << name;
  }
}

}  // namespace
}  // namespace faraday::control::uapi

// ---- UdpPort / TunPort ------------------------------------------------------------------

namespace faraday::dataplane {
namespace {

UdpPort open_udp() {
  auto r = UdpPort::open(0);
  if (auto* e = std::get_if<std::string>(&r)) {
    ADD_FAILURE() << *e;
    std::abort();
  }
  return std::get<UdpPort>(std::move(r));
}

// Receives until want packets arrived or a second passed.
size_t recv_all(UdpPort& port, std::span<Packet> pkts, size_t want) {
  size_t got = 0;
  for (int i = 0; i < 100 && got < want; ++i) {
    pollfd p{port.fd(), POLLIN, 0};
    ::poll(&p, 1, 10);
    got += port.recv_burst(pkts.subspan(got));
  }
  return got;
}

void fill(Packet& p, const Endpoint& to, uint32_t i) {
  p.reset();
  p.length = 100 + i;
  std::memset(p.data(), static_cast<int>(i), p.length);
  p.endpoint = to;
}

void loopback_burst(const char* dst_addr, sa_family_t family) {
  UdpPort a = open_udp();
  UdpPort b = open_udp();
  ASSERT_NE(a.port(), 0);
  Endpoint to = *Endpoint::parse(std::string(dst_addr) + ":" + std::to_string(b.port()));
  constexpr size_t kCount = 16;
  PacketArena tx(kCount), rx(kBurstSize);
  for (uint32_t i = 0; i < kCount; ++i) fill(tx.packets()[i], to, i);
  ASSERT_EQ(a.send_burst(tx.packets()), kCount);
  EXPECT_EQ(a.counters().tx_packets, kCount);

  ASSERT_EQ(recv_all(b, rx.packets(), kCount), kCount);
  for (uint32_t i = 0; i < kCount; ++i) {
    const Packet& p = rx.packets()[i];
    EXPECT_EQ(p.offset, kHeadroom);
    ASSERT_EQ(p.length, 100 + i);
    EXPECT_EQ(p.data()[0], i);
    EXPECT_EQ(p.data()[p.length - 1], i);
    EXPECT_EQ(p.endpoint.family, family);
    EXPECT_EQ(p.endpoint.port, a.port());
    Endpoint expected_src =
        *Endpoint::parse(std::string(dst_addr) + ":" + std::to_string(a.port()));
    EXPECT_EQ(p.endpoint, expected_src);
  }
  EXPECT_EQ(b.recv_burst(rx.packets()), 0u);  // drained, does not block
  EXPECT_EQ(b.counters().rx_packets, kCount);
}

TEST(UdpPort, LoopbackBurstV4) {
  loopback_burst("127.0.0.1", AF_INET);
}

TEST(UdpPort, LoopbackBurstV6) {
  UdpPort probe = open_udp();
  if (!probe.dual_stack()) GTEST_SKIP() << "no IPv6 on this host";
  int s = ::socket(AF_INET6, SOCK_DGRAM, 0);
  sockaddr_in6 lo{};
  lo.sin6_family = AF_INET6;
  lo.sin6_addr = in6addr_loopback;
  bool has_lo6 = ::bind(s, reinterpret_cast<sockaddr*>(&lo), sizeof(lo)) == 0;
  ::close(s);
  if (!has_lo6) GTEST_SKIP() << "no ::1";
  loopback_burst("[::1]", AF_INET6);
}

TEST(UdpPort, InvalidEndpointsAreSkippedAndCounted) {
  UdpPort a = open_udp();
  UdpPort b = open_udp();
  Endpoint to = *Endpoint::parse("127.0.0.1:" + std::to_string(b.port()));
  PacketArena tx(4), rx(8);
  for (uint32_t i = 0; i < 4; ++i) fill(tx.packets()[i], to, i);
  tx.packets()[1].endpoint = {};              // unset
  tx.packets()[3].endpoint.port = 0;          // port 0
  EXPECT_EQ(a.send_burst(tx.packets()), 4u);  // all consumed
  EXPECT_EQ(a.counters().tx_invalid_endpoint, 2u);
  EXPECT_EQ(a.counters().tx_packets, 2u);
  ASSERT_EQ(recv_all(b, rx.packets(), 2), 2u);
  EXPECT_EQ(rx.packets()[0].length, 100u);
  EXPECT_EQ(rx.packets()[1].length, 102u);
}

TEST(UdpPort, PortInUseIsAnError) {
  UdpPort a = open_udp();
  auto r = UdpPort::open(a.port());
  ASSERT_TRUE(std::holds_alternative<std::string>(r));
  EXPECT_NE(std::get<std::string>(r).find("bind"), std::string::npos);
}

TEST(UdpPort, MoveKeepsTheSocket) {
  UdpPort a = open_udp();
  int fd = a.fd();
  UdpPort b = std::move(a);
  EXPECT_EQ(b.fd(), fd);
  EXPECT_EQ(a.fd(), -1);  // NOLINT(bugprone-use-after-move): moved-from state is defined
}

TEST(TunPort, NameTooLong) {
  auto r = TunPort::open("a-name-longer-than-15");
  ASSERT_TRUE(std::holds_alternative<std::string>(r));
  EXPECT_NE(std::get<std::string>(r).find("too long"), std::string::npos);
}

bool ioctl_ifr(unsigned long req, ifreq& ifr) {
  int s = ::socket(AF_INET, SOCK_DGRAM, 0);
  bool ok = ::ioctl(s, req, &ifr) == 0;
  ::close(s);
  return ok;
}

TEST(TunPort, CreateReadWriteDelete) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root";
  if (::access("/dev/net/tun", R_OK | W_OK) != 0) GTEST_SKIP() << "no /dev/net/tun";
  std::string name = "ftst" + std::to_string(::getpid() % 100000);
  auto r = TunPort::open(name, 1380);
  ASSERT_TRUE(std::holds_alternative<TunPort>(r)) << std::get<std::string>(r);
  TunPort tun = std::get<TunPort>(std::move(r));
  EXPECT_EQ(tun.name(), name);
  EXPECT_TRUE(tun.exists());

  ifreq ifr{};
  std::strncpy(ifr.ifr_name, name.c_str(), IFNAMSIZ - 1);
  ASSERT_TRUE(ioctl_ifr(SIOCGIFMTU, ifr));
  EXPECT_EQ(ifr.ifr_mtu, 1380);

  PacketArena pkts(4);
  EXPECT_EQ(tun.read_burst(pkts.packets()), 0u);  // nothing yet, does not block

  // Give it 10.213.<x>.1/24 and bring it up, then send to a neighbour in that
  // subnet: the kernel routes the datagram into the TUN, where we read it.
  uint8_t x = static_cast<uint8_t>(::getpid() % 250);
  auto set_addr = [&](unsigned long req, const char* addr) {
    ifreq a{};
    std::strncpy(a.ifr_name, name.c_str(), IFNAMSIZ - 1);
    auto* sin = reinterpret_cast<sockaddr_in*>(&a.ifr_addr);
    sin->sin_family = AF_INET;
    ::inet_pton(AF_INET, addr, &sin->sin_addr);
    return ioctl_ifr(req, a);
  };
  std::string self = "10.213." + std::to_string(x) + ".1";
  std::string peer = "10.213." + std::to_string(x) + ".2";
  ASSERT_TRUE(set_addr(SIOCSIFADDR, self.c_str()));
  ASSERT_TRUE(set_addr(SIOCSIFNETMASK, "255.255.255.0"));
  ASSERT_TRUE(ioctl_ifr(SIOCGIFFLAGS, ifr));
  ifr.ifr_flags |= IFF_UP;
  ASSERT_TRUE(ioctl_ifr(SIOCSIFFLAGS, ifr));

  int s = ::socket(AF_INET, SOCK_DGRAM, 0);
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(9);
  ::inet_pton(AF_INET, peer.c_str(), &to.sin_addr);
  ASSERT_EQ(::sendto(s, "ping", 4, 0, reinterpret_cast<sockaddr*>(&to), sizeof(to)), 4);
  ::close(s);

  size_t got = 0;
  bool found = false;
  for (int i = 0; i < 100 && !found; ++i) {
    pollfd p{tun.fd(), POLLIN, 0};
    ::poll(&p, 1, 10);
    got = tun.read_burst(pkts.packets());
    for (size_t k = 0; k < got; ++k) {
      const Packet& pk = pkts.packets()[k];
      EXPECT_EQ(pk.offset, kHeadroom);
      if (pk.length == 20 + 8 + 4 && (pk.data()[0] >> 4) == 4 &&
          std::memcmp(pk.data() + 28, "ping", 4) == 0)
        found = true;
    }
  }
  EXPECT_TRUE(found);

  // Write the packet back (as if decrypted from a peer): the kernel accepts it.
  Packet& back = pkts.packets()[0];
  back.reset();
  uint8_t ip[28] = {0x45, 0, 0, 28, 0, 0, 0, 0, 64, 17, 0, 0};
  ::inet_pton(AF_INET, peer.c_str(), ip + 12);
  ::inet_pton(AF_INET, self.c_str(), ip + 16);
  std::memcpy(back.data(), ip, sizeof(ip));
  back.length = sizeof(ip);
  EXPECT_EQ(tun.write_burst(std::span<Packet>(&back, 1)), 1u);
  EXPECT_EQ(tun.counters().tx_packets + tun.counters().tx_errors, 1u);

  ASSERT_EQ(std::system(("ip link delete " + name + " 2>/dev/null").c_str()), 0);
  EXPECT_FALSE(tun.exists());
}

}  // namespace
}  // namespace faraday::dataplane
