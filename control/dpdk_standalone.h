// dpdk_standalone.h: `faradayd standalone IFNAME --dpdk-port DEVICE ...`: one
// WireGuard interface whose underlay is a NIC (or a DPDK virtual device) that
// faradayd drives itself with DPDK, built when libdpdk-dev is installed.
//
// The EAL starts with the given lcores and memory (no hugepages unless asked);
// the underlay port is DEVICE (a PCI address, or a vdev such as
// net_af_packet0,iface=eth1), with this node's addresses on it (IPv4, IPv6 or
// both, and a gateway for what is not on-link): faradayd answers ARP and
// neighbour solicitations for them and resolves its peers itself. The inner
// side is IFNAME, a kernel TAP made by DPDK's net_tap (or a TUN, net_tun, with
// inner = "tun"); addresses and routes on it are left to `ip`, as in
// standalone mode. On the TAP, faradayd is the host's one neighbour: it
// answers the host's ARP and neighbour solicitations for any address, except
// its questions about its own (dataplane/inner_link.h). With inner = "vhost",
// a vhost-user socket takes the TAP's place, for a DPDK application. wg(8) configures it through
// the UAPI socket as usual (listen-port and fwmark are fixed: the UDP port is
// --dpdk-listen-port, and a NIC of our own has no fwmark). It stops on
// SIGTERM/SIGINT, when the UAPI socket file is removed or when IFNAME (a TAP or
// TUN) is deleted. A vhost-user socket's path is held with a lock on PATH.lock
// for the process's life; the application sets its own MTU, at most --mtu
// (frames over one mbuf, 2048 bytes, are dropped and counted: inner_chained).
//
// The data path is dataplane/dpdk_data_path.h: each lcore polls a queue pair
// of both ports; the first also, between rounds, the UAPI socket and the
// signals (in cluster mode, the control thread's commands instead of the
// signals). They poll all the time unless idle_sleep_us is set: then a round
// that found nothing waits that long (a shared core, a test machine).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "control/standalone.h"
#include "dataplane/data_path.h"
#include "result.h"

namespace faraday::control {

struct DpdkOptions {
  std::string port;  // the underlay device
  // This node on it, "10.0.0.1/24", "fd00::1/64": one per family at most.
  std::vector<std::string> addresses;
  std::vector<std::string> gateways;  // one per family at most; none: every peer is on-link
  uint16_t listen_port = 51820;
  std::string lcores;  // empty: the first CPU this process may use
  bool hugepages = false;
  unsigned memory_mb = 256;
  // After a round of polls that found nothing, wait this long (less if a
  // signal or a UAPI request comes; packets do not end the wait) before
  // polling again; 0: never wait.
  unsigned idle_sleep_us = 0;
  // The inner side: "tap" (net_tap, an Ethernet interface on which faradayd
  // answers ARP and ND for the mesh), "tun" (net_tun, IP only) or "vhost" (a
  // vhost-user socket, net_vhost, for a DPDK application to attach to with
  // virtio-user; ARP and ND answered as on the TAP; no kernel interface).
  std::string inner = "tap";
  std::string vhost_socket;  // inner "vhost": empty means /run/faraday/IFNAME-vhost.sock
};

// The longest idle_sleep_us: a tenth of a second.
constexpr unsigned kMaxIdleSleepUs = 100000;

// Whether this build has DPDK.
bool dpdk_built();
// Whether the settings can work, before anything starts: the interface's name
// and MTU, the port's device string, this node's addresses and gateways, the
// inner side, the lcore list (at most VhostQueues::kMaxQueues for a vhost-user
// socket, a queue pair each), the memory
// and the idle sleep. The error names the option at fault.
Status check_dpdk_settings(const std::string& ifname, uint32_t mtu, const DpdkOptions& dpdk);
// Checks the settings, starts the EAL and opens the data path
// (dataplane/dpdk_data_path.h) with its UAPI served (interface.h). Otherwise
// logs why and sets *exit_code (2: a bad setting; 1: DPDK or the system
// refused). own_thread: run() will be called on another thread than this one
// (cluster mode), and this thread gets back the CPUs it had before the EAL,
// less the lcores' (unless that leaves none).
std::unique_ptr<dataplane::DataPath> open_dpdk_interface(const StandaloneOptions& options,
                                                         const DpdkOptions& dpdk, bool own_thread,
                                                         int* exit_code);
// Returns the process exit code (2: a bad DPDK setting).
int run_standalone_dpdk(const StandaloneOptions& options, const DpdkOptions& dpdk);

}  // namespace faraday::control
