// io_loop.h: driving a boost::asio::io_context from a test's own thread, in
// short slices, until something has happened or some time has passed.
// Header-only; the io_context is the caller's, used from this thread only.
#pragma once

#include <boost/asio/io_context.hpp>
#include <chrono>
#include <functional>

namespace faraday::testing {

inline constexpr std::chrono::milliseconds kIoSlice{5};

// Runs `io` until pred() or the timeout; returns pred().
inline bool run_io_until(boost::asio::io_context& io, const std::function<bool()>& pred,
                         std::chrono::steady_clock::duration timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!pred()) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    if (io.stopped()) io.restart();
    io.run_one_for(kIoSlice);
  }
  return true;
}

// Runs `io` for `d`, whatever happens.
inline void run_io_for(boost::asio::io_context& io, std::chrono::steady_clock::duration d) {
  auto deadline = std::chrono::steady_clock::now() + d;
  while (std::chrono::steady_clock::now() < deadline) {
    if (io.stopped()) io.restart();
    io.run_one_for(kIoSlice);
  }
}

}  // namespace faraday::testing
