// dpdk_standalone.cpp: see dpdk_standalone.h.
#include "control/dpdk_standalone.h"

#include "config.h"

#if FARADAY_HAVE_DPDK
#include <fcntl.h>
#include <net/if.h>
#include <poll.h>
#include <rte_ethdev.h>
#include <sched.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <fmt/ranges.h>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <memory>
#include <optional>
#include <vector>

#include "common/log.h"
#include "control/uapi.h"
#include "crypto/aead_batch.h"
#include "dataplane/device_config.h"
#include "dataplane/dpdk_lcore.h"
#include "dataplane/inner_link.h"
#endif

namespace faraday::control {

#if !FARADAY_HAVE_DPDK

bool dpdk_built() {
  return false;
}

int run_standalone_dpdk(const StandaloneOptions&, const DpdkOptions&) {
  log::error("this faradayd was built without DPDK (install libdpdk-dev and rebuild)");
  return 2;
}

#else

namespace {

using namespace faraday::dataplane;

// An inner packet, the transport header, tag and padding (48), and the frame's
// headers (IPv6: 62) in the 2048 data bytes of an mbuf, rounded down.
constexpr uint32_t kMaxMtu = 1920;
// What a datagram adds to an inner packet on the wire, IP and UDP headers
// included (IPv6), as wireguard-go and Linux count it.
constexpr uint32_t kUnderlayOverhead = 80;

// "10.0.0.1/24" or "fd00::1/64": the address itself and its on-link prefix.
std::optional<std::pair<Prefix, uint8_t> > parse_address(const std::string& text) {
  const size_t slash = text.find('/');
  if (slash == std::string::npos) return std::nullopt;
  std::optional<Prefix> host = Prefix::parse(text.substr(0, slash));
  std::optional<Prefix> net = Prefix::parse(text);
  if (!host || !net || net->cidr == 0) return std::nullopt;
  return std::pair{*host, net->cidr};
}

// Whether a could be a host's unicast address: not unspecified, loopback,
// multicast or (IPv4) the reserved 0/8 and 240/4.
bool host_address(const Prefix& a) {
  const uint8_t* p = a.addr.data();
  if (a.family == AF_INET) return p[0] != 0 && p[0] != 127 && p[0] < 224;
  static constexpr std::array<uint8_t, 16> kZero{};
  std::array<uint8_t, 16> loopback{};
  loopback[15] = 1;
  return a.addr != kZero && a.addr != loopback && p[0] != 0xff;
}

// Whether the IPv4 address at ip is neither the network's own address nor its
// broadcast address on a link of that prefix (on /31 and /32, every address
// is a host's).
bool v4_host_in(const uint8_t* ip, uint8_t prefix) {
  if (prefix >= 31) return true;
  uint32_t host = 0;
  const uint32_t mask = ~uint32_t{0} >> prefix;
  for (int i = 0; i < 4; ++i) host = host << 8 | ip[i];
  return (host & mask) != 0 && (host & mask) != mask;
}

// One --dpdk-address into self (an error if its family already has one).
Status add_address(const std::string& text, UnderlayAddress& self) {
  auto address = parse_address(text);
  if (!address)
    return Error{"--dpdk-address \"" + text +
                 "\": want ADDRESS/PREFIX with a prefix of 1 or more, e.g. 10.0.0.1/24"};
  const bool v4 = address->first.family == AF_INET;
  if (!host_address(address->first))
    return Error{"--dpdk-address \"" + text +
                 "\": not a host's address (unspecified, loopback, multicast or reserved)"};
  if (v4 ? self.v4.has_value() : self.v6.has_value())
    return Error{"--dpdk-address \"" + text + "\": one address per family (IPv4, IPv6)"};
  if (v4 && !v4_host_in(address->first.addr.data(), address->second))
    return Error{"--dpdk-address \"" + text +
                 "\": that is the subnet's own or broadcast address, not a host's"};
  if (v4) {
    UnderlayAddress::V4 a;
    std::memcpy(a.addr.data(), address->first.addr.data(), 4);
    a.prefix = address->second;
    self.v4 = a;
  } else {
    UnderlayAddress::V6 a;
    a.addr = address->first.addr;
    a.prefix = address->second;
    self.v6 = a;
  }
  return {};
}

// One --dpdk-gateway into self, whose addresses are set.
Status add_gateway(const std::string& text, UnderlayAddress& self) {
  std::optional<Prefix> gateway = Prefix::parse(text);
  const bool v4 = gateway && gateway->family == AF_INET;
  if (!gateway || gateway->cidr != gateway->max_cidr() ||
      !(v4 ? self.v4.has_value() : self.v6.has_value()))
    return Error{"--dpdk-gateway \"" + text + "\": want an address of a family --dpdk-address has"};
  const bool taken = v4 ? self.v4->gateway.has_value() : self.v6->gateway.has_value();
  const bool own = v4 ? std::memcmp(self.v4->addr.data(), gateway->addr.data(), 4) == 0
                      : self.v6->addr == gateway->addr;
  if (taken) return Error{"--dpdk-gateway \"" + text + "\": one gateway per family"};
  if (own) return Error{"--dpdk-gateway \"" + text + "\": that is this node's own address"};
  if (!host_address(*gateway) || (v4 && !v4_host_in(gateway->addr.data(), self.v4->prefix)))
    return Error{"--dpdk-gateway \"" + text + "\": not a host's address on that link"};
  if (!on_link(self, gateway->family, gateway->addr))
    return Error{"--dpdk-gateway \"" + text + "\": not on the link of its --dpdk-address"};
  if (v4) {
    std::array<uint8_t, 4> gw;
    std::memcpy(gw.data(), gateway->addr.data(), 4);
    self.v4->gateway = gw;
  } else {
    self.v6->gateway = gateway->addr;
  }
  return {};
}

Result<UnderlayAddress> underlay_address(const DpdkOptions& d, const MacAddress& mac) {
  UnderlayAddress self;
  self.mac = mac;
  self.port = d.listen_port;
  if (d.addresses.empty())
    return Error{"--dpdk-address: this node's address on the port is needed"};
  for (const std::string& text : d.addresses)
    if (Status added = add_address(text, self); !added) return Error{added.error()};
  for (const std::string& text : d.gateways)
    if (Status added = add_gateway(text, self); !added) return Error{added.error()};
  // A host prefix reaches its neighbours only through a gateway it can reach
  // (for IPv6, a link-local one).
  if ((self.v4 && self.v4->prefix == 32 && !self.v4->gateway) ||
      (self.v6 && self.v6->prefix == 128 && !self.v6->gateway))
    return Error{
        "--dpdk-address: a host prefix has no neighbours; give the link's prefix (e.g. "
        "/24, /64), and --dpdk-gateway for what is off it (IPv6: a link-local gateway "
        "serves a /128)"};
  return self;
}

// The first CPU this process may run on, as an lcore list.
std::string first_cpu() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(set), &set) == 0)
    for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu)
      if (CPU_ISSET(cpu, &set)) return std::to_string(cpu);
  return "0";
}

