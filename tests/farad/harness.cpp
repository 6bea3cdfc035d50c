// harness.cpp: see harness.h.
#include "harness.h"

#include <fmt/core.h>

#include <boost/asio/write.hpp>

#include "tests/lib/io_loop.h"

namespace faraday::testing {

proto::NodeInfo node_info(int index) {
  proto::NodeInfo info;
  std::string key(32, '\0');
  for (int i = 0; i < 32; ++i) key[i] = static_cast<char>((index * 131 + i * 7 + 1) & 0xff);
  key[0] = static_cast<char>(index & 0xff);
  key[1] = static_cast<char>((index >> 8) & 0xff);
  key[2] = 1;
  info.set_public_key(key);
  int hi = (index >> 8) & 0xff, lo = index & 0xff;
  *info.add_underlay() = *proto::parse_endpoint(fmt::format("192.0.2.{}:51820", lo));
  *info.add_allowed_ips() = *proto::parse_prefix(fmt::format("10.100.{}.{}/32", hi, lo));
  *info.add_allowed_ips() = *proto::parse_prefix(fmt::format("10.200.{}.0/24", lo));
  *info.mutable_control() = *proto::parse_endpoint(fmt::format("192.0.2.{}:7451", lo));
  return info;
}

Cluster::Cluster() : pki(tmp.path() + "/pki") {
  signal(SIGPIPE, SIG_IGN);
  CertSpec farad_spec("farad");
  farad_spec.dns_san = "farad";
  farad_id = pki.issue(farad_spec);
  pki.write(farad_id, "farad");
  options.address = "127.0.0.1";
  options.port = 0;
  options.tls = {pki.ca_path(), farad_id.cert_path, farad_id.key_path, ""};
  options.expiry = 5s;
  options.handshake_timeout = 2s;
  options.write_timeout = 2s;
  options.push_delay = 5ms;
  auto made = proto::make_client_context({pki.ca_path(), "", "", ""});
  if (!made) throw std::runtime_error(made.error());  // a broken fixture: the test fails
  client_ctx = *made;
}

Cluster::~Cluster() {
  for (auto& n : nodes_) n->client.reset();
  server_.reset();
}

farad::Server& Cluster::start_server() {
  server_.reset();
  auto opts = options;
  if (port_) opts.port = port_;
  server_ = std::make_unique<farad::Server>(io, opts);
  if (Status started = server_->start(); !started) {
    throw std::runtime_error("farad: " + started.error());
  }
  port_ = server_->port();
  return *server_;
}

std::string Cluster::write_crl(const std::vector<const X509*>& revoked) {
  std::string path = tmp.path() + "/crl.pem";
  pki.write_crl(path, revoked);
  options.tls.crl = path;
  return path;
}

void Cluster::stop_server() {
  if (server_) server_->stop();
  server_.reset();
}

TestNode& Cluster::node(const std::string& name, int index, bool start,
                        std::function<void(control::FaradClientOptions&)> tweak) {
  return node_with(name, pki.issue(name), node_info(index), start, std::move(tweak));
}

TestNode& Cluster::node_with(const std::string& name, Identity id, proto::NodeInfo info, bool start,
                             std::function<void(control::FaradClientOptions&)> tweak) {
  auto n = std::make_unique<TestNode>();
  TestNode* raw = n.get();
  n->name = name;
  n->id = std::move(id);
  control::FaradClientOptions o;
  o.host = "127.0.0.1";
  o.port = port_;
  o.node = std::move(info);
  o.cert = n->id.cert.get();
  o.key = n->id.key.get();
  o.backoff_min = 50ms;
  o.backoff_max = 200ms;
  o.connect_timeout = 2s;
  if (tweak) tweak(o);
  control::FaradClient::Callbacks cb;
  cb.on_joined = [raw](const proto::Joined& j) { raw->joins.push_back(j); };
  cb.on_push = [raw](const proto::Push& p) {
    raw->pushes.push_back(p);
    for (const auto& m : p.members()) {
      raw->peers[m.node().name()] = m.node();
      raw->pushed_names.push_back(m.node().name());
    }
    for (const auto& r : p.removed()) {
      raw->peers.erase(r.name());
      raw->removals.push_back(r);
    }
  };
  cb.on_error = [raw](const proto::Error& e) { raw->errors.push_back(e); };
  cb.on_disconnected = [raw](const std::string& r) { raw->disconnects.push_back(r); };
  n->client = std::make_unique<control::FaradClient>(io, client_ctx, o, cb);
  if (start) n->client->start();
  nodes_.push_back(std::move(n));
  return *raw;
}

bool Cluster::run_until(const std::function<bool()>& pred, Clock::duration timeout) {
  return run_io_until(io, pred, timeout);
}

void Cluster::run_for(Clock::duration d) {
  run_io_for(io, d);
}

proto::State Cluster::query(TestNode& from, const std::string& who) {
  bool done = false;
  control::FaradClient::Reply reply;
  from.client->query(who, [&](const control::FaradClient::Reply& r) {
    reply = r;
    done = true;
  });
  if (!run_until([&] { return done; }, 3s)) return proto::STATE_UNSPECIFIED;
  return reply.ok ? reply.state : proto::STATE_UNSPECIFIED;
}

// ---- RawPeer ----

namespace {

boost::asio::ip::tcp::socket connect_socket(Cluster& c, bool small_rcvbuf) {
  boost::asio::ip::tcp::socket s(c.io);
  s.open(boost::asio::ip::tcp::v4());
  if (small_rcvbuf) s.set_option(boost::asio::socket_base::receive_buffer_size(4096));
  s.connect({boost::asio::ip::make_address("127.0.0.1"), c.port()});
  return s;
}

std::string local_of(const boost::asio::ip::tcp::socket& s) {
  auto ep = s.local_endpoint();
  return fmt::format("{}:{}", ep.address().to_string(), ep.port());
}

}  // namespace

RawPeer::RawPeer(Cluster& c, const Identity* id, bool read) : plain(c.io) {
  auto made = proto::make_client_context({c.pki.ca_path(), "", "", ""});
  if (!made) throw std::runtime_error(made.error());
  ctx_ = *made;
  auto s = connect_socket(c, !read);
  local = local_of(s);
  ch = proto::TlsChannel::create(std::move(s), ctx_.get(), proto::TlsChannel::Role::kClient, this);
  ch->set_client_params("farad", id ? id->cert.get() : nullptr, id ? id->key.get() : nullptr);
  if (!read) ch->pause_reading(true);
  ch->start();
}

RawPeer::RawPeer(Cluster& c, std::nullptr_t) : plain(connect_socket(c, false)) {
  local = local_of(plain);
}

RawPeer::~RawPeer() {
  if (ch) ch->detach();
}

void RawPeer::send(std::string_view bytes) {
  if (ch) {
    ch->send(bytes);
  } else {
    boost::system::error_code ec;
    boost::asio::write(plain, boost::asio::buffer(bytes.data(), bytes.size()), ec);
  }
}

bool RawPeer::plain_closed() {
  plain.non_blocking(true);
  char buf[256];
  boost::system::error_code ec;
  for (;;) {
    size_t n = plain.read_some(boost::asio::buffer(buf), ec);
    if (ec == boost::asio::error::would_block) return false;
    if (ec) return true;  // EOF or reset
    received.append(buf, n);
  }
}

std::string frame_of(proto::NodeMessage msg) {
  if (msg.version() == 0) msg.set_version(proto::kProtocolVersion);
  std::string out;
  proto::append_frame(msg, out);
  return out;
}

std::vector<proto::FaradMessage> farad_messages(const std::string& bytes) {
  std::vector<proto::FaradMessage> out;
  proto::FrameDecoder d;
  d.feed({reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()},
         [&](std::span<const uint8_t> payload) {
           proto::FaradMessage m;
           if (proto::decode(payload, m) == proto::FrameError::kNone) out.push_back(m);
           return true;
         });
  return out;
}

}  // namespace faraday::testing
