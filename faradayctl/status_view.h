// status_view.h: the human view of faradayd's `status` answer on the control
// socket (proto/ctl.h), as `faradayctl status` prints it.
//
// The answer (every field optional: a daemon older or newer than faradayctl may
// leave some out or give another type, and the view prints "-" for them):
//   {
//     "node": "n1", "interface": "fd1", "public_key": "<base64>",
//     "listen_port": 51820, "overlay": "10.200.0.1/32",
//     "allowed_ips": ["10.200.0.1/32", "10.201.1.0/24"],
//     "underlay": ["10.99.0.11:51820"], "control": "10.99.0.11:7451",
//     "farad": {"address": "10.99.0.1:7450",
//               "state": "stopped|waiting|connecting|joining|ready",
//               "joined": true, "epoch": 1234, "cursor": 7, "last_error": "",
//               "heartbeat_s": 1.0, "expiry_s": 3.0},
//     "peers": [
//       {"name": "n2", "public_key": "<base64>", "endpoint": "10.99.0.12:51820",
//        "allowed_ips": ["10.200.0.2/32"], "control": "10.99.0.12:7451",
//        "link": "up|connecting|down",
//        "link_error": "...",      // why it last went down ("" if never)
//        "ping_rtt_ms": 0.41,      // null: never measured
//        "last_heard_s": 0.2,      // null: never heard
//        "handshake_age_s": 3.1,   // null: no handshake yet
//        "rx_bytes": 123, "tx_bytes": 456, "silent": false,
//        "farad_says": ""}         // or PRESENT|ABSENT|UNKNOWN: farad's last
//     ]                            // answer while the peer was silent
//   }
//
// Pure functions, callable from any thread; none throws. Text from the answer
// is printed with every byte outside printable ASCII replaced by '?', so a
// reply cannot drive the terminal.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

namespace faraday::faradayctl {

// Header lines (node, interface, key, port, overlay, allowed IPs, underlay,
// control), the farad line (address, state, joined, epoch, cursor, last error
// when any) and a table with one row per peer: NAME ENDPOINT LINK RTT HEARD
// HANDSHAKE RX TX FARAD, then "link to NAME: why" for each link not up that
// says why. Ends with "\n".
std::string format_status(const nlohmann::json& status);

// "512 B", "1.2 KiB", "3.4 MiB", ... up to TiB; "-" for a negative or not finite value.
std::string format_size(double bytes);
// "0.2s ago", "42s ago", "5m12s ago", "3h4m ago", "2d3h ago"; "-" for a negative
// or not finite value.
std::string format_age(double seconds);

}  // namespace faraday::faradayctl