bool valid_ifname(const std::string& name) {
  if (name == "." || name == "..") return false;
  if (name.empty() || name.size() > 15) return false;
  for (char c : name)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_' && c != '.')
      return false;
  return true;
}

void to_log(LogLevel level, std::string_view line) {
  if (level == LogLevel::kError)
    log::error("{}", line);
  else if (level == LogLevel::kWarn)
    log::warn("{}", line);
  else
    log::info("{}", line);
}

// What wg(8) may change here: not the UDP port (--dpdk-listen-port) nor a fwmark.
Result<void, uapi::Error> check_set(const uapi::SetRequest& r, uint16_t port) {
  if (r.listen_port && *r.listen_port != port)
    return uapi::Error{EINVAL, "listen-port is fixed on a DPDK port (--dpdk-listen-port)",
                       uapi::Reject::kApplyFailed};
  if (r.fwmark && *r.fwmark != 0)
    return uapi::Error{EINVAL, "no fwmark on a DPDK port", uapi::Reject::kApplyFailed};
  return {};
}

// " frame_not_for_us=3 ..." for the reasons that are not zero, each name
// after `prefix`; their sum in *total.
std::string drops_text(const std::array<Counter, static_cast<size_t>(FrameDrop::kCount)>& drops,
                       std::string_view prefix, uint64_t* total) {
  std::string text;
  *total = 0;
  for (size_t r = 0; r < drops.size(); ++r) {
    *total += drops[r];
    if (drops[r] != 0)
      text += fmt::format(" {}{}={}", prefix, frame_drop_name(static_cast<FrameDrop>(r)), drops[r]);
  }
  return text;
}

