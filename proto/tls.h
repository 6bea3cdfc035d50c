// tls.h: the control protocol's transport: mutual TLS 1.3 over TCP.
//
// Contexts: make_server_context / make_client_context build OpenSSL contexts
// for farad.proto's rules: TLS 1.3 only, the peer's certificate required and
// verified against the CA bundle, an optional CRL, no session resumption (every
// connection is verified against the current CRL).
//
// TlsChannel: one connection. OpenSSL runs the record layer directly on the
// socket (a small BIO over send/recv with MSG_NOSIGNAL) and Boost.Asio only
// reports readiness (async_wait), so an idle connection costs the SSL object
// and nothing else: no BIO pair, no Asio ssl::stream buffers, and OpenSSL's
// record buffers are released when empty (SSL_MODE_RELEASE_BUFFERS).
//
// Threads: a channel, and every callback of its Handler, run on the thread
// that runs its io_context; one thread per io_context. The Handler must stay
// valid until detach(); it must not destroy the channel's owner from inside a
// callback (defer that with asio::post).
#pragma once

#include <openssl/ssl.h>

#include <boost/asio/ip/tcp.hpp>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "result.h"

namespace faraday::proto {

struct SslCtxFree {
  void operator()(SSL_CTX* c) const { SSL_CTX_free(c); }
};
using SslCtxPtr = std::shared_ptr<SSL_CTX>;

struct TlsFiles {
  std::string ca;    // PEM bundle of trusted CAs (required)
  std::string cert;  // PEM certificate chain to present (required for a server)
  std::string key;   // PEM private key of cert
  std::string crl;   // optional PEM CRL(s), checked against every peer's leaf certificate
};

// An error naming the file if one is missing or wrong.
Result<SslCtxPtr> make_server_context(const TlsFiles& files);
// cert/key may be empty when every connection gets its own identity
// (TlsChannel::set_client_identity).
Result<SslCtxPtr> make_client_context(const TlsFiles& files);

// The node name a certificate carries: its only subject CN, if that is a valid
// node name (proto::valid_node_name); else an error saying what is wrong.
Result<std::string> certificate_name(X509* cert);

// Why a connection ended, in classes a server counts.
enum class TlsFailure : uint8_t {
  kNone,           // closed on purpose (close_after_flush) or by the peer after the handshake
  kUntrusted,      // certificate not from a trusted CA, or an invalid chain
  kExpired,        // certificate expired or not yet valid
  kRevoked,        // certificate revoked by the CRL
  kNoCertificate,  // the peer presented none
  kProtocol,       // not TLS 1.3, plaintext, or another handshake/record error
  kIo,             // a socket error, or the peer went away mid-handshake
  kCount,
};
std::string_view tls_failure_name(TlsFailure f);

// Why a certificate no longer verifies: the class and OpenSSL's words.
struct CertificateRefusal {
  TlsFailure failure = TlsFailure::kUntrusted;
  std::string message;
};
enum class PeerRole { kClient, kServer };
// Verifies a certificate (with the chain the peer sent, if any) again, now,
// against ctx's trust store (CA, CRL, validity) for the role the peer plays;
// success if it still passes, else why not. After a CRL reload, and as time passes.
Result<void, CertificateRefusal> verify_certificate(SSL_CTX* ctx, X509* leaf,
                                                    STACK_OF(X509) * chain, PeerRole role);
// The same for an established connection's peer.
Result<void, CertificateRefusal> reverify_peer(SSL_CTX* ctx, SSL* established, PeerRole role);
// The certificate's notAfter as seconds since the epoch (nullopt if unreadable).
std::optional<int64_t> certificate_not_after(X509* cert);

class TlsChannel : public std::enable_shared_from_this<TlsChannel> {
 public:
  using Clock = std::chrono::steady_clock;
  enum class Role { kServer, kClient };

  struct CloseInfo {
    std::string reason;
    TlsFailure failure = TlsFailure::kNone;
    bool in_handshake = false;
  };

