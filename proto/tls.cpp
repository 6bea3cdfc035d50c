// tls.cpp: see tls.h.
#include "proto/tls.h"

#include <fmt/core.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <sys/socket.h>
#include "common/names.h"

#include <boost/asio/post.hpp>
#include <cerrno>
#include <cstring>
#include <ctime>

#include "proto/node_info.h"

namespace faraday::proto {

namespace {

constexpr size_t kRecordBytes = 16384;  // TLS plaintext record size
constexpr int kReadsPerTurn = 8;        // records read before yielding to other connections

TlsFailure classify_verify(long v);

std::string openssl_error(std::string_view what) {
  unsigned long e = ERR_get_error();
  ERR_clear_error();
  if (e == 0) return std::string(what);
  char buf[256];
  ERR_error_string_n(e, buf, sizeof(buf));
  return fmt::format("{}: {}", what, buf);
}

Status common_setup(SSL_CTX* ctx, const TlsFiles& f) {
  SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION);
  SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION);
  // AES-128-GCM first: the fastest with AES-NI/VAES, and 128-bit is plenty here.
  SSL_CTX_set_ciphersuites(
      ctx, "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256");
  SSL_CTX_set1_groups_list(ctx, "X25519:P-256");
  SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS | SSL_MODE_ENABLE_PARTIAL_WRITE |
                            SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  // Read whole socket buffers, not a record header and then its body: half
  // the recv calls on a busy connection.
  SSL_CTX_set_read_ahead(ctx, 1);
  SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
  SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
  if (f.ca.empty()) {
    return faraday::Error{"no CA bundle configured"};
  }
  if (SSL_CTX_load_verify_file(ctx, f.ca.c_str()) != 1) {
    return faraday::Error{openssl_error(fmt::format("CA bundle {}", f.ca))};
  }
  if (!f.cert.empty()) {
    if (SSL_CTX_use_certificate_chain_file(ctx, f.cert.c_str()) != 1) {
      return faraday::Error{openssl_error(fmt::format("certificate {}", f.cert))};
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, f.key.c_str(), SSL_FILETYPE_PEM) != 1) {
      return faraday::Error{openssl_error(fmt::format("private key {}", f.key))};
    }
    if (SSL_CTX_check_private_key(ctx) != 1) {
      return faraday::Error{
          openssl_error(fmt::format("private key {} does not match {}", f.key, f.cert))};
    }
  }
  if (!f.crl.empty()) {
    FILE* fp = fopen(f.crl.c_str(), "r");
    if (!fp) {
      return faraday::Error{fmt::format("CRL {}: {}", f.crl, strerror(errno))};
    }
    X509_STORE* store = SSL_CTX_get_cert_store(ctx);
    int n = 0;
    while (X509_CRL* crl = PEM_read_X509_CRL(fp, nullptr, nullptr, nullptr)) {
      X509_STORE_add_crl(store, crl);
      X509_CRL_free(crl);
      ++n;
    }
    fclose(fp);
    ERR_clear_error();  // the end-of-file "no start line"
    if (n == 0) {
      return faraday::Error{fmt::format("CRL {}: no PEM CRL in the file", f.crl)};
    }
    X509_STORE_set_flags(store, X509_V_FLAG_CRL_CHECK);
  }
  return {};
}

}  // namespace

int TlsChannel::on_verify(int ok, X509_STORE_CTX* store) {
  if (!ok) {
    auto* ssl =
        static_cast<SSL*>(X509_STORE_CTX_get_ex_data(store, SSL_get_ex_data_X509_STORE_CTX_idx()));
    auto* ch = ssl ? static_cast<TlsChannel*>(SSL_get_app_data(ssl)) : nullptr;
    if (ch && ch->rejected_subject_.empty()) {
      if (X509* leaf = X509_STORE_CTX_get0_cert(store)) {
        X509_NAME* subject = X509_get_subject_name(leaf);
        char buf[256] = "";
        X509_NAME_get_text_by_NID(subject, NID_commonName, buf, sizeof(buf));
        ch->rejected_subject_ = buf[0] ? buf : "(no CN)";
      }
    }
  }
  return ok;
}

Result<SslCtxPtr> make_server_context(const TlsFiles& files) {
  SslCtxPtr ctx(SSL_CTX_new(TLS_server_method()), SslCtxFree{});
  if (!ctx) {
    return faraday::Error{openssl_error("SSL_CTX_new")};
  }
  if (files.cert.empty() || files.key.empty()) {
    return faraday::Error{"a server needs a certificate and a key"};
  }
  if (Status s = common_setup(ctx.get(), files); !s) return s.failure();
  SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT,
                     &TlsChannel::on_verify);
  SSL_CTX_set_num_tickets(ctx.get(), 0);
  return ctx;
}

