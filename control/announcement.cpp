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
Result<boost::asio::ip::address> local_address_towards(const std::string& host, uint16_t port) {
  boost::asio::io_context io;
  boost::system::error_code ec;
  boost::asio::ip::udp::resolver resolver(io);
  auto results = resolver.resolve(host, std::to_string(port), ec);
  if (ec || results.empty()) {
    return Error{fmt::format("resolve {}: {}", host, ec ? ec.message() : "no address")};
  }
  boost::asio::ip::udp::socket s(io);
  auto target = results.begin()->endpoint();
  s.open(target.protocol(), ec);
  if (!ec) s.connect(target, ec);
  if (ec) {
    return Error{fmt::format("no route to {}: {}", host, ec.message())};
  }
  return s.local_endpoint().address();
}

proto::Endpoint to_proto(const dataplane::Endpoint& ep) {
  return *proto::parse_endpoint(ep.to_string());
}

}  // namespace

Result<std::string> certificate_file_name(const std::string& path) {
  FILE* f = std::fopen(path.c_str(), "r");
  if (!f) {
    return Error{fmt::format("{}: {}", path, std::strerror(errno))};
  }
  X509* cert = PEM_read_X509(f, nullptr, nullptr, nullptr);
  std::fclose(f);
  if (!cert) {
    return Error{fmt::format("{}: not a PEM certificate", path)};
  }
  auto name = proto::certificate_name(cert);
  X509_free(cert);
  if (!name) return Error{fmt::format("{}: {}", path, name.error())};
  return name;
}

Result<proto::NodeInfo> build_announcement(const ClusterOptions& opt,
                                           const crypto::Key& public_key) {
  std::vector<dataplane::Endpoint> announce = opt.announce;
  // On a DPDK port, WireGuard is at its addresses; the links at the host's.
  if (announce.empty() && opt.dpdk) {
    for (const std::string& a : opt.dpdk->addresses) {
      const std::string host = a.substr(0, a.find('/'));
      announce.push_back(*dataplane::Endpoint::parse(
          host.find(':') != std::string::npos ? fmt::format("[{}]:{}", host, opt.listen_port)
                                              : fmt::format("{}:{}", host, opt.listen_port)));
    }
  }
  if (announce.empty()) {
    auto addr = local_address_towards(opt.farad_host, opt.farad_port);
    if (!addr) {
      return Error{
          fmt::format("cannot pick an address to announce ({}); set announce", addr.error())};
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
  if (control_ip.is_unspecified() && opt.dpdk) {
    auto addr = local_address_towards(opt.farad_host, opt.farad_port);
    if (!addr)
      return Error{
          fmt::format("cannot pick the links' address to announce ({}); set control-listen to one",
                      addr.error())};
    control_host = addr->is_v6() ? "[" + addr->to_string() + "]" : addr->to_string();
  } else if (control_ip.is_unspecified()) {
    std::string first = announce.front().to_string();
    control_host = first.substr(0, first.rfind(':'));
  } else if (control_ip.is_v6()) {
    control_host = "[" + control_host + "]";
  }
  auto control =
      proto::parse_endpoint(fmt::format("{}:{}", control_host, opt.control_listen.port()));
  if (!control) {
    return Error{fmt::format("cannot announce control endpoint {}:{}", control_host,
                             opt.control_listen.port())};
  }
  *self.mutable_control() = *control;
  if (Status valid = proto::check_node_info(self); !valid) {
    return Error{fmt::format("this node's announcement is invalid: {}", valid.error())};
  }
  return self;
}

}  // namespace faraday::control
