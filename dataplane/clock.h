// clock.h: the core's only source of time, injected so tests can drive every
// timer with a fake clock. Monotonic time drives timers; wall time only feeds
// TAI64N timestamps and the "latest handshake" the UAPI reports.
#pragma once

#include <cstdint>
#include <ctime>

namespace faraday::dataplane {

using Nanos = int64_t;
inline constexpr Nanos kMillisecond = 1'000'000;
inline constexpr Nanos kSecond = 1'000'000'000;
inline constexpr Nanos kNever = INT64_MAX;

class Clock {
 public:
  virtual ~Clock() = default;
  virtual Nanos monotonic() const = 0;
  virtual Nanos wall() const = 0;  // since the Unix epoch
};

class SystemClock final : public Clock {
 public:
  Nanos monotonic() const override { return read(CLOCK_MONOTONIC); }
  Nanos wall() const override { return read(CLOCK_REALTIME); }

 private:
  static Nanos read(clockid_t id) {
    timespec ts;
    clock_gettime(id, &ts);
    return Nanos{ts.tv_sec} * kSecond + ts.tv_nsec;
  }
};

}  // namespace faraday::dataplane
