// dpdk_standalone.cpp: see dpdk_standalone.h.
#include "control/dpdk_standalone.h"

#include "config.h"

#if FARADAY_HAVE_DPDK
#include <net/if.h>
#include <poll.h>
#include <rte_ethdev.h>
#include <sched.h>
#include <sys/signalfd.h>
#include <unistd.h>

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

Result<UnderlayAddress> underlay_address(const DpdkOptions& d, const MacAddress& mac) {
  auto address = parse_address(d.address);
  if (!address)
    return Error{"--dpdk-address \"" + d.address +
                 "\": want ADDRESS/PREFIX with a prefix of 1 or more, e.g. 10.0.0.1/24"};
  if (address->first.family == AF_INET && address->second < 31) {
    // The subnet's own address and its broadcast address name no host.
    uint32_t host = 0, mask = ~uint32_t{0} >> address->second;
    for (int i = 0; i < 4; ++i) host = host << 8 | address->first.addr[i];
    if ((host & mask) == 0 || (host & mask) == mask)
      return Error{"--dpdk-address \"" + d.address +
                   "\": that is the subnet's own or broadcast address, not a host's"};
  }
  std::optional<Prefix> gateway;
  if (!d.gateway.empty()) {
    gateway = Prefix::parse(d.gateway);
    if (!gateway || gateway->cidr != gateway->max_cidr() ||
        gateway->family != address->first.family)
      return Error{"--dpdk-gateway \"" + d.gateway + "\": want an address of the same family"};
  }
  if (gateway && gateway->addr == address->first.addr)
    return Error{"--dpdk-gateway \"" + d.gateway + "\": that is this node's own address"};
  UnderlayAddress self;
  self.mac = mac;
  self.port = d.listen_port;
  if (address->first.family == AF_INET) {
    UnderlayAddress::V4 v4;
    std::memcpy(v4.addr.data(), address->first.addr.data(), 4);
    v4.prefix = address->second;
    if (gateway) {
      std::array<uint8_t, 4> gw;
      std::memcpy(gw.data(), gateway->addr.data(), 4);
      v4.gateway = gw;
    }
    self.v4 = v4;
  } else {
    UnderlayAddress::V6 v6;
    v6.addr = address->first.addr;
    v6.prefix = address->second;
    if (gateway) v6.gateway = gateway->addr;
    self.v6 = v6;
  }
  if (gateway && !on_link(self, gateway->family, gateway->addr))
    return Error{"--dpdk-gateway \"" + d.gateway + "\": not on the link of --dpdk-address " +
                 d.address};
  if (!gateway && address->second == address->first.max_cidr())
    return Error{"--dpdk-address \"" + d.address +
                 "\": a host prefix reaches no neighbour without --dpdk-gateway"};
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

void log_counters(const Device& dev, const UnderlayLink& link, const dpdk::Lcore& lcore) {
  const Counters c = dev.counters();
  log::info(
      "counters: rx_data={} tx_data={} handshakes={} drops={}; underlay: datagrams={} answers={} "
      "requests={} learnt={} unresolved={}; inner: rx={} tx={}; held={} held_lost={}",
      c.rx_data, c.tx_data, c.handshakes_completed, c.dropped_total(), link.counters().rx_datagrams,
      link.counters().answers, link.counters().requests, link.counters().learnt,
      link.counters().tx_unresolved, lcore.counters().inner_rx, lcore.counters().inner_tx,
      lcore.transmit().counters().held, lcore.transmit().counters().held_lost);
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
  std::unique_ptr<dpdk::Lcore> lcore;
  std::unique_ptr<uapi::Server> server;
  std::string ifname;
};

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

// The ports, the core, the lcore and the UAPI server.
Result<void> open_parts(const StandaloneOptions& o, const DpdkOptions& d,
                        const std::string& inner_device, Interface& i) {
  auto underlay = dpdk::Port::open({.device = d.port});
  if (!underlay) return Error{underlay.error()};
  auto inner = dpdk::Port::open({.device = inner_device});
  if (!inner) return Error{inner.error()};
  i.underlay = std::move(*underlay);
  i.inner = std::move(*inner);
  if (int rc = rte_eth_dev_set_mtu(i.inner->id(), static_cast<uint16_t>(o.mtu)); rc != 0)
    log::warn("interface {}: cannot set MTU {}: {}", o.ifname, o.mtu, std::strerror(-rc));
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

// Poll mode: the ports every round, the signals and the UAPI between rounds.
void serve(Interface& i, int signal_fd) {
  std::vector<pollfd> fds;
  Nanos next_check = 0;
  for (bool running = true; running;) {
    for (int round = 0; round < 64; ++round) i.lcore->poll();
    fds.assign(1, pollfd{signal_fd, POLLIN, 0});
    i.server->append_pollfds(fds);
    if (::poll(fds.data(), fds.size(), 0) > 0) {
      signalfd_siginfo info;
      while (read(signal_fd, &info, sizeof(info)) == sizeof(info)) {
        if (info.ssi_signo == SIGUSR1) {
          log_counters(*i.dev, *i.link, *i.lcore);
          continue;
        }
        log::info("signal {} received, shutting down", strsignal(static_cast<int>(info.ssi_signo)));
        running = false;
      }
      i.server->handle(std::span<const pollfd>(fds).subspan(1));
    }
    const Nanos now = i.clock.monotonic();
    if (now >= next_check) {
      next_check = now + kSecond;
      if (!i.server->socket_file_present()) {
        log::info("UAPI socket {} was removed, shutting down", i.server->path());
        running = false;
      } else if (if_nametoindex(i.ifname.c_str()) == 0) {
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
  const std::string inner_device = "net_tun0,iface=" + o.ifname;
  if (int code = start_eal(o, d, inner_device); code != 0) return code;
  Interface i;
  if (Result<void> opened = open_parts(o, d, inner_device, i); !opened) {
    log::error("{}", opened.error());
    return 1;
  }
  log::info(
      "interface {} up: DPDK underlay {} ({}, MAC {}), address {}, UDP port {}, lcores {}, "
      "AEAD {}; UAPI {}",
      o.ifname, i.underlay->name(), i.underlay->driver(), mac_to_string(i.underlay->mac()),
      d.address, d.listen_port, d.lcores.empty() ? first_cpu() : d.lcores,
      i.aead.backend->describe(), i.server->path());
  log::info("interface {} AEAD backend {}", o.ifname, i.aead.reason);
  const int signal_fd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
  if (signal_fd < 0) {
    log::error("signalfd: {}", std::strerror(errno));
    return 1;
  }
  serve(i, signal_fd);
  log_counters(*i.dev, *i.link, *i.lcore);
  close(signal_fd);
  log::info("stopped");
  return 0;
}

#endif

}  // namespace faraday::control