// The ports' and the links' counters, after the "stats:" line on SIGUSR1 and at exit.
void log_ports(const UnderlayLink& link, const dpdk::Lcore& lcore, const dpdk::Port& underlay,
               const dpdk::Port& inner, const InnerLink* tap) {
  const UnderlayLink::Counters& l = link.counters();
  uint64_t dropped = 0;
  const std::string drops = drops_text(l.drops, "", &dropped);
  const dpdk::Receive::Counters& rx = lcore.receive().counters();
  const dpdk::Transmit::Counters& tx = lcore.transmit().counters();
  const dpdk::Lcore::Counters& c = lcore.counters();
  std::string tap_text;
  if (tap) {
    uint64_t tap_dropped = 0;
    const std::string tap_drops = drops_text(tap->counters().drops, "inner_", &tap_dropped);
    tap_text = fmt::format(
        " inner_packets={} inner_answers={} inner_answers_lost={} inner_ignored={} "
        "inner_chained={} inner_frames_dropped={}{}",
        tap->counters().packets, tap->counters().answers, c.inner_answers_lost,
        tap->counters().ignored, c.inner_chained, tap_dropped, tap_drops);
  }
  // What the device itself lost: frames its RX ring had no room for.
  rte_eth_stats device{};
  rte_eth_stats_get(underlay.id(), &device);
  log::info(
      "ports: dpdk underlay rx={} rx_missed={} datagrams={} rx_chained={} rx_no_mbuf={} "
      "answers={} requests={} learnt={} not_learnt={} neighbours={} tx={} tx_no_mbuf={} "
      "tx_not_framed={} tx_unresolved={} tx_no_route={} tx_full={} held={} held_lost={} "
      "frames_dropped={}{} ; inner inner_rx={} inner_tx={} inner_tx_full={}{}",
      rx.frames, device.imissed, rx.datagrams, rx.chained, rx.no_mbuf, l.answers, l.requests,
      l.learnt, l.not_learnt, link.neighbors(), tx.frames, tx.no_mbuf, tx.not_framed,
      l.tx_unresolved, l.tx_no_route, underlay.counters().tx_full, tx.held, tx.held_lost, dropped,
      drops, c.inner_rx, c.inner_tx, inner.counters().tx_full, tap_text);
}

}  // namespace

bool dpdk_built() {
  return true;
}

