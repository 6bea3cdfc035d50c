// harness.h: farad on loopback for tests: a throwaway PKI, one io_context that
// runs farad's Server and any number of FaradClients (one thread, so tests are
// deterministic about ordering and free of data races), recording clients,
// raw TLS and TCP peers for hostile input, and a stderr capture for log lines.
#pragma once

#include <gtest/gtest.h>
#include <signal.h>

#include <boost/asio/io_context.hpp>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "control/farad_client.h"
#include "farad/server.h"
#include "proto/node_info.h"
#include "proto/tls.h"
#include "tests/lib/pki.h"

namespace faraday::testing {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

// A NodeInfo unique to `index`: key, underlay 192.0.2.x, overlay 10.100.x.y/32,
// container prefix 10.200.x.0/24 (x.y from index), control port 7451.
proto::NodeInfo node_info(int index);

// One FaradClient and everything it heard.
struct TestNode {
  std::string name;
  Identity id;
  std::unique_ptr<control::FaradClient> client;
  std::map<std::string, proto::NodeInfo> peers;  // latest info per pushed member
  std::vector<proto::Joined> joins;
  std::vector<proto::Push> pushes;
  std::vector<std::string> pushed_names;  // every member entry received, in order
  std::vector<proto::Removal> removals;   // every Removal received, in order
  std::vector<proto::Error> errors;
  std::vector<std::string> disconnects;
};

class Cluster {
 public:
  Cluster();
  ~Cluster();

  // Options for the next start_server(); 127.0.0.1, any port, fast timers.
  farad::ServerOptions options;
  // Starts farad (on the previous server's port, if there was one).
  farad::Server& start_server();
  void stop_server();
  // Writes a CRL revoking `revoked` (none: an empty one) for the next
  // start_server() (or a reload_tls()) and returns its path.
  std::string write_crl(const std::vector<const X509*>& revoked = {});
  farad::Server& server() { return *server_; }
  uint16_t port() const { return port_; }

  // A client named `name` with a fresh certificate for that name (or `id`),
  // announcing node_info(index); not started unless `start`.
  TestNode& node(const std::string& name, int index, bool start = true,
                 std::function<void(control::FaradClientOptions&)> tweak = {});
  TestNode& node_with(const std::string& name, Identity id, proto::NodeInfo info, bool start,
                      std::function<void(control::FaradClientOptions&)> tweak = {});

  // Runs the loop until pred() or the timeout; returns pred().
  bool run_until(const std::function<bool()>& pred, Clock::duration timeout = 5s);
  void run_for(Clock::duration d);
  // Asks farad about `who` through `from`'s connection; waits for the answer.
  proto::State query(TestNode& from, const std::string& who);

  boost::asio::io_context io;
  TempDir tmp;
  Pki pki;
  Identity farad_id;
  proto::SslCtxPtr client_ctx;  // trusts the CA; no identity of its own

 private:
  std::unique_ptr<farad::Server> server_;
  uint16_t port_ = 0;
  std::vector<std::unique_ptr<TestNode>> nodes_;
};

// A TLS (or plain TCP) peer under the test's full control: sends raw bytes,
// records what it receives and how the connection ended.
class RawPeer final : public proto::TlsChannel::Handler {
 public:
  // TLS with `id` (or no client certificate if null).
  RawPeer(Cluster& c, const Identity* id, bool read = true);
  // Plain TCP, no TLS.
  RawPeer(Cluster& c, std::nullptr_t plain);
  ~RawPeer() override;

  void send(std::string_view bytes);
  bool established = false;
  bool closed = false;
  std::string close_reason;
  std::string received;
  std::string local;  // our address as farad logs it: "127.0.0.1:PORT"
  std::shared_ptr<proto::TlsChannel> ch;
  boost::asio::ip::tcp::socket plain;

  void on_established(proto::TlsChannel&) override { established = true; }
  void on_data(proto::TlsChannel&, std::span<const uint8_t> d) override {
    received.append(reinterpret_cast<const char*>(d.data()), d.size());
  }
  void on_drained(proto::TlsChannel&) override {}
  void on_closed(proto::TlsChannel&, const proto::TlsChannel::CloseInfo& i) override {
    closed = true;
    close_reason = i.reason;
  }
  // Plain TCP: true once farad closed it.
  bool plain_closed();

 private:
  proto::SslCtxPtr ctx_;
};

// Frames `msg` (version set) as the wire carries it.
std::string frame_of(proto::NodeMessage msg);
// Decodes every complete FaradMessage frame in `bytes`.
std::vector<proto::FaradMessage> farad_messages(const std::string& bytes);

// Captures stderr (log lines) for the life of the object.
class LogCapture {
 public:
  LogCapture() { ::testing::internal::CaptureStderr(); }
  ~LogCapture() {
    if (!done_) ::testing::internal::GetCapturedStderr();
  }
  const std::string& text() {
    if (!done_) {
      text_ = ::testing::internal::GetCapturedStderr();
      done_ = true;
    }
    return text_;
  }

 private:
  bool done_ = false;
  std::string text_;
};

}  // namespace faraday::testing
