// fuzz_cni.cpp: libFuzzer target for faraday-cni's outside input (rkt/cni.h):
// the bytes as a network configuration (parse_netconf) and as a VERSION
// request, and, split at NUL bytes, as the CNI_* environment. A configuration
// that parses has a supported version, a name and a type; one that does not
// has a message and a code, and its error answer is JSON that reads back the
// same code and message (messages are printable ASCII: outside bytes are shown
// as \xNN). Every answer (error, result in each version) is valid JSON. And
// the bytes as faradayd's answer to each command (rkt/plugin.h, the plugin's
// reading of its control socket's replies): the plugin prints one JSON object
// (a result or an error) or nothing, and exits 0 or 1.
#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "rkt/cni.h"
#include "rkt/plugin.h"

using namespace faraday::rkt;
using nlohmann::json;

namespace {

// The error's answer in one of the versions (which one, from the input's size).
void check_error(const CniError& e, size_t size) {
  if (e.message.empty() || static_cast<int>(e.code) <= 0) __builtin_trap();
  const std::string& version = cni_versions()[size % cni_versions().size()];
  json answer = json::parse(cni_error(e, version), nullptr, false);
  if (!answer.is_object() || answer["code"] != static_cast<int>(e.code) ||
      answer["cniVersion"] != version || answer["msg"] != e.message)
    __builtin_trap();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view bytes(reinterpret_cast<const char*>(data), size);

  auto conf = parse_netconf(bytes, size % 2 ? CniCommand::kAdd : CniCommand::kDel);
  if (conf) {
    if (!cni_version_supported(conf->cni_version) || conf->name.empty() || conf->type.empty() ||
        conf->interface.empty() || !conf->raw.is_object())
      __builtin_trap();
    CniAttachment a;
    a.ifname = conf->interface;
    a.sandbox = conf->name;
    a.ips = {{4, conf->type, conf->name}, {6, conf->name, ""}};
    a.routes = {{conf->type, ""}};
    json result = json::parse(cni_result(a, conf->cni_version), nullptr, false);
    if (!result.is_object() || result["cniVersion"] != conf->cni_version) __builtin_trap();
  } else {
    check_error(conf.failure(), size);
  }

  auto version = parse_version_request(bytes);
  if (version) {
    json reply = json::parse(cni_version_reply(*version), nullptr, false);
    if (!reply.is_object() || !reply["supportedVersions"].is_array()) __builtin_trap();
  } else {
    check_error(version.failure(), size);
  }

  // The environment: up to six values separated by NUL, in this order.
  static const char* const kNames[] = {"CNI_COMMAND", "CNI_CONTAINERID", "CNI_NETNS",
                                       "CNI_IFNAME",  "CNI_ARGS",        "CNI_PATH"};
  std::vector<std::string> values;
  for (std::string_view rest = bytes; values.size() < 6;) {
    const size_t nul = rest.find('\0');
    values.emplace_back(rest.substr(0, nul));
    if (nul == std::string_view::npos) break;
    rest = rest.substr(nul + 1);
  }
  auto env = parse_cni_env([&values](const char* name) -> const char* {
    for (size_t i = 0; i < values.size(); ++i)
      if (std::string_view(name) == kNames[i]) return values[i].c_str();
    return nullptr;
  });
  if (env) {
    const bool attach = env->command == CniCommand::kAdd || env->command == CniCommand::kDel ||
                        env->command == CniCommand::kCheck;
    if (attach && (env->container_id.empty() || env->ifname.empty() || env->ifname.size() > 15))
      __builtin_trap();
    if ((env->command == CniCommand::kAdd || env->command == CniCommand::kCheck) &&
        (env->netns.empty() || env->netns[0] != '/'))
      __builtin_trap();
  } else {
    check_error(env.failure(), size);
  }

  // The bytes as faradayd's reply, to each command of a well-formed invocation.
  static const char* const kCommands[] = {"ADD", "DEL", "CHECK", "STATUS", "GC"};
  for (const char* command : kCommands) {
    auto getenv = [command](const char* name) -> const char* {
      const std::string_view n(name);
      if (n == "CNI_COMMAND") return command;
      if (n == "CNI_CONTAINERID") return "c0ffee";
      if (n == "CNI_NETNS") return "/var/run/netns/fuzz";
      if (n == "CNI_IFNAME") return "eth0";
      if (n == "CNI_PATH") return "/usr/lib/cni";
      return nullptr;
    };
    const std::string_view config =
        R"({"cniVersion": "1.1.0", "name": "fuzz", "type": "faraday-cni"})";
    std::string out;
    std::string err;
    const int rc = run_plugin(
        getenv, config, out, err,
        [bytes](const std::string&, const std::string&) -> faraday::Result<std::string, CallError> {
          return std::string(bytes);
        });
    if (rc != 0 && rc != 1) __builtin_trap();
    if (!out.empty() && !json::parse(out, nullptr, false).is_object()) __builtin_trap();
    if (rc == 1 && out.empty()) __builtin_trap();
  }
  return 0;
}
