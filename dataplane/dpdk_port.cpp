// dpdk_port.cpp: see dpdk_port.h.
#include "dataplane/dpdk_port.h"

#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>
#include <rte_pause.h>

#include <algorithm>
#include <atomic>
#include <bitset>
#include <cctype>
#include <cstring>
#include <optional>
#include <regex>

#include "dataplane/messages.h"

namespace faraday::dataplane::dpdk {
namespace {

std::atomic<bool> eal_started{false};

bool is_pci_address(const std::string& s) {
  static const std::regex pci(R"(^[0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]$)");
  return std::regex_match(s, pci);
}

std::string rte_reason() {
  return std::string(rte_strerror(rte_errno));
}

// The ports the EAL made, for an error message.
std::string known_ports() {
  std::string known;
  uint16_t id;
  RTE_ETH_FOREACH_DEV(id) {
    char name[RTE_ETH_NAME_MAX_LEN];
    if (rte_eth_dev_get_name_by_port(id, name) == 0)
      known += std::string(known.empty() ? "" : ", ") + name;
  }
  return known.empty() ? "none" : known;
}

// Unsent mbufs go back to their pool.
void free_all(rte_mbuf** mbufs, uint16_t n) {
  if (n) rte_pktmbuf_free_bulk(mbufs, n);
}

}  // namespace

Result<DeviceName> device_argument(const std::string& device) {
  if (device.empty()) return Error{"DPDK device: empty (want a PCI address or net_<driver><n>)"};
  if (device.size() > 1024) return Error{"DPDK device: longer than 1024 characters"};
  for (char c : device)
    if (std::isspace(static_cast<unsigned char>(c)) || !std::isprint(static_cast<unsigned char>(c)))
      return Error{"DPDK device \"" + device + "\": blanks or control characters"};
  // DPDK names a PCI port by its full, lower-case address.
  if (is_pci_address(device)) return DeviceName{"--allow=" + device, device};
  static const std::regex short_pci(R"(^([0-9a-fA-F]{4}:)?[0-9a-fA-F]{2}:[0-9a-fA-F]{2}\.[0-7]$)");
  if (std::regex_match(device, short_pci))
    return Error{"DPDK device \"" + device +
                 "\": write the PCI address in full and in lower case, as lspci -D shows it "
                 "(0000:3b:00.0)"};
  const std::string name = device.substr(0, device.find(','));
  static const std::regex vdev(R"(^net_[a-z_]+[0-9]+$)");
  if (!std::regex_match(name, vdev))
    return Error{"DPDK device \"" + device +
                 "\": neither a PCI address (0000:3b:00.0) nor a virtual device "
                 "(net_<driver><n>[,key=value...], e.g. net_af_xdp0,iface=eth1)"};
  return DeviceName{"--vdev=" + device, name};
}

Result<unsigned> cpu_list_count(const std::string& list) {
  const Error bad{"DPDK lcores \"" + list.substr(0, 64) + (list.size() > 64 ? "..." : "") +
                  "\": want a CPU list such as 0, 0-3 or 2,4, CPUs below " +
                  std::to_string(kMaxCpus)};
  if (list.empty() || list.size() > 256) return bad;
  std::bitset<kMaxCpus> cpus;
  // One number below kMaxCpus at `at`, which moves past it.
  auto number = [&](size_t& at) -> std::optional<unsigned> {
    unsigned n = 0;
    const size_t start = at;
    while (at < list.size() && at - start < 5 && std::isdigit(static_cast<unsigned char>(list[at])))
      n = n * 10 + static_cast<unsigned>(list[at++] - '0');
    if (at == start || n >= kMaxCpus) return std::nullopt;
    return n;
  };
  for (size_t at = 0;;) {
    std::optional<unsigned> first = number(at);
    std::optional<unsigned> last = first;
    if (first && at < list.size() && list[at] == '-') last = number(++at);
    if (!first || !last || *last < *first) return bad;
    for (unsigned cpu = *first; cpu <= *last; ++cpu) cpus.set(cpu);
    if (at == list.size()) break;
    if (list[at++] != ',') return bad;
  }
  return static_cast<unsigned>(cpus.count());
}

Result<std::vector<std::string>> eal_arguments(const EalSettings& settings) {
  if (Result<unsigned> counted = cpu_list_count(settings.lcores); !counted)
    return counted.failure();
  if (settings.memory_mb < 64)
    return Error{"DPDK memory " + std::to_string(settings.memory_mb) + " MiB: want at least 64"};
  std::vector<std::string> args = {"faradayd", "-l", settings.lcores, "-m",
                                   std::to_string(settings.memory_mb)};
  // Nothing is shared with other DPDK processes, so two daemons (or tests) run
  // side by side and none leaves files in /var/run/dpdk: --no-huge takes
  // ordinary memory, with --no-shconf; with hugepages, --in-memory also keeps
  // their files out of /dev/hugepages.
  if (settings.hugepages) {
    args.push_back("--in-memory");
  } else {
    args.push_back("--no-huge");
    args.push_back("--no-shconf");
  }
  args.push_back("--no-telemetry");  // a socket nobody asked for
  bool any_pci = false;
  for (const std::string& device : settings.devices) {
    Result<DeviceName> name = device_argument(device);
    if (!name) return Error{name.error()};
    any_pci = any_pci || name->argument.starts_with("--allow=");
    args.push_back(name->argument);
  }
  // Without an allow list the EAL would probe every PCI device it may bind.
  if (!any_pci) args.push_back("--no-pci");
  args.insert(args.end(), settings.extra.begin(), settings.extra.end());
  return args;
}

Result<void> init_eal(const EalSettings& settings) {
  Result<std::vector<std::string>> args = eal_arguments(settings);
  if (!args) return Error{args.error()};
  if (eal_started.exchange(true)) return Error{"DPDK: the EAL is already started in this process"};
  std::vector<char*> argv;
  for (std::string& a : *args) argv.push_back(a.data());
  argv.push_back(nullptr);
  if (rte_eal_init(static_cast<int>(argv.size() - 1), argv.data()) < 0)
    return Error{"DPDK: EAL start failed" + (rte_errno ? ": " + rte_reason() : std::string()) +
                 " (its own messages are above; the EAL cannot be started again in this "
                 "process)"};
  return {};
}

Result<std::unique_ptr<Port>> Port::open(const PortSettings& s) {
  Result<DeviceName> dev = device_argument(s.device);
  if (!dev) return Error{dev.error()};
  std::unique_ptr<Port> port(new Port());
  port->name_ = dev->port;
  if (rte_eth_dev_get_port_by_name(dev->port.c_str(), &port->id_) != 0) {
    return Error{"DPDK port " + dev->port + ": no such device (the EAL has: " + known_ports() +
                 ")"};
  }
  rte_eth_dev_info info;
  if (rte_eth_dev_info_get(port->id_, &info) != 0)
    return Error{"DPDK port " + port->name_ + ": cannot read its capabilities"};
  port->driver_ = info.driver_name ? info.driver_name : "?";
  if (s.queues == 0 || s.queues > info.max_rx_queues || s.queues > info.max_tx_queues)
    return Error{"DPDK port " + port->name_ + ": " + std::to_string(s.queues) +
                 " queue pairs asked, the device has " + std::to_string(info.max_rx_queues) +
                 " RX and " + std::to_string(info.max_tx_queues) + " TX"};
  if (s.mbufs && s.mbufs < 1024)
    return Error{"DPDK port " + port->name_ + ": " + std::to_string(s.mbufs) +
                 " mbufs: want at least 1024"};
  port->queues_ = s.queues;
  port->tx_full_ = std::vector<Counter>(s.queues);

  rte_eth_conf conf{};
  if (s.queues > 1 && info.flow_type_rss_offloads != 0) {
    conf.rxmode.mq_mode = RTE_ETH_MQ_RX_RSS;
    conf.rx_adv_conf.rss_conf.rss_hf =
        (RTE_ETH_RSS_NONFRAG_IPV4_UDP | RTE_ETH_RSS_NONFRAG_IPV6_UDP | RTE_ETH_RSS_IP) &
        info.flow_type_rss_offloads;
  }
  const uint64_t tx_ip = RTE_ETH_TX_OFFLOAD_IPV4_CKSUM, tx_udp = RTE_ETH_TX_OFFLOAD_UDP_CKSUM;
  const uint64_t rx_ip = RTE_ETH_RX_OFFLOAD_IPV4_CKSUM, rx_udp = RTE_ETH_RX_OFFLOAD_UDP_CKSUM;
  port->tx_ip_checksum_ = (info.tx_offload_capa & tx_ip) != 0;
  port->tx_udp_checksum_ = (info.tx_offload_capa & tx_udp) != 0;
  port->rx_ip_checksum_ = (info.rx_offload_capa & rx_ip) != 0;
  port->rx_udp_checksum_ = (info.rx_offload_capa & rx_udp) != 0;
  conf.txmode.offloads =
      (port->tx_ip_checksum_ ? tx_ip : 0) | (port->tx_udp_checksum_ ? tx_udp : 0);
  conf.rxmode.offloads =
      (port->rx_ip_checksum_ ? rx_ip : 0) | (port->rx_udp_checksum_ ? rx_udp : 0);

  int rc = rte_eth_dev_configure(port->id_, s.queues, s.queues, &conf);
  if (rc != 0)
    return Error{"DPDK port " + port->name_ +
                 ": configure failed: " + std::string(rte_strerror(-rc))};
  if (Result<void> queues = port->set_up_queues(s); !queues) return Error{queues.error()};
  rte_ether_addr mac;
  if (rte_eth_macaddr_get(port->id_, &mac) == 0)
    std::memcpy(port->mac_.data(), mac.addr_bytes, port->mac_.size());
  rc = rte_eth_dev_start(port->id_);
  if (rc != 0)
    return Error{"DPDK port " + port->name_ + ": start failed: " + std::string(rte_strerror(-rc))};
  port->started_ = true;
  // The port owns L2 for our address; frames to other MACs are not ours to see,
  // but IPv6 neighbour solicitations come to a solicited-node multicast MAC.
  rte_eth_promiscuous_disable(port->id_);
  rte_eth_allmulticast_enable(port->id_);
  return port;
}

Result<void> Port::set_up_queues(const PortSettings& s) {
  uint16_t rxd = s.rx_descriptors, txd = s.tx_descriptors;
  rte_eth_dev_adjust_nb_rx_tx_desc(id_, &rxd, &txd);

  const unsigned cache = 256;
  const uint32_t mbufs =
      s.mbufs ? s.mbufs
              : std::max<uint32_t>(8191, s.queues * (rxd + txd + 2 * kBurstSize + cache) + 1023);
  const std::string pool_name = "faraday-p" + std::to_string(id_);
  pool_ = rte_pktmbuf_pool_create(pool_name.c_str(), mbufs, cache, 0, RTE_MBUF_DEFAULT_BUF_SIZE,
                                  rte_socket_id());
  if (!pool_)
    return Error{"DPDK port " + name_ + ": no memory for " + std::to_string(mbufs) +
                 " mbufs: " + rte_reason() + " (raise the EAL memory or reserve hugepages)"};
  const int socket = rte_eth_dev_socket_id(id_);
  for (uint16_t q = 0; q < s.queues; ++q) {
    int rc = rte_eth_rx_queue_setup(id_, q, rxd, socket, nullptr, pool_);
    if (rc == 0) rc = rte_eth_tx_queue_setup(id_, q, txd, socket, nullptr);
    if (rc != 0)
      return Error{"DPDK port " + name_ + ": queue " + std::to_string(q) +
                   " set-up failed: " + std::string(rte_strerror(-rc))};
  }
  return {};
}

void Port::close() {
  if (started_) rte_eth_dev_stop(id_);
  if (queues_) rte_eth_dev_close(id_);
  started_ = false;
  queues_ = 0;
}

Port::~Port() {
  close();
  if (pool_) rte_mempool_free(pool_);
}

RxChecked Port::rx_checked(const rte_mbuf& m) const {
  RxChecked c;
  c.ip_checksum =
      rx_ip_checksum_ && (m.ol_flags & RTE_MBUF_F_RX_IP_CKSUM_MASK) == RTE_MBUF_F_RX_IP_CKSUM_GOOD;
  c.l4_checksum =
      rx_udp_checksum_ && (m.ol_flags & RTE_MBUF_F_RX_L4_CKSUM_MASK) == RTE_MBUF_F_RX_L4_CKSUM_GOOD;
  return c;
}

uint16_t Port::rx(uint16_t queue, rte_mbuf** mbufs, uint16_t n) {
  return rte_eth_rx_burst(id_, queue, mbufs, n);
}

uint16_t Port::tx(uint16_t queue, rte_mbuf** mbufs, uint16_t n) {
  std::atomic<bool>* lock = tx_locks_ ? &tx_locks_[queue].held : nullptr;
  if (lock)
    while (lock->load(std::memory_order_relaxed) || lock->exchange(true, std::memory_order_acquire))
      rte_pause();
  const uint16_t sent = rte_eth_tx_burst(id_, queue, mbufs, n);
  if (sent < n) tx_full_[queue] += n - sent;
  if (lock) lock->store(false, std::memory_order_release);
  if (sent < n) free_all(mbufs + sent, static_cast<uint16_t>(n - sent));
  return sent;
}

void Port::share_tx() {
  if (!tx_locks_) tx_locks_ = std::make_unique<TxLock[]>(queues_);
}

Packet packet_of(rte_mbuf* m) {
  Packet p;
  p.base = static_cast<uint8_t*>(m->buf_addr);
  p.capacity = m->buf_len;
  p.offset = m->data_off;
  p.length = m->data_len;
  return p;
}

void take_packet(rte_mbuf* m, const Packet& p) {
  m->data_off = static_cast<uint16_t>(p.offset);
  m->data_len = static_cast<uint16_t>(p.length);
  m->pkt_len = p.length;
}

Transmit::~Transmit() {
  for (size_t i = 0; i < held_count_; ++i) rte_pktmbuf_free(held_[i].m);
}

void Transmit::hold(rte_mbuf* m, const Packet& p, Nanos since) {
  if (held_count_ == kHeld) {
    // The oldest transport message makes room; handshake messages go last, as a
    // lost one costs its tunnel the 5 s retry.
    size_t victim = 0;
    for (size_t i = 0; i < held_count_; ++i) {
      const Packet& q = held_[i].p;
      if (q.length >= 4 && q.data()[0] == static_cast<uint8_t>(MessageType::kTransport)) {
        victim = i;
        break;
      }
    }
    rte_pktmbuf_free(held_[victim].m);
    ++counters_.held_lost;
    std::move(held_.begin() + victim + 1, held_.begin() + held_count_, held_.begin() + victim);
    --held_count_;
  }
  held_[held_count_++] = Held{m, p, since};
}

bool Transmit::frame(rte_mbuf* m, Packet& p, Nanos now, Nanos since, rte_mbuf** out, uint16_t& n) {
  if (p.offset < kUnderlayHeadroom || m->nb_segs != 1) {
    ++counters_.not_framed;
    rte_pktmbuf_free(m);
    return false;
  }
  const bool ip_off = port_.tx_ip_checksum(), udp_off = port_.tx_udp_checksum();
  std::array<uint8_t, UnderlayLink::kControlFrameSize> request;
  const UnderlayLink::Tx tx =
      link_.send(p.data(), p.length, p.endpoint, now, request, ip_off, udp_off);
  if (tx.request_length) {
    rte_mbuf* r = rte_pktmbuf_alloc(port_.pool());
    if (r) {
      std::memcpy(rte_pktmbuf_mtod(r, uint8_t*), request.data(), tx.request_length);
      r->data_len = static_cast<uint16_t>(tx.request_length);
      r->pkt_len = static_cast<uint32_t>(tx.request_length);
      out[n++] = r;
    } else {
      ++counters_.no_mbuf;
    }
  }
  if (tx.unresolved) {
    hold(m, p, since);
    return true;
  }
  if (!tx.frame) {
    ++counters_.not_framed;
    rte_pktmbuf_free(m);
    return false;
  }
  m->data_off = static_cast<uint16_t>(tx.frame - static_cast<uint8_t*>(m->buf_addr));
  m->data_len = static_cast<uint16_t>(tx.frame_length);
  m->pkt_len = static_cast<uint32_t>(tx.frame_length);
  m->ol_flags = 0;
  if (ip_off || udp_off) {
    const bool v4 = p.endpoint.family == AF_INET;
    m->l2_len = kEthernetHeader;
    m->l3_len = v4 ? 20 : 40;
    m->ol_flags = (v4 ? RTE_MBUF_F_TX_IPV4 : RTE_MBUF_F_TX_IPV6) |
                  (v4 && ip_off ? RTE_MBUF_F_TX_IP_CKSUM : 0) |
                  (udp_off ? RTE_MBUF_F_TX_UDP_CKSUM : 0);
  }
  out[n++] = m;
  ++counters_.frames;
  return false;
}

size_t Transmit::send_on(uint16_t queue, std::span<rte_mbuf*> mbufs, std::span<Packet> pkts,
                         std::span<const Verdict> verdicts, Nanos now) {
  rte_mbuf* out[2 * kBurstSize];
  uint16_t n = 0;
  size_t sent = 0;
  for (size_t i = 0; i < mbufs.size(); ++i) {
    // Each packet adds at most two frames (a request and itself).
    if (n + 2u > std::size(out)) {
      sent += port_.tx(queue, out, n);
      n = 0;
    }
    if (verdicts[i] == Verdict::kPass) {
      if (frame(mbufs[i], pkts[i], now, now, out, n)) ++counters_.held;
    } else {
      // Consumed packets were copied by the core (staged); dropped ones are counted.
      rte_pktmbuf_free(mbufs[i]);
    }
  }
  return sent + port_.tx(queue, out, n);
}

size_t Transmit::send_copies(std::span<const Packet> pkts, Nanos now) {
  size_t sent = 0;
  while (!pkts.empty()) {
    const size_t count = std::min(pkts.size(), kBurstSize);
    rte_mbuf* mbufs[kBurstSize];
    Packet copies[kBurstSize];
    const Verdict pass[kBurstSize] = {};  // kPass
    size_t k = 0;
    for (size_t i = 0; i < count; ++i) {
      const Packet& p = pkts[i];
      rte_mbuf* m = rte_pktmbuf_alloc(port_.pool());
      if (!m) {
        ++counters_.no_mbuf;
        continue;
      }
      if (p.length > rte_pktmbuf_tailroom(m)) {  // a staged jumbo packet, say
        ++counters_.not_framed;
        rte_pktmbuf_free(m);
        continue;
      }
      std::memcpy(rte_pktmbuf_mtod(m, uint8_t*), p.data(), p.length);
      m->data_len = static_cast<uint16_t>(p.length);
      m->pkt_len = p.length;
      copies[k] = packet_of(m);
      copies[k].endpoint = p.endpoint;
      mbufs[k++] = m;
    }
    sent += send({mbufs, k}, {copies, k}, {pass, k}, now);
    pkts = pkts.subspan(count);
  }
  return sent;
}

size_t Transmit::retry(Nanos now) {
  if (held_count_ == 0) return 0;
  std::array<Held, kHeld> waiting = held_;
  const size_t count = held_count_;
  held_count_ = 0;
  rte_mbuf* out[2 * kHeld];
  uint16_t n = 0;
  for (size_t i = 0; i < count; ++i) {
    Held& h = waiting[i];
    if (now - h.since > kHoldFor) {
      rte_pktmbuf_free(h.m);
      ++counters_.held_lost;
      continue;
    }
    frame(h.m, h.p, now, h.since, out, n);
  }
  return port_.tx(queue_, out, n);
}

size_t Receive::poll(uint16_t queue, std::span<rte_mbuf*> mbufs, std::span<Packet> pkts,
                     Nanos now) {
  rte_mbuf* got[kBurstSize];
  const uint16_t want = static_cast<uint16_t>(std::min({mbufs.size(), pkts.size(), kBurstSize}));
  const uint16_t n = port_.rx(queue, got, want);
  counters_.frames += n;
  size_t k = 0;
  for (uint16_t i = 0; i < n; ++i) {
    rte_mbuf* m = got[i];
    if (m->nb_segs != 1) {
      ++counters_.chained;
      rte_pktmbuf_free(m);
      continue;
    }
    const std::span<const uint8_t> bytes(rte_pktmbuf_mtod(m, const uint8_t*), m->data_len);
    Frame frame;
    std::array<uint8_t, UnderlayLink::kControlFrameSize> reply;
    size_t reply_length = 0;
    const UnderlayLink::Rx rx =
        link_.receive(bytes, now, frame, reply, reply_length, port_.rx_checked(*m));
    if (rx == UnderlayLink::Rx::kDatagram) {
      Packet& p = pkts[k];
      p = packet_of(m);
      p.offset += static_cast<uint32_t>(frame.payload_offset);
      p.length = static_cast<uint32_t>(frame.payload_length);
      p.endpoint = frame.source;
      mbufs[k++] = m;
      continue;
    }
    if (rx == UnderlayLink::Rx::kAnswer) answer(queue, {reply.data(), reply_length});
    rte_pktmbuf_free(m);
  }
  counters_.datagrams += k;
  return k;
}

void Receive::answer(uint16_t queue, std::span<const uint8_t> frame) {
  rte_mbuf* m = rte_pktmbuf_alloc(port_.pool());
  if (!m) {
    ++counters_.no_mbuf;
    return;
  }
  std::memcpy(rte_pktmbuf_mtod(m, uint8_t*), frame.data(), frame.size());
  m->data_len = static_cast<uint16_t>(frame.size());
  m->pkt_len = static_cast<uint32_t>(frame.size());
  counters_.answers += port_.tx(queue, &m, 1);
}

}  // namespace faraday::dataplane::dpdk
