// netlink.h: the interface faradayd manages, configured through rtnetlink (libmnl):
// link lookup, MTU, up/down, addresses, routes via the interface, link deletion.
//
// Contract:
// - One Socket owns one NETLINK_ROUTE socket, bound in the network namespace of the
//   thread that called open(); every operation acts in that namespace.
// - Every operation is synchronous: it sends one request (or a dump) and waits for
//   the kernel's answer. Nothing is cached; interfaces are looked up by name on each
//   call, so a deleted or renamed interface gives a clear error, never a stale index.
// - Every operation returns a Result or Status (result.h) whose error names
//   the operation, the interface and the kernel's reason (strerror of its errno,
//   plus its extended-ack message when it sends one), e.g.
//   "netlink: set MTU 100 on wg0: Invalid argument".
// - Idempotent where reconciling needs it: adding an address that is there, removing
//   one that is not, removing a route that is not there, and deleting a link that
//   does not exist all succeed. add_route() replaces (NLM_F_REPLACE), so adding the
//   same prefix again succeeds and takes the route over.
// - Routes are in the main table, scope link (no gateway), and carry kRouteProtocol
//   so a reconciler can tell its own routes from the kernel's subnet routes.
//
// Threads: a Socket is used by one thread at a time (the control thread); it has no
// locks. Different Sockets are independent.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "dataplane/net.h"
#include "result.h"

struct mnl_socket;

namespace faraday::control::netlink {

// rtm_protocol of the routes add_route() installs ("proto 70" in `ip route`); not
// used by any routing daemon listed in linux/rtnetlink.h or iproute2's rt_protos.
inline constexpr uint8_t kRouteProtocol = 70;

struct Link {
  int index = 0;
  uint32_t mtu = 0;
  bool up = false;  // administratively up (IFF_UP)
};

// An address on an interface: addr is the interface's own address (bits past cidr
// kept) and cidr the length of its on-link subnet, e.g. 10.0.0.1/24. A host prefix
// (/32, /128) adds no subnet route.
using Address = dataplane::Prefix;

// "10.0.0.1/24", "fd00::1/64", or a bare address (host prefix). Unlike
// Prefix::parse() the address bits are kept. nullopt on anything else.
std::optional<Address> parse_address(std::string_view text);

struct Route {
  dataplane::Prefix dst;  // masked
  uint8_t protocol = 0;   // kRouteProtocol for routes add_route() installed

  bool operator==(const Route&) const = default;
};

class Socket {
 public:
  // Opens and binds a NETLINK_ROUTE socket (close-on-exec) in the calling thread's
  // network namespace.
  static Result<Socket> open();

  Socket(Socket&& other) noexcept;
  Socket& operator=(Socket&& other) noexcept;
  Socket(const Socket&) = delete;
  Socket& operator=(const Socket&) = delete;
  ~Socket();

  // Index, MTU and state of interface `ifname`; error if there is none.
  Result<Link> link(const std::string& ifname);
  Result<int> ifindex(const std::string& ifname);

  Status set_mtu(const std::string& ifname, uint32_t mtu);
  Status set_up(const std::string& ifname, bool up);
  // Moves the interface into the network namespace `netns_fd` refers to,
  // renamed `new_name` there; an error naming it when that namespace has an
  // interface of that name already (the interface then stays here).
  Status move_link(const std::string& ifname, int netns_fd, const std::string& new_name);
  // Deletes the interface; success when it does not exist.
  Status delete_link(const std::string& ifname);

  // IPv6 addresses are added with IFA_F_NODAD (usable at once, no duplicate
  // detection on a tunnel). Adding an existing address and removing a missing one
  // succeed.
  Status add_address(const std::string& ifname, const Address& address);
  Status remove_address(const std::string& ifname, const Address& address);
  // Every IPv4 and IPv6 address on the interface, link-local ones included.
  Result<std::vector<Address>> addresses(const std::string& ifname);

  // Route to dst (masked first) through the interface, created or replaced;
  // with `via`, through that gateway on the interface. replace = false: an
  // error naming it when the table has a route to dst already (kept).
  Status add_route(const std::string& ifname, const dataplane::Prefix& dst,
                   const std::optional<Address>& via = std::nullopt, bool replace = true);
  // Removes the route to dst through the interface; success when it is not there.
  Status remove_route(const std::string& ifname, const dataplane::Prefix& dst);
  // The unicast routes in the main table whose only next hop is the interface (both
  // families), whoever installed them; see Route::protocol. To reconcile: add the
  // missing prefixes, remove the kRouteProtocol routes that are no longer wanted.
  Result<std::vector<Route>> routes(const std::string& ifname);

 private:
  explicit Socket(mnl_socket* nl);

  mnl_socket* nl_ = nullptr;
  uint32_t portid_ = 0;
  uint32_t seq_ = 0;
};

}  // namespace faraday::control::netlink
