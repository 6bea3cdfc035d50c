#include "control/netlink.h"

#include <fmt/core.h>
#include <libmnl/libmnl.h>
#include <linux/if.h>
#include <linux/if_addr.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>

#include <cerrno>
#include <charconv>
#include <cstring>
#include <ctime>
#include <functional>
#include <system_error>
#include <utility>
#include <vector>

#include "dataplane/tun_port.h"

namespace faraday::control::netlink {

namespace {

// Large enough for any dump batch the kernel sends (it caps them at 32 KiB).
constexpr size_t kReceiveBufferSize = 32768;
// Requests here carry a header and a few small attributes.
constexpr size_t kRequestBufferSize = 512;
// A dump the kernel reports as interrupted (the table changed meanwhile) is retried.
constexpr int kDumpAttempts = 4;

// The kernel's answer to one request: errno (0 on success) and its extended-ack text.
struct Reply {
  int err = 0;
  std::string ext;
};

using DataHandler = std::function<void(const nlmsghdr*)>;

int collect_ext_msg(const nlattr* attr, void* data) {
  if (mnl_attr_get_type(attr) == NLMSGERR_ATTR_MSG && mnl_attr_validate(attr, MNL_TYPE_STRING) == 0)
    *static_cast<std::string*>(data) = mnl_attr_get_str(attr);
  return MNL_CB_OK;
}

// The NLMSGERR_ATTR_MSG of an error reply, when the kernel attached one.
std::string ext_message(const nlmsghdr* msg) {
  if (!(msg->nlmsg_flags & NLM_F_ACK_TLVS)) return {};
  const auto* err = static_cast<const nlmsgerr*>(mnl_nlmsg_get_payload(msg));
  size_t offset = sizeof(nlmsgerr);
  if (!(msg->nlmsg_flags & NLM_F_CAPPED)) offset += err->msg.nlmsg_len - sizeof(nlmsghdr);
  if (MNL_ALIGN(offset) >= mnl_nlmsg_get_payload_len(msg)) return {};
  std::string text;
  mnl_attr_parse(msg, static_cast<unsigned>(offset), collect_ext_msg, &text);
  return text;
}

// Sends one request and reads replies until its ack or error (a request) or
// NLMSG_DONE (a dump), passing every data message to on_data.
Reply transact(mnl_socket* nl, uint32_t portid, nlmsghdr* request, const DataHandler& on_data) {
  const uint32_t seq = request->nlmsg_seq;
  if (mnl_socket_sendto(nl, request, request->nlmsg_len) < 0) return {errno, "send failed"};
  std::vector<char> buf(kReceiveBufferSize);
  bool interrupted = false;
  for (;;) {
    ssize_t n = mnl_socket_recvfrom(nl, buf.data(), buf.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return {errno, "receive failed"};
    }
    int len = static_cast<int>(n);
    const auto* msg = reinterpret_cast<const nlmsghdr*>(buf.data());
    for (; mnl_nlmsg_ok(msg, len); msg = mnl_nlmsg_next(msg, &len)) {
      // Left over from an earlier request that failed half-way: not ours to read.
      if (msg->nlmsg_seq != seq || msg->nlmsg_pid != portid) continue;
      if (msg->nlmsg_flags & NLM_F_DUMP_INTR) interrupted = true;
      if (msg->nlmsg_type == NLMSG_ERROR) {
        if (mnl_nlmsg_get_payload_len(msg) < sizeof(nlmsgerr)) return {EBADMSG, "short error"};
        const auto* err = static_cast<const nlmsgerr*>(mnl_nlmsg_get_payload(msg));
        if (err->error == 0) return {};
        return {-err->error, ext_message(msg)};
      }
      if (msg->nlmsg_type == NLMSG_DONE) {
        if (mnl_nlmsg_get_payload_len(msg) >= sizeof(int)) {
          int status;
          std::memcpy(&status, mnl_nlmsg_get_payload(msg), sizeof(status));
          if (status < 0) return {-status, {}};
        }
        if (interrupted) return {EINTR, "dump interrupted"};
        return {};
      }
      if (msg->nlmsg_type == NLMSG_NOOP || msg->nlmsg_type == NLMSG_OVERRUN) continue;
      if (on_data) on_data(msg);
    }
  }
}

std::string describe(std::string_view what, const std::string& ifname, const Reply& reply) {
  std::string reason = std::error_code(reply.err, std::generic_category()).message();
  if (reply.err == ENODEV) reason += " (no such interface)";
  if (!reply.ext.empty()) reason += " (" + reply.ext + ")";
  return fmt::format("netlink: {} on {}: {}", what, ifname, reason);
}

size_t addr_len(sa_family_t family) {
  return family == AF_INET ? 4 : 16;
}

bool valid_prefix(const dataplane::Prefix& p) {
  return (p.family == AF_INET || p.family == AF_INET6) && p.cidr <= p.max_cidr();
}

// Copies a 4- or 16-byte address attribute into out; false on a length mismatch.
bool read_addr(const nlattr* attr, sa_family_t family, std::array<uint8_t, 16>& out) {
  if (attr == nullptr || mnl_attr_get_payload_len(attr) != addr_len(family)) return false;
  out = {};
  std::memcpy(out.data(), mnl_attr_get_payload(attr), addr_len(family));
  return true;
}

// Fills table[type] for every attribute up to max (unknown ones are skipped).
template <size_t N>
void parse_attrs(const nlmsghdr* msg, size_t header_len, std::array<const nlattr*, N>& table) {
  table = {};
  mnl_attr_parse(
      msg, static_cast<unsigned>(header_len),
      [](const nlattr* attr, void* data) {
        auto& t = *static_cast<std::array<const nlattr*, N>*>(data);
        uint16_t type = mnl_attr_get_type(attr);
        if (type < N) t[type] = attr;
        return MNL_CB_OK;
      },
      &table);
}

}  // namespace

std::optional<Address> parse_address(std::string_view text) {
  auto slash = text.find('/');
  auto host = dataplane::Prefix::parse(text.substr(0, slash));
  if (!host) return std::nullopt;
  if (slash == std::string_view::npos) return host;
  auto len = text.substr(slash + 1);
  unsigned v = 0;
  auto [ptr, ec] = std::from_chars(len.data(), len.data() + len.size(), v);
  if (len.empty() || ec != std::errc() || ptr != len.data() + len.size() || v > host->max_cidr())
    return std::nullopt;
  host->cidr = static_cast<uint8_t>(v);
  return host;
}

Socket::Socket(mnl_socket* nl)
    : nl_(nl), portid_(mnl_socket_get_portid(nl)), seq_(static_cast<uint32_t>(time(nullptr))) {}

Result<Socket> Socket::open() {
  mnl_socket* nl = mnl_socket_open2(NETLINK_ROUTE, SOCK_CLOEXEC);
  if (nl == nullptr)
    return Error{fmt::format("netlink: open NETLINK_ROUTE socket: {}",
                             std::error_code(errno, std::generic_category()).message())};
  if (mnl_socket_bind(nl, 0, MNL_SOCKET_AUTOPID) < 0) {
    int err = errno;
    mnl_socket_close(nl);
    return Error{fmt::format("netlink: bind NETLINK_ROUTE socket: {}",
                             std::error_code(err, std::generic_category()).message())};
  }
  // Best effort: the kernel's own words in error replies, without the echoed request.
  int on = 1;
  mnl_socket_setsockopt(nl, NETLINK_EXT_ACK, &on, sizeof(on));
  mnl_socket_setsockopt(nl, NETLINK_CAP_ACK, &on, sizeof(on));
  return Socket(nl);
}

Socket::Socket(Socket&& other) noexcept
    : nl_(std::exchange(other.nl_, nullptr)), portid_(other.portid_), seq_(other.seq_) {}

Socket& Socket::operator=(Socket&& other) noexcept {
  if (this != &other) {
    if (nl_ != nullptr) mnl_socket_close(nl_);
    nl_ = std::exchange(other.nl_, nullptr);
    portid_ = other.portid_;
    seq_ = other.seq_;
  }
  return *this;
}

Socket::~Socket() {
  if (nl_ != nullptr) mnl_socket_close(nl_);
}

namespace {

nlmsghdr* start(char* buf, uint16_t type, uint16_t flags, uint32_t& seq) {
  std::memset(buf, 0, kRequestBufferSize);
  nlmsghdr* nlh = mnl_nlmsg_put_header(buf);
  nlh->nlmsg_type = type;
  nlh->nlmsg_flags = static_cast<uint16_t>(NLM_F_REQUEST | flags);
  nlh->nlmsg_seq = ++seq;
  return nlh;
}

}  // namespace

namespace {

// RTM_GETLINK by name. ENODEV when there is no such interface.
Reply get_link(mnl_socket* nl, uint32_t portid, uint32_t& seq, const std::string& ifname,
               Link& out) {
  alignas(nlmsghdr) char buf[kRequestBufferSize];
  nlmsghdr* nlh = start(buf, RTM_GETLINK, NLM_F_ACK, seq);
  auto* ifi = static_cast<ifinfomsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(ifinfomsg)));
  ifi->ifi_family = AF_UNSPEC;
  mnl_attr_put_strz(nlh, IFLA_IFNAME, ifname.c_str());
  mnl_attr_put_u32(nlh, IFLA_EXT_MASK, RTEXT_FILTER_SKIP_STATS);

