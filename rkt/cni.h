// cni.h: the Container Network Interface as faraday-cni speaks it: what a
// runtime asks (the CNI_* environment variables and the network configuration
// on stdin) and what the plugin answers (VERSION, an ADD result, an error), each
// in the shape of the spec version the caller asked for.
//
// Versions: 0.1.0 (what rkt sends), 0.2.0, 0.3.0, 0.3.1, 0.4.0, 1.0.0, 1.1.0.
// - A result of 0.1.0 or 0.2.0 is {"cniVersion", "ip4": {"ip", "gateway",
//   "routes"}, "ip6": {...}, "dns": {}}.
// - From 0.3.0 on it is {"cniVersion", "interfaces": [{"name", "mac",
//   "sandbox"}], "ips": [{"address", "gateway", "interface"}], "routes":
//   [{"dst", "gw"}], "dns": {}}; up to 0.4.0 every ip also says its
//   "version" ("4" or "6"), which 1.0.0 dropped.
// - An error is {"cniVersion", "code", "msg", "details"} on stdout, with a
//   non-zero exit; the codes are the spec's (CniCode).
//
// What is checked, and refused with a code and a message that names the
// variable or field:
// - the environment, per command as the spec lists it (ADD and CHECK need
//   CNI_CONTAINERID, CNI_NETNS and CNI_IFNAME; DEL needs CNI_CONTAINERID and
//   CNI_IFNAME; GC needs CNI_PATH; VERSION and STATUS need none): an identifier and an
//   interface name of the spec's and the kernel's shape, an absolute namespace
//   path, CNI_ARGS as KEY=VALUE pairs;
// - the configuration: a JSON object of at most kCniMaxConfigBytes, no NUL
//   byte (the parser would stop there and ignore the rest), with a
//   supported "cniVersion" (absent means 0.1.0, as the reference library
//   reads it), a "name" of the spec's shape, a "type", and the plugin's own
//   fields ("interface": faradayd's WireGuard interface, default
//   kCniDefaultInterface; "controlSocket": a path). "ipam" is refused except
//   on DEL (which must clean up whatever it is given): faradayd allocates the
//   container's address itself. Other fields are left alone, as the spec
//   allows. A field set to null counts as absent, as the reference library
//   reads it.
//
// Everything here is pure: no I/O, no global state; callable from any thread.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "result.h"

namespace faraday::rkt {

inline constexpr std::string_view kCniLatestVersion = "1.1.0";
inline constexpr std::string_view kCniDefaultInterface = "faraday0";
inline constexpr size_t kCniMaxConfigBytes = 1 << 20;

// The spec's error codes (0-99 are the spec's own).
enum class CniCode : int {
  kIncompatibleVersion = 1,
  kUnsupportedField = 2,
  kUnknownContainer = 3,
  kInvalidEnvironment = 4,
  kIoFailure = 5,
  kDecodeFailure = 6,
  kInvalidConfig = 7,
  kTryAgainLater = 11,
  kPluginNotAvailable = 50,   // STATUS (1.1.0)
  kLimitedConnectivity = 51,  // STATUS (1.1.0): existing containers may be cut off
};

// Why a request failed: Result's message (the spec's "msg") and its code.
struct CniError {
  std::string message;
  CniCode code = CniCode::kInvalidConfig;
  std::string details;
};

enum class CniCommand { kAdd, kDel, kCheck, kVersion, kStatus, kGc };

// The versions this plugin speaks, oldest first.
const std::vector<std::string>& cni_versions();
bool cni_version_supported(std::string_view version);

// The CNI_* environment of one invocation.
struct CniEnv {
  CniCommand command = CniCommand::kVersion;
  std::string container_id;
  std::string netns;  // may be empty for DEL (the namespace may be gone)
  std::string ifname;
  std::map<std::string, std::string> args;  // CNI_ARGS
  std::vector<std::string> path;            // CNI_PATH, split at ':'
};

// Reads the environment through getenv (a variable that is not set is null).
Result<CniEnv, CniError> parse_cni_env(const std::function<const char*(const char*)>& getenv);

// The network configuration of one invocation.
struct NetConf {
  std::string cni_version;  // as given, or "0.1.0" when absent
  std::string name;
  std::string type;
  std::string interface;       // faradayd's WireGuard interface
  std::string control_socket;  // empty: faradayd's default for `interface`
  nlohmann::json raw;          // the whole object, for prevResult and the rest
};

// Parses stdin's bytes for `command`. VERSION reads only "cniVersion" (any
// version, since the runtime asks what is supported): use
// parse_version_request for it.
Result<NetConf, CniError> parse_netconf(std::string_view bytes, CniCommand command);
// The version a VERSION request names: its "cniVersion", or "0.1.0" when the
// request has none or is empty.
Result<std::string, CniError> parse_version_request(std::string_view bytes);

// What ADD made: the container's interface and its addresses.
struct CniAddress {
  int family = 4;       // 4 or 6
  std::string address;  // with its prefix length: "10.9.0.5/24"
  std::string gateway;  // empty: none
};
struct CniRoute {
  std::string dst;  // "0.0.0.0/0"
  std::string gw;   // empty: the address's gateway
};
struct CniAttachment {
  std::string ifname;
  std::string mac;      // "aa:bb:cc:dd:ee:ff"; empty: not said
  std::string sandbox;  // the namespace path
  std::vector<CniAddress> ips;
  std::vector<CniRoute> routes;
};

// The answers, one JSON document each (no trailing newline). The VERSION
// reply names the version asked for, as the spec says, even one this plugin
// does not speak; a result or an error in a version it does not speak is
// written as kCniLatestVersion.
std::string cni_version_reply(std::string_view requested);
std::string cni_result(const CniAttachment& a, std::string_view version);
std::string cni_error(const CniError& e, std::string_view version);

// Outside bytes for a message: quoted, at most 128 of them, what is not
// printable ASCII shown as \xNN.
std::string cni_shown(std::string_view s);

}  // namespace faraday::rkt