namespace {

// Everything the interface is made of, in the order it is torn down backwards.
struct Interface {
  // Both ports stop before either pool is freed: each holds the other's mbufs.
  ~Interface() {
    if (underlay) underlay->close();
    if (inner) inner->close();
  }
  std::unique_ptr<dpdk::Port> underlay, inner;
  crypto::AeadChoice aead;
  SystemClock clock;
  std::unique_ptr<Device> dev;
  std::unique_ptr<UnderlayLink> link;
  std::unique_ptr<InnerLink> inner_link;  // a TAP's L2 side; none on a TUN
  std::unique_ptr<dpdk::Lcore> lcore;
  std::unique_ptr<uapi::Server> server;
  std::string ifname;
  std::vector<pollfd> pollfds;  // the signalfd's and the UAPI server's
  Counters logged;              // what the last "stats:" line said
  Nanos last_stats = 0;
};

std::string vhost_path(const StandaloneOptions& o, const DpdkOptions& d) {
  return d.vhost_socket.empty() ? "/run/faraday/" + o.ifname + "-vhost.sock" : d.vhost_socket;
}

// The inner port's device string.
std::string inner_device_of(const StandaloneOptions& o, const DpdkOptions& d) {
  if (d.inner == "vhost") return "net_vhost0,iface=" + vhost_path(o, d) + ",queues=1";
  return (d.inner == "tun" ? "net_tun0,iface=" : "net_tap0,iface=") + o.ifname;
}

// Whether the vhost-user socket's path can be one: absolute, short enough for
// a unix socket, nothing the device string would split on.
bool valid_vhost_path(const std::string& path) {
  return !path.empty() && path[0] == '/' && path.size() < sizeof(sockaddr_un{}.sun_path) &&
         path.find_first_of(",=") == std::string::npos;
}

// Makes the socket's directory, and takes the path for this process: a lock
// on PATH.lock, held until exit, so two daemons never both take it; then a
// socket left by a faradayd that died (connect() refused) is removed, while
// one that answers, or anything else at the path, is refused.
Status prepare_vhost_socket(const std::string& path) {
  const std::string what = "--dpdk-vhost-socket \"" + path + "\": ";
  const std::string dir = path.substr(0, path.rfind('/'));
  struct stat st;
  if (!dir.empty() && mkdir(dir.c_str(), 0755) != 0 &&
      (errno != EEXIST || stat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)))
    return Error{what + "cannot make the directory " + dir + ": " + std::strerror(errno)};
  const int lock = open((path + ".lock").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (lock < 0) return Error{what + "cannot make " + path + ".lock: " + std::strerror(errno)};
  if (flock(lock, LOCK_EX | LOCK_NB) != 0) {
    close(lock);
    return Error{what + "in use by another faradayd (" + path + ".lock is held)"};
  }
  // The lock stays held (its descriptor open) for as long as this process runs.
  if (lstat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return {};
    return Error{what + std::strerror(errno)};
  }
  if (!S_ISSOCK(st.st_mode)) return Error{what + "exists and is not a socket"};
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path.c_str(), path.size());
  const int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return Error{what + "socket: " + std::strerror(errno)};
  const int rc = connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof(addr));
  const int err = errno;
  close(fd);
  if (rc == 0) return Error{what + "in use (something answers on it)"};
  if (err != ECONNREFUSED) return Error{what + "not a stale socket: " + std::strerror(err)};
  if (unlink(path.c_str()) != 0)
    return Error{what + "cannot remove a stale socket: " + std::strerror(errno)};
  log::info("{}: removed a stale socket", path);
  return {};
}

// Checks the settings and starts the EAL with both ports' devices: 0, or the
// exit code (2: a bad setting, 1: DPDK refused).
int start_eal(const StandaloneOptions& o, const DpdkOptions& d, const std::string& inner) {
  if (!valid_ifname(o.ifname)) {
    log::error("interface name \"{}\": letters, digits, '-', '_' and '.', at most 15", o.ifname);
    return 2;
  }
  if (o.mtu > kMaxMtu) {
    log::error("--mtu {}: at most {} on a DPDK port (a packet and its headers fit one mbuf)", o.mtu,
               kMaxMtu);
    return 2;
  }
  if (Result<UnderlayAddress> checked = underlay_address(d, MacAddress{}); !checked) {
    log::error("{}", checked.error());
    return 2;
  }
  if (d.inner == "vhost") {
    if (!valid_vhost_path(vhost_path(o, d))) {
      log::error(
          "--dpdk-vhost-socket \"{}\": want an absolute path under 108 bytes, without "
          "',' or '='",
          vhost_path(o, d));
      return 2;
    }
    if (Status ready = prepare_vhost_socket(vhost_path(o, d)); !ready) {
      log::error("{}", ready.error());
      return 1;
    }
  } else if (!d.vhost_socket.empty()) {
    log::error("--dpdk-vhost-socket: only with --dpdk-inner vhost");
    return 2;
  }
  dpdk::EalSettings eal;
  eal.lcores = d.lcores.empty() ? first_cpu() : d.lcores;
  eal.hugepages = d.hugepages;
  eal.memory_mb = d.memory_mb;
  eal.devices = {d.port, inner};
  if (Result<std::vector<std::string> > args = dpdk::eal_arguments(eal); !args) {
    log::error("{}", args.error());
    return 2;
  }
  if (Result<void> started = dpdk::init_eal(eal); !started) {
    log::error("{}", started.error());
    return 1;
  }
  return 0;
}

// The kernel interface's MAC address (zero if it cannot be read).
MacAddress kernel_mac(const std::string& ifname) {
  MacAddress mac{};
  ifreq ifr{};
  std::strncpy(ifr.ifr_name, ifname.c_str(), IFNAMSIZ - 1);
  const int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd >= 0 && ioctl(fd, SIOCGIFHWADDR, &ifr) == 0)
    std::memcpy(mac.data(), ifr.ifr_hwaddr.sa_data, mac.size());
  if (fd >= 0) close(fd);
  return mac;
}