  bool found = false;
  Reply reply = transact(nl, portid, nlh, [&](const nlmsghdr* msg) {
    if (msg->nlmsg_type != RTM_NEWLINK || mnl_nlmsg_get_payload_len(msg) < sizeof(ifinfomsg))
      return;
    const auto* info = static_cast<const ifinfomsg*>(mnl_nlmsg_get_payload(msg));
    std::array<const nlattr*, IFLA_MTU + 1> tb;
    parse_attrs(msg, sizeof(ifinfomsg), tb);
    out = Link{};
    out.index = info->ifi_index;
    out.up = (info->ifi_flags & IFF_UP) != 0;
    if (tb[IFLA_MTU] != nullptr && mnl_attr_validate(tb[IFLA_MTU], MNL_TYPE_U32) == 0)
      out.mtu = mnl_attr_get_u32(tb[IFLA_MTU]);
    found = true;
  });
  if (reply.err == 0 && !found) return {ENODEV, "no link in the reply"};
  return reply;
}

// Dumps `type` (RTM_GETADDR, RTM_GETROUTE) with `header` (ifaddrmsg, rtmsg) as
// the request's family header, passing every data message to on_data. A dump
// the kernel reports as interrupted is retried, up to kDumpAttempts times;
// restart runs before each attempt so the caller can drop what the last one
// collected.
template <typename Header>
Reply dump(mnl_socket* nl, uint32_t portid, uint32_t& seq, uint16_t type, const Header& header,
           const std::function<void()>& restart, const DataHandler& on_data) {
  Reply reply;
  for (int attempt = 0; attempt < kDumpAttempts; ++attempt) {
    restart();
    alignas(nlmsghdr) char buf[kRequestBufferSize];
    nlmsghdr* nlh = start(buf, type, NLM_F_DUMP, seq);
    std::memcpy(mnl_nlmsg_put_extra_header(nlh, sizeof(Header)), &header, sizeof(Header));
    reply = transact(nl, portid, nlh, on_data);
    if (reply.err != EINTR) break;
  }
  return reply;
}

}  // namespace

