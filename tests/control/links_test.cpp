// links_test.cpp: node-to-node links (control/links.h) over real mutual TLS on
// 127.0.0.1, with certificates from control/pki in a temporary directory.
//
//   node-a (dials: "node-a" < "node-b") ----- TLS 1.3, Ping/Pong -----> node-b
//
// Every Links of a test shares one io_context that the test thread drives in
// short run_for slices until a condition holds or a deadline passes. Covered:
// one link per pair (the first name dials), both sides up with last_heard and
// rtt; a link from a not-yet-member parked then attached, or closed and counted
// when the member never comes; a certificate from another CA refused; remove()
// closing the link and the dialer redialing; a restarted peer reached again by
// the redial backoff; bad frames after the handshake counted and closed; a TLS
// reload with a CRL closing the links of revoked peers (dialed and accepted)
// and refusing them afterwards; a peer certificate expiring while its link is
// up.
#include "control/links.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <boost/asio/ip/tcp.hpp>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "faradayctl/pki.h"
#include "proto/frame.h"
#include "tests/lib/pki.h"  // certificates with a validity in seconds

namespace faraday::control {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using boost::asio::ip::tcp;
using State = Links::State;
namespace pki = faraday::faradayctl::pki;

// The context, or a test failure (with the reason) and null.
proto::SslCtxPtr context_or_null(const Result<proto::SslCtxPtr>& made) {
  EXPECT_TRUE(made.ok()) << made.error();
  return made ? *made : nullptr;
}

constexpr const char* kA = "node-a";  // sorts first: dials node-b
constexpr const char* kB = "node-b";

LinkOptions fast_options() {
  LinkOptions o;
  o.ping_interval = 50ms;
  o.connect_timeout = 2s;
  o.backoff_min = 20ms;
  o.backoff_max = 100ms;
  return o;
}

// A raw TLS client that sends `bytes` as soon as the handshake is done.
struct RawClient final : proto::TlsChannel::Handler {
  void on_established(proto::TlsChannel& c) override {
    established = true;
    c.send(bytes);
  }
  void on_data(proto::TlsChannel&, std::span<const uint8_t>) override {}
  void on_drained(proto::TlsChannel&) override {}
  void on_closed(proto::TlsChannel&, const proto::TlsChannel::CloseInfo& info) override {
    closed = true;
    reason = info.reason;
  }
  std::string bytes;
  std::shared_ptr<proto::TlsChannel> ch;
  bool established = false;
  bool closed = false;
  std::string reason;
};

class LinksTest : public ::testing::Test {
 protected:
  // Two CAs: the cluster's, with node-a, node-b and node-c; and a stranger's,
  // with its own node-a.
  static void SetUpTestSuite() {
    char tmpl[] = "/tmp/links-test-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = new std::string(tmpl);
    ASSERT_TRUE(pki::init_ca(ca_dir()).ok());
    for (const char* name : {kA, kB, "node-c", "node-0", "node-r"}) {
      ASSERT_TRUE(pki::issue(ca_dir(), name).ok()) << name;
    }
    ASSERT_TRUE(pki::init_ca(other_dir(), "Other CA").ok());
    ASSERT_TRUE(pki::issue(other_dir(), kA).ok());
    std::ofstream(both_cas()) << std::ifstream(pki::ca_cert_path(ca_dir())).rdbuf()
                              << std::ifstream(pki::ca_cert_path(other_dir())).rdbuf();
  }
  static void TearDownTestSuite() {
    std::filesystem::remove_all(*dir_);
    delete dir_;
    dir_ = nullptr;
  }
  static std::string ca_dir() { return *dir_ + "/ca"; }
  static std::string other_dir() { return *dir_ + "/other"; }
  static std::string both_cas() { return *dir_ + "/both-cas.pem"; }

  struct Node {
    proto::SslCtxPtr server;
    proto::SslCtxPtr client;
    std::unique_ptr<Links> links;
    tcp::endpoint ep;
    Links* operator->() { return links.get(); }
  };

