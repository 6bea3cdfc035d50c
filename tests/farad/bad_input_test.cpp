// bad_input_test.cpp: everyone farad must refuse, over real sockets on
// loopback: certificates from another CA, expired, revoked (at the handshake
// and by a CRL reloaded later), none, a CN that is no node name; plaintext;
// garbage, empty, oversized and wrong-version frames; handshakes never
// finished; clients that never read; too many connections. Each case checks
// that the peer is refused or disconnected, the reason is counted, a log line
// names the peer and the reason, and a well-behaved member is still served.
#include <fmt/core.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "harness.h"

namespace faraday::testing {
namespace {

using farad::CloseReason;
using proto::FrameError;
using proto::TlsFailure;
using ::testing::HasSubstr;

// A member that must keep being served while the test misbehaves.
struct Bystander {
  explicit Bystander(Cluster& c) : c(c), node(c.node("bystander", 200)) {
    EXPECT_TRUE(c.run_until([&] { return node.client->joined(); }));
  }
  void still_served() {
    EXPECT_EQ(c.query(node, "bystander"), proto::PRESENT);
    EXPECT_TRUE(node.client->joined());
  }
  Cluster& c;
  TestNode& node;
};

void expect_tls_refusal(Cluster& c, const Identity* id, TlsFailure kind, const std::string& reason,
                        const std::string& cn) {
  LogCapture logs;
  RawPeer p(c, id);
  ASSERT_TRUE(c.run_until([&] { return p.closed; })) << "farad kept the connection";
  ASSERT_TRUE(c.run_until([&] { return c.server().counters().tls(kind) == 1; }));
  EXPECT_EQ(c.server().membership().size(), 1u);  // only the bystander
  std::string text = logs.text();
  EXPECT_THAT(text, HasSubstr("refused " + p.local));
  if (!cn.empty()) {
    EXPECT_THAT(text, HasSubstr("cn=" + cn));
  }
  EXPECT_THAT(text, HasSubstr(reason));
}

TEST(FaradRefuses, CertificateFromAnotherCa) {
  Cluster c;
  c.start_server();
  Bystander ok(c);
  Pki other(c.tmp.path() + "/other", "some other CA");
  Identity intruder = other.issue("intruder");
  expect_tls_refusal(c, &intruder, TlsFailure::kUntrusted, "unable to get local issuer certificate",
                     "intruder");
  ok.still_served();
}

TEST(FaradRefuses, ExpiredCertificate) {
  Cluster c;
  c.start_server();
  Bystander ok(c);
  CertSpec spec("stale");
  spec.not_before = -7200;
  spec.not_after = -60;
  Identity stale = c.pki.issue(spec);
  expect_tls_refusal(c, &stale, TlsFailure::kExpired, "certificate has expired", "stale");
  ok.still_served();
}

TEST(FaradRefuses, RevokedCertificate) {
  Cluster c;
  Identity revoked = c.pki.issue("revoked");
  c.write_crl({revoked.cert.get()});
  c.start_server();
  Bystander ok(c);
  expect_tls_refusal(c, &revoked, TlsFailure::kRevoked, "certificate revoked", "revoked");
  ok.still_served();
}

TEST(FaradRefuses, NoClientCertificate) {
  Cluster c;
  c.start_server();
  Bystander ok(c);
  expect_tls_refusal(c, nullptr, TlsFailure::kNoCertificate, "no client certificate", "");
  ok.still_served();
}

TEST(FaradRefuses, CertificateNameThatIsNoNodeName) {
  Cluster c;
  c.start_server();
  Bystander ok(c);
  for (bool no_cn : {false, true}) {
    LogCapture logs;
    CertSpec spec("not a node/name");
    spec.no_cn = no_cn;
    Identity odd = c.pki.issue(spec);
    RawPeer p(c, &odd);
    ASSERT_TRUE(c.run_until([&] { return p.closed; }));
    EXPECT_THAT(logs.text(), HasSubstr("refused " + p.local));
    EXPECT_THAT(logs.text(),
                HasSubstr(no_cn ? "certificate has no subject CN" : "is not a valid node name"));
  }
  EXPECT_EQ(c.server().counters().close(CloseReason::kBadIdentity), 2u);
  ok.still_served();
}

TEST(FaradRefuses, Plaintext) {
  Cluster c;
  c.start_server();
  Bystander ok(c);
  LogCapture logs;
  RawPeer p(c, nullptr);
  proto::NodeMessage m;
  m.mutable_heartbeat();
  p.send(frame_of(m));  // a valid frame, but not inside TLS
  ASSERT_TRUE(c.run_until([&] { return p.plain_closed(); }));
  ASSERT_TRUE(c.run_until([&] { return c.server().counters().tls(TlsFailure::kProtocol) == 1; }));
  EXPECT_THAT(logs.text(), HasSubstr("refused " + p.local + ": "));
  ok.still_served();
}

// A member with a valid certificate that then sends `bytes` inside TLS.
void expect_frame_refusal(Cluster& c, const std::string& bytes, FrameError kind,
                          const std::string& reason) {
  LogCapture logs;
  Identity id = c.pki.issue("sender");
  RawPeer p(c, &id);
  ASSERT_TRUE(c.run_until([&] { return p.established; }));
  p.send(bytes);
  ASSERT_TRUE(c.run_until([&] { return p.closed; })) << "farad kept the connection";
  EXPECT_EQ(c.server().counters().frame(kind), 1u);
  EXPECT_EQ(c.server().counters().close(CloseReason::kProtocolError), 1u);
  EXPECT_THAT(logs.text(), HasSubstr("disconnected " + p.local + " node=sender: " + reason));
  // farad says why before closing.
  auto msgs = farad_messages(p.received);
  ASSERT_EQ(msgs.size(), 1u);
  ASSERT_TRUE(msgs[0].has_error());
  EXPECT_EQ(msgs[0].error().code(), proto::Error::BAD_FRAME);
  EXPECT_TRUE(msgs[0].error().fatal());
  EXPECT_EQ(c.server().queued_bytes(), 0u);
}

TEST(FaradRefuses, GarbageFrame) {
  Cluster c;
  c.start_server();
  Bystander ok(c);
  std::string garbage = std::string("\0\0\0\x0c", 4) + std::string(12, '\xff');
  expect_frame_refusal(c, garbage, FrameError::kMalformed, "malformed message");
  ok.still_served();
}

TEST(FaradRefuses, OversizedFrame) {
  Cluster c;
  c.start_server();
  Bystander ok(c);
  // Announces 1 MiB; farad must refuse on the header, not buffer the body.
  std::string header("\x00\x10\x00\x00", 4);
  expect_frame_refusal(c, header + std::string(100, 'x'), FrameError::kTooLarge,
                       "frame too large (1048576 bytes, at most 65536)");
  ok.still_served();
}

TEST(FaradRefuses, EmptyFrame) {
  Cluster c;
  c.start_server();
  Bystander ok(c);
  expect_frame_refusal(c, std::string(4, '\0'), FrameError::kEmpty, "empty frame");
  ok.still_served();
}

TEST(FaradRefuses, OtherProtocolVersion) {
  Cluster c;
  c.start_server();
  Bystander ok(c);
  proto::NodeMessage m;
  m.set_version(2);
  m.mutable_heartbeat();
  expect_frame_refusal(c, frame_of(m), FrameError::kBadVersion,
                       "unsupported protocol version 2 (farad speaks 1)");
  ok.still_served();
}

TEST(FaradRefuses, MessageWithoutBody) {
  Cluster c;
  c.start_server();
  Bystander ok(c);
  proto::NodeMessage m;
  m.set_request_id(5);
  expect_frame_refusal(c, frame_of(m), FrameError::kNoBody, "message without a known body");
  ok.still_served();
}

TEST(FaradRefuses, HandshakesThatNeverFinish) {
  Cluster c;
  c.options.handshake_timeout = 500ms;
  c.start_server();
  Bystander ok(c);
  LogCapture logs;
  // Twenty peers connect and say nothing; twenty send half a ClientHello.
  std::vector<std::unique_ptr<RawPeer>> slow;
  for (int i = 0; i < 40; ++i) {
    slow.push_back(std::make_unique<RawPeer>(c, nullptr));
    if (i % 2) slow.back()->send(std::string("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 11));
  }
  // Meanwhile the bystander is served and a new member can join.
  ok.still_served();
  auto& late = c.node("late", 201);
  ASSERT_TRUE(c.run_until([&] { return late.client->joined(); }));
  ASSERT_TRUE(c.run_until(
      [&] {
        return std::all_of(slow.begin(), slow.end(), [](auto& p) { return p->plain_closed(); });
      },
      3s));
  EXPECT_EQ(c.server().counters().close(CloseReason::kHandshakeTimeout), 40u);
  EXPECT_EQ(c.server().connection_count(), 2u);
  EXPECT_THAT(logs.text(),
              HasSubstr("refused " + slow[0]->local + ": TLS handshake not finished within 0.5s"));
}

TEST(FaradRefuses, ClientsThatNeverRead) {
  Cluster c;
  c.options.write_timeout = 1s;
  c.start_server();
  Bystander ok(c);
  LogCapture logs;
  Identity id = c.pki.issue("deaf");
  RawPeer deaf(c, &id, /*read=*/false);
  ASSERT_TRUE(c.run_until([&] { return deaf.established; }));
  // 40,000 queries, never reading a single answer.
  proto::NodeMessage q;
  q.mutable_query()->set_name("bystander");
  std::string one = frame_of(q), many;
  for (int i = 0; i < 40000; ++i) many += one;
  deaf.send(many);
  size_t peak = 0;
  bool served_meanwhile = false;
  ASSERT_TRUE(c.run_until(
      [&] {
        peak = std::max(peak, c.server().queued_bytes());
        if (!served_meanwhile && c.server().queued_bytes() > 0) {
          served_meanwhile = c.query(ok.node, "bystander") == proto::PRESENT;
        }
        return c.server().counters().close(CloseReason::kNotReading) == 1;
      },
      5s));
  EXPECT_TRUE(served_meanwhile);
  // farad stopped reading its requests instead of queueing every answer.
  EXPECT_LT(peak, 256u * 1024);
  EXPECT_LT(c.server().counters().requests, 40000u);
  EXPECT_THAT(logs.text(), HasSubstr("disconnected " + deaf.local + " node=deaf: not reading"));
  ok.still_served();
}

TEST(FaradRefuses, ConnectionsBeyondTheLimit) {
  Cluster c;
  c.options.max_connections = 3;
  c.start_server();
  Bystander ok(c);
  LogCapture logs;
  RawPeer p1(c, nullptr), p2(c, nullptr);
  c.run_for(50ms);
  RawPeer p3(c, nullptr);
  ASSERT_TRUE(c.run_until([&] { return p3.plain_closed(); }));
  EXPECT_FALSE(p1.plain_closed());
  EXPECT_EQ(c.server().counters().close(CloseReason::kConnectionLimit), 1u);
  EXPECT_THAT(logs.text(), HasSubstr("refused " + p3.local + ": connection limit (3) reached"));
  ok.still_served();
}

TEST(FaradRefuses, CertificatesRevokedByAReloadedCrl) {
  Cluster c;
  std::string crl = c.write_crl();
  c.start_server();
  Bystander ok(c);
  auto& bad = c.node("soon-revoked", 5);
  ASSERT_TRUE(c.run_until([&] { return bad.client->joined(); }));
  LogCapture logs;

  // A broken CRL file: the reload fails and nothing changes.
  {
    FILE* f = fopen(crl.c_str(), "w");
    fputs("not a CRL\n", f);
    fclose(f);
  }
  Status reloaded = c.server().reload_tls();
  ASSERT_FALSE(reloaded.ok());
  EXPECT_THAT(reloaded.error(), HasSubstr("no PEM CRL"));
  c.run_for(50ms);
  EXPECT_TRUE(bad.client->joined());

  c.pki.write_crl(crl, {bad.id.cert.get()});
  reloaded = c.server().reload_tls();
  ASSERT_TRUE(reloaded.ok()) << reloaded.error();
  ASSERT_TRUE(c.run_until([&] { return !bad.client->connected(); }));
  ASSERT_FALSE(bad.errors.empty());
  EXPECT_EQ(bad.errors[0].code(), proto::Error::REVOKED);
  EXPECT_EQ(c.server().counters().close(CloseReason::kCertificateInvalidated), 1u);
  // Its reconnects are now refused at the handshake.
  ASSERT_TRUE(c.run_until([&] { return c.server().counters().tls(TlsFailure::kRevoked) >= 1; }));
  EXPECT_FALSE(bad.client->joined());
  EXPECT_THAT(logs.text(), HasSubstr("node=soon-revoked: certificate no longer valid after TLS "
                                     "reload: certificate revoked"));
  ok.still_served();
  bad.client->stop();
}

}  // namespace
}  // namespace faraday::testing
