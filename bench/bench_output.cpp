// bench_output.cpp: see bench_output.h.
#include "bench/bench_output.h"

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace faraday::bench {
namespace {

std::string quoted(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}

std::string number(double v) {
  char text[32];
  std::snprintf(text, sizeof(text), "%.4f", v);
  return text;
}

std::string figure_fields(const Figures& f, size_t size) {
  return "\"mpps\": " + number(f.mpps()) + ", \"gbps\": " + number(f.gbps(size));
}

std::string load_average() {
  std::ifstream in("/proc/loadavg");
  std::string one, five, fifteen;
  in >> one >> five >> fifteen;
  return one + " " + five + " " + fifteen;
}

std::string json(const std::vector<Entry>& entries, const std::vector<WorkerRun>& workers) {
  std::ostringstream out;
  out << "{\n  \"cpus_online\": " << sysconf(_SC_NPROCESSORS_ONLN)
      << ",\n  \"load_average\": " << quoted(load_average()) << ",\n  \"figures\": [\n";
  for (size_t i = 0; i < entries.size(); ++i) {
    const Entry& e = entries[i];
    out << "    {\"backend\": " << quoted(e.backend) << ", \"measure\": " << quoted(e.measure)
        << ", \"size\": " << e.size << ", " << figure_fields(e.figures, e.size) << "}"
        << (i + 1 < entries.size() ? ",\n" : "\n");
  }
  out << "  ],\n  \"workers\": [\n";
  for (size_t i = 0; i < workers.size(); ++i) {
    const WorkerRun& r = workers[i];
    out << "    {\"backend\": " << quoted(r.backend) << ", \"scenario\": " << quoted(r.scenario)
        << ", \"peers\": " << r.peers << ", \"size\": " << r.size;
    constexpr const char* kKeys[3] = {"1", "2_lanes", "2_workers"};
    for (int w = 0; w < 3; ++w) {
      out << ", \"enc_" << kKeys[w] << "\": {" << figure_fields(r.enc[w], r.size) << "}";
      out << ", \"dec_" << kKeys[w] << "\": {" << figure_fields(r.dec[w], r.size) << "}";
    }
    out << ", \"enc_ratio_lanes\": " << number(r.enc[1].mpps() / r.enc[0].mpps())
        << ", \"dec_ratio_lanes\": " << number(r.dec[1].mpps() / r.dec[0].mpps())
        << ", \"enc_ratio_workers\": " << number(r.enc[2].mpps() / r.enc[0].mpps())
        << ", \"dec_ratio_workers\": " << number(r.dec[2].mpps() / r.dec[0].mpps())
        << ", \"raw_1_thread\": {" << figure_fields(r.raw[0], r.size) << "}"
        << ", \"raw_2_threads\": {" << figure_fields(r.raw[1], r.size) << "}"
        << ", \"raw_ratio\": " << number(r.raw[1].mpps() / r.raw[0].mpps()) << "}"
        << (i + 1 < workers.size() ? ",\n" : "\n");
  }
  out << "  ]\n}\n";
  return out.str();
}

// Horizontal bars, one row per backend, scenario, size and direction: 1 worker in
// grey, 2 AEAD lanes in blue, 2 workers in green, Gbit/s on a shared scale,
// the ratios to 1 worker at the end.
std::string svg(const std::vector<WorkerRun>& workers) {
  constexpr int kLabel = 330, kBars = 520, kRow = 46, kTop = 50;
  double top = 0;
  for (const WorkerRun& r : workers)
    for (int w = 0; w < 3; ++w) top = std::max({top, r.enc[w].gbps(r.size), r.dec[w].gbps(r.size)});
  if (top <= 0) top = 1;
  const int rows = static_cast<int>(workers.size()) * 2;  // encrypt and decrypt
  std::ostringstream out;
  out << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << kLabel + kBars + 90
      << "\" height=\"" << kTop + rows * kRow + 20 << "\" font-family=\"sans-serif\" "
      << "font-size=\"12\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
      << "<text x=\"10\" y=\"20\" font-size=\"15\">dataplane_bench: 1 worker (grey), 2 AEAD "
         "lanes (blue), 2 workers (green), Gbit/s of inner packets</text>\n"
      << "<text x=\"10\" y=\"38\" fill=\"#555\">load average " << load_average()
      << "; ratios to 1 worker (Mpps): lanes / workers</text>\n";
  int y = kTop;
  for (const WorkerRun& r : workers) {
    for (bool enc : {true, false}) {
      const Figures* f = enc ? r.enc : r.dec;
      out << "<text x=\"10\" y=\"" << y + 20 << "\">" << r.backend << ", " << r.scenario << ", "
          << r.size << " B, " << (enc ? "encrypt" : "decrypt") << "</text>\n";
      constexpr const char* kColors[3] = {"#999999", "#3366cc", "#33aa55"};
      for (int w = 0; w < 3; ++w) {
        const double g = f[w].gbps(r.size);
        out << "<rect x=\"" << kLabel << "\" y=\"" << y + 4 + w * 13 << "\" width=\""
            << number(kBars * g / top) << "\" height=\"12\" fill=\"" << kColors[w]
            << "\"/>\n<text x=\"" << kLabel + 4 + static_cast<int>(kBars * g / top) << "\" y=\""
            << y + 14 + w * 13 << "\" font-size=\"10\">"
            << number(g).substr(0, number(g).find('.') + 3) << "</text>\n";
      }
      out << "<text x=\"" << kLabel + kBars + 20 << "\" y=\"" << y + 20 << "\">"
          << number(f[1].mpps() / f[0].mpps()).substr(0, 4) << "x / "
          << number(f[2].mpps() / f[0].mpps()).substr(0, 4) << "x</text>\n";
      y += kRow;
    }
  }
  out << "</svg>\n";
  return out.str();
}

bool write_file(const std::filesystem::path& path, const std::string& text) {
  std::ofstream out(path);
  out << text;
  out.close();
  if (!out) {
    std::fprintf(stderr, "dataplane_bench: cannot write %s\n", path.c_str());
    return false;
  }
  return true;
}

}  // namespace

bool write_results(const std::string& path, const std::vector<Entry>& entries,
                   const std::vector<WorkerRun>& workers) {
  std::filesystem::path file(path);
  std::error_code ec;
  if (file.has_parent_path()) std::filesystem::create_directories(file.parent_path(), ec);
  std::filesystem::path chart = file;
  chart.replace_extension(".svg");
  if (!write_file(file, json(entries, workers)) || !write_file(chart, svg(workers))) return false;
  std::printf("\nresults: %s, chart: %s\n", file.c_str(), chart.c_str());
  return true;
}

}  // namespace faraday::bench