  static proto::TlsFiles files(const std::string& dir, const std::string& name) {
    return {pki::ca_cert_path(dir), dir + "/" + name + ".pem", dir + "/" + name + ".key", ""};
  }

  // A Links for `name` listening on listen_on_:port (0: any), its certificate
  // from `dir`'s CA; it trusts `ca` (default: that CA).
  Node start(const std::string& name, LinkOptions options = fast_options(), uint16_t port = 0,
             const std::string& dir = ca_dir(), const std::string& ca = "") {
    proto::TlsFiles f = files(dir, name);
    if (!ca.empty()) f.ca = ca;
    Node n;
    n.server = context_or_null(proto::make_server_context(f));
    n.client = context_or_null(proto::make_client_context(f));
    n.links = std::make_unique<Links>(io_, n.server, n.client, name, options);
    Status listening = n.links->listen({boost::asio::ip::make_address(listen_on_), port});
    EXPECT_TRUE(listening.ok()) << listening.error();
    n.ep = n.links->local_endpoint();
    EXPECT_NE(n.ep.port(), 0);
    return n;
  }

  // Drives the io_context until done() or the deadline; done()'s last answer.
  bool until(const std::function<bool()>& done, std::chrono::milliseconds limit = 3s) {
    auto deadline = Clock::now() + limit;
    while (!done()) {
      if (Clock::now() >= deadline) return false;
      io_.restart();
      io_.run_for(2ms);
    }
    return true;
  }
  // Drives the io_context for `d`, calling each() between slices.
  void drive(
      std::chrono::milliseconds d, const std::function<void()>& each = [] {}) {
    auto deadline = Clock::now() + d;
    while (Clock::now() < deadline) {
      io_.restart();
      io_.run_for(2ms);
      each();
    }
  }

  static State state(Node& n, const std::string& peer) {
    auto v = n->view(peer);
    return v ? v->state : State::kDown;
  }
  static bool up(Node& n, const std::string& peer) { return state(n, peer) == State::kUp; }

