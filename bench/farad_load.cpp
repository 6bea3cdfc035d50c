// farad_load: N simulated nodes against one farad, each a real mutual-TLS
// connection with its own certificate, all in this one process (one thread,
// one io_context); farad runs as its own process so its CPU time and memory
// are its own.
//
// The simulated nodes are lean on purpose: real TCP, real mutual TLS 1.3 with
// their own certificate, real framing, a real Join and a protobuf-decoded
// Joined; but of each pushed member they decode only the name (a bounds-checked
// walk of the wire format), to count distinct peers. A faradayd decodes the
// whole NodeInfo (~300 ns per member here, see control/farad_client.cpp); for
// 10,000 simulated nodes that is 10^8 members, which on this machine would
// measure the load generator instead of farad.
//
//   1. cold start: all N connect (at most --concurrency handshakes in flight)
//      and join; each node counts the distinct peers pushed to it. Done when
//      every node has learned of all N-1 others.
//   2. fan-out: --joins more nodes join one at a time; for each, the time from
//      its Join leaving until each of the N members has been told.
//   3. farad's CPU seconds (utime+stime from /proc) and resident memory per
//      connected node ((RSS with N connected - RSS before any) / N).
//
// Usage: farad_load [--nodes N] [--joins M] [--concurrency C] [--farad PATH]
// (farad: $FARAD when set, otherwise build/farad/farad beside this build)
#include <fmt/core.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <charconv>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "proto/frame.h"
#include "proto/node_info.h"
#include "proto/tls.h"
#include "tests/lib/pki.h"
#include "tests/lib/spawn.h"

namespace {

using namespace faraday;
using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

double secs(Clock::duration d) {
  return std::chrono::duration<double>(d).count();
}

std::string slurp(const std::string& path) {
  std::ifstream f(path);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

// utime+stime of a process, in seconds.
double cpu_seconds(pid_t pid) {
  std::string stat = slurp(fmt::format("/proc/{}/stat", pid));
  size_t close = stat.rfind(')');
  if (close == std::string::npos) return -1;
  std::istringstream in(stat.substr(close + 2));
  std::string field;
  double ticks = 0;
  for (int i = 3; i <= 15 && in >> field; ++i) {
    if (i == 14 || i == 15) ticks += std::stod(field);
  }
  return ticks / static_cast<double>(sysconf(_SC_CLK_TCK));
}

// VmRSS or VmHWM in KiB.
long status_kib(pid_t pid, const char* key) {
  std::istringstream in(slurp(fmt::format("/proc/{}/status", pid)));
  for (std::string line; std::getline(in, line);) {
    if (line.rfind(key, 0) == 0) return std::stol(line.substr(std::strlen(key) + 1));
  }
  return -1;
}

uint16_t free_port() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a));
  socklen_t len = sizeof(a);
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  close(fd);
  return ntohs(a.sin_port);
}

proto::NodeInfo node_info(int i) {
  proto::NodeInfo info;
  std::string key(32, '\x5a');
  for (int b = 0; b < 4; ++b) key[b] = static_cast<char>((i >> (8 * b)) & 0xff);
  info.set_public_key(key);
  int hi = (i >> 8) & 0xff, lo = i & 0xff, top = (i >> 16) & 0x3f;
  *info.add_underlay() = *proto::parse_endpoint(fmt::format("10.{}.{}.{}:51820", top, hi, lo));
  *info.add_allowed_ips() = *proto::parse_prefix(fmt::format("100.{}.{}.{}/32", 64 + top, hi, lo));
  *info.add_allowed_ips() = *proto::parse_prefix(fmt::format("{}.{}.{}.0/24", 120 + top, hi, lo));
  *info.mutable_control() = *proto::parse_endpoint(fmt::format("10.{}.{}.{}:7451", top, hi, lo));
  return info;
}

std::string name_of(int i) {
  return fmt::format("n{:06d}", i);
}

int index_of(const std::string& name) {
  int v = -1;
  if (name.size() < 2) return -1;
  std::from_chars(name.data() + 1, name.data() + name.size(), v);
  return v;
}