Result<Link> Socket::link(const std::string& ifname) {
  if (auto ok = dataplane::check_interface_name(ifname); !ok)
    return Error{fmt::format("netlink: look up interface \"{}\": {}", ifname, ok.error())};
  Link out;
  Reply reply = get_link(nl_, portid_, seq_, ifname, out);
  if (reply.err != 0) return Error{describe("look up interface", ifname, reply)};
  return out;
}

Result<int> Socket::ifindex(const std::string& ifname) {
  auto l = link(ifname);
  if (!l) return l.failure();
  return l->index;
}

namespace {

// An RTM_NEWLINK request for the link at `index`, its ifinfomsg in `ifi`.
nlmsghdr* newlink_request(char* buf, uint32_t& seq, int index, ifinfomsg*& ifi) {
  nlmsghdr* nlh = start(buf, RTM_NEWLINK, NLM_F_ACK, seq);
  ifi = static_cast<ifinfomsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(ifinfomsg)));
  ifi->ifi_family = AF_UNSPEC;
  ifi->ifi_index = index;
  return nlh;
}

}  // namespace

Status Socket::set_mtu(const std::string& ifname, uint32_t mtu) {
  auto index = ifindex(ifname);
  if (!index) return index.failure();
  alignas(nlmsghdr) char buf[kRequestBufferSize];
  ifinfomsg* ifi = nullptr;
  nlmsghdr* nlh = newlink_request(buf, seq_, *index, ifi);
  mnl_attr_put_u32(nlh, IFLA_MTU, mtu);
  Reply reply = transact(nl_, portid_, nlh, nullptr);
  if (reply.err != 0) return Error{describe(fmt::format("set MTU {}", mtu), ifname, reply)};
  return {};
}

