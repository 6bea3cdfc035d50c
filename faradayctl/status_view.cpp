// status_view.cpp: faradayctl's view of the `status` answer (status_view.h).
// Every access checks the type first: nothing here may throw on a reply.
#include "faradayctl/status_view.h"

#include <fmt/core.h>

#include <array>
#include <cmath>
#include <cstdint>
#include <vector>

namespace faraday::faradayctl {

namespace {

using nlohmann::json;

constexpr const char* kMissing = "-";

const json* field(const json& object, const char* key) {
  if (!object.is_object()) return nullptr;
  auto it = object.find(key);
  return it == object.end() ? nullptr : &*it;
}

std::string printable(const std::string& s) {
  std::string out = s;
  for (char& c : out) {
    auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u > 0x7e) c = '?';
  }
  return out;
}

// A non-empty string, or "-".
std::string text(const json* v) {
  if (v == nullptr || !v->is_string()) return kMissing;
  const auto& s = v->get_ref<const std::string&>();
  return s.empty() ? kMissing : printable(s);
}

std::string number(const json* v) {
  if (v == nullptr) return kMissing;
  if (v->is_number_unsigned()) return fmt::format("{}", v->get<uint64_t>());
  if (v->is_number_integer()) return fmt::format("{}", v->get<int64_t>());
  if (v->is_number_float()) return fmt::format("{}", v->get<double>());
  return kMissing;
}

std::string yes_no(const json* v) {
  if (v == nullptr || !v->is_boolean()) return kMissing;
  return v->get<bool>() ? "yes" : "no";
}

// Strings joined with ", "; "none" for an empty list.
std::string list(const json* v) {
  if (v == nullptr || !v->is_array()) return kMissing;
  if (v->empty()) return "none";
  std::string out;
  for (const auto& item : *v) {
    if (!out.empty()) out += ", ";
    out += text(&item);
  }
  return out;
}

bool is_number(const json* v) {
  return v != nullptr && v->is_number();
}

// An age field: null is "never", a number an age, anything else "-".
std::string age(const json* v) {
  if (v != nullptr && v->is_null()) return "never";
  return is_number(v) ? format_age(v->get<double>()) : kMissing;
}

std::string rtt(const json* v) {
  if (!is_number(v)) return kMissing;  // null: never measured
  double ms = v->get<double>();
  if (!std::isfinite(ms) || ms < 0) return kMissing;
  if (ms < 10) return fmt::format("{:.2f} ms", ms);
  if (ms < 100) return fmt::format("{:.1f} ms", ms);
  return fmt::format("{:.0f} ms", ms);
}

std::string size(const json* v) {
  return is_number(v) ? format_size(v->get<double>()) : kMissing;
}

enum Column { kName, kEndpoint, kLink, kRtt, kHeard, kHandshake, kRx, kTx, kFarad, kColumns };
constexpr std::array<const char*, kColumns> kHeadings = {
    "NAME", "ENDPOINT", "LINK", "RTT", "HEARD", "HANDSHAKE", "RX", "TX", "FARAD"};
constexpr std::array<bool, kColumns> kRightAligned = {false, false, false, true, false,
                                                      false, true,  true,  false};
using Row = std::array<std::string, kColumns>;

Row peer_row(const json& peer) {
  Row row;
  row[kName] = text(field(peer, "name"));
  row[kEndpoint] = text(field(peer, "endpoint"));
  row[kLink] = text(field(peer, "link"));
  if (const json* silent = field(peer, "silent"); silent && silent->is_boolean() && *silent) {
    row[kLink] += " (silent)";
  }
  row[kRtt] = rtt(field(peer, "ping_rtt_ms"));
  row[kHeard] = age(field(peer, "last_heard_s"));
  row[kHandshake] = age(field(peer, "handshake_age_s"));
  row[kRx] = size(field(peer, "rx_bytes"));
  row[kTx] = size(field(peer, "tx_bytes"));
  row[kFarad] = text(field(peer, "farad_says"));
  return row;
}

std::string table(const std::vector<Row>& rows) {
  std::array<size_t, kColumns> width{};
  for (size_t c = 0; c < kColumns; ++c) width[c] = std::string_view(kHeadings[c]).size();
  for (const auto& row : rows) {
    for (size_t c = 0; c < kColumns; ++c) width[c] = std::max(width[c], row[c].size());
  }
  std::string out;
  auto line = [&](const auto& cells) {
    std::string text;
    for (size_t c = 0; c < kColumns; ++c) {
      std::string_view cell = cells[c];
      size_t pad = width[c] - cell.size();
      if (c > 0) text += "  ";
      if (kRightAligned[c]) text.append(pad, ' ');
      text += cell;
      if (!kRightAligned[c]) text.append(pad, ' ');
    }
    while (!text.empty() && text.back() == ' ') text.pop_back();
    out += text;
    out += '\n';
  };
  line(kHeadings);
  for (const auto& row : rows) line(row);
  return out;
}

}  // namespace