// The L2 side of a TAP or a vhost-user socket: faradayd's MAC address on it is
// the port's, unless that is the kernel interface's own (then one next to it,
// locally administered). A TAP hands over every frame the host sends, whatever
// its destination, and so does net_vhost. A vhost-user application's MAC is
// learnt from its first frame.
void attach_inner_link(const std::string& ifname, const DpdkOptions& d, Interface& i) {
  const MacAddress host = d.inner == "vhost" ? MacAddress{} : kernel_mac(ifname);
  MacAddress ours = i.inner->mac();
  if (ours == host) {
    ours[0] = static_cast<uint8_t>((ours[0] | 0x02) & ~0x01);
    ours[5] ^= 0x01;
  }
  i.inner_link = std::make_unique<InnerLink>(ours, host);
  i.lcore->set_inner_link(i.inner_link.get());
  if (d.inner == "vhost")
    log::info("interface {}: a vhost-user socket; faradayd answers ARP and ND on it as {}", ifname,
              mac_to_string(ours));
  else
    log::info("interface {}: a TAP; faradayd answers ARP and ND on it as {} (the host is {})",
              ifname, mac_to_string(ours), mac_to_string(host));
}

// The ports, the core, the lcore and the UAPI server.
Result<void> open_parts(const StandaloneOptions& o, const DpdkOptions& d,
                        const std::string& inner_device, Interface& i) {
  auto underlay = dpdk::Port::open({.device = d.port});
  if (!underlay) return Error{underlay.error()};
  auto inner = dpdk::Port::open({.device = inner_device});
  if (!inner) return Error{inner.error()};
  i.underlay = std::move(*underlay);
  i.inner = std::move(*inner);
  if (d.inner != "vhost") {  // a vhost-user application sets its own
    if (int rc = rte_eth_dev_set_mtu(i.inner->id(), static_cast<uint16_t>(o.mtu)); rc != 0)
      log::warn("interface {}: cannot set MTU {}: {}", o.ifname, o.mtu, std::strerror(-rc));
  }
  uint16_t underlay_mtu = 0;
  if (rte_eth_dev_get_mtu(i.underlay->id(), &underlay_mtu) == 0 &&
      o.mtu + kUnderlayOverhead > underlay_mtu)
    log::warn("--mtu {} needs an underlay MTU of {}; {} has {}: larger packets will not arrive",
              o.mtu, o.mtu + kUnderlayOverhead, i.underlay->name(), underlay_mtu);
  auto aead = crypto::select_aead_backend(o.aead_backend);
  if (!aead) return Error{"AEAD: " + aead.error()};
  i.aead = std::move(*aead);
  i.dev = std::make_unique<Device>(i.clock, *i.aead.backend, DeviceOptions{.mtu = o.mtu});
  i.link = std::make_unique<UnderlayLink>(*underlay_address(d, i.underlay->mac()));
  i.lcore = std::make_unique<dpdk::Lcore>(*i.dev, i.clock, *i.inner, *i.underlay, *i.link);
  if (d.inner != "tun") attach_inner_link(o.ifname, d, i);
  Device& dev = *i.dev;
  const uint16_t port = d.listen_port;
  auto server = uapi::Server::listen(
      o.ifname, [&dev, port] { return device_state(dev, port, 0); },
      [&dev, port](const uapi::SetRequest& r) -> Result<void, uapi::Error> {
        if (auto ok = check_set(r, port); !ok) return ok;
        apply_to_device(dev, r, true, to_log);
        return {};
      });
  if (!server) return Error{"cannot serve the UAPI for " + o.ifname + ": " + server.error()};
  i.server = std::move(*server);
  i.ifname = o.ifname;
  return {};
}

// The "stats:" line when forced (SIGUSR1, exit), with the ports' line, or when
// drops or handshakes changed and the last one is `interval` old.
void log_stats(Interface& i, bool force, Nanos interval) {
  const Counters& c = i.dev->counters();
  const Nanos now = i.clock.monotonic();
  const bool changed =
      c.drops != i.logged.drops || c.handshakes_completed != i.logged.handshakes_completed;
  if (force || (changed && now - i.last_stats >= interval)) {
    log::info("stats: {}", stats_text(c));
    i.logged = c;
    i.last_stats = now;
  }
  if (force) log_ports(*i.link, *i.lcore, *i.underlay, *i.inner, i.inner_link.get());
}

