// containers.cpp: see containers.h.
#include "control/containers.h"

#include <fcntl.h>
#include <linux/if_tun.h>
#include <linux/nsfs.h>
#include <net/if.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>
#include <thread>

#include "common/log.h"
#include "control/netlink.h"
#include "dataplane/tun_port.h"
#include "dataplane/underlay.h"

namespace faraday::control {

namespace {

using dataplane::Prefix;
using nlohmann::json;

constexpr uint64_t kMaxAddresses = 65536;  // looked at in an IPv6 prefix

CniFailure fail(int code, std::string message) {
  return CniFailure{std::move(message), code};
}

std::string errno_text() {
  return std::strerror(errno);
}

// One file descriptor, closed when it goes.
class Fd {
 public:
  explicit Fd(int fd = -1) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }
  int release() { return std::exchange(fd_, -1); }

 private:
  int fd_;
};

// Opens a network namespace file (/var/run/netns/NAME, /proc/PID/ns/net):
// an absolute path to a network namespace other than faradayd's own, never
// waiting on what it is (a FIFO). `gone` says whether the path is missing.
Result<int> open_netns(const std::string& path, bool* gone = nullptr) {
  if (gone) *gone = false;
  if (path.empty() || path[0] != '/')
    return Error{fmt::format("network namespace \"{}\": want an absolute path", path)};
  Fd fd(::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC));
  if (fd.get() < 0) {
    if (gone) *gone = errno == ENOENT;
    return Error{fmt::format("cannot open network namespace {}: {}", path, errno_text())};
  }
  if (::ioctl(fd.get(), NS_GET_NSTYPE) != CLONE_NEWNET)
    return Error{fmt::format("{} is not a network namespace", path)};
  struct stat ns, own;
  if (::fstat(fd.get(), &ns) == 0 && ::stat("/proc/thread-self/ns/net", &own) == 0 &&
      ns.st_dev == own.st_dev && ns.st_ino == own.st_ino)
    return Error{fmt::format("{} is faradayd's own network namespace, not a container's", path)};
  return fd.release();
}

NamespaceIdentity identity_of(int fd) {
  struct stat st;
  if (::fstat(fd, &st) != 0) return {};
  return {static_cast<uint64_t>(st.st_dev), static_cast<uint64_t>(st.st_ino)};
}

bool path_gone(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) != 0 && errno == ENOENT;
}

// What fn gives, run on a short-lived thread inside the namespace, so this
// thread stays in its own.
template <typename T, typename F>
Result<T> in_netns(int netns_fd, const std::string& path, F fn) {
  std::optional<Result<T>> out;
  std::thread([&] {
    if (::setns(netns_fd, CLONE_NEWNET) != 0) {
      out.emplace(Error{fmt::format("cannot enter network namespace {}: {}", path, errno_text())});
      return;
    }
    out.emplace(fn());
  }).join();
  return std::move(*out);
}

Result<netlink::Socket> netlink_in(int netns_fd, const std::string& path) {
  return in_netns<netlink::Socket>(netns_fd, path, [] { return netlink::Socket::open(); });
}

// Opens TAP `name` (made if missing, in the calling thread's namespace),
// non-blocking and close-on-exec; persistent when asked.
Result<int> open_tap(const std::string& name, bool persist) {
  Fd fd(::open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC));
  if (fd.get() < 0) return Error{fmt::format("cannot open /dev/net/tun: {}", errno_text())};
  ifreq ifr{};
  std::memcpy(ifr.ifr_name, name.data(), std::min(name.size(), size_t{IFNAMSIZ - 1}));
  ifr.ifr_flags = IFF_TAP | IFF_NO_PI;
  if (::ioctl(fd.get(), TUNSETIFF, &ifr) != 0)
    return Error{fmt::format("cannot open TAP {}: {}", name, errno_text())};
  if (persist && ::ioctl(fd.get(), TUNSETPERSIST, 1) != 0)
    return Error{fmt::format("cannot make TAP {} persistent: {}", name, errno_text())};
  return fd.release();
}

// The MAC address of the TAP behind fd (the container's side of the link);
// zero if the kernel does not say.
dataplane::MacAddress tap_mac(int fd) {
  ifreq ifr{};
  dataplane::MacAddress mac{};
  if (::ioctl(fd, SIOCGIFHWADDR, &ifr) == 0)
    std::memcpy(mac.data(), ifr.ifr_hwaddr.sa_data, mac.size());
  return mac;
}