std::string format_size(double bytes) {
  if (!std::isfinite(bytes) || bytes < 0) return kMissing;
  if (bytes < 1024) return fmt::format("{:.0f} B", std::floor(bytes));
  static constexpr const char* kUnits[] = {"KiB", "MiB", "GiB", "TiB"};
  double value = bytes / 1024;
  size_t unit = 0;
  while (value >= 1024 && unit + 1 < std::size(kUnits)) {
    value /= 1024;
    ++unit;
  }
  return fmt::format("{:.1f} {}", value, kUnits[unit]);
}

std::string format_age(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return kMissing;
  if (seconds < 10) return fmt::format("{:.1f}s ago", seconds);
  if (seconds >= 1e12) return "long ago";  // beyond any uptime; keeps the casts defined
  auto s = static_cast<uint64_t>(seconds);
  if (s < 60) return fmt::format("{}s ago", s);
  if (s < 3600) return fmt::format("{}m{}s ago", s / 60, s % 60);
  if (s < 86400) return fmt::format("{}h{}m ago", s / 3600, s % 3600 / 60);
  return fmt::format("{}d{}h ago", s / 86400, s % 86400 / 3600);
}

std::string format_status(const nlohmann::json& status) {
  try {
    std::string out;
    auto header = [&](const char* label, const std::string& value) {
      out += fmt::format("{:<13}{}\n", std::string(label) + ":", value);
    };
    header("node", text(field(status, "node")));
    header("interface", text(field(status, "interface")));
    header("public key", text(field(status, "public_key")));
    header("listen port", number(field(status, "listen_port")));
    header("overlay", text(field(status, "overlay")));
    header("allowed ips", list(field(status, "allowed_ips")));
    header("underlay", list(field(status, "underlay")));
    header("control", text(field(status, "control")));

    const json* farad = field(status, "farad");
    if (farad != nullptr && farad->is_object()) {
      header("farad", fmt::format("{}, state {}, joined {}, epoch {}, cursor {}",
                                  text(field(*farad, "address")), text(field(*farad, "state")),
                                  yes_no(field(*farad, "joined")), number(field(*farad, "epoch")),
                                  number(field(*farad, "cursor"))));
      if (std::string err = text(field(*farad, "last_error")); err != kMissing) {
        header("farad error", err);
      }
    } else {
      header("farad", kMissing);
    }

    const json* peers = field(status, "peers");
    if (peers == nullptr || !peers->is_array()) {
      out += "\npeers: -\n";
    } else if (peers->empty()) {
      out += "\npeers: none\n";
    } else {
      std::vector<Row> rows;
      for (const auto& peer : *peers) rows.push_back(peer_row(peer));
      out += fmt::format("\npeers: {}\n", rows.size());
      out += table(rows);
      // Why a link is not up, for the peers that say so.
      for (const auto& peer : *peers) {
        const json* state = field(peer, "link");
        std::string why = text(field(peer, "link_error"));
        if (state != nullptr && state->is_string() && *state != "up" && why != kMissing) {
          out += fmt::format("link to {}: {}\n", text(field(peer, "name")), why);
        }
      }
    }
    return out;
  } catch (const std::exception& e) {
    // Only allocation can fail here.
    return fmt::format("(cannot show the status: {})\n", e.what());
  }
}

}  // namespace faraday::faradayctl