  class Handler {
   public:
    virtual ~Handler() = default;
    // The handshake finished and the peer's certificate verified.
    virtual void on_established(TlsChannel& ch) = 0;
    // Decrypted bytes, in order. The span is valid only during the call.
    virtual void on_data(TlsChannel& ch, std::span<const uint8_t> data) = 0;
    // Every queued byte went to the kernel; a good time to queue more.
    virtual void on_drained(TlsChannel& ch) = 0;
    // The connection is over (failed, closed by the peer, or close_after_flush
    // finished). No callback follows.
    virtual void on_closed(TlsChannel& ch, const CloseInfo& info) = 0;
  };

  static std::shared_ptr<TlsChannel> create(boost::asio::ip::tcp::socket socket, SSL_CTX* ctx,
                                            Role role, Handler* handler);
  ~TlsChannel();
  TlsChannel(const TlsChannel&) = delete;
  TlsChannel& operator=(const TlsChannel&) = delete;

  // Client only, before start(): the name farad's certificate must carry (also
  // sent as SNI) and, optionally, a certificate and key for this connection
  // instead of the context's. False if OpenSSL refuses them.
  bool set_client_params(const std::string& server_name, X509* cert, EVP_PKEY* key);

  // Begins the handshake.
  void start();
  // Queues bytes; they are written once the handshake is done.
  void send(std::span<const uint8_t> bytes);
  void send(std::string_view bytes) {
    send(std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()));
  }
  // Lets build(std::string& out) append bytes straight into the output
  // buffer, saving a copy of large messages.
  template <typename F>
  void send_with(F&& build) {
    if (state_ == State::kClosed || state_ == State::kClosing) return;
    if (queued() == 0) progress_at_ = Clock::now();
    build(out_);
    if (!in_flush_ && state_ == State::kOpen) flush();
  }
  size_t queued() const { return out_.size() - out_off_; }
  // Since when queued output has not moved; nullopt if nothing is queued.
  std::optional<Clock::time_point> stalled_since() const;
  // Stop (or resume) reading: backpressure when the owner's replies pile up.
  void pause_reading(bool paused);
  // Stop reading, flush what is queued, send close_notify, close, then
  // on_closed(reason). The owner bounds how long the flush may take.
  void close_after_flush(std::string reason);
  // Close now; no callback after this returns.
  void detach();

  bool established() const { return state_ == State::kOpen || state_ == State::kClosing; }
  bool closed() const { return state_ == State::kClosed; }
  SSL* ssl() const { return ssl_; }
  // "127.0.0.1:40001"
  const std::string& peer() const { return peer_; }
  // The CN of a peer certificate that failed verification, or empty.
  const std::string& rejected_subject() const { return rejected_subject_; }

  struct Bio;  // the BIO's per-connection state (tls.cpp)

 private:
  enum class State : uint8_t { kIdle, kHandshake, kOpen, kClosing, kClosed };

  TlsChannel(boost::asio::ip::tcp::socket socket, SSL_CTX* ctx, Role role, Handler* handler);
  void handshake();
  void do_read();
  void flush();
  void finish_close();
  void fail(int ssl_result, int ssl_error);
  void end(CloseInfo info);
  void wait_readable();
  void wait_writable();
  void on_readable();
  void on_writable();

  boost::asio::ip::tcp::socket socket_;
  SSL* ssl_ = nullptr;
  std::unique_ptr<Bio> bio_;
  Handler* handler_;
  Role role_;
  State state_ = State::kIdle;
  bool read_waiting_ = false;
  bool write_waiting_ = false;
  bool read_wants_write_ = false;  // SSL_read returned WANT_WRITE
  bool write_wants_read_ = false;  // SSL_write returned WANT_READ
  bool read_paused_ = false;
  bool read_posted_ = false;
  bool in_flush_ = false;
  std::string out_;
  size_t out_off_ = 0;
  size_t retry_len_ = 0;  // length of an SSL_write to repeat exactly (WANT_*)
  Clock::time_point progress_at_{};
  std::string peer_;
  std::string rejected_subject_;
  std::string close_reason_;

  static int on_verify(int ok, X509_STORE_CTX* store);
  friend Result<SslCtxPtr> make_server_context(const TlsFiles&);
  friend Result<SslCtxPtr> make_client_context(const TlsFiles&);
};

}  // namespace faraday::proto