Status Socket::set_up(const std::string& ifname, bool up) {
  auto index = ifindex(ifname);
  if (!index) return index.failure();
  alignas(nlmsghdr) char buf[kRequestBufferSize];
  ifinfomsg* ifi = nullptr;
  nlmsghdr* nlh = newlink_request(buf, seq_, *index, ifi);
  ifi->ifi_change = IFF_UP;
  ifi->ifi_flags = up ? IFF_UP : 0;
  Reply reply = transact(nl_, portid_, nlh, nullptr);
  if (reply.err != 0) return Error{describe(up ? "set link up" : "set link down", ifname, reply)};
  return {};
}

Status Socket::move_link(const std::string& ifname, int netns_fd, const std::string& new_name) {
  if (auto ok = dataplane::check_interface_name(new_name); !ok)
    return Error{fmt::format("netlink: move link {}: {}", ifname, ok.error())};
  auto index = ifindex(ifname);
  if (!index) return index.failure();
  alignas(nlmsghdr) char buf[kRequestBufferSize];
  ifinfomsg* ifi = nullptr;
  nlmsghdr* nlh = newlink_request(buf, seq_, *index, ifi);
  mnl_attr_put_u32(nlh, IFLA_NET_NS_FD, static_cast<uint32_t>(netns_fd));
  mnl_attr_put_strz(nlh, IFLA_IFNAME, new_name.c_str());
  Reply reply = transact(nl_, portid_, nlh, nullptr);
  if (reply.err == EEXIST)
    return Error{fmt::format("netlink: move link {}: the namespace already has an interface {}",
                             ifname, new_name)};
  if (reply.err != 0)
    return Error{
        describe(fmt::format("move link to another namespace as {}", new_name), ifname, reply)};
  return {};
}

Status Socket::delete_link(const std::string& ifname) {
  if (auto ok = dataplane::check_interface_name(ifname); !ok)
    return Error{fmt::format("netlink: delete link \"{}\": {}", ifname, ok.error())};
  Link l;
  Reply lookup = get_link(nl_, portid_, seq_, ifname, l);
  if (lookup.err == ENODEV) return {};  // gone already is what was asked for
  if (lookup.err != 0) return Error{describe("delete link", ifname, lookup)};
  alignas(nlmsghdr) char buf[kRequestBufferSize];
  nlmsghdr* nlh = start(buf, RTM_DELLINK, NLM_F_ACK, seq_);
  auto* ifi = static_cast<ifinfomsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(ifinfomsg)));
  ifi->ifi_family = AF_UNSPEC;
  ifi->ifi_index = l.index;
  Reply reply = transact(nl_, portid_, nlh, nullptr);
  if (reply.err != 0 && reply.err != ENODEV) return Error{describe("delete link", ifname, reply)};
  return {};
}

namespace {

// RTM_NEWADDR / RTM_DELADDR for address on interface index.
nlmsghdr* address_request(char* buf, uint16_t type, uint16_t flags, uint32_t& seq, int index,
                          const Address& address) {
  nlmsghdr* nlh = start(buf, type, flags, seq);
  auto* ifa = static_cast<ifaddrmsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(ifaddrmsg)));
  ifa->ifa_family = static_cast<uint8_t>(address.family);
  ifa->ifa_prefixlen = address.cidr;
  ifa->ifa_scope = RT_SCOPE_UNIVERSE;
  ifa->ifa_index = static_cast<uint32_t>(index);
  if (address.family == AF_INET6) ifa->ifa_flags = IFA_F_NODAD;
  size_t len = addr_len(address.family);
  mnl_attr_put(nlh, IFA_LOCAL, len, address.addr.data());
  mnl_attr_put(nlh, IFA_ADDRESS, len, address.addr.data());
  return nlh;
}

}  // namespace

