// log.h: the daemons' log lines (farad, faradayd): one line per event on stderr, with a UTC
// timestamp and a level, so an operator can follow what happened and why.
// Thread-safe (one fmt::print per line). Never pass key material.
#pragma once

#include <fmt/core.h>

#include <cstdio>
#include <ctime>
#include <optional>
#include <string_view>

namespace faraday::log {

enum class Level { kDebug, kInfo, kWarn, kError };

// "debug", "info", "warn" or "error" (a log-level setting); nullopt otherwise.
inline std::optional<Level> parse_level(std::string_view name) {
  if (name == "debug") return Level::kDebug;
  if (name == "info") return Level::kInfo;
  if (name == "warn") return Level::kWarn;
  if (name == "error") return Level::kError;
  return std::nullopt;
}

inline Level& threshold() {
  static Level level = Level::kInfo;
  return level;
}

template <typename... Args>
void write(Level level, fmt::format_string<Args...> format, Args&&... args) {
  if (level < threshold()) return;
  static constexpr const char* kNames[] = {"debug", "info", "warn", "error"};
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  tm utc;
  gmtime_r(&ts.tv_sec, &utc);
  char stamp[32];
  strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &utc);
  fmt::print(stderr, "{}.{:03d}Z {} {}\n", stamp, ts.tv_nsec / 1000000,
             kNames[static_cast<int>(level)], fmt::format(format, std::forward<Args>(args)...));
}

template <typename... Args>
void debug(fmt::format_string<Args...> f, Args&&... a) {
  write(Level::kDebug, f, std::forward<Args>(a)...);
}
template <typename... Args>
void info(fmt::format_string<Args...> f, Args&&... a) {
  write(Level::kInfo, f, std::forward<Args>(a)...);
}
template <typename... Args>
void warn(fmt::format_string<Args...> f, Args&&... a) {
  write(Level::kWarn, f, std::forward<Args>(a)...);
}
template <typename... Args>
void error(fmt::format_string<Args...> f, Args&&... a) {
  write(Level::kError, f, std::forward<Args>(a)...);
}

}  // namespace faraday::log