// faradayd's MAC address on a container's link: locally administered, from
// the container's address, so it is the same after a restart.
dataplane::MacAddress gateway_mac(const Prefix& address) {
  const size_t n = address.family == AF_INET ? 4 : 16;
  return {0x02,
          0xfa,
          address.addr[n - 4],
          address.addr[n - 3],
          address.addr[n - 2],
          address.addr[n - 1]};
}

// The prefix's n-th address, as a host prefix.
Prefix nth(const Prefix& p, uint64_t n) {
  Prefix out = p.masked();
  out.cidr = out.max_cidr();
  const size_t bytes = out.family == AF_INET ? 4 : 16;
  for (size_t i = bytes; i-- > 0 && n != 0;) {
    const uint64_t sum = out.addr[i] + (n & 0xff);
    out.addr[i] = static_cast<uint8_t>(sum);
    n = (n >> 8) + (sum >> 8);
  }
  return out;
}

// "10.99.1.2/24": a host's address with its prefix's length.
netlink::Address on_subnet(const Prefix& host, const Prefix& prefix) {
  netlink::Address a = host;
  a.cidr = prefix.cidr;
  return a;
}

bool same_host(const Prefix& a, const Prefix& b) {
  return a.family == b.family && a.addr == b.addr;
}

bool in_prefix(const Prefix& prefix, const Prefix& host) {
  Prefix h = host;
  h.cidr = prefix.cidr;
  return h.family == prefix.family && h.masked() == prefix.masked();
}

}  // namespace

Containers::Containers(ContainersOptions options, Publish publish)
    : options_(std::move(options)), publish_(std::move(publish)) {}

Result<std::unique_ptr<Containers>> Containers::open(ContainersOptions options, Publish publish) {
  const Prefix& p = options.prefix;
  // The gateway and at least one container (IPv4: and the broadcast address).
  if (p.cidr + (p.family == AF_INET ? 2 : 1) > p.max_cidr())
    return Error{fmt::format("container-prefix {} is too small for a gateway and a container",
                             p.to_string())};
  std::unique_ptr<Containers> c(new Containers(std::move(options), std::move(publish)));
  if (Status ok = c->load(); !ok) return ok.failure();
  size_t attached = 0;
  const bool released = c->sweep();
  for (auto& a : c->attachments_) {
    c->attach_again(a);
    if (a.tap) ++attached;
  }
  if (released) {
    if (Status ok = c->save(); !ok) log::warn("containers: {}", ok.error());
  }
  if (!c->attachments_.empty())
    log::info("containers: {} of {} interfaces attached again from {}", attached,
              c->attachments_.size(), c->options_.state_path);
  c->publish();
  return c;
}

Status Containers::load() {
  std::ifstream in(options_.state_path, std::ios::binary);
  if (!in) {
    if (errno == ENOENT) return {};
    return Error{fmt::format("cannot read {}: {}", options_.state_path, errno_text())};
  }
  std::stringstream text;
  text << in.rdbuf();
  const json doc = json::parse(text.str(), nullptr, false);
  const auto bad = [&](std::string_view why) {
    return Error{
        fmt::format("{}: {} (fix or remove the file: it keeps containers' addresses "
                    "from being handed out twice)",
                    options_.state_path, why)};
  };
  if (!doc.is_object() || !doc.contains("attachments") || !doc["attachments"].is_array())
    return bad("not a faradayd container state file");
  for (const auto& e : doc["attachments"]) {
    if (!e.is_object()) return bad("an attachment is not an object");
    const auto text_of = [&](const char* key) -> std::optional<std::string> {
      auto it = e.find(key);
      if (it == e.end() || !it->is_string()) return std::nullopt;
      return it->get<std::string>();
    };
    const auto number_of = [&](const char* key) -> uint64_t {
      auto it = e.find(key);
      return it != e.end() && it->is_number_unsigned() ? it->get<uint64_t>() : 0;
    };
    auto id = text_of("containerID");
    auto ifname = text_of("ifname");
    auto netns = text_of("netns");
    auto address = text_of("address");
    if (!id || !ifname || !netns || !address) return bad("an attachment lacks a field");
    if (!dataplane::check_interface_name(*ifname))
      return bad(fmt::format("interface name \"{}\" is not one", *ifname));
    auto p = Prefix::parse(*address);
    if (!p || p->cidr != p->max_cidr() || !in_prefix(options_.prefix, *p))
      return bad(fmt::format("address {} is not in the container prefix {}", *address,
                             options_.prefix.to_string()));
    for (const auto& other : attachments_)
      if (same_host(other.address, *p) || (other.id == *id && other.ifname == *ifname))
        return bad(fmt::format("{} ({} {}) is listed twice", *address, *id, *ifname));
    Attachment a;
    a.id = *id;
    a.ifname = *ifname;
    a.netns = *netns;
    a.network = text_of("network").value_or("");
    a.address = *p;
    a.ns = {number_of("nsDev"), number_of("nsIno")};
    a.ifindex = static_cast<int>(number_of("ifindex"));
    attachments_.push_back(std::move(a));
  }
  return {};
}