// Reads a varint at p (bounds-checked); false at the end or on overflow.
bool varint(const uint8_t*& p, const uint8_t* end, uint64_t* v) {
  *v = 0;
  for (int shift = 0; shift < 64 && p < end; shift += 7) {
    uint8_t b = *p++;
    *v |= uint64_t{b & 0x7fu} << shift;
    if (!(b & 0x80)) return true;
  }
  return false;
}

// Walks one message's fields: f(field, wire_type, value, bytes) for each.
template <typename F>
bool fields(std::span<const uint8_t> msg, F&& f) {
  const uint8_t* p = msg.data();
  const uint8_t* end = p + msg.size();
  while (p < end) {
    uint64_t tag, v = 0;
    if (!varint(p, end, &tag)) return false;
    std::span<const uint8_t> bytes;
    switch (tag & 7) {
      case 0:
        if (!varint(p, end, &v)) return false;
        break;
      case 2:
        if (!varint(p, end, &v) || v > static_cast<uint64_t>(end - p)) return false;
        bytes = {p, static_cast<size_t>(v)};
        p += v;
        break;
      case 1:
        if (end - p < 8) return false;
        p += 8;
        break;
      case 5:
        if (end - p < 4) return false;
        p += 4;
        break;
      default:
        return false;
    }
    f(tag >> 3, tag & 7, v, bytes);
  }
  return true;
}

// One simulated node: a mutual-TLS connection that joins and counts pushes.
class SimNode final : public proto::TlsChannel::Handler {
 public:
  using OnJoined = std::function<void(SimNode&)>;
  using OnMember = std::function<void(SimNode&, std::string_view name)>;

  SimNode(boost::asio::io_context& io, SSL_CTX* ctx, uint16_t port, int index,
          testing::Identity* id, size_t words)
      : learned(words, 0), io_(io), ctx_(ctx), port_(port), index_(index), id_(id) {}

  void start() {
    auto sock = std::make_shared<boost::asio::ip::tcp::socket>(io_);
    sock->async_connect({boost::asio::ip::make_address("127.0.0.1"), port_},
                        [this, sock](const boost::system::error_code& ec) {
                          if (ec) return retry("connect: " + ec.message());
                          decoder_ = proto::FrameDecoder();
                          ch_ = proto::TlsChannel::create(std::move(*sock), ctx_,
                                                          proto::TlsChannel::Role::kClient, this);
                          ch_->set_client_params("farad", id_->cert.get(), id_->key.get());
                          ch_->start();
                        });
  }
  ~SimNode() override {
    if (ch_) ch_->detach();
  }

  void on_established(proto::TlsChannel&) override {
    proto::NodeMessage m;
    m.set_version(proto::kProtocolVersion);
    m.set_request_id(1);
    *m.mutable_join()->mutable_node() = node_info(index_);
    std::string frame;
    proto::append_frame(m, frame);
    join_sent = Clock::now();
    ch_->send(frame);
  }
  void on_data(proto::TlsChannel&, std::span<const uint8_t> data) override {
    auto err =
        decoder_.feed(data, [&](std::span<const uint8_t> payload) { return frame(payload); });
    if (err != proto::FrameError::kNone) ++bad_frames;
  }
  void on_drained(proto::TlsChannel&) override {}
  void on_closed(proto::TlsChannel&, const proto::TlsChannel::CloseInfo& info) override {
    if (!joined) return retry(info.reason);
    ++lost;  // a joined node losing farad is a failure of the run
    last_error = info.reason;
  }

  OnJoined on_joined;
  OnMember on_member;
  bool joined = false;
  int count = 0;  // distinct peers learned
  std::vector<uint64_t> learned;
  Clock::time_point join_sent{}, done{};
  uint64_t epoch = 0, cursor = 0;
  int retries = 0, lost = 0, bad_frames = 0;
  std::string last_error;

 private:
  void retry(const std::string& why) {
    ++retries;
    last_error = why;
    auto t = std::make_shared<boost::asio::steady_timer>(io_, 1s);
    t->async_wait([this, t](const boost::system::error_code&) { start(); });
  }