// Signals and UAPI requests that are waiting (none: wait up to `idle` for
// them); false once a signal says stop.
bool handle_fds(Interface& i, int signal_fd, const timespec& idle, Nanos stats_interval) {
  std::vector<pollfd>& fds = i.pollfds;
  fds.assign(1, pollfd{signal_fd, POLLIN, 0});
  i.server->append_pollfds(fds);
  bool running = true;
  if (::ppoll(fds.data(), fds.size(), &idle, nullptr) > 0) {
    signalfd_siginfo info;
    while (read(signal_fd, &info, sizeof(info)) == sizeof(info)) {
      if (info.ssi_signo == SIGUSR1) {
        log_stats(i, true, stats_interval);
        continue;
      }
      log::info("signal {} received, shutting down", strsignal(static_cast<int>(info.ssi_signo)));
      running = false;
    }
    i.server->handle(std::span<const pollfd>(fds).subspan(1));
  }
  return running;
}

// Poll mode: the ports every round, the signals and the UAPI between rounds
// (with idle_sleep_us, waiting for them after rounds that found nothing).
void serve(Interface& i, int signal_fd, const StandaloneOptions& o, const DpdkOptions& d) {
  const Nanos stats_interval = Nanos{o.stats_interval_s} * kSecond;
  const timespec busy{0, 0};
  const timespec idle{0, static_cast<long>(d.idle_sleep_us) * 1000};
  Nanos next_check = 0;
  for (bool running = true; running;) {
    size_t moved = 0;
    for (int round = 0; round < 64; ++round) moved += i.lcore->poll();
    running = handle_fds(i, signal_fd, moved == 0 ? idle : busy, stats_interval);
    const Nanos now = i.clock.monotonic();
    if (now >= next_check) {
      next_check = now + kSecond;
      log_stats(i, false, stats_interval);
      if (!i.server->socket_file_present()) {
        log::info("UAPI socket {} was removed, shutting down", i.server->path());
        running = false;
      } else if (d.inner != "vhost" && if_nametoindex(i.ifname.c_str()) == 0) {
        log::info("interface {} was deleted, shutting down", i.ifname);
        running = false;
      }
    }
  }
}

}  // namespace

int run_standalone_dpdk(const StandaloneOptions& o, const DpdkOptions& d) {
  // Blocked before the EAL starts its threads, which inherit the mask: the
  // signals then reach the signalfd, not a default action on another thread.
  sigset_t mask;
  sigemptyset(&mask);
  for (int sig : {SIGTERM, SIGINT, SIGHUP, SIGUSR1}) sigaddset(&mask, sig);
  sigprocmask(SIG_BLOCK, &mask, nullptr);
  const std::string inner_device = inner_device_of(o, d);
  if (int code = start_eal(o, d, inner_device); code != 0) return code;
  Interface i;
  if (Result<void> opened = open_parts(o, d, inner_device, i); !opened) {
    log::error("{}", opened.error());
    return 1;
  }
  log::info(
      "interface {} up ({}): DPDK underlay {} ({}, MAC {}), address {}, UDP port {}, lcores {}, "
      "{}, AEAD {}; UAPI {}",
      o.ifname,
      d.inner == "vhost" ? "vhost-user socket " + vhost_path(o, d) : "a " + d.inner + " interface",
      i.underlay->name(), i.underlay->driver(), mac_to_string(i.underlay->mac()),
      fmt::join(d.addresses, " "), d.listen_port, d.lcores.empty() ? first_cpu() : d.lcores,
      d.idle_sleep_us == 0 ? std::string{"polling all the time"}
                           : fmt::format("waiting up to {} us when idle", d.idle_sleep_us),
      i.aead.backend->describe(), i.server->path());
  log::info("interface {} AEAD backend {}", o.ifname, i.aead.reason);
  const int signal_fd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
  if (signal_fd < 0) {
    log::error("signalfd: {}", std::strerror(errno));
    return 1;
  }
  serve(i, signal_fd, o, d);
  log_stats(i, true, 0);
  close(signal_fd);
  log::info("stopped");
  return 0;
}

#endif

}  // namespace faraday::control
