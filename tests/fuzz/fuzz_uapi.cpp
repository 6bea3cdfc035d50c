// fuzz_uapi.cpp: libFuzzer target for the UAPI set parser, the one place outside
// text enters faradayd's configuration. Whatever parses must also format.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "control/uapi.h"

using namespace faraday::control::uapi;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view body(reinterpret_cast<const char*>(data), size);
  auto parsed = parse_set(body);
  if (parsed) {
    const SetRequest& req = *parsed;
    // Turn the request into a device state and format it, as a get after the set would.
    DeviceState state;
    state.private_key = req.private_key;
    state.listen_port = req.listen_port.value_or(0);
    state.fwmark = req.fwmark.value_or(0);
    for (const auto& p : req.peers) {
      PeerState ps;
      ps.public_key = p.public_key;
      ps.preshared_key = p.preshared_key.value_or(faraday::crypto::Key{});
      ps.endpoint = p.endpoint;
      ps.persistent_keepalive = p.persistent_keepalive.value_or(0);
      ps.allowed_ips = p.allowed_ips;
      state.peers.push_back(std::move(ps));
    }
    std::string text = format_get(state);
    if (text.size() < 9 || text.compare(text.size() - 9, 9, "errno=0\n\n") != 0) __builtin_trap();
  } else {
    const Error& e = parsed.failure();
    if (e.errno_value <= 0 || e.message.empty()) __builtin_trap();
  }
  return 0;
}