  bool frame(std::span<const uint8_t> payload) {
    // Pushes: FaradMessage.push (13) -> Push.members (4) -> Member.node (2) -> NodeInfo.name (1).
    std::span<const uint8_t> push;
    bool ok = fields(payload, [&](uint64_t f, uint64_t wt, uint64_t, std::span<const uint8_t> b) {
      if (f == 13 && wt == 2) push = b;
    });
    if (!ok) return ++bad_frames, false;
    if (push.data() == nullptr) return other(payload);
    ok = fields(push, [&](uint64_t f, uint64_t wt, uint64_t v, std::span<const uint8_t> member) {
      if (f == 1 && wt == 0) epoch = v;
      if (f == 2 && wt == 0) cursor = v;
      if (f != 4 || wt != 2) return;
      fields(member, [&](uint64_t mf, uint64_t mwt, uint64_t, std::span<const uint8_t> node) {
        if (mf != 2 || mwt != 2) return;
        fields(node, [&](uint64_t nf, uint64_t nwt, uint64_t, std::span<const uint8_t> name) {
          if (nf == 1 && nwt == 2 && on_member) {
            on_member(*this, {reinterpret_cast<const char*>(name.data()), name.size()});
          }
        });
      });
    });
    if (!ok) ++bad_frames;
    return ok;
  }

  bool other(std::span<const uint8_t> payload) {
    proto::FaradMessage m;
    if (proto::decode(payload, m) != proto::FrameError::kNone) return ++bad_frames, false;
    if (m.has_joined() && !joined) {
      joined = true;
      epoch = m.joined().epoch();
      if (on_joined) on_joined(*this);
    } else if (m.has_error()) {
      last_error = m.error().detail();
      ++bad_frames;
    }
    return true;
  }

  boost::asio::io_context& io_;
  SSL_CTX* ctx_;
  uint16_t port_;
  int index_;
  testing::Identity* id_;
  std::shared_ptr<proto::TlsChannel> ch_;
  proto::FrameDecoder decoder_;
};

double percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  size_t i = static_cast<size_t>(p / 100.0 * static_cast<double>(v.size() - 1) + 0.5);
  return v[std::min(i, v.size() - 1)];
}