Status Containers::save() const {
  json list = json::array();
  for (const auto& a : attachments_)
    list.push_back({{"containerID", a.id},
                    {"ifname", a.ifname},
                    {"netns", a.netns},
                    {"network", a.network},
                    {"address", a.address.to_string()},
                    {"nsDev", a.ns.dev},
                    {"nsIno", a.ns.ino},
                    {"ifindex", a.ifindex}});
  const json doc = {{"prefix", options_.prefix.to_string()}, {"attachments", list}};
  const std::string text = doc.dump(2, ' ', false, json::error_handler_t::replace) + "\n";
  std::error_code ec;
  const auto dir = std::filesystem::path(options_.state_path).parent_path();
  if (!dir.empty()) std::filesystem::create_directories(dir, ec);
  const std::string tmp = options_.state_path + ".tmp";
  Fd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
  if (fd.get() < 0) return Error{fmt::format("cannot write {}: {}", tmp, errno_text())};
  const ssize_t n = ::write(fd.get(), text.data(), text.size());
  if (n != static_cast<ssize_t>(text.size()) || ::fsync(fd.get()) != 0) {
    const std::string why =
        n >= 0 && n < static_cast<ssize_t>(text.size()) ? "short write (disk full?)" : errno_text();
    ::unlink(tmp.c_str());
    return Error{fmt::format("cannot write {}: {}", tmp, why)};
  }
  if (::rename(tmp.c_str(), options_.state_path.c_str()) != 0) {
    const std::string why = errno_text();
    ::unlink(tmp.c_str());
    return Error{fmt::format("cannot replace {}: {}", options_.state_path, why)};
  }
  if (!dir.empty()) {
    Fd d(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (d.get() >= 0) ::fsync(d.get());
  }
  return {};
}

void Containers::publish() const {
  std::vector<std::shared_ptr<dataplane::ContainerTap>> taps;
  for (const auto& a : attachments_)
    if (a.tap) taps.push_back(a.tap);
  publish_([prefix = options_.prefix, taps = std::move(taps)](dataplane::DataPath& dp) {
    if (Status ok = dp.set_containers(prefix, taps); !ok) log::error("containers: {}", ok.error());
  });
}

bool Containers::sweep() {
  const auto gone = std::remove_if(attachments_.begin(), attachments_.end(), [](const auto& a) {
    if (!path_gone(a.netns)) return false;
    log::info("container {} ({}): its network namespace {} is gone; address {} released", a.id,
              a.ifname, a.netns, a.address.to_string());
    return true;
  });
  const bool any = gone != attachments_.end();
  attachments_.erase(gone, attachments_.end());
  return any;
}

Result<int> Containers::open_same(const Attachment& a) const {
  auto ns = open_netns(a.netns);
  if (!ns) return ns;
  if (identity_of(*ns) != a.ns) {
    ::close(*ns);
    return Error{
        fmt::format("{} is no longer container {}'s network namespace (the path names "
                    "another one now)",
                    a.netns, a.id)};
  }
  return ns;
}

void Containers::attach_again(Attachment& a) {
  auto ns = open_same(a);
  if (!ns) {
    a.problem = ns.error();
    log::warn("container {}: {}", a.id, a.problem);
    return;
  }
  Fd ns_fd(*ns);
  auto nl = netlink_in(ns_fd.get(), a.netns);
  if (!nl) {
    a.problem = nl.error();
    return;
  }
  // Never make the interface anew here: TUNSETIFF would, without address or
  // route. And only the TAP ADD made: the same index in that namespace.
  auto index = nl->ifindex(a.ifname);
  if (!index || *index != a.ifindex) {
    a.problem = fmt::format(
        "interface {} in {} is gone (deleted while faradayd was not "
        "running); delete the container's network and add it again",
        a.ifname, a.netns);
    log::warn("container {}: {}", a.id, a.problem);
    return;
  }
  auto fd = in_netns<int>(ns_fd.get(), a.netns, [&] { return open_tap(a.ifname, false); });
  if (!fd) {
    a.problem = fmt::format("cannot attach to {} in {} again: {}", a.ifname, a.netns, fd.error());
    log::warn("container {}: {}", a.id, a.problem);
    return;
  }
  a.tap = std::make_shared<dataplane::ContainerTap>(*fd, a.ifname, a.address,
                                                    gateway_mac(a.address), tap_mac(*fd));
  a.problem.clear();
}

Prefix Containers::gateway() const {
  return nth(options_.prefix, 1);
}

std::optional<Prefix> Containers::allocate() const {
  const unsigned host_bits = options_.prefix.max_cidr() - options_.prefix.cidr;
  uint64_t count =
      host_bits >= 63 ? kMaxAddresses : std::min(uint64_t{1} << host_bits, kMaxAddresses);
  // IPv4 keeps the broadcast address out; .0 is the network, .1 the gateway.
  if (options_.prefix.family == AF_INET) --count;
  for (uint64_t n = 2; n < count; ++n) {
    const Prefix candidate = nth(options_.prefix, n);
    if (std::none_of(attachments_.begin(), attachments_.end(),
                     [&](const auto& a) { return same_host(a.address, candidate); }))
      return candidate;
  }
  return std::nullopt;
}

Containers::Attachment* Containers::find(const std::string& id, const std::string& ifname) {
  for (auto& a : attachments_)
    if (a.id == id && a.ifname == ifname) return &a;
  return nullptr;
}

Result<Containers::Added, CniFailure> Containers::add(const std::string& id,
                                                      const std::string& ifname,
                                                      const std::string& netns,
                                                      const std::string& network) {
  if (auto ok = dataplane::check_interface_name(ifname); !ok)
    return fail(kCniInvalidConfig, ok.error());
  // The kernel would read '%' as a pattern (eth%d) and pick a name itself.
  if (ifname.find('%') != std::string::npos)
    return fail(kCniInvalidConfig, fmt::format("interface name \"{}\": no '%' allowed", ifname));
  if (sweep()) {
    publish();
    if (Status ok = save(); !ok) return fail(kCniIoFailure, ok.error());
  }
  if (find(id, ifname))
    return fail(kCniExists,
                fmt::format("container {} already has interface {} from faradayd", id, ifname));
  bool gone = false;
  auto ns = open_netns(netns, &gone);
  if (!ns) return fail(gone ? kCniUnknownContainer : kCniInvalidConfig, ns.error());
  Fd ns_fd(*ns);
  auto inside = netlink_in(ns_fd.get(), netns);
  if (!inside) return fail(kCniIoFailure, inside.error());
  if (inside->link(ifname))
    return fail(kCniExists,
                fmt::format("network namespace {} already has an interface {}", netns, ifname));
  auto address = allocate();
  if (!address)
    return fail(kCniTryAgainLater,
                fmt::format("no free address left in the container prefix {} ({} containers)",
                            options_.prefix.to_string(), attachments_.size()));
  // The address is taken before anything holds it: a restart after this
  // point never hands it out again.
  Attachment made;
  made.id = id;
  made.ifname = ifname;
  made.netns = netns;
  made.network = network;
  made.address = *address;
  made.ns = identity_of(ns_fd.get());
  made.problem = "being added";
  attachments_.push_back(std::move(made));
  const auto undo = [&](CniFailure f) {
    attachments_.erase(
        std::remove_if(attachments_.begin(), attachments_.end(),
                       [&](const auto& a) { return a.id == id && a.ifname == ifname; }),
        attachments_.end());
    if (Status ok = save(); !ok) log::warn("containers: {}", ok.error());
    return f;
  };
  if (Status ok = save(); !ok) return undo(fail(kCniIoFailure, ok.error()));

  // The TAP is made here with a name of its own, then moved and renamed. Until
  // it is configured, closing its descriptor deletes it (not persistent).
  static std::mt19937 random{std::random_device{}()};
  const std::string temp = fmt::format("fdc{:08x}", random());
  auto tap_fd = open_tap(temp, false);
  if (!tap_fd) return undo(fail(kCniIoFailure, tap_fd.error()));
  Fd tap(*tap_fd);
  auto host = netlink::Socket::open();
  if (!host) return undo(fail(kCniIoFailure, host.error()));
  if (Status ok = host->set_mtu(temp, options_.mtu); !ok)
    return undo(fail(kCniIoFailure, ok.error()));
  if (Status ok = host->move_link(temp, ns_fd.get(), ifname); !ok)
    return undo(fail(inside->link(ifname) ? kCniExists : kCniIoFailure, ok.error()));
  const netlink::Address subnet = on_subnet(*address, options_.prefix);
  const Prefix via = gateway();
  Prefix any;
  any.family = options_.prefix.family;
  auto index = inside->ifindex(ifname);
  Status configured = index ? Status{} : Status{index.failure()};
  if (configured) configured = inside->set_up(ifname, true);
  if (configured) configured = inside->add_address(ifname, subnet);
  // A default route the namespace has already stays: ADD fails instead.
  if (configured) configured = inside->add_route(ifname, any, via, false);
  // It outlives faradayd from now on, so a restart can attach it again.
  if (configured && ::ioctl(tap.get(), TUNSETPERSIST, 1) != 0)
    configured = Error{fmt::format("cannot make TAP {} persistent: {}", ifname, errno_text())};
  if (!configured) {
    (void)inside->delete_link(ifname);  // the TAP this ADD moved there (index checked above)
    return undo(fail(kCniIoFailure, configured.error()));
  }
  const dataplane::MacAddress mac = tap_mac(tap.get());
  Added added;
  added.ifname = ifname;
  added.mac = dataplane::mac_to_string(mac);
  added.sandbox = netns;
  added.address = subnet.to_string();
  added.gateway = netlink::Address{via.family, via.max_cidr(), via.addr}.to_string();
  if (auto slash = added.gateway.find('/'); slash != std::string::npos) added.gateway.resize(slash);
  added.family = options_.prefix.family == AF_INET ? 4 : 6;
  Attachment* a = find(id, ifname);
  a->ifindex = *index;
  a->tap = std::make_shared<dataplane::ContainerTap>(tap.release(), ifname, *address,
                                                     gateway_mac(*address), mac);
  a->problem.clear();
  if (Status ok = save(); !ok) log::warn("containers: {}", ok.error());
  publish();
  log::info("container {}: {} in {} has {} (gateway {})", id, ifname, netns, added.address,
            added.gateway);
  return added;
}

Result<void, CniFailure> Containers::del(const std::string& id, const std::string& ifname) {
  Attachment* a = find(id, ifname);
  if (a == nullptr) return {};  // never added, or deleted already
  Attachment gone = std::move(*a);
  attachments_.erase(attachments_.begin() + (a - attachments_.data()));
  publish();  // the data path lets go of the TAP
  if (gone.tap) {
    const bool deleted_already = gone.tap->gone();
    gone.tap->set_gone();                       // expected now: the data path does not report it
    ::ioctl(gone.tap->fd(), TUNSETPERSIST, 0);  // goes with the last descriptor
    // And at once from the namespace, so the runtime may add the name again
    // straight away: only while the path is still that namespace and the
    // name still the TAP's.
    if (!deleted_already) {
      if (auto ns = open_same(gone); ns) {
        Fd ns_fd(*ns);
        auto inside = netlink_in(ns_fd.get(), gone.netns);
        auto index = inside ? inside->ifindex(ifname) : Result<int>(Error{""});
        if (index && *index == gone.ifindex) {
          if (Status ok = inside->delete_link(ifname); !ok)
            log::warn("container {}: {}", id, ok.error());
        }
      }
    }
  }
  if (Status ok = save(); !ok) return fail(kCniIoFailure, ok.error());
  log::info("container {}: {} deleted, address {} released", id, ifname, gone.address.to_string());
  return {};
}

Result<void, CniFailure> Containers::check(const std::string& id, const std::string& ifname,
                                           const std::string& netns) {
  Attachment* a = find(id, ifname);
  if (a == nullptr)
    return fail(kCniUnknownContainer,
                fmt::format("faradayd on {} has no interface {} for container {}", options_.ifname,
                            ifname, id));
  if (!netns.empty() && netns != a->netns)
    return fail(kCniUnknownContainer,
                fmt::format("container {}'s {} is in {}, not {}", id, ifname, a->netns, netns));
  if (!a->tap) return fail(kCniIoFailure, a->problem);
  if (a->tap->gone())
    return fail(kCniIoFailure,
                fmt::format("interface {} of container {} is gone (deleted, or its namespace "
                            "was); delete the container's network and add it again",
                            ifname, id));
  auto ns = open_same(*a);
  if (!ns) return fail(kCniIoFailure, ns.error());
  Fd ns_fd(*ns);
  auto inside = netlink_in(ns_fd.get(), a->netns);
  if (!inside) return fail(kCniIoFailure, inside.error());
  auto link = inside->link(ifname);
  if (!link || link->index != a->ifindex)
    return fail(kCniIoFailure, fmt::format("interface {} is missing from {}", ifname, a->netns));
  if (!link->up) return fail(kCniIoFailure, fmt::format("interface {} is down", ifname));
  auto addresses = inside->addresses(ifname);
  const netlink::Address want = on_subnet(a->address, options_.prefix);
  if (!addresses || std::find(addresses->begin(), addresses->end(), want) == addresses->end())
    return fail(kCniIoFailure,
                fmt::format("interface {} lacks its address {}", ifname, want.to_string()));
  auto routes = inside->routes(ifname);
  const bool has_default =
      routes && std::any_of(routes->begin(), routes->end(), [&](const netlink::Route& r) {
        return r.dst.cidr == 0 && r.dst.family == options_.prefix.family;
      });
  if (!has_default)
    return fail(kCniIoFailure, fmt::format("interface {} lacks its default route", ifname));
  return {};
}

std::vector<Containers::Listed> Containers::list() const {
  std::vector<Listed> out;
  for (const auto& a : attachments_) out.push_back({a.id, a.ifname, a.network});
  return out;
}

void add_cni_commands(CtlServer::Commands& commands, Containers* containers,
                      const std::string& unavailable) {
  const auto dump = [](const json& j) {
    return j.dump(-1, ' ', false, json::error_handler_t::replace);
  };
  const auto failure = [dump](const CniFailure& f) {
    return dump({{"error", f.message}, {"code", f.code}});
  };
  const auto usage = [failure](CtlServer::Reply& reply, const char* text) {
    reply(failure(CniFailure{fmt::format("usage: {}", text), kCniInvalidConfig}));
  };
  commands["cni-add"] = [=](const CtlRequest& req, CtlServer::Reply reply) {
    if (req.args.size() != 3 && req.args.size() != 4)
      return usage(reply, "cni-add CONTAINERID IFNAME NETNS [NETWORK]");
    if (!containers) return reply(failure(CniFailure{unavailable, kCniInvalidConfig}));
    auto added = containers->add(req.args[0], req.args[1], req.args[2],
                                 req.args.size() == 4 ? req.args[3] : "");
    if (!added) return reply(failure(added.failure()));
    reply(dump({{"interface", added->ifname},
                {"mac", added->mac},
                {"sandbox", added->sandbox},
                {"address", added->address},
                {"gateway", added->gateway},
                {"family", added->family}}));
  };
  commands["cni-del"] = [=](const CtlRequest& req, CtlServer::Reply reply) {
    if (req.args.size() != 2 && req.args.size() != 3)
      return usage(reply, "cni-del CONTAINERID IFNAME [NETNS]");
    if (!containers) return reply("{}");  // nothing was ever added here
    // NETNS is the runtime's word, not trusted: the namespace ADD saw is used.
    auto done = containers->del(req.args[0], req.args[1]);
    reply(done ? "{}" : failure(done.failure()));
  };
  commands["cni-check"] = [=](const CtlRequest& req, CtlServer::Reply reply) {
    if (req.args.size() != 3) return usage(reply, "cni-check CONTAINERID IFNAME NETNS");
    if (!containers) return reply(failure(CniFailure{unavailable, kCniInvalidConfig}));
    auto done = containers->check(req.args[0], req.args[1], req.args[2]);
    reply(done ? "{}" : failure(done.failure()));
  };
  commands["cni-status"] = [=](const CtlRequest& req, CtlServer::Reply reply) {
    if (!req.args.empty()) return usage(reply, "cni-status");
    if (!containers) return reply(failure(CniFailure{unavailable, kCniPluginNotAvailable}));
    reply("{}");
  };
  commands["cni-list"] = [=](const CtlRequest& req, CtlServer::Reply reply) {
    if (!req.args.empty()) return usage(reply, "cni-list");
    json list = json::array();
    if (containers)
      for (const auto& a : containers->list())
        list.push_back({{"containerID", a.id}, {"ifname", a.ifname}, {"network", a.network}});
    reply(dump({{"attachments", list}}));
  };
}

}  // namespace faraday::control
