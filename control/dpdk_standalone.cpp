// dpdk_standalone.cpp: see dpdk_standalone.h.
#include "control/dpdk_standalone.h"

#include "config.h"

#if FARADAY_HAVE_DPDK
#include <fcntl.h>
#include <rte_lcore.h>
#include <sched.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <fmt/ranges.h>

#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <optional>
#include <vector>

#include "common/log.h"
#include "control/interface.h"
#include "dataplane/dpdk_data_path.h"
#include "dataplane/dpdk_port.h"
#include "dataplane/dpdk_vhost.h"
#endif

namespace faraday::control {

#if !FARADAY_HAVE_DPDK

bool dpdk_built() {
  return false;
}

Status check_dpdk_settings(const std::string&, uint32_t, const DpdkOptions&) {
  return Error{"this faradayd was built without DPDK (install libdpdk-dev and rebuild)"};
}

std::unique_ptr<dataplane::DataPath> open_dpdk_interface(const StandaloneOptions&,
                                                         const DpdkOptions& d, bool,
                                                         int* exit_code) {
  log::error("{}", check_dpdk_settings("", 0, d).error());
  *exit_code = 2;
  return nullptr;
}

int run_standalone_dpdk(const StandaloneOptions& o, const DpdkOptions& d) {
  int code = 0;
  (void)open_dpdk_interface(o, d, false, &code);
  return code;
}

#else

namespace {

using namespace faraday::dataplane;

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

// The lcores the EAL gets: --dpdk-lcores, or the first CPU we may use. Worked
// out before the EAL starts, which moves this thread.
std::string lcore_list(const DpdkOptions& d) {
  return d.lcores.empty() ? first_cpu() : d.lcores;
}

bool valid_ifname(const std::string& name) {
  if (name == "." || name == "..") return false;
  if (name.empty() || name.size() > 15) return false;
  for (char c : name)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_' && c != '.')
      return false;
  return true;
}

}  // namespace

bool dpdk_built() {
  return true;
}

namespace {

std::string vhost_path(const std::string& ifname, const DpdkOptions& d) {
  return d.vhost_socket.empty() ? "/run/faraday/" + ifname + "-vhost.sock" : d.vhost_socket;
}

// The inner port's device string.
std::string inner_device_of(const StandaloneOptions& o, const DpdkOptions& d) {
  if (d.inner == "vhost") {
    // A queue pair per lcore (the list was checked).
    const Result<unsigned> lcores = dpdk::cpu_list_count(lcore_list(d));
    return "net_vhost0,iface=" + vhost_path(o.ifname, d) +
           ",queues=" + std::to_string(lcores ? *lcores : 1);
  }
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

// Starts the EAL with both ports' devices, after taking a vhost-user socket's
// path: 0, or the exit code (2: a bad setting, 1: DPDK or the system refused).
// own_thread: the data path will run on a thread of the caller's, so this one
// (the control thread) gets back the CPUs it had, less the lcores'.
int start_eal(const StandaloneOptions& o, const DpdkOptions& d, const std::string& lcores,
              const std::string& inner, bool own_thread) {
  if (d.inner == "vhost")
    if (Status ready = prepare_vhost_socket(vhost_path(o.ifname, d)); !ready) {
      log::error("{}", ready.error());
      return 1;
    }
  dpdk::EalSettings eal;
  eal.lcores = lcores;
  eal.hugepages = d.hugepages;
  eal.memory_mb = d.memory_mb;
  eal.devices = {d.port, inner};
  if (Result<std::vector<std::string> > args = dpdk::eal_arguments(eal); !args) {
    log::error("{}", args.error());
    return 2;
  }
  cpu_set_t cpus;
  CPU_ZERO(&cpus);
  const bool had_cpus = sched_getaffinity(0, sizeof(cpus), &cpus) == 0;
  if (Result<void> started = dpdk::init_eal(eal); !started) {
    log::error("{}", started.error());
    return 1;
  }
  // The control thread keeps off the lcores' CPUs, where they may poll all
  // the time, unless that would leave it none.
  if (own_thread && had_cpus) {
    cpu_set_t rest = cpus;
    unsigned id = 0;
    RTE_LCORE_FOREACH(id) {
      rte_cpuset_t lcore = rte_lcore_cpuset(id);
      for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu)
        if (CPU_ISSET(cpu, &lcore)) CPU_CLR(cpu, &rest);
    }
    sched_setaffinity(0, sizeof(cpu_set_t), CPU_COUNT(&rest) > 0 ? &rest : &cpus);
  }
  return 0;
}

}  // namespace

Status check_dpdk_settings(const std::string& ifname, uint32_t mtu, const DpdkOptions& d) {
  if (!valid_ifname(ifname))
    return Error{"interface name \"" + ifname +
                 "\": letters, digits, '-', '_' and '.', at most 15"};
  if (mtu > dpdk::kMaxMtu)
    return Error{
        fmt::format("--mtu {}: at most {} on a DPDK port (a packet and its headers fit one mbuf)",
                    mtu, dpdk::kMaxMtu)};
  if (d.port.empty()) return Error{"--dpdk-port: the underlay device is needed"};
  if (Result<UnderlayAddress> checked = underlay_address(d, MacAddress{}); !checked)
    return Error{checked.error()};
  if (d.inner != "tap" && d.inner != "tun" && d.inner != "vhost")
    return Error{"--dpdk-inner \"" + d.inner + "\": want tap, tun or vhost"};
  if (d.inner != "vhost" && !d.vhost_socket.empty())
    return Error{"--dpdk-vhost-socket: only with --dpdk-inner vhost"};
  if (d.inner == "vhost" && !valid_vhost_path(vhost_path(ifname, d)))
    return Error{"--dpdk-vhost-socket \"" + vhost_path(ifname, d) +
                 "\": want an absolute path under 108 bytes, without ',' or '='"};
  if (d.idle_sleep_us > kMaxIdleSleepUs)
    return Error{
        fmt::format("--dpdk-idle-sleep {}: at most {} us", d.idle_sleep_us, kMaxIdleSleepUs)};
  // The lcore list, the port's device string and the memory, as the EAL will get them.
  Result<unsigned> lcores = dpdk::cpu_list_count(lcore_list(d));
  if (!lcores) return Error{"--dpdk-lcores: " + lcores.error()};
  if (d.inner == "vhost" && *lcores > dpdk::VhostQueues::kMaxQueues)
    return Error{fmt::format(
        "--dpdk-lcores \"{}\": a vhost-user socket has a queue pair per lcore, at most {}",
        d.lcores, dpdk::VhostQueues::kMaxQueues)};
  if (Result<dpdk::DeviceName> port = dpdk::device_argument(d.port); !port)
    return Error{"--dpdk-port: " + port.error()};
  dpdk::EalSettings eal;
  eal.lcores = lcore_list(d);
  eal.hugepages = d.hugepages;
  eal.memory_mb = d.memory_mb;
  eal.devices = {d.port};
  if (Result<std::vector<std::string> > args = dpdk::eal_arguments(eal); !args)
    return Error{"--dpdk-memory: " + args.error()};
  return {};
}

std::unique_ptr<DataPath> open_dpdk_interface(const StandaloneOptions& o, const DpdkOptions& d,
                                              bool own_thread, int* exit_code) {
  if (Status checked = check_dpdk_settings(o.ifname, o.mtu, d); !checked) {
    log::error("{}", checked.error());
    *exit_code = 2;
    return nullptr;
  }
  const std::string inner_device = inner_device_of(o, d);
  const std::string lcores = lcore_list(d);
  if (int code = start_eal(o, d, lcores, inner_device, own_thread); code != 0) {
    *exit_code = code;
    return nullptr;
  }
  dpdk::DataPathOptions options;
  options.ifname = o.ifname;
  options.inner = d.inner == "vhost" ? dpdk::InnerKind::kVhost
                  : d.inner == "tun" ? dpdk::InnerKind::kTun
                                     : dpdk::InnerKind::kTap;
  options.underlay_device = d.port;
  options.inner_device = inner_device;
  options.self = *underlay_address(d, MacAddress{});
  options.mtu = o.mtu;
  options.aead_backend = o.aead_backend;
  options.idle_sleep_us = d.idle_sleep_us;
  options.stats_interval_s = o.stats_interval_s;
  options.log = log_sink();
  auto opened = dpdk::DpdkDataPath::open(std::move(options));
  Status served = opened ? serve_uapi(**opened) : Status{opened.failure()};
  if (!served) {
    log::error("{}", served.error());
    *exit_code = 1;
    return nullptr;
  }
  log::info("interface {} up ({}) on DPDK: underlay address {}, lcores {}", o.ifname,
            d.inner == "vhost" ? "vhost-user socket " + vhost_path(o.ifname, d)
                               : "a " + d.inner + " interface",
            fmt::join(d.addresses, " "), lcores);
  return std::move(*opened);
}

int run_standalone_dpdk(const StandaloneOptions& o, const DpdkOptions& d) {
  // Blocked before the EAL starts its threads, which inherit the mask: the
  // signals then reach the signalfd, not a default action on another thread.
  sigset_t mask;
  sigemptyset(&mask);
  for (int sig : {SIGTERM, SIGINT, SIGHUP, SIGUSR1}) sigaddset(&mask, sig);
  sigprocmask(SIG_BLOCK, &mask, nullptr);
  int code = 0;
  std::unique_ptr<DataPath> dp = open_dpdk_interface(o, d, false, &code);
  if (!dp) return code;
  code = run_until_signalled(*dp);
  dp.reset();
  log::info("stopped");
  return code;
}
#endif

}  // namespace faraday::control