Result<SslCtxPtr> make_client_context(const TlsFiles& files) {
  SslCtxPtr ctx(SSL_CTX_new(TLS_client_method()), SslCtxFree{});
  if (!ctx) {
    return faraday::Error{openssl_error("SSL_CTX_new")};
  }
  if (Status s = common_setup(ctx.get(), files); !s) return s.failure();
  SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_PEER, &TlsChannel::on_verify);
  return ctx;
}

Result<std::string> certificate_name(X509* cert) {
  if (!cert) {
    return faraday::Error{"no certificate"};
  }
  X509_NAME* subject = X509_get_subject_name(cert);
  int idx = X509_NAME_get_index_by_NID(subject, NID_commonName, -1);
  if (idx < 0) {
    return faraday::Error{"certificate has no subject CN"};
  }
  if (X509_NAME_get_index_by_NID(subject, NID_commonName, idx) >= 0) {
    return faraday::Error{"certificate has more than one subject CN"};
  }
  ASN1_STRING* data = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subject, idx));
  unsigned char* utf8 = nullptr;
  int len = ASN1_STRING_to_UTF8(&utf8, data);
  if (len < 0) {
    return faraday::Error{"certificate CN is not a string"};
  }
  std::string name(reinterpret_cast<char*>(utf8), static_cast<size_t>(len));
  OPENSSL_free(utf8);
  if (!valid_node_name(name)) {
    return faraday::Error{
        fmt::format("certificate CN {:?} is not a valid node name", name.substr(0, 80))};
  }
  return name;
}

Result<void, CertificateRefusal> verify_certificate(SSL_CTX* ctx, X509* leaf,
                                                    STACK_OF(X509) * chain, PeerRole role) {
  if (!leaf) return CertificateRefusal{TlsFailure::kNoCertificate, "no certificate"};
  X509_STORE_CTX* sctx = X509_STORE_CTX_new();
  if (!sctx) return CertificateRefusal{TlsFailure::kUntrusted, "out of memory"};
  Result<void, CertificateRefusal> result;  // success unless refused below
  if (X509_STORE_CTX_init(sctx, SSL_CTX_get_cert_store(ctx), leaf, chain) != 1) {
    result = CertificateRefusal{TlsFailure::kUntrusted, openssl_error("X509_STORE_CTX_init")};
  } else {
    X509_STORE_CTX_set_purpose(
        sctx, role == PeerRole::kClient ? X509_PURPOSE_SSL_CLIENT : X509_PURPOSE_SSL_SERVER);
    if (X509_verify_cert(sctx) != 1) {
      int err = X509_STORE_CTX_get_error(sctx);
      result = CertificateRefusal{classify_verify(err), X509_verify_cert_error_string(err)};
    }
  }
  X509_STORE_CTX_free(sctx);
  ERR_clear_error();
  return result;
}

Result<void, CertificateRefusal> reverify_peer(SSL_CTX* ctx, SSL* ssl, PeerRole role) {
  return verify_certificate(ctx, SSL_get0_peer_certificate(ssl), SSL_get_peer_cert_chain(ssl),
                            role);
}

std::optional<int64_t> certificate_not_after(X509* cert) {
  const ASN1_TIME* t = cert ? X509_get0_notAfter(cert) : nullptr;
  struct tm tm {};
  if (!t || ASN1_TIME_to_tm(t, &tm) != 1) return std::nullopt;
  return static_cast<int64_t>(timegm(&tm));
}

std::string_view tls_failure_name(TlsFailure f) {
  static constexpr std::array<const char*, 7> kNames = {
      "none",           "untrusted certificate", "expired certificate", "revoked certificate",
      "no certificate", "TLS protocol error",    "connection error"};
  return names::name_of(kNames, f);
}

// ---- the socket BIO ----

struct TlsChannel::Bio {
  int fd = -1;
  int last_errno = 0;
};

namespace {

int bio_write(BIO* b, const char* data, size_t len, size_t* written) {
  auto* st = static_cast<TlsChannel::Bio*>(BIO_get_data(b));
  BIO_clear_retry_flags(b);
  ssize_t n = ::send(st->fd, data, len, MSG_NOSIGNAL);
  if (n >= 0) {
    *written = static_cast<size_t>(n);
    return 1;
  }
  if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) {
    BIO_set_retry_write(b);
  } else {
    st->last_errno = errno;
  }
  return 0;
}

