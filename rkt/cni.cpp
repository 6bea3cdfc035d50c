// cni.cpp: see cni.h.
#include "rkt/cni.h"

#include <algorithm>
#include <optional>

namespace faraday::rkt {
namespace {

using nlohmann::json;

// Deeper JSON is refused before it is parsed: the parser keeps a stack of its
// own, but dumping, copying and comparing a document recurse, and a megabyte of
// "[" would exhaust the thread's stack there.
constexpr size_t kMaxDepth = 64;
constexpr size_t kMaxContainerId = 1024;
constexpr size_t kMaxPath = 4096;
constexpr size_t kMaxSocketPath = 107;  // sun_path less its terminating NUL

CniError fail(CniCode code, std::string message) {
  return CniError{std::move(message), code, {}};
}

// ASCII only, whatever the locale.
bool alnum(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

// The spec's shape for a container ID and a network name: an alphanumeric,
// then alphanumerics, '_', '.' or '-'.
bool spec_identifier(std::string_view s) {
  if (s.empty() || !alnum(s[0])) return false;
  return std::all_of(s.begin(), s.end(),
                     [](char c) { return alnum(c) || c == '_' || c == '.' || c == '-'; });
}

// What the kernel takes as an interface name (dev_valid_name): 1-15 bytes, not
// "." or "..", no '/', ':' or white space; and printable ASCII here.
bool interface_name(std::string_view s) {
  if (s.empty() || s.size() > 15 || s == "." || s == "..") return false;
  return std::all_of(s.begin(), s.end(),
                     [](char c) { return c > 0x20 && c < 0x7f && c != '/' && c != ':'; });
}

bool absolute_path(std::string_view s, size_t max) {
  return !s.empty() && s[0] == '/' && s.size() <= max && s.find('\0') == std::string_view::npos;
}

// How deep the arrays and objects of a JSON text nest (strings skipped); stops
// counting past kMaxDepth.
size_t nesting(std::string_view text) {
  size_t depth = 0, deepest = 0;
  bool in_string = false, escaped = false;
  for (char c : text) {
    if (in_string) {
      if (escaped)
        escaped = false;
      else if (c == '\\')
        escaped = true;
      else if (c == '"')
        in_string = false;
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      deepest = std::max(deepest, ++depth);
      if (deepest > kMaxDepth) break;
    } else if ((c == ']' || c == '}') && depth > 0) {
      --depth;
    }
  }
  return deepest;
}

Result<json, CniError> parse_object(std::string_view bytes) {
  if (bytes.size() > kCniMaxConfigBytes)
    return fail(CniCode::kDecodeFailure, "the network configuration is larger than 1 MiB");
  if (bytes.find('\0') != std::string_view::npos)
    return fail(CniCode::kDecodeFailure, "the network configuration holds a NUL byte");
  if (nesting(bytes) > kMaxDepth)
    return fail(CniCode::kDecodeFailure,
                "the network configuration nests deeper than " + std::to_string(kMaxDepth));
  json doc = json::parse(bytes, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded())
    return fail(CniCode::kDecodeFailure, "the network configuration is not valid JSON");
  if (!doc.is_object())
    return fail(CniCode::kInvalidConfig, "the network configuration is not a JSON object");
  return doc;
}

// A field that must be a string when present: its value, or nullopt if absent.
Result<std::optional<std::string>, CniError> string_field(const json& doc, const char* key) {
  auto it = doc.find(key);
  if (it == doc.end() || it->is_null()) return std::optional<std::string>();
  if (!it->is_string())
    return fail(CniCode::kInvalidConfig, std::string("\"") + key + "\" must be a string");
  return std::optional<std::string>(it->get<std::string>());
}

std::string dump(const json& doc) {
  return doc.dump(-1, ' ', false, json::error_handler_t::replace);
}

bool legacy_result(std::string_view version) {
  return version == "0.1.0" || version == "0.2.0";
}
bool ips_say_version(std::string_view version) {
  return version == "0.3.0" || version == "0.3.1" || version == "0.4.0";
}
bool is_v6(std::string_view address) {
  return address.find(':') != std::string_view::npos;
}

json route_json(const CniRoute& r) {
  json out = {{"dst", r.dst}};
  if (!r.gw.empty()) out["gw"] = r.gw;
  return out;
}

}  // namespace

const std::vector<std::string>& cni_versions() {
  static const std::vector<std::string> versions = {"0.1.0", "0.2.0", "0.3.0", "0.3.1",
                                                    "0.4.0", "1.0.0", "1.1.0"};
  return versions;
}

bool cni_version_supported(std::string_view version) {
  const auto& v = cni_versions();
  return std::find(v.begin(), v.end(), version) != v.end();
}

Result<CniEnv, CniError> parse_cni_env(const std::function<const char*(const char*)>& getenv) {
  CniEnv env;
  const char* command = getenv("CNI_COMMAND");
  if (!command) return fail(CniCode::kInvalidEnvironment, "CNI_COMMAND is not set");
  static const std::map<std::string_view, CniCommand> kCommands = {
      {"ADD", CniCommand::kAdd},       {"DEL", CniCommand::kDel},
      {"CHECK", CniCommand::kCheck},   {"VERSION", CniCommand::kVersion},
      {"STATUS", CniCommand::kStatus}, {"GC", CniCommand::kGc}};
  auto known = kCommands.find(command);
  if (known == kCommands.end())
    return fail(CniCode::kInvalidEnvironment, "CNI_COMMAND " + cni_shown(command) +
                                                  " is not ADD, DEL, CHECK, VERSION, STATUS or GC");
  env.command = known->second;
  const bool attach = env.command == CniCommand::kAdd || env.command == CniCommand::kDel ||
                      env.command == CniCommand::kCheck;

  if (const char* path = getenv("CNI_PATH")) {
    std::string_view rest = path;
    while (!rest.empty()) {
      const size_t colon = rest.find(':');
      std::string_view dir = rest.substr(0, colon);
      if (!dir.empty()) env.path.emplace_back(dir);
      rest = colon == std::string_view::npos ? std::string_view() : rest.substr(colon + 1);
    }
  }
  if (env.command == CniCommand::kGc && env.path.empty())
    return fail(CniCode::kInvalidEnvironment, "CNI_PATH is not set (GC needs it)");
  if (!attach) return env;

  const char* id = getenv("CNI_CONTAINERID");
  if (!id || !*id) return fail(CniCode::kInvalidEnvironment, "CNI_CONTAINERID is not set");
  if (std::string_view(id).size() > kMaxContainerId || !spec_identifier(id))
    return fail(CniCode::kInvalidEnvironment,
                "CNI_CONTAINERID " + cni_shown(id) +
                    " must be a letter or digit followed by letters, digits, '_', '.' or '-'");
  env.container_id = id;

  const char* ifname = getenv("CNI_IFNAME");
  if (!ifname || !*ifname) return fail(CniCode::kInvalidEnvironment, "CNI_IFNAME is not set");
  if (!interface_name(ifname))
    return fail(CniCode::kInvalidEnvironment,
                "CNI_IFNAME " + cni_shown(ifname) +
                    " is not an interface name (1-15 printable characters, no '/', ':' or space)");
  env.ifname = ifname;

  const char* netns = getenv("CNI_NETNS");
  if (netns && *netns) {
    if (!absolute_path(netns, kMaxPath))
      return fail(CniCode::kInvalidEnvironment,
                  "CNI_NETNS " + cni_shown(netns) + " is not an absolute path");
    env.netns = netns;
  } else if (env.command != CniCommand::kDel) {
    return fail(CniCode::kInvalidEnvironment, "CNI_NETNS is not set");
  }

  if (const char* args = getenv("CNI_ARGS")) {
    std::string_view rest = args;
    while (!rest.empty()) {
      const size_t semi = rest.find(';');
      std::string_view pair = rest.substr(0, semi);
      const size_t eq = pair.find('=');
      if (eq == 0 || eq == std::string_view::npos)
        return fail(CniCode::kInvalidEnvironment,
                    "CNI_ARGS item " + cni_shown(pair) + " is not KEY=VALUE");
      env.args[std::string(pair.substr(0, eq))] = std::string(pair.substr(eq + 1));
      rest = semi == std::string_view::npos ? std::string_view() : rest.substr(semi + 1);
    }
  }
  return env;
}

Result<NetConf, CniError> parse_netconf(std::string_view bytes, CniCommand command) {
  auto doc = parse_object(bytes);
  if (!doc) return doc.failure();
  NetConf conf;
  auto version = string_field(*doc, "cniVersion");
  if (!version) return version.failure();
  conf.cni_version = version->value_or("0.1.0");
  if (!cni_version_supported(conf.cni_version)) {
    std::string speaks;
    for (const std::string& v : cni_versions()) speaks += (speaks.empty() ? "" : ", ") + v;
    return fail(CniCode::kIncompatibleVersion, "CNI version " + cni_shown(conf.cni_version) +
                                                   " is not supported; this plugin speaks " +
                                                   speaks);
  }
  auto name = string_field(*doc, "name");
  if (!name) return name.failure();
  if (!*name) return fail(CniCode::kInvalidConfig, "the network configuration has no \"name\"");
  if (!spec_identifier(**name))
    return fail(CniCode::kInvalidConfig,
                "\"name\" " + cni_shown(**name) +
                    " must be a letter or digit followed by letters, digits, '_', '.' or '-'");
  conf.name = **name;
  auto type = string_field(*doc, "type");
  if (!type) return type.failure();
  if (!*type || (*type)->empty())
    return fail(CniCode::kInvalidConfig, "the network configuration has no \"type\"");
  if ((*type)->find_first_of("/\\") != std::string::npos)
    return fail(CniCode::kInvalidConfig,
                "\"type\" " + cni_shown(**type) + " holds a path separator");
  conf.type = **type;
  auto interface = string_field(*doc, "interface");
  if (!interface) return interface.failure();
  conf.interface = interface->value_or(std::string(kCniDefaultInterface));
  if (!interface_name(conf.interface))
    return fail(CniCode::kInvalidConfig,
                "\"interface\" " + cni_shown(conf.interface) + " is not an interface name");
  auto socket = string_field(*doc, "controlSocket");
  if (!socket) return socket.failure();
  if (*socket) {
    if (!absolute_path(**socket, kMaxSocketPath))
      return fail(CniCode::kInvalidConfig, "\"controlSocket\" " + cni_shown(**socket) +
                                               " is not an absolute path of at most 107 bytes");
    conf.control_socket = **socket;
  }
  auto ipam = doc->find("ipam");
  if (ipam != doc->end() && !ipam->is_null() && command != CniCommand::kDel)
    return fail(CniCode::kUnsupportedField,
                "\"ipam\": " + cni_shown(dump(*ipam)) +
                    " is not used: faradayd gives each container an address from the node's "
                    "container prefix; remove it from the configuration");
  conf.raw = std::move(*doc);
  return conf;
}

Result<std::string, CniError> parse_version_request(std::string_view bytes) {
  if (bytes.find_first_not_of(" \t\r\n") == std::string_view::npos) return std::string("0.1.0");
  auto doc = parse_object(bytes);
  if (!doc) return doc.failure();
  auto version = string_field(*doc, "cniVersion");
  if (!version) return version.failure();
  return version->value_or("0.1.0");
}

std::string cni_version_reply(std::string_view requested) {
  return dump({{"cniVersion", std::string(requested)}, {"supportedVersions", cni_versions()}});
}

std::string cni_result(const CniAttachment& a, std::string_view asked) {
  const std::string_view version = cni_version_supported(asked) ? asked : kCniLatestVersion;
  json out = {{"cniVersion", std::string(version)}, {"dns", json::object()}};
  if (legacy_result(version)) {
    for (const CniAddress& ip : a.ips) {
      const char* key = ip.family == 6 ? "ip6" : "ip4";
      if (out.contains(key)) continue;  // one address per family
      json entry = {{"ip", ip.address}};
      if (!ip.gateway.empty()) entry["gateway"] = ip.gateway;
      json routes = json::array();
      for (const CniRoute& r : a.routes)
        if (is_v6(r.dst) == (ip.family == 6)) routes.push_back(route_json(r));
      entry["routes"] = std::move(routes);
      out[key] = std::move(entry);
    }
    return dump(out);
  }
  json iface = {{"name", a.ifname}};
  if (!a.mac.empty()) iface["mac"] = a.mac;
  if (!a.sandbox.empty()) iface["sandbox"] = a.sandbox;
  out["interfaces"] = json::array({iface});
  json ips = json::array();
  for (const CniAddress& ip : a.ips) {
    json entry = {{"address", ip.address}, {"interface", 0}};
    if (!ip.gateway.empty()) entry["gateway"] = ip.gateway;
    if (ips_say_version(version)) entry["version"] = ip.family == 6 ? "6" : "4";
    ips.push_back(std::move(entry));
  }
  out["ips"] = std::move(ips);
  json routes = json::array();
  for (const CniRoute& r : a.routes) routes.push_back(route_json(r));
  out["routes"] = std::move(routes);
  return dump(out);
}

std::string cni_shown(std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out = "\"";
  for (unsigned char c : s.substr(0, 128)) {
    if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') {
      out += static_cast<char>(c);
    } else {
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out + (s.size() > 128 ? "\"..." : "\"");
}

std::string cni_error(const CniError& e, std::string_view version) {
  const std::string v(cni_version_supported(version) ? version : kCniLatestVersion);
  json out = {{"cniVersion", v}, {"code", static_cast<int>(e.code)}, {"msg", e.message}};
  if (!e.details.empty()) out["details"] = e.details;
  return dump(out);
}

}  // namespace faraday::rkt