// The farad to run: $FARAD when set, otherwise the one built beside this
// benchmark (build/bench/farad_load -> build/farad/farad).
std::string default_farad_path() {
  if (const char* env = std::getenv("FARAD"); env && *env) return env;
  std::error_code ec;
  auto self = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (ec) return "farad";
  return (self.parent_path().parent_path() / "farad" / "farad").string();
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "farad_load: N simulated nodes, each a real mTLS connection with its own "
      "certificate, against one farad process; prints cold-start convergence, "
      "single-join fan-out, farad CPU and memory per node."};
  int nodes = 500, joins = 20, concurrency = 256;
  double timeout = 600;
  std::string farad_path = default_farad_path();
  app.add_option("-n,--nodes", nodes, "Simulated nodes in the cold start")->default_val(500);
  app.add_option("--joins", joins, "Single joins measured after convergence")->default_val(20);
  app.add_option("--concurrency", concurrency, "Connections handshaking/joining at once")
      ->default_val(256);
  app.add_option("--farad", farad_path, "farad executable (default: $FARAD, else the build's)")
      ->default_str(farad_path);
  app.add_option("--timeout", timeout, "Give up after this many seconds per phase")
      ->default_val(600);
  CLI11_PARSE(app, argc, argv);
  signal(SIGPIPE, SIG_IGN);

  rlimit rl{};
  getrlimit(RLIMIT_NOFILE, &rl);
  rl.rlim_cur = rl.rlim_max;
  setrlimit(RLIMIT_NOFILE, &rl);
  int total = nodes + joins;
  if (rl.rlim_cur != RLIM_INFINITY && static_cast<rlim_t>(total + 64) > rl.rlim_cur) {
    fmt::print(stderr, "open-file limit {} too low for {} connections\n", rl.rlim_cur, total);
    return 1;
  }

  // PKI: a CA, farad's certificate, one certificate per simulated node.
  auto t_pki = Clock::now();
  testing::TempDir tmp;
  testing::Pki pki(tmp.path() + "/pki");
  testing::CertSpec fs("farad");
  fs.dns_san = "farad";
  testing::Identity farad_id = pki.issue(fs);
  pki.write(farad_id, "farad");
  std::vector<testing::Identity> ids;
  ids.reserve(total);
  for (int i = 0; i < total; ++i) ids.push_back(pki.issue(name_of(i)));
  fmt::print("made {} node certificates (EC P-256) in {:.1f}s\n", total,
             secs(Clock::now() - t_pki));

  // farad, as a separate process.
  uint16_t port = free_port();
  std::string conf = tmp.path() + "/farad.toml";
  std::ofstream(conf) << fmt::format(
      "listen = \"127.0.0.1:{}\"\nca = \"{}\"\ncert = \"{}\"\nkey = \"{}\"\nexpiry = 600\n"
      "handshake-timeout = 30\nmax-connections = {}\n",
      port, pki.ca_path(), farad_id.cert_path, farad_id.key_path, total + 128);
  std::string log_path = tmp.path() + "/farad.log";
  pid_t farad = testing::spawn_with_output(farad_path, {"--config", conf}, "", log_path);
  if (farad < 0) {
    fmt::print(stderr, "cannot start {}\n", farad_path);
    return 1;
  }
  for (int i = 0; i < 500 && slurp(log_path).find("listening") == std::string::npos; ++i) {
    std::this_thread::sleep_for(10ms);
  }
  long rss_base = status_kib(farad, "VmRSS:");
  double cpu_base = cpu_seconds(farad);

  boost::asio::io_context io(1);
  auto made = proto::make_client_context({pki.ca_path(), "", "", ""});
  if (!made) {
    fmt::print(stderr, "{}\n", made.error());
    return 1;
  }
  proto::SslCtxPtr ctx = *made;
  size_t words = (static_cast<size_t>(total) + 63) / 64;
  std::vector<std::unique_ptr<SimNode>> sims;
  int converged = 0, joined = 0, inflight = 0, next = 0;
  bool cold = true;
  // Fan-out bookkeeping.
  int current = -1;  // index of the node whose join is being measured
  int told = 0;
  std::vector<double> samples, all_told;

  auto start_more = [&] {
    while (inflight < concurrency && next < nodes) {
      sims[next++]->start();
      ++inflight;
    }
  };
  for (int i = 0; i < total; ++i) {
    sims.push_back(std::make_unique<SimNode>(io, ctx.get(), port, i, &ids[i], words));
    SimNode& s = *sims.back();
    s.on_joined = [&](SimNode&) {
      ++joined;
      if (cold) {
        --inflight;
        start_more();
      }
    };
    s.on_member = [&, i](SimNode& me, std::string_view name) {
      int k = index_of(std::string(name));
      if (k < 0 || k >= total) return;
      uint64_t bit = uint64_t{1} << (k % 64);
      if (me.learned[k / 64] & bit) return;
      me.learned[k / 64] |= bit;
      ++me.count;
      if (k == current && i < nodes) {
        samples.push_back(secs(Clock::now() - sims[k]->join_sent) * 1000);
        if (++told == nodes) all_told.push_back(samples.back());
      }
      if (cold && i < nodes && me.count == nodes - 1 && me.done == Clock::time_point{}) {
        me.done = Clock::now();
        ++converged;
      }
    };
  }

  auto run_until = [&](const std::function<bool()>& pred) {
    auto deadline = Clock::now() + std::chrono::duration<double>(timeout);
    while (!pred() && Clock::now() < deadline) io.run_one_for(100ms);
    return pred();
  };

  // 1. Cold start.
  fmt::print("cold start: {} nodes joining (at most {} at once)...\n", nodes, concurrency);
  auto t0 = Clock::now();
  start_more();
  Clock::time_point all_joined{};
  bool ok = run_until([&] {
    if (joined == nodes && all_joined == Clock::time_point{}) all_joined = Clock::now();
    return converged == nodes;
  });
  auto t_conv = Clock::now();
  cold = false;
  if (!ok) {
    fmt::print(stderr, "cold start did not converge: {} joined, {} converged\n", joined, converged);
  }
  double cold_s = secs(t_conv - t0);
  double cpu_cold = cpu_seconds(farad) - cpu_base;
  io.run_for(2s);  // let farad settle (last writes, round gap) before measuring
  long rss_conv = status_kib(farad, "VmRSS:");
  long hwm_conv = status_kib(farad, "VmHWM:");

  // 2. Fan-out of single joins.
  fmt::print("fan-out: {} single joins to {} members...\n", joins, nodes);
  double cpu_f0 = cpu_seconds(farad);
  bool fan_ok = true;
  for (int j = 0; j < joins && ok; ++j) {
    current = nodes + j;
    told = 0;
    sims[current]->start();
    if (!run_until([&] { return told == nodes; })) {
      fmt::print(stderr, "join {}: only {} of {} told\n", j, told, nodes);
      fan_ok = false;
      break;
    }
    io.run_for(1s);  // joins measured one at a time, not as a storm
  }
  double cpu_fan = cpu_seconds(farad) - cpu_f0;
  long rss_end = status_kib(farad, "VmRSS:");
  double cpu_total = cpu_seconds(farad) - cpu_base;

  rusage self{};
  getrusage(RUSAGE_SELF, &self);
  double bench_cpu = static_cast<double>(self.ru_utime.tv_sec + self.ru_stime.tv_sec) +
                     static_cast<double>(self.ru_utime.tv_usec + self.ru_stime.tv_usec) / 1e6;
  uint64_t retries = 0, lost = 0, bad = 0;
  for (auto& sn : sims) {
    retries += static_cast<uint64_t>(sn->retries);
    lost += static_cast<uint64_t>(sn->lost);
    bad += static_cast<uint64_t>(sn->bad_frames);
  }

  kill(farad, SIGTERM);
  int st = 0;
  waitpid(farad, &st, 0);
  std::string log = slurp(log_path);
  std::string counters;
  if (auto at = log.rfind("counters "); at != std::string::npos) {
    counters = log.substr(at, log.find('\n', at) - at);
  }
  size_t warnings = 0;
  for (size_t at = 0; (at = log.find(" warn ", at)) != std::string::npos; ++at) ++warnings;

  double per_node_kib = static_cast<double>(rss_conv - rss_base) / nodes;
  fmt::print("\nfarad_load: N={} nodes, {} single joins, farad single-threaded, {} CPUs here\n\n",
             nodes, joins, std::thread::hardware_concurrency());
  fmt::print("| metric | measured | target (N=10,000) |\n|---|---|---|\n");
  fmt::print("| cold start: all N joined | {:.2f} s | |\n", secs(all_joined - t0));
  fmt::print("| cold start: all N joined and learned of all N-1 others | {:.2f} s{} | < 60 s |\n",
             cold_s, ok ? "" : " (DID NOT CONVERGE)");
  fmt::print("| single join -> member told, p50 | {:.1f} ms | |\n", percentile(samples, 50));
  fmt::print("| single join -> member told, p99 | {:.1f} ms{} | < 1 s |\n", percentile(samples, 99),
             fan_ok ? "" : " (INCOMPLETE)");
  fmt::print("| single join -> all N told (median / max over joins) | {:.1f} / {:.1f} ms | |\n",
             percentile(all_told, 50), percentile(all_told, 100));
  fmt::print(
      "| farad CPU: cold start / fan-out phase / whole run | {:.2f} / {:.2f} / {:.2f} s | |\n",
      cpu_cold, cpu_fan, cpu_total);
  fmt::print(
      "| farad RSS: before / with N connected / at end / peak | {:.1f} / {:.1f} / {:.1f} / {:.1f} "
      "MiB | |\n",
      rss_base / 1024.0, rss_conv / 1024.0, rss_end / 1024.0, hwm_conv / 1024.0);
  fmt::print("| farad RSS per connected node | {:.1f} KiB | < 64 KiB |\n", per_node_kib);
  fmt::print(
      "\nload generator (this process) CPU: {:.1f} s; connection retries {}, joined nodes "
      "that lost farad {}, bad frames {}; farad warnings logged: {}\n",
      bench_cpu, retries, lost, bad, warnings);
  std::string per_join;
  for (double ms : all_told) per_join += fmt::format(" {:.0f}", ms);
  fmt::print("single joins, ms until all N told, in order:{}\n", per_join);
  fmt::print("farad {}\n", counters);
  return ok && fan_ok ? 0 : 1;
}