int bio_read(BIO* b, char* data, size_t len, size_t* read) {
  auto* st = static_cast<TlsChannel::Bio*>(BIO_get_data(b));
  BIO_clear_retry_flags(b);
  ssize_t n = ::recv(st->fd, data, len, 0);
  if (n > 0) {
    *read = static_cast<size_t>(n);
    return 1;
  }
  if (n < 0) {
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) {
      BIO_set_retry_read(b);
    } else {
      st->last_errno = errno;
    }
  }
  return 0;  // n == 0: end of stream
}

long bio_ctrl(BIO*, int cmd, long, void*) {
  return cmd == BIO_CTRL_FLUSH ? 1 : 0;
}

int bio_create(BIO* b) {
  BIO_set_init(b, 1);
  return 1;
}

BIO_METHOD* bio_method() {
  static BIO_METHOD* method = [] {
    BIO_METHOD* m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "faraday-socket");
    BIO_meth_set_write_ex(m, bio_write);
    BIO_meth_set_read_ex(m, bio_read);
    BIO_meth_set_ctrl(m, bio_ctrl);
    BIO_meth_set_create(m, bio_create);
    return m;
  }();
  return method;
}

TlsFailure classify_verify(long v) {
  switch (v) {
    case X509_V_ERR_CERT_HAS_EXPIRED:
    case X509_V_ERR_CERT_NOT_YET_VALID:
      return TlsFailure::kExpired;
    case X509_V_ERR_CERT_REVOKED:
      return TlsFailure::kRevoked;
    default:
      return TlsFailure::kUntrusted;
  }
}

}  // namespace

// ---- the channel ----

std::shared_ptr<TlsChannel> TlsChannel::create(boost::asio::ip::tcp::socket socket, SSL_CTX* ctx,
                                               Role role, Handler* handler) {
  return std::shared_ptr<TlsChannel>(new TlsChannel(std::move(socket), ctx, role, handler));
}

TlsChannel::TlsChannel(boost::asio::ip::tcp::socket socket, SSL_CTX* ctx, Role role,
                       Handler* handler)
    : socket_(std::move(socket)), bio_(std::make_unique<Bio>()), handler_(handler), role_(role) {
  boost::system::error_code ec;
  auto ep = socket_.remote_endpoint(ec);
  peer_ = ec ? std::string("?") : fmt::format("{}:{}", ep.address().to_string(), ep.port());
  socket_.non_blocking(true, ec);
  socket_.set_option(boost::asio::ip::tcp::no_delay(true), ec);
  bio_->fd = socket_.native_handle();
  ssl_ = SSL_new(ctx);
  if (ssl_) {
    BIO* b = BIO_new(bio_method());
    BIO_set_data(b, bio_.get());
    SSL_set_bio(ssl_, b, b);
    SSL_set_app_data(ssl_, this);
    if (role == Role::kServer) {
      SSL_set_accept_state(ssl_);
    } else {
      SSL_set_connect_state(ssl_);
    }
  }
}

TlsChannel::~TlsChannel() {
  if (ssl_) SSL_free(ssl_);
}

bool TlsChannel::set_client_params(const std::string& server_name, X509* cert, EVP_PKEY* key) {
  if (!ssl_ || role_ != Role::kClient) return false;
  if (!server_name.empty()) {
    if (SSL_set_tlsext_host_name(ssl_, server_name.c_str()) != 1) return false;
    if (SSL_set1_host(ssl_, server_name.c_str()) != 1) return false;
  }
  if (cert && key) {
    if (SSL_use_certificate(ssl_, cert) != 1 || SSL_use_PrivateKey(ssl_, key) != 1) {
      ERR_clear_error();
      return false;
    }
  }
  return true;
}

void TlsChannel::start() {
  if (state_ != State::kIdle) return;
  if (!ssl_) {
    end({"out of memory for a TLS session", TlsFailure::kIo, true});
    return;
  }
  state_ = State::kHandshake;
  handshake();
}

