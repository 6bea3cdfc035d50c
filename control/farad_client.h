// farad_client.h: a node's connection to farad (proto/farad.proto),
// the side faradayd's cluster mode uses. It keeps one mutual-TLS connection
// open: connects, joins with the (epoch, cursor) it last synced to, hands every
// Push to the caller, heartbeats when it has sent nothing else for
// Joined.heartbeat_ms, answers queries, and after any failure reconnects with
// exponential backoff and full jitter and joins again, so it receives exactly
// what it missed (or a snapshot if farad restarted).
//
// The client keeps only (epoch, cursor); the caller keeps the peers it learns.
// Pushed members that break NodeInfo's rules are dropped and counted.
//
// Threads: all methods and callbacks on the thread running the io_context.
// Callbacks may call the client's methods, but must not destroy it.
#pragma once

#include <openssl/ssl.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <unordered_map>

#include "proto/farad.pb.h"
#include "proto/frame.h"
#include "proto/node_info.h"
#include "proto/tls.h"

namespace faraday::control {

using namespace std::chrono_literals;

struct FaradClientOptions {
  std::string host = "127.0.0.1";  // IP address or name of farad
  uint16_t port = proto::kFaradPort;
  std::string server_name = "farad";  // the name farad's certificate must carry
  proto::NodeInfo node;               // announced on Join (the name is the certificate's)
  bool join = true;                   // join on every connect; false: only query
  std::chrono::milliseconds connect_timeout = 10s;  // TCP connect + TLS handshake
  std::chrono::milliseconds backoff_min = 250ms;
  std::chrono::milliseconds backoff_max = 30s;
  std::chrono::milliseconds heartbeat = 0ms;  // 0: what Joined suggests
  // This connection's certificate and key instead of the context's (a process
  // simulating many nodes). The client takes a reference to each.
  X509* cert = nullptr;
  EVP_PKEY* key = nullptr;
};

class FaradClient final : private proto::TlsChannel::Handler {
 public:
  using Clock = std::chrono::steady_clock;
  enum class State { kStopped, kWaiting, kConnecting, kJoining, kReady, kCount };

  struct Callbacks {
    std::function<void(const proto::Joined&)> on_joined;
    // Members that joined or changed, and Removals (members no longer
    // trusted); the client's cursor already includes them.
    std::function<void(const proto::Push&)> on_push;
    std::function<void(const std::string& reason)> on_disconnected;
    // An Error not answering a request of ours (e.g. REPLACED, a fatal BAD_FRAME).
    std::function<void(const proto::Error&)> on_error;
  };
  struct Reply {
    bool ok = false;
    proto::State state = proto::STATE_UNSPECIFIED;  // for queries
    std::string error;                              // when !ok
    proto::Error::Code code = proto::Error::CODE_UNSPECIFIED;
  };
  using Done = std::function<void(const Reply&)>;

  struct Stats {
    uint64_t connects = 0;     // TCP connections attempted
    uint64_t established = 0;  // TLS handshakes completed
    uint64_t joins = 0;        // Joined received
    uint64_t snapshots = 0;    // Joined with snapshot
    uint64_t pushes = 0;
    uint64_t members = 0;          // members delivered
    uint64_t invalid_members = 0;  // dropped by NodeInfo's rules (or a Removal's bad name)
    uint64_t removals = 0;         // Removals delivered
    uint64_t heartbeats = 0;
    uint64_t bad_frames = 0;  // frames from farad that failed to decode
  };

  FaradClient(boost::asio::io_context& io, proto::SslCtxPtr ctx, FaradClientOptions options,
              Callbacks callbacks);
  ~FaradClient() override;
  FaradClient(const FaradClient&) = delete;
  FaradClient& operator=(const FaradClient&) = delete;

  // Connect and stay connected until stop().
  void start();
  // Close the connection; no reconnect. Keeps (epoch, cursor) for the next start().
  void stop();
  // The TLS context for the next connection (a reload); the open one stays.
  void set_context(proto::SslCtxPtr ctx) { ctx_ = std::move(ctx); }

  // Change this node's entry (sent now if joined, else announced on the next Join).
  void update(const proto::NodeInfo& node, Done done = {});
  // Ask farad about a node. Fails at once if not connected.
  void query(const std::string& name, Done done);
  // Stop being a member; the connection stays. start() after stop() joins again.
  void leave(Done done = {});
  // Send a Heartbeat now (normally automatic).
  void heartbeat(Done done = {});

  State state() const { return state_; }
  bool connected() const { return state_ == State::kJoining || state_ == State::kReady; }
  bool joined() const { return state_ == State::kReady && joined_; }
  uint64_t epoch() const { return epoch_; }
  uint64_t cursor() const { return cursor_; }
  const std::string& name() const { return name_; }
  const std::string& last_error() const { return last_error_; }
  Clock::time_point join_sent_at() const { return join_sent_at_; }
  const Stats& stats() const { return stats_; }

 private:
  void on_established(proto::TlsChannel& ch) override;
  void on_data(proto::TlsChannel& ch, std::span<const uint8_t> data) override;
  void on_drained(proto::TlsChannel&) override {}
  void on_closed(proto::TlsChannel& ch, const proto::TlsChannel::CloseInfo& info) override;

  void connect();
  void connected_tcp();
  void disconnect(const std::string& reason);
  void schedule_reconnect();
  void schedule_heartbeat();
  void send_join();
  uint64_t send(proto::NodeMessage& msg, Done done);
  bool handle(const proto::FaradMessage& msg);
  void handle_joined(const proto::Joined& joined);
  void handle_push(const proto::Push& push);
  void handle_reply(const proto::FaradMessage& msg);
  void fail_pending(const std::string& reason);

  boost::asio::io_context& io_;
  proto::SslCtxPtr ctx_;
  FaradClientOptions opt_;
  Callbacks cb_;
  boost::asio::ip::tcp::socket socket_;
  boost::asio::ip::tcp::resolver resolver_;
  boost::asio::steady_timer timer_;  // connect timeout, reconnect backoff
  boost::asio::steady_timer heartbeat_timer_;
  std::shared_ptr<proto::TlsChannel> ch_;
  proto::FrameDecoder decoder_;
  State state_ = State::kStopped;
  bool joined_ = false;
  bool want_join_;
  uint64_t epoch_ = 0;
  uint64_t cursor_ = 0;
  uint64_t next_id_ = 1;
  std::unordered_map<uint64_t, Done> pending_;
  uint64_t join_id_ = 0;
  std::string name_;
  std::string last_error_;
  std::chrono::milliseconds backoff_;
  std::chrono::milliseconds heartbeat_interval_{0};
  Clock::time_point last_sent_{};
  Clock::time_point join_sent_at_{};
  std::minstd_rand rng_;
  Stats stats_;
  uint64_t generation_ = 0;  // bumped per connection attempt; stale handlers see a change
  std::shared_ptr<int> alive_ = std::make_shared<int>(0);
};

const char* client_state_name(FaradClient::State s);

}  // namespace faraday::control
