// kernel_helpers.h: what the tests that play against the Linux stack on a veth
// pair share (underlay_kernel_test, dpdk_kernel_test): a monotonic time, shell
// commands, the kernel's TX checksum setting and a UDP read with a timeout.
#pragma once

#include <gtest/gtest.h>
#include <linux/ethtool.h>
#include <linux/sockios.h>
#include <net/if.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <string>

#include "dataplane/clock.h"

namespace faraday::dataplane::testing {

inline Nanos now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// Runs a shell command quietly; true when it succeeded.
inline bool run(const std::string& cmd) {
  return std::system((cmd + " >/dev/null 2>&1").c_str()) == 0;
}

// Off: the kernel puts whole checksums in its frames, as a NIC would.
inline void set_tx_checksumming(const char* ifname, bool on) {
  int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  ethtool_value v{ETHTOOL_STXCSUM, on ? 1u : 0u};
  ifreq ifr{};
  std::strncpy(ifr.ifr_name, ifname, IFNAMSIZ - 1);
  ifr.ifr_data = reinterpret_cast<char*>(&v);
  EXPECT_EQ(::ioctl(fd, SIOCETHTOOL, &ifr), 0) << std::strerror(errno);
  ::close(fd);
}

// One datagram's text from `fd` within `ms`, and who sent it; "" if none came.
inline std::string receive_text(int fd, int ms, sockaddr_storage& from) {
  pollfd p{fd, POLLIN, 0};
  if (::poll(&p, 1, ms) != 1) return "";
  char buf[256];
  socklen_t len = sizeof from;
  ssize_t n = ::recvfrom(fd, buf, sizeof buf, 0, reinterpret_cast<sockaddr*>(&from), &len);
  return n > 0 ? std::string(buf, static_cast<size_t>(n)) : "";
}

}  // namespace faraday::dataplane::testing