void TlsChannel::handshake() {
  auto self = shared_from_this();
  ERR_clear_error();
  int r = SSL_do_handshake(ssl_);
  if (r == 1) {
    state_ = State::kOpen;
    progress_at_ = Clock::now();
    if (handler_) handler_->on_established(*this);
    if (state_ != State::kOpen) return;
    flush();
    if (state_ == State::kOpen) do_read();
    return;
  }
  int err = SSL_get_error(ssl_, r);
  if (err == SSL_ERROR_WANT_READ) {
    wait_readable();
  } else if (err == SSL_ERROR_WANT_WRITE) {
    wait_writable();
  } else {
    fail(r, err);
  }
}

void TlsChannel::fail(int ssl_result, int ssl_error) {
  CloseInfo info;
  info.in_handshake = state_ == State::kHandshake;
  unsigned long e = ERR_peek_error();
  long verify = SSL_get_verify_result(ssl_);
  if (info.in_handshake && verify != X509_V_OK) {
    info.failure = classify_verify(verify);
    info.reason =
        fmt::format("certificate verify failed: {}", X509_verify_cert_error_string(verify));
  } else if (e != 0) {
    const char* reason = ERR_reason_error_string(e);
    info.reason = reason ? reason : "TLS error";
    info.failure = TlsFailure::kProtocol;
    if (ERR_GET_REASON(e) == SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE) {
      info.failure = TlsFailure::kNoCertificate;
      info.reason = "no client certificate";
    }
    // The far side's verdict on our certificate arrives as an alert.
    if (ERR_GET_REASON(e) == SSL_R_SSLV3_ALERT_CERTIFICATE_REVOKED) {
      info.failure = TlsFailure::kRevoked;
    }
    if (ERR_GET_REASON(e) == SSL_R_SSLV3_ALERT_CERTIFICATE_EXPIRED) {
      info.failure = TlsFailure::kExpired;
    }
  } else if (ssl_error == SSL_ERROR_ZERO_RETURN) {
    info.reason = "peer closed the connection";
    info.failure = info.in_handshake ? TlsFailure::kIo : TlsFailure::kNone;
  } else if (bio_->last_errno != 0) {
    info.reason = strerror(bio_->last_errno);
    info.failure = TlsFailure::kIo;
  } else {
    info.reason =
        info.in_handshake ? "peer went away during the handshake" : "peer closed the connection";
    info.failure = info.in_handshake ? TlsFailure::kIo : TlsFailure::kNone;
  }
  (void)ssl_result;
  ERR_clear_error();
  end(std::move(info));
}

void TlsChannel::end(CloseInfo info) {
  if (state_ == State::kClosed) return;
  auto self = shared_from_this();
  state_ = State::kClosed;
  boost::system::error_code ec;
  socket_.close(ec);
  std::string().swap(out_);
  out_off_ = 0;
  Handler* h = handler_;
  handler_ = nullptr;
  if (h) h->on_closed(*this, info);
}

void TlsChannel::detach() {
  handler_ = nullptr;
  if (state_ == State::kClosed) return;
  state_ = State::kClosed;
  boost::system::error_code ec;
  socket_.close(ec);
  std::string().swap(out_);
  out_off_ = 0;
}

void TlsChannel::wait_readable() {
  if (read_waiting_ || state_ == State::kClosed) return;
  read_waiting_ = true;
  socket_.async_wait(boost::asio::socket_base::wait_read,
                     [self = shared_from_this()](const boost::system::error_code& ec) {
                       self->read_waiting_ = false;
                       if (ec || self->state_ == State::kClosed) return;
                       self->on_readable();
                     });
}

void TlsChannel::wait_writable() {
  if (write_waiting_ || state_ == State::kClosed) return;
  write_waiting_ = true;
  socket_.async_wait(boost::asio::socket_base::wait_write,
                     [self = shared_from_this()](const boost::system::error_code& ec) {
                       self->write_waiting_ = false;
                       if (ec || self->state_ == State::kClosed) return;
                       self->on_writable();
                     });
}

void TlsChannel::on_readable() {
  if (state_ == State::kHandshake) {
    handshake();
    return;
  }
  if (write_wants_read_) {
    write_wants_read_ = false;
    flush();
    if (state_ == State::kClosed) return;
  }
  do_read();
}

void TlsChannel::on_writable() {
  if (state_ == State::kHandshake) {
    handshake();
    return;
  }
  if (read_wants_write_) {
    read_wants_write_ = false;
    do_read();
    if (state_ == State::kClosed) return;
  }
  flush();
}