Status Socket::add_address(const std::string& ifname, const Address& address) {
  if (!valid_prefix(address))
    return Error{fmt::format("netlink: add address on {}: not an IPv4 or IPv6 address", ifname)};
  auto index = ifindex(ifname);
  if (!index) return index.failure();
  alignas(nlmsghdr) char buf[kRequestBufferSize];
  nlmsghdr* nlh = address_request(buf, RTM_NEWADDR, NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL, seq_,
                                  *index, address);
  Reply reply = transact(nl_, portid_, nlh, nullptr);
  if (reply.err != 0 && reply.err != EEXIST)
    return Error{describe("add address " + address.to_string(), ifname, reply)};
  return {};
}

Status Socket::remove_address(const std::string& ifname, const Address& address) {
  if (!valid_prefix(address))
    return Error{fmt::format("netlink: remove address on {}: not an IPv4 or IPv6 address", ifname)};
  auto index = ifindex(ifname);
  if (!index) return index.failure();
  alignas(nlmsghdr) char buf[kRequestBufferSize];
  nlmsghdr* nlh = address_request(buf, RTM_DELADDR, NLM_F_ACK, seq_, *index, address);
  Reply reply = transact(nl_, portid_, nlh, nullptr);
  if (reply.err != 0 && reply.err != EADDRNOTAVAIL)
    return Error{describe("remove address " + address.to_string(), ifname, reply)};
  return {};
}

Result<std::vector<Address>> Socket::addresses(const std::string& ifname) {
  auto index = ifindex(ifname);
  if (!index) return index.failure();
  const auto want = static_cast<uint32_t>(*index);
  std::vector<Address> out;
  ifaddrmsg request{};
  request.ifa_family = AF_UNSPEC;
  Reply reply = dump(
      nl_, portid_, seq_, RTM_GETADDR, request, [&] { out.clear(); },
      [&](const nlmsghdr* msg) {
        if (msg->nlmsg_type != RTM_NEWADDR || mnl_nlmsg_get_payload_len(msg) < sizeof(ifaddrmsg))
          return;
        const auto* info = static_cast<const ifaddrmsg*>(mnl_nlmsg_get_payload(msg));
        if (info->ifa_index != want) return;
        if (info->ifa_family != AF_INET && info->ifa_family != AF_INET6) return;
        std::array<const nlattr*, IFA_LOCAL + 1> tb;
        parse_attrs(msg, sizeof(ifaddrmsg), tb);
        Address a;
        a.family = info->ifa_family;
        a.cidr = info->ifa_prefixlen;
        // IFA_LOCAL is the interface's own address; IFA_ADDRESS the peer's on a
        // point-to-point link, or the same address otherwise.
        if (!read_addr(tb[IFA_LOCAL] ? tb[IFA_LOCAL] : tb[IFA_ADDRESS], a.family, a.addr)) return;
        out.push_back(a);
      });
  if (reply.err != 0) return Error{describe("list addresses", ifname, reply)};
  return out;
}

namespace {

nlmsghdr* route_request(char* buf, uint16_t type, uint16_t flags, uint32_t& seq, int index,
                        const dataplane::Prefix& dst, const Address* gateway = nullptr) {
  nlmsghdr* nlh = start(buf, type, flags, seq);
  auto* rtm = static_cast<rtmsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(rtmsg)));
  rtm->rtm_family = static_cast<uint8_t>(dst.family);
  rtm->rtm_dst_len = dst.cidr;
  rtm->rtm_table = RT_TABLE_MAIN;
  if (type == RTM_NEWROUTE) {
    rtm->rtm_protocol = kRouteProtocol;
    rtm->rtm_scope =
        dst.family == AF_INET && gateway == nullptr ? RT_SCOPE_LINK : RT_SCOPE_UNIVERSE;
    rtm->rtm_type = RTN_UNICAST;
  } else {
    // Delete whatever protocol, scope and type the route has, as `ip route del` does.
    rtm->rtm_scope = RT_SCOPE_NOWHERE;
  }
  if (dst.cidr > 0) mnl_attr_put(nlh, RTA_DST, addr_len(dst.family), dst.addr.data());
  if (gateway != nullptr)
    mnl_attr_put(nlh, RTA_GATEWAY, addr_len(gateway->family), gateway->addr.data());
  mnl_attr_put_u32(nlh, RTA_OIF, static_cast<uint32_t>(index));
  mnl_attr_put_u32(nlh, RTA_TABLE, RT_TABLE_MAIN);
  return nlh;
}

}  // namespace