  // Declared first: destroyed after every Links, timer and socket bound to it.
  boost::asio::io_context io_;
  std::string listen_on_ = "127.0.0.1";
  static std::string* dir_;
};

std::string* LinksTest::dir_ = nullptr;

TEST_F(LinksTest, OneLinkFirstNameDialsBothUp) {
  Node a = start(kA);
  Node b = start(kB);
  EXPECT_TRUE(a->dials(kB));
  EXPECT_FALSE(b->dials(kA));
  a->add(kB, b.ep);
  b->add(kA, a.ep);
  ASSERT_TRUE(until([&] { return up(a, kB) && up(b, kA); }));
  ASSERT_TRUE(a->view(kB)->last_heard.has_value());
  ASSERT_TRUE(b->view(kA)->last_heard.has_value());
  EXPECT_TRUE(a->view(kB)->last_error.empty());

  // Pongs give both sides an rtt; later pings move last_heard forward.
  auto a_heard = *a->view(kB)->last_heard;
  auto b_heard = *b->view(kA)->last_heard;
  ASSERT_TRUE(until([&] {
    auto va = a->view(kB);
    auto vb = b->view(kA);
    return va->rtt && vb->rtt && *va->last_heard > a_heard && *vb->last_heard > b_heard;
  }));
  EXPECT_GT(a->view(kB)->rtt->count(), 0);
  EXPECT_LT(*a->view(kB)->rtt, 1s);
  EXPECT_LT(*b->view(kA)->rtt, 1s);

  // A few ping intervals later: still that one link, up on both sides.
  bool stayed_up = true;
  drive(200ms, [&] { stayed_up = stayed_up && up(a, kB) && up(b, kA); });
  EXPECT_TRUE(stayed_up);
  EXPECT_EQ(a->counters().dials, 1u);
  EXPECT_EQ(b->counters().dials, 0u);
  EXPECT_EQ(a->counters().accepted, 0u);
  EXPECT_EQ(b->counters().accepted, 1u);
  EXPECT_EQ(a->counters().established, 1u);
  EXPECT_EQ(b->counters().established, 1u);
  EXPECT_GE(a->counters().pings_sent, 3u);
  EXPECT_GE(b->counters().pongs_received, 3u);
  EXPECT_EQ(a->counters().refused_tls + b->counters().refused_tls, 0u);
  EXPECT_EQ(a->counters().bad_frames + b->counters().bad_frames, 0u);
}

TEST_F(LinksTest, EndpointChangedWhileConnectingRedialsTheNewOne) {
  LinkOptions slow_connect = fast_options();
  slow_connect.connect_timeout = 10s;  // longer than the test: only close() can end the dial
  Node a = start(kA, slow_connect);
  Node b = start(kB);
  b->add(kA, a.ep);
  // A listener whose accept queue is full drops new SYNs: a's connect to it
  // stays pending until something closes it.
  tcp::acceptor full(io_, tcp::endpoint(boost::asio::ip::make_address("127.0.0.1"), 0));
  full.listen(0);
  tcp::socket filler(io_);
  filler.connect(full.local_endpoint());  // backlog 0 holds one: the queue is full
  a->add(kB, full.local_endpoint());
  drive(50ms, [] {});
  a->add(kB, b.ep);
  ASSERT_TRUE(until([&] { return up(a, kB) && up(b, kA); }));
  EXPECT_GE(a->counters().dials, 2u);
}

TEST_F(LinksTest, ListenerOnAnyIpv6AddressTakesIpv4Peers) {
  Node a = start(kA);
  listen_on_ = "::";  // the default control-listen: [::]:7451
  Node b = start(kB);
  listen_on_ = "127.0.0.1";
  // (0.0.0.0 on a host without IPv6: the same test then still holds.)
  a->add(kB, tcp::endpoint(boost::asio::ip::make_address("127.0.0.1"), b.ep.port()));
  b->add(kA, a.ep);
  ASSERT_TRUE(until([&] { return up(a, kB) && up(b, kA); }));
}

TEST_F(LinksTest, NoControlEndpointNoDial) {
  Node a = start(kA);
  a->add(kB, std::nullopt);
  drive(20ms);
  EXPECT_EQ(a->counters().dials, 0u);
  EXPECT_EQ(state(a, kB), State::kDown);
  EXPECT_FALSE(a->view("node-z").has_value());
}

TEST_F(LinksTest, ParkedLinkAttachedWhenMemberAdded) {
  Node a = start(kA);
  Node b = start(kB);
  a->add(kB, b.ep);
  // b accepted and verified node-a, which is no member of b's yet: parked.
  ASSERT_TRUE(until([&] { return b->counters().established == 1; }));
  EXPECT_FALSE(b->view(kA).has_value());
  EXPECT_EQ(b->counters().refused_unknown, 0u);

  b->add(kA, a.ep);  // farad's push reaches b after a dialed
  EXPECT_EQ(state(b, kA), State::kUp);
  ASSERT_TRUE(until([&] { return up(a, kB) && b->view(kA)->rtt && a->view(kB)->rtt; }));
  EXPECT_EQ(a->counters().dials, 1u);
  EXPECT_EQ(b->counters().accepted, 1u);
  EXPECT_EQ(b->counters().refused_unknown, 0u);
}

TEST_F(LinksTest, ParkedLinkClosedWhenMemberNeverAdded) {
  LinkOptions slow_pings = fast_options();
  slow_pings.ping_interval = 5s;  // a must not close the link itself for silence
  Node a = start(kA, slow_pings);
  LinkOptions short_wait = fast_options();
  short_wait.connect_timeout = 150ms;
  Node b = start(kB, short_wait);
  a->add(kB, b.ep);
  ASSERT_TRUE(until([&] { return b->counters().established == 1; }));
  auto parked_at = Clock::now();
  ASSERT_TRUE(until([&] { return b->counters().refused_unknown == 1; }));
  EXPECT_GE(Clock::now() - parked_at, 100ms);  // it waited (about) the connect timeout
  // b never spoke on the link, so a never counted it as up; it saw it closed.
  ASSERT_TRUE(until([&] { return !a->view(kB)->last_error.empty(); }));
  EXPECT_NE(state(a, kB), State::kUp);
  EXPECT_FALSE(b->view(kA).has_value());
  // The dialer keeps trying, and is refused again.
  ASSERT_TRUE(until([&] { return a->counters().dials >= 2; }));
}

TEST_F(LinksTest, CertificateFromAnotherCaRefused) {
  Node b = start(kB);
  b->add(kA, std::nullopt);
  // A node-a whose certificate (and trust) come from another CA.
  Node stranger = start(kA, fast_options(), 0, other_dir());
  stranger->add(kB, b.ep);
  bool ever_up = false;
  ASSERT_TRUE(until([&] {
    ever_up = ever_up || up(stranger, kB) || up(b, kA);
    return b->counters().refused_tls >= 1 && stranger->counters().refused_tls >= 1 &&
           !stranger->view(kB)->last_error.empty();
  }));
  EXPECT_FALSE(ever_up);
  EXPECT_NE(state(stranger, kB), State::kUp);
  EXPECT_EQ(b->counters().established, 0u);
  EXPECT_EQ(stranger->counters().established, 0u);
  EXPECT_EQ(b->counters().refused_unknown, 0u);
}

// A stranger that trusts our CA but whose certificate we do not: under TLS 1.3
// its handshake completes before we verify it, so it briefly counts the link
// as established, then reads our alert. It must still back off (the backoff
// is reset by the first message heard, not by the handshake).
TEST_F(LinksTest, DialerRefusedAfterHandshakeBacksOff) {
  Node b = start(kB);
  b->add(kA, std::nullopt);
  LinkOptions options = fast_options();
  options.backoff_min = 20ms;
  options.backoff_max = 100ms;
  Node stranger = start(kA, options, 0, other_dir(), both_cas());
  stranger->add(kB, b.ep);
  ASSERT_TRUE(until([&] { return b->counters().refused_tls >= 4; }));
  uint64_t dials = stranger->counters().dials;
  // At the 100 ms ceiling (waits of 50..100 ms) about 7 dials fit in 500 ms;
  // redialing at backoff_min would make 20 or more.
  std::string error;  // the view is up (briefly) after each handshake, so sample it
  drive(500ms, [&] {
    if (!stranger->view(kB)->last_error.empty()) error = stranger->view(kB)->last_error;
  });
  EXPECT_LE(stranger->counters().dials - dials, 10u);
  EXPECT_GE(stranger->counters().dials - dials, 2u);
  EXPECT_EQ(b->counters().established, 0u);
  EXPECT_EQ(stranger->counters().pongs_received, 0u);
  EXPECT_NE(error.find("alert"), std::string::npos) << error;  // the acceptor's verdict
}

TEST_F(LinksTest, RemoveClosesLinkAndDialerRedials) {
  Node a = start(kA);
  Node b = start(kB);
  a->add(kB, b.ep);
  b->add(kA, a.ep);
  ASSERT_TRUE(until([&] { return up(a, kB) && up(b, kA); }));

  // The acceptor forgets the dialer: the dialer sees its link go down and dials again.
  b->remove(kA);
  EXPECT_FALSE(b->view(kA).has_value());
  ASSERT_TRUE(until([&] { return state(a, kB) != State::kUp; }));
  EXPECT_FALSE(a->view(kB)->last_error.empty());
  ASSERT_TRUE(until([&] { return a->counters().dials >= 2 && b->counters().accepted >= 2; }));
  b->add(kA, a.ep);  // back: the redialed (parked) link is attached
  ASSERT_TRUE(until([&] { return up(a, kB) && up(b, kA); }));

  // The dialer forgets the acceptor: the acceptor sees it down and does not dial.
  uint64_t b_dials = b->counters().dials;
  a->remove(kB);
  EXPECT_FALSE(a->view(kB).has_value());
  ASSERT_TRUE(until([&] { return state(b, kA) == State::kDown; }));
  EXPECT_FALSE(b->view(kA)->last_error.empty());
  EXPECT_EQ(b->counters().dials, b_dials);
}

TEST_F(LinksTest, RestartedPeerReachedAgainByBackoff) {
  Node a = start(kA);
  Node b = start(kB);
  a->add(kB, b.ep);
  b->add(kA, a.ep);
  ASSERT_TRUE(until([&] { return up(a, kB) && up(b, kA); }));
  uint16_t port = b.ep.port();

  b->stop();
  b.links.reset();
  ASSERT_TRUE(until([&] { return state(a, kB) != State::kUp; }));
  // Redials find nobody listening for a while (connection refused).
  uint64_t dials = a->counters().dials;
  ASSERT_TRUE(until([&] { return a->counters().dials >= dials + 2; }));
  EXPECT_NE(state(a, kB), State::kUp);
  EXPECT_FALSE(a->view(kB)->last_error.empty());

  Node b2 = start(kB, fast_options(), port);  // the same node, restarted
  ASSERT_EQ(b2.ep.port(), port);
  b2->add(kA, a.ep);
  ASSERT_TRUE(until([&] { return up(a, kB) && up(b2, kA); }));
  EXPECT_TRUE(a->view(kB)->last_error.empty());
  EXPECT_EQ(b2->counters().accepted, 1u);
}

TEST_F(LinksTest, BadFramesAfterHandshakeCountedAndClosed) {
  Node b = start(kB);
  b->add(kA, std::nullopt);
  auto client = proto::make_client_context(files(ca_dir(), kA));
  ASSERT_TRUE(client.ok()) << client.error();
  proto::SslCtxPtr client_ctx = *client;

  proto::LinkMessage future;  // a version this side does not speak
  future.set_version(proto::kProtocolVersion + 1);
  future.mutable_ping()->set_seq(1);
  std::string bad_version;
  proto::append_frame(future, bad_version);
  const std::vector<std::pair<const char*, std::string>> garbage = {
      {"empty frame", std::string("\0\0\0\0", 4)},
      {"too large", std::string("\xff\xff\xff\xff", 4)},
      {"not protobuf", std::string("\0\0\0\3\xff\xff\xff", 7)},
      {"bad version", bad_version},
  };
  for (size_t i = 0; i < garbage.size(); ++i) {
    SCOPED_TRACE(garbage[i].first);
    RawClient raw;
    raw.bytes = garbage[i].second;
    tcp::socket socket(io_);
    socket.connect(b.ep);
    raw.ch = proto::TlsChannel::create(std::move(socket), client_ctx.get(),
                                       proto::TlsChannel::Role::kClient, &raw);
    ASSERT_TRUE(raw.ch->set_client_params(kB, nullptr, nullptr));
    raw.ch->start();
    ASSERT_TRUE(until([&] { return raw.closed && b->counters().bad_frames == i + 1; }));
    EXPECT_TRUE(raw.established);
    ASSERT_TRUE(b->view(kA).has_value());
    EXPECT_EQ(b->view(kA)->state, State::kDown);
    EXPECT_NE(b->view(kA)->last_error.find("bad"), std::string::npos) << b->view(kA)->last_error;
    raw.ch->detach();
  }
  EXPECT_EQ(b->counters().accepted, garbage.size());
  EXPECT_EQ(b->counters().refused_tls, 0u);
}

}  // namespace
}  // namespace faraday::control

