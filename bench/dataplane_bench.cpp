// dataplane_bench: the in-memory data path on one core, once per AEAD backend this
// build has (libsodium, intel-ipsec-mb). Two Devices complete a handshake in memory
// (fake clock, no sockets); then, for 64, 512 and 1420-byte inner packets, device A
// encrypts bursts of kBurstSize (send_burst: route, pad, seal, header) and device B
// decrypts them (receive_burst: index, open, replay window, allowed-IPs check). Beside
// each figure, in the same run and on the same buffers, the raw libsodium
// ChaCha20-Poly1305 seal/open of the same sizes: the ceiling the data path is measured
// against. The backend's own seal_burst/open_burst on those buffers is printed the same
// way, and a table at the end puts raw and pipeline figures of every backend side by
// side. Then, per backend, the data path with its AEAD shared by 1 and by 2 workers
// (bench_workers.h): many flows over 16 peers, and one peer with one flow, with the
// ratio 2 workers / 1 worker. Every figure goes to a JSON file, the worker runs to an
// SVG chart beside it (bench_output.h).
//
//   build/bench/dataplane_bench [SECONDS_PER_FIGURE] [--json FILE]
#include <sodium.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "bench/bench_common.h"
#include "bench/bench_output.h"
#include "bench/bench_workers.h"
#include "crypto/aead.h"
#include "crypto/aead_batch.h"