Status Socket::add_route(const std::string& ifname, const dataplane::Prefix& dst,
                         const std::optional<Address>& via, bool replace) {
  if (!valid_prefix(dst))
    return Error{fmt::format("netlink: add route on {}: not an IPv4 or IPv6 prefix", ifname)};
  if (via && via->family != dst.family)
    return Error{fmt::format("netlink: add route on {}: gateway {} is not of the route's family",
                             ifname, via->to_string())};
  const dataplane::Prefix masked = dst.masked();
  auto index = ifindex(ifname);
  if (!index) return index.failure();
  alignas(nlmsghdr) char buf[kRequestBufferSize];
  nlmsghdr* nlh = route_request(buf, RTM_NEWROUTE,
                                NLM_F_ACK | NLM_F_CREATE | (replace ? NLM_F_REPLACE : NLM_F_EXCL),
                                seq_, *index, masked, via ? &*via : nullptr);
  Reply reply = transact(nl_, portid_, nlh, nullptr);
  if (reply.err == EEXIST && !replace)
    return Error{fmt::format("netlink: add route {} on {}: the table has a route to {} already",
                             masked.to_string(), ifname, masked.to_string())};
  if (reply.err != 0) return Error{describe("add route " + masked.to_string(), ifname, reply)};
  return {};
}

Status Socket::remove_route(const std::string& ifname, const dataplane::Prefix& dst) {
  if (!valid_prefix(dst))
    return Error{fmt::format("netlink: remove route on {}: not an IPv4 or IPv6 prefix", ifname)};
  const dataplane::Prefix masked = dst.masked();
  auto index = ifindex(ifname);
  if (!index) return index.failure();
  alignas(nlmsghdr) char buf[kRequestBufferSize];
  nlmsghdr* nlh = route_request(buf, RTM_DELROUTE, NLM_F_ACK, seq_, *index, masked);
  Reply reply = transact(nl_, portid_, nlh, nullptr);
  if (reply.err != 0 && reply.err != ESRCH && reply.err != ENOENT)
    return Error{describe("remove route " + masked.to_string(), ifname, reply)};
  return {};
}

Result<std::vector<Route>> Socket::routes(const std::string& ifname) {
  auto index = ifindex(ifname);
  if (!index) return index.failure();
  const auto want = static_cast<uint32_t>(*index);
  std::vector<Route> out;
  for (sa_family_t family : {AF_INET, AF_INET6}) {
    const size_t first = out.size();
    rtmsg request{};
    request.rtm_family = static_cast<uint8_t>(family);
    Reply reply = dump(
        nl_, portid_, seq_, RTM_GETROUTE, request, [&] { out.resize(first); },
        [&](const nlmsghdr* msg) {
          if (msg->nlmsg_type != RTM_NEWROUTE || mnl_nlmsg_get_payload_len(msg) < sizeof(rtmsg))
            return;
          const auto* info = static_cast<const rtmsg*>(mnl_nlmsg_get_payload(msg));
          if (info->rtm_family != family || info->rtm_type != RTN_UNICAST) return;
          if (info->rtm_flags & RTM_F_CLONED) return;
          std::array<const nlattr*, RTA_TABLE + 1> tb;
          parse_attrs(msg, sizeof(rtmsg), tb);
          uint32_t table = info->rtm_table;
          if (tb[RTA_TABLE] != nullptr && mnl_attr_validate(tb[RTA_TABLE], MNL_TYPE_U32) == 0)
            table = mnl_attr_get_u32(tb[RTA_TABLE]);
          if (table != RT_TABLE_MAIN) return;
          if (tb[RTA_OIF] == nullptr || mnl_attr_validate(tb[RTA_OIF], MNL_TYPE_U32) != 0 ||
              mnl_attr_get_u32(tb[RTA_OIF]) != want)
            return;
          Route r;
          r.dst.family = family;
          r.dst.cidr = info->rtm_dst_len;
          if (r.dst.cidr > r.dst.max_cidr()) return;
          if (r.dst.cidr > 0 && !read_addr(tb[RTA_DST], family, r.dst.addr)) return;
          r.dst = r.dst.masked();
          r.protocol = info->rtm_protocol;
          out.push_back(r);
        });
    if (reply.err != 0)
      return Error{
          describe(family == AF_INET ? "list IPv4 routes" : "list IPv6 routes", ifname, reply)};
  }
  return out;
}

}  // namespace faraday::control::netlink