namespace faraday::control {
namespace {

TEST_F(LinksTest, ReloadWithACrlClosesRevokedLinksAndRefusesThemAfter) {
  // node-0 dials node-a; node-a dials node-r and node-b. node-0 and node-r
  // get revoked; node-a alone reloads its TLS files with the new CRL.
  Node z = start("node-0");
  Node a = start(kA);
  Node r = start("node-r");
  Node b = start(kB);
  z->add(kA, a.ep);
  a->add("node-0", z.ep);
  a->add("node-r", r.ep);
  a->add(kB, b.ep);
  r->add(kA, a.ep);
  b->add(kA, a.ep);
  ASSERT_TRUE(until([&] { return up(a, "node-0") && up(a, "node-r") && up(a, kB); }));
  // Nothing changed in the files: a reload closes nothing.
  EXPECT_EQ(a->reload(a.server, a.client), 0u);

  ASSERT_TRUE(pki::revoke_name(ca_dir(), "node-0").ok());
  ASSERT_TRUE(pki::revoke_name(ca_dir(), "node-r").ok());
  std::string crl = *dir_ + "/links-crl.pem";
  ASSERT_TRUE(pki::write_crl(ca_dir(), crl).ok());
  proto::TlsFiles f = files(ca_dir(), kA);
  f.crl = crl;
  proto::SslCtxPtr server = context_or_null(proto::make_server_context(f));
  proto::SslCtxPtr client = context_or_null(proto::make_client_context(f));
  ASSERT_TRUE(server && client);
  EXPECT_EQ(a->reload(server, client), 2u);
  EXPECT_EQ(a->counters().closed_untrusted, 2u);
  // Down at once on a's side, with the reason.
  EXPECT_EQ(state(a, "node-0"), State::kDown);
  EXPECT_EQ(state(a, "node-r"), State::kDown);
  EXPECT_NE(a->view("node-r")->last_error.find("revoked"), std::string::npos);
  // The revoked peers see their link close; their redials (and a's) fail the
  // handshake from now on, while node-b's link never moves.
  ASSERT_TRUE(until([&] { return !up(z, kA) && !up(r, kA); }));
  // Until a redial has been refused (backoff; slow under sanitizers and load),
  // and at least 500 ms.
  uint64_t refused = a->counters().refused_tls;
  bool b_stayed_up = true;
  auto start = std::chrono::steady_clock::now();
  EXPECT_TRUE(until(
      [&] {
        b_stayed_up = b_stayed_up && up(a, kB) && up(b, kA);
        return a->counters().refused_tls > refused &&
               std::chrono::steady_clock::now() - start >= 500ms;
      },
      10s));
  EXPECT_TRUE(b_stayed_up);
  EXPECT_GT(a->counters().refused_tls, refused);
  // Not up; a may be in the middle of its next (refused) redial of node-r,
  // connecting, as it was once under ASan.
  EXPECT_FALSE(up(a, "node-0"));
  EXPECT_FALSE(up(a, "node-r"));
  EXPECT_FALSE(up(z, kA));
  EXPECT_FALSE(up(r, kA));
}

}  // namespace
}  // namespace faraday::control