namespace {

using namespace faraday;
using namespace faraday::bench;
using Seconds = std::chrono::duration<double>;

// Bursts per round: 256 packets, 512 KiB of buffers, refilled (untimed) before
// each round. A faradayd worker reuses one burst's buffers for every read, so
// what it seals was just written by the TUN read and is in its cache; 512 bursts
// (64 MiB) a round made every packet a cache miss, and the raw 64 B figure fell
// below the pipeline's (2.2 against 2.9 Mpps, 2026-12-04).
constexpr size_t kBursts = 4;
constexpr size_t kPackets = kBursts * kBurstSize;

void report(const char* what, size_t size, const Figures& f, const Figures& base) {
  std::printf(
      "%-24s %5zu B  %8.2f Gbit/s  %7.3f Mpps   libsodium %8.2f Gbit/s  %7.3f Mpps   "
      "ratio %.2f\n",
      what, size, f.gbps(size), f.mpps(), base.gbps(size), base.mpps(), f.mpps() / base.mpps());
}

// What one backend achieved at one size: the pipeline, the backend alone through its
// burst interface, and libsodium alone one call per message (the baseline).
struct Row {
  Figures enc, dec, seal_burst, open_burst, seal, open;
};

// Writes a fresh inner packet of `size` bytes into every buffer.
void refill(std::vector<Packet>& pkts, size_t size) {
  for (Packet& p : pkts) {
    p.reset();
    write_inner(p.data(), size);
    p.length = static_cast<uint32_t>(size);
  }
}

// One direction of the pipeline: every burst of pkts through `burst` on dev,
// each of which must pass; the time goes to `into`.
void timed_bursts(Figures& into, Device& dev,
                  void (Device::*burst)(std::span<Packet>, std::span<Verdict>),
                  std::vector<Packet>& pkts, const char* failure) {
  std::vector<Verdict> verdicts(kBurstSize);
  auto t0 = std::chrono::steady_clock::now();
  for (size_t i = 0; i < kPackets; i += kBurstSize) {
    (dev.*burst)({&pkts[i], kBurstSize}, verdicts);
    if (verdicts[0] != Verdict::kPass || verdicts[kBurstSize - 1] != Verdict::kPass) fail(failure);
  }
  into.seconds += Seconds(std::chrono::steady_clock::now() - t0).count();
  into.packets += kPackets;
}

// send_burst from a, then receive_burst at b, over every packet.
void time_pipeline(Node& a, Node& b, std::vector<Packet>& pkts, Row& row) {
  timed_bursts(row.enc, a.dev, &Device::send_burst, pkts, "encrypt: packet not passed");
  for (Packet& p : pkts) p.endpoint = a.endpoint;
  timed_bursts(row.dec, b.dev, &Device::receive_burst, pkts, "decrypt: packet not passed");
}

// The backend alone: seal_burst then open_burst of kBurstSize messages, in place.
void time_backend(crypto::AeadBackend& aead, std::vector<Packet>& pkts, size_t size, Row& row) {
  const crypto::Key key{};
  std::vector<crypto::AeadJob> jobs(kPackets);
  for (size_t i = 0; i < kPackets; ++i)
    jobs[i] =
        crypto::AeadJob{&key, i, pkts[i].base + kHeadroom, static_cast<uint32_t>(size), false};
  auto t0 = std::chrono::steady_clock::now();
  for (size_t i = 0; i < kPackets; i += kBurstSize) aead.seal_burst({&jobs[i], kBurstSize});
  auto t1 = std::chrono::steady_clock::now();
  for (crypto::AeadJob& j : jobs) j.length += crypto::kTagSize;
  auto t2 = std::chrono::steady_clock::now();
  for (size_t i = 0; i < kPackets; i += kBurstSize) aead.open_burst({&jobs[i], kBurstSize});
  auto t3 = std::chrono::steady_clock::now();
  if (!jobs.front().ok || !jobs.back().ok) fail("open_burst failed");
  row.seal_burst.seconds += Seconds(t1 - t0).count();
  row.open_burst.seconds += Seconds(t3 - t2).count();
  row.seal_burst.packets += kPackets;
  row.open_burst.packets += kPackets;
}

// The baseline: libsodium alone, one call per message, in place on the same buffers.
void time_libsodium(std::vector<Packet>& pkts, size_t size, Row& row) {
  const crypto::Key key{};
  auto t0 = std::chrono::steady_clock::now();
  uint64_t counter = 0;
  for (Packet& p : pkts) {
    uint8_t nonce[12] = {};
    std::memcpy(nonce + 4, &++counter, 8);
    crypto_aead_chacha20poly1305_ietf_encrypt_detached(
        p.base + kHeadroom, p.base + kHeadroom + size, nullptr, p.base + kHeadroom, size, nullptr,
        0, nullptr, nonce, key.data());
  }
  auto t1 = std::chrono::steady_clock::now();
  counter = 0;
  for (Packet& p : pkts) {
    uint8_t nonce[12] = {};
    std::memcpy(nonce + 4, &++counter, 8);
    if (crypto_aead_chacha20poly1305_ietf_decrypt_detached(
            p.base + kHeadroom, nullptr, p.base + kHeadroom, size, p.base + kHeadroom + size,
            nullptr, 0, nonce, key.data()) != 0)
      fail("libsodium open failed");
  }
  auto t2 = std::chrono::steady_clock::now();
  row.seal.seconds += Seconds(t1 - t0).count();
  row.open.seconds += Seconds(t2 - t1).count();
  row.seal.packets += kPackets;
  row.open.packets += kPackets;
}

// Two devices on `aead`, a handshake, then every size for `seconds_per_size`.
std::map<size_t, Row> bench_backend(crypto::AeadBackend& aead, double seconds_per_size) {
  FixedClock clock;
  Node a(clock, aead, "10.99.0.1:51820"), b(clock, aead, "10.99.0.2:51820");
  shake_hands(a, b);

  Buffers buffers(kPackets);
  std::vector<Packet>& pkts = buffers.pkts;

  std::printf("in-memory data path, one core, bursts of %zu, AEAD backend %s\n", kBurstSize,
              aead.describe().c_str());
  std::map<size_t, Row> rows;
  for (size_t size : kSizes) {
    Row& row = rows[size];
    while (row.enc.seconds < seconds_per_size) {
      refill(pkts, size);
      time_pipeline(a, b, pkts, row);
      time_libsodium(pkts, size, row);
      time_backend(aead, pkts, size, row);
    }
    report("encrypt (send_burst)", size, row.enc, row.seal);
    report("decrypt (receive_burst)", size, row.dec, row.open);
    report("seal_burst (AEAD only)", size, row.seal_burst, row.seal);
    report("open_burst (AEAD only)", size, row.open_burst, row.open);
  }
  return rows;
}

// One line per size and direction: raw AEAD and pipeline Gbit/s (Mpps) per backend.
void summarise(const std::vector<std::pair<std::string, std::map<size_t, Row>>>& runs) {
  std::printf("\nside by side, Gbit/s (Mpps)\n%-5s %-4s", "size", "dir");
  for (const auto& [name, rows] : runs)
    std::printf("  %-22s  %-22s", ("raw " + name).c_str(), ("pipeline " + name).c_str());
  std::printf("\n");
  for (size_t size : kSizes) {
    for (bool seal : {true, false}) {
      std::printf("%5zu %-4s", size, seal ? "enc" : "dec");
      for (const auto& [name, rows] : runs) {
        const Row& r = rows.at(size);
        const Figures& raw = seal ? r.seal_burst : r.open_burst;
        const Figures& pipe = seal ? r.enc : r.dec;
        std::printf("  %8.2f (%7.3f)      ", raw.gbps(size), raw.mpps());
        std::printf("  %8.2f (%7.3f)      ", pipe.gbps(size), pipe.mpps());
      }
      std::printf("\n");
    }
  }
}

// Every pipeline and raw figure of one backend, for the JSON file.
void collect(const std::string& backend, const std::map<size_t, Row>& rows,
             std::vector<Entry>& into) {
  for (const auto& [size, r] : rows) {
    const std::pair<const char*, const Figures*> named[] = {
        {"pipeline encrypt", &r.enc},  {"pipeline decrypt", &r.dec}, {"seal_burst", &r.seal_burst},
        {"open_burst", &r.open_burst}, {"libsodium seal", &r.seal},  {"libsodium open", &r.open}};
    for (const auto& [measure, f] : named) into.push_back(Entry{backend, measure, size, *f});
  }
}

}  // namespace