void TlsChannel::do_read() {
  if ((state_ != State::kOpen && state_ != State::kClosing) || read_paused_) return;
  auto self = shared_from_this();
  static thread_local uint8_t buf[kRecordBytes];
  for (int i = 0; i < kReadsPerTurn; ++i) {
    size_t n = 0;
    ERR_clear_error();
    int r = SSL_read_ex(ssl_, buf, sizeof(buf), &n);
    if (r == 1) {
      // While closing we still read (to see the peer's close) but ignore data.
      if (state_ == State::kOpen && handler_) handler_->on_data(*this, {buf, n});
      if (state_ == State::kClosed || read_paused_) return;
      continue;
    }
    int err = SSL_get_error(ssl_, r);
    if (err == SSL_ERROR_WANT_READ) {
      wait_readable();
    } else if (err == SSL_ERROR_WANT_WRITE) {
      read_wants_write_ = true;
      wait_writable();
    } else if (state_ == State::kClosing) {
      finish_close();
    } else {
      fail(r, err);
    }
    return;
  }
  // Fairness: let other connections run; OpenSSL may hold buffered records, so
  // post instead of waiting for the socket.
  if (!read_posted_) {
    read_posted_ = true;
    boost::asio::post(socket_.get_executor(), [self] {
      self->read_posted_ = false;
      if (self->state_ != State::kClosed) self->do_read();
    });
  }
}

void TlsChannel::pause_reading(bool paused) {
  if (read_paused_ == paused) return;
  read_paused_ = paused;
  if (!paused && state_ == State::kOpen && !read_posted_) {
    read_posted_ = true;
    boost::asio::post(socket_.get_executor(), [self = shared_from_this()] {
      self->read_posted_ = false;
      if (self->state_ != State::kClosed) self->do_read();
    });
  }
}

void TlsChannel::send(std::span<const uint8_t> bytes) {
  if (state_ == State::kClosed || state_ == State::kClosing) return;
  if (queued() == 0) progress_at_ = Clock::now();
  out_.append(reinterpret_cast<const char*>(bytes.data()), bytes.size());
  if (!in_flush_ && state_ == State::kOpen) flush();
}

std::optional<TlsChannel::Clock::time_point> TlsChannel::stalled_since() const {
  if (queued() == 0 && retry_len_ == 0) return std::nullopt;
  return progress_at_;
}

void TlsChannel::flush() {
  if (in_flush_ || (state_ != State::kOpen && state_ != State::kClosing)) return;
  if (write_waiting_ || write_wants_read_) return;  // a retry is already pending
  auto self = shared_from_this();
  in_flush_ = true;
  while (state_ == State::kOpen || state_ == State::kClosing) {
    if (queued() == 0) {
      out_.clear();
      out_off_ = 0;
      // Keep no buffer on an idle connection.
      if (out_.capacity() > 1024) std::string().swap(out_);
      if (state_ == State::kClosing) {
        in_flush_ = false;
        finish_close();
        return;
      }
      if (handler_) handler_->on_drained(*this);
      if (queued() == 0) break;
      continue;
    }
    size_t len = retry_len_ ? retry_len_ : std::min(queued(), kRecordBytes * 4);
    size_t n = 0;
    ERR_clear_error();
    int r = SSL_write_ex(ssl_, out_.data() + out_off_, len, &n);
    if (r == 1) {
      out_off_ += n;
      retry_len_ = 0;
      progress_at_ = Clock::now();
      continue;
    }
    int err = SSL_get_error(ssl_, r);
    if (err == SSL_ERROR_WANT_WRITE) {
      retry_len_ = len;
      wait_writable();
    } else if (err == SSL_ERROR_WANT_READ) {
      retry_len_ = len;
      write_wants_read_ = true;
      wait_readable();
    } else {
      in_flush_ = false;
      fail(r, err);
      return;
    }
    break;
  }
  in_flush_ = false;
}

void TlsChannel::close_after_flush(std::string reason) {
  if (state_ == State::kClosed || state_ == State::kClosing) return;
  if (state_ != State::kOpen) {
    end({std::move(reason), TlsFailure::kNone, state_ == State::kHandshake});
    return;
  }
  close_reason_ = std::move(reason);
  state_ = State::kClosing;
  read_paused_ = false;
  flush();
}

void TlsChannel::finish_close() {
  if (state_ != State::kClosing) return;
  ERR_clear_error();
  SSL_shutdown(ssl_);  // best effort: one close_notify, no waiting for the peer's
  ERR_clear_error();
  boost::system::error_code ec;
  socket_.shutdown(boost::asio::socket_base::shutdown_send, ec);
  end({std::move(close_reason_), TlsFailure::kNone, false});
}

}  // namespace faraday::proto