namespace faraday::control {
namespace {

TEST_F(LinksTest, APeerCertificateThatExpiresClosesTheLink) {
  // A CA of its own whose node-b certificate is valid for two more seconds.
  testing::TempDir tmp;
  testing::Pki ca(tmp.path());
  testing::Identity a_id = ca.issue(kA);
  testing::CertSpec brief(kB);
  brief.not_after = 2;
  testing::Identity b_id = ca.issue(brief);
  ca.write(a_id, kA);
  ca.write(b_id, kB);
  auto make = [&](const testing::Identity& id, const std::string& name) {
    proto::TlsFiles f{ca.ca_path(), id.cert_path, id.key_path, ""};
    Node n;
    n.server = context_or_null(proto::make_server_context(f));
    n.client = context_or_null(proto::make_client_context(f));
    n.links = std::make_unique<Links>(io_, n.server, n.client, name, fast_options());
    EXPECT_TRUE(n.links->listen({boost::asio::ip::make_address(listen_on_), 0}).ok());
    n.ep = n.links->local_endpoint();
    return n;
  };
  Node a = make(a_id, kA);
  Node b = make(b_id, kB);
  a->add(kB, b.ep);
  b->add(kA, a.ep);
  ASSERT_TRUE(until([&] { return up(a, kB) && up(b, kA); }));
  // Closed at a ping tick after the expiry, and not up again (the redial
  // meets an expired certificate).
  ASSERT_TRUE(until([&] { return a->counters().closed_untrusted >= 1; }, 6s));
  EXPECT_NE(a->view(kB)->last_error.find("expired"), std::string::npos);
  drive(300ms);
  EXPECT_FALSE(up(a, kB));
}

}  // namespace
}  // namespace faraday::control