int main(int argc, char** argv) {
  double seconds_per_size = 2.0;
  std::string json_path = "bench-results/dataplane.json";
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--json" && i + 1 < argc) {
      json_path = argv[++i];
    } else if (arg == "-h" || arg == "--help" || arg.starts_with("-")) {
      std::printf(
          "usage: dataplane_bench [SECONDS_PER_FIGURE] [--json FILE]\n"
          "  SECONDS_PER_FIGURE  default 2\n"
          "  --json FILE         default bench-results/dataplane.json; the chart goes "
          "beside it (.svg)\n");
      return arg == "-h" || arg == "--help" ? 0 : 2;
    } else {
      seconds_per_size = std::atof(argv[i]);
    }
  }
  if (sodium_init() < 0) fail("sodium_init failed");
  std::vector<std::pair<std::string, std::map<size_t, Row>>> runs;
  std::vector<Entry> entries;
  std::vector<WorkerRun> workers;
  for (const char* name : {"sodium", "ipsec-mb"}) {
    auto chosen = crypto::select_aead_backend(name);
    if (!chosen) {
      std::printf("AEAD backend %s skipped: %s\n", name, chosen.error().c_str());
      continue;
    }
    runs.emplace_back(name, bench_backend(*chosen->backend, seconds_per_size));
    collect(name, runs.back().second, entries);
    for (WorkerRun& r : bench_workers(name, chosen->make, seconds_per_size))
      workers.push_back(std::move(r));
  }
  if (runs.empty()) fail("no AEAD backend");
  summarise(runs);
  print_workers(workers);
  return write_results(json_path, entries, workers) ? 0 : 1;
}
