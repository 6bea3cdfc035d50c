// announcement.cpp: see announcement.h.
#include "control/announcement.h"

#include <fmt/format.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/udp.hpp>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <vector>

#include "proto/node_info.h"
#include "proto/tls.h"

namespace faraday::control {

namespace {

// The local address the kernel would use to reach host:port (no packet is sent).
std::optional<boost::asio::ip::address> local_address_towards(const std::string& host,
                                                              uint16_t port, std::string* error) {
  boost::asio::io_context io;
  boost::system::error_code ec;
  boost::asio::ip::udp::resolver resolver(io);
  auto results = resolver.resolve(host, std::to_string(port), ec);
  if (ec || results.empty()) {
    *error = fmt::format("resolve {}: {}", host, ec ? ec.message() : "no address");
    return std::nullopt;
  }
  boost::asio::ip::udp::socket s(io);
  auto target = results.begin()->endpoint();
  s.open(target.protocol(), ec);
  if (!ec) s.connect(target, ec);
  if (ec) {
    *error = fmt::format("no route to {}: {}", host, ec.message());
    return std::nullopt;
  }
  return s.local_endpoint().address();
}

proto::Endpoint to_proto(const dataplane::Endpoint& ep) {
  return *proto::parse_endpoint(ep.to_string());
}

}  // namespace

std::optional<std::string> certificate_file_name(const std::string& path, std::string* error) {
  FILE* f = std::fopen(path.c_str(), "r");
  if (!f) {
    *error = fmt::format("{}: {}", path, std::strerror(errno));
    return std::nullopt;
  }
  X509* cert = PEM_read_X509(f, nullptr, nullptr, nullptr);
  std::fclose(f);
  if (!cert) {
    *error = fmt::format("{}: not a PEM certificate", path);
    return std::nullopt;
  }
  std::string why;
  auto name = proto::certificate_name(cert, &why);
  X509_free(cert);
  if (!name) *error = fmt::format("{}: {}", path, why);
  return name;
}

std::optional<proto::NodeInfo> build_announcement(const ClusterOptions& opt,
                                                  const crypto::Key& public_key,
                                                  std::string* error) {
  std::vector<dataplane::Endpoint> announce = opt.announce;
  if (announce.empty()) {
    std::string why;
    auto addr = local_address_towards(opt.farad_host, opt.farad_port, &why);
    if (!addr) {
      *error = fmt::format("cannot pick an address to announce ({}); set announce", why);
      return std::nullopt;
    }
    auto ep = dataplane::Endpoint::parse(
        addr->is_v6() ? fmt::format("[{}]:{}", addr->to_string(), opt.listen_port)
                      : fmt::format("{}:{}", addr->to_string(), opt.listen_port));
    announce.push_back(*ep);
  }
  proto::NodeInfo self;
  self.set_public_key(public_key.data(), public_key.size());
  for (const auto& ep : announce) *self.add_underlay() = to_proto(ep);
  *self.add_allowed_ips() = *proto::parse_prefix(opt.overlay.to_string());
  if (opt.container_prefix)
    *self.add_allowed_ips() = *proto::parse_prefix(opt.container_prefix->to_string());
  auto control_ip = opt.control_listen.address();
  std::string control_host = control_ip.to_string();
  if (control_ip.is_unspecified()) {
    std::string first = announce.front().to_string();
    control_host = first.substr(0, first.rfind(':'));
  } else if (control_ip.is_v6()) {
    control_host = "[" + control_host + "]";
  }
  auto control =
      proto::parse_endpoint(fmt::format("{}:{}", control_host, opt.control_listen.port()));
  if (!control) {
    *error = fmt::format("cannot announce control endpoint {}:{}", control_host,
                         opt.control_listen.port());
    return std::nullopt;
  }
  *self.mutable_control() = *control;
  if (auto bad = proto::check_node_info(self)) {
    *error = fmt::format("this node's announcement is invalid: {}", *bad);
    return std::nullopt;
  }
  return self;
}

}  // namespace faraday::control
