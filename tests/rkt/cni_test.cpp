// cni_test.cpp: faraday-cni's request parsing and answers (rkt/cni.h), per
// spec version: the environment a runtime sets for each command, configurations
// good and bad with the code each gets, VERSION, and the result and error
// shapes of every version from 0.1.0 to 1.1.0.
#include "rkt/cni.h"

#include <gtest/gtest.h>

#include <map>
#include <string>

namespace faraday::rkt {
namespace {

using nlohmann::json;

using Vars = std::map<std::string, const char*>;

// An environment as a runtime sets it; a variable mapped to nullptr is unset.
class Env {
 public:
  explicit Env(Vars vars) : vars_(std::move(vars)) {}
  Result<CniEnv, CniError> parse() const {
    return parse_cni_env([this](const char* name) -> const char* {
      auto it = vars_.find(name);
      return it == vars_.end() ? nullptr : it->second;
    });
  }

 private:
  Vars vars_;
};

// What rkt sets for ADD (its network stage passes a netns path and CNI_PATH).
Vars rkt_add() {
  return {{"CNI_COMMAND", "ADD"},
          {"CNI_CONTAINERID", "3a8f5f0e-8d1b-4b9e-9f3e-2c1f5d7a9b10"},
          {"CNI_NETNS", "/var/run/netns/rkt-3a8f5f0e"},
          {"CNI_IFNAME", "eth0"},
          {"CNI_ARGS", ""},
          {"CNI_PATH", "/usr/lib/rkt/plugins/net:/usr/lib/cni"}};
}

CniCode code_of(const Env& env) {
  auto r = env.parse();
  EXPECT_FALSE(r.ok());
  return r.ok() ? CniCode{} : r.failure().code;
}

TEST(CniEnv, RktAdd) {
  auto env = Env(rkt_add()).parse();
  ASSERT_TRUE(env.ok()) << env.error();
  EXPECT_EQ(env->command, CniCommand::kAdd);
  EXPECT_EQ(env->container_id, "3a8f5f0e-8d1b-4b9e-9f3e-2c1f5d7a9b10");
  EXPECT_EQ(env->netns, "/var/run/netns/rkt-3a8f5f0e");
  EXPECT_EQ(env->ifname, "eth0");
  EXPECT_TRUE(env->args.empty());
  EXPECT_EQ(env->path, (std::vector<std::string>{"/usr/lib/rkt/plugins/net", "/usr/lib/cni"}));
}

TEST(CniEnv, ArgsArePairs) {
  auto vars = rkt_add();
  vars["CNI_ARGS"] = "IgnoreUnknown=1;K8S_POD_NAME=web-0;EMPTY=";
  auto env = Env(vars).parse();
  ASSERT_TRUE(env.ok()) << env.error();
  EXPECT_EQ(env->args.at("IgnoreUnknown"), "1");
  EXPECT_EQ(env->args.at("K8S_POD_NAME"), "web-0");
  EXPECT_EQ(env->args.at("EMPTY"), "");
  for (const char* bad : {"NOEQUALS", "=value", "A=1;;B=2"}) {
    vars["CNI_ARGS"] = bad;
    EXPECT_EQ(code_of(Env(vars)), CniCode::kInvalidEnvironment) << bad;
  }
}

TEST(CniEnv, EachCommandNeedsWhatTheSpecSays) {
  // DEL may come after the namespace is gone.
  auto vars = rkt_add();
  vars["CNI_COMMAND"] = "DEL";
  vars.erase("CNI_NETNS");
  auto del = Env(vars).parse();
  ASSERT_TRUE(del.ok()) << del.error();
  EXPECT_EQ(del->netns, "");
  vars["CNI_NETNS"] = "";
  EXPECT_TRUE(Env(vars).parse().ok());
  // ADD and CHECK may not.
  for (const char* command : {"ADD", "CHECK"}) {
    vars["CNI_COMMAND"] = command;
    EXPECT_EQ(code_of(Env(vars)), CniCode::kInvalidEnvironment) << command;
  }
  // VERSION, STATUS and GC need nothing else (GC: CNI_PATH).
  for (const char* command : {"VERSION", "STATUS", "GC"}) {
    auto env = Env(Vars{{"CNI_COMMAND", command}, {"CNI_PATH", "/usr/lib/cni"}}).parse();
    EXPECT_TRUE(env.ok()) << command;
  }
  // DEL still needs the container and the interface; GC needs CNI_PATH.
  for (const char* var : {"CNI_CONTAINERID", "CNI_IFNAME"}) {
    auto del_vars = rkt_add();
    del_vars["CNI_COMMAND"] = "DEL";
    del_vars.erase(var);
    EXPECT_EQ(code_of(Env(del_vars)), CniCode::kInvalidEnvironment) << var;
  }
  EXPECT_EQ(code_of(Env(Vars{{"CNI_COMMAND", "GC"}, {"CNI_PATH", ":"}})),
            CniCode::kInvalidEnvironment);
  EXPECT_EQ(code_of(Env(Vars{})), CniCode::kInvalidEnvironment);
  EXPECT_EQ(code_of(Env(Vars{{"CNI_COMMAND", "add"}})), CniCode::kInvalidEnvironment);
  EXPECT_EQ(code_of(Env(Vars{{"CNI_COMMAND", "ADD"}})), CniCode::kInvalidEnvironment);
}

TEST(CniEnv, HostileValuesAreRefusedByName) {
  const std::map<std::string, std::vector<const char*>> bad = {
      {"CNI_CONTAINERID", {"", "-leading-dash", "has space", "semi;colon", "slash/", "\xff"}},
      {"CNI_IFNAME", {"", ".", "..", "sixteen-chars-xx", "a/b", "a:b", "tab\there", "\x01"}},
      {"CNI_NETNS", {"relative/path", "proc/1/ns/net"}},
  };
  for (const auto& [var, values] : bad) {
    for (const char* value : values) {
      auto vars = rkt_add();
      vars[var] = value;
      auto env = Env(vars).parse();
      ASSERT_FALSE(env.ok()) << var << "=" << value;
      EXPECT_EQ(env.failure().code, CniCode::kInvalidEnvironment);
      EXPECT_NE(env.error().find(var), std::string::npos) << env.error();
    }
  }
  // The longest name the kernel takes.
  auto vars = rkt_add();
  vars["CNI_IFNAME"] = "fifteen-chars-x";
  EXPECT_TRUE(Env(vars).parse().ok());
}

TEST(NetConf, RktConfAndPodmanConflistEntry) {
  // A rkt net.d .conf: 0.1.0, no cniVersion at all is read the same way.
  for (const char* text : {R"({"cniVersion": "0.1.0", "name": "mesh", "type": "faraday-cni"})",
                           R"({"name": "mesh", "type": "faraday-cni"})"}) {
    auto conf = parse_netconf(text, CniCommand::kAdd);
    ASSERT_TRUE(conf.ok()) << conf.error();
    EXPECT_EQ(conf->cni_version, "0.1.0");
    EXPECT_EQ(conf->name, "mesh");
    EXPECT_EQ(conf->interface, kCniDefaultInterface);
    EXPECT_EQ(conf->control_socket, "");
  }
  // One plugin of a 1.0.0 .conflist as podman hands it over, with its own
  // fields and ones it does not know (left alone).
  auto conf = parse_netconf(R"({"cniVersion": "1.0.0", "name": "mesh", "type": "faraday-cni",
      "interface": "wg-store", "controlSocket": "/run/faraday/wg-store.sock",
      "capabilities": {"portMappings": true}, "somethingElse": [1, 2]})",
                            CniCommand::kAdd);
  ASSERT_TRUE(conf.ok()) << conf.error();
  EXPECT_EQ(conf->interface, "wg-store");
  EXPECT_EQ(conf->control_socket, "/run/faraday/wg-store.sock");
  EXPECT_EQ(conf->raw["somethingElse"], json({1, 2}));
}

TEST(NetConf, BadConfigurationsGetTheirCodes) {
  const std::vector<std::pair<std::string, CniCode>> cases = {
      {"", CniCode::kDecodeFailure},
      {"{", CniCode::kDecodeFailure},
      {R"({"name": "mesh", "type": "x"} trailing)", CniCode::kDecodeFailure},
      {std::string(100, '[') + std::string(100, ']'), CniCode::kDecodeFailure},
      {"[]", CniCode::kInvalidConfig},
      {R"("a string")", CniCode::kInvalidConfig},
      {R"({"cniVersion": "0.5.0", "name": "mesh", "type": "x"})", CniCode::kIncompatibleVersion},
      {R"({"cniVersion": "2.0.0", "name": "mesh", "type": "x"})", CniCode::kIncompatibleVersion},
      {R"({"cniVersion": 1, "name": "mesh", "type": "x"})", CniCode::kInvalidConfig},
      {R"({"cniVersion": "1.0.0", "type": "x"})", CniCode::kInvalidConfig},
      {R"({"cniVersion": "1.0.0", "name": "-mesh", "type": "x"})", CniCode::kInvalidConfig},
      {R"({"cniVersion": "1.0.0", "name": "me sh", "type": "x"})", CniCode::kInvalidConfig},
      {R"({"cniVersion": "1.0.0", "name": "mesh"})", CniCode::kInvalidConfig},
      {R"({"cniVersion": "1.0.0", "name": "mesh", "type": "../bin/sh"})", CniCode::kInvalidConfig},
      {R"({"cniVersion": "1.0.0", "name": "mesh", "type": "x", "interface": 7})",
       CniCode::kInvalidConfig},
      {R"({"cniVersion": "1.0.0", "name": "mesh", "type": "x", "interface": "a/b"})",
       CniCode::kInvalidConfig},
      {R"({"cniVersion": "1.0.0", "name": "mesh", "type": "x", "controlSocket": "rel.sock"})",
       CniCode::kInvalidConfig},
      {R"({"cniVersion": "1.0.0", "name": "mesh", "type": "x", "controlSocket": "/)" +
           std::string(107, 'a') + "\"}",
       CniCode::kInvalidConfig},
      {R"({"cniVersion": "1.0.0", "name": "mesh", "type": "x", "ipam": {"type": "host-local"}})",
       CniCode::kUnsupportedField},
  };
  for (const auto& [text, code] : cases) {
    auto conf = parse_netconf(text, CniCommand::kAdd);
    ASSERT_FALSE(conf.ok()) << text;
    EXPECT_EQ(conf.failure().code, code) << text << ": " << conf.error();
    EXPECT_FALSE(conf.error().empty());
  }
  EXPECT_EQ(
      parse_netconf(std::string(kCniMaxConfigBytes + 1, ' '), CniCommand::kAdd).failure().code,
      CniCode::kDecodeFailure);
  // nlohmann stops at a NUL between tokens and would ignore what follows.
  EXPECT_EQ(parse_netconf(std::string(R"({"name": "mesh", "type": "x"})") + '\0' + "junk",
                          CniCommand::kAdd)
                .failure()
                .code,
            CniCode::kDecodeFailure);
}

// "ipam" is refused where an address would be given, not on DEL, which must
// clean up whatever configuration it is handed; null is absent.
TEST(NetConf, IpamOnlyBlocksAdd) {
  const std::string text =
      R"({"cniVersion": "1.0.0", "name": "mesh", "type": "x", "ipam": {"type": "host-local"}})";
  auto add = parse_netconf(text, CniCommand::kAdd);
  ASSERT_FALSE(add.ok());
  EXPECT_EQ(add.failure().code, CniCode::kUnsupportedField);
  EXPECT_NE(add.error().find("host-local"), std::string::npos) << add.error();
  EXPECT_EQ(parse_netconf(text, CniCommand::kCheck).failure().code, CniCode::kUnsupportedField);
  EXPECT_TRUE(parse_netconf(text, CniCommand::kDel).ok());
  auto nulls = parse_netconf(
      R"({"cniVersion": null, "name": "mesh", "type": "x", "ipam": null, "interface": null})",
      CniCommand::kAdd);
  ASSERT_TRUE(nulls.ok()) << nulls.error();
  EXPECT_EQ(nulls->cni_version, "0.1.0");
  EXPECT_EQ(nulls->interface, kCniDefaultInterface);
}

// A megabyte of nesting is refused before it is parsed (the pre-scan's own
// message), not by the parser and not by a crash.
TEST(NetConf, DeepNestingIsRefusedBeforeParsing) {
  const std::string deep = std::string(500000, '[') + std::string(500000, ']');
  auto refused = parse_netconf(deep, CniCommand::kAdd);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.failure().code, CniCode::kDecodeFailure);
  EXPECT_NE(refused.error().find("nests deeper than 64"), std::string::npos) << refused.error();
  // The limit: the object itself and 63 levels in it pass, one more does not.
  auto nested = [](size_t levels) {
    return R"({"name": "mesh", "type": "x", "deep": )" + std::string(levels, '[') +
           std::string(levels, ']') + "}";
  };
  auto at_limit = parse_netconf(nested(63), CniCommand::kAdd);
  EXPECT_TRUE(at_limit.ok()) << at_limit.error();
  EXPECT_EQ(parse_netconf(nested(64), CniCommand::kAdd).failure().code, CniCode::kDecodeFailure);
  // Brackets inside strings do not count, after escaped quotes and backslashes too.
  auto conf = parse_netconf(
      R"({"name": "mesh", "type": "x", "note": "\"\\)" + std::string(1000, '[') + "\"}",
      CniCommand::kAdd);
  EXPECT_TRUE(conf.ok()) << conf.error();
}

TEST(CniVersion, ReplyListsEveryVersion) {
  auto reply = json::parse(cni_version_reply("0.4.0"));
  EXPECT_EQ(reply["cniVersion"], "0.4.0");
  EXPECT_EQ(reply["supportedVersions"],
            json({"0.1.0", "0.2.0", "0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"}));
  EXPECT_EQ(json::parse(cni_version_reply("9.9.9"))["cniVersion"], "9.9.9");  // as asked
  EXPECT_EQ(*parse_version_request(R"({"cniVersion": "1.1.0"})"), "1.1.0");
  EXPECT_EQ(*parse_version_request(""), "0.1.0");
  EXPECT_EQ(*parse_version_request("{}"), "0.1.0");
  EXPECT_EQ(parse_version_request("{").failure().code, CniCode::kDecodeFailure);
  EXPECT_EQ(parse_version_request(R"({"cniVersion": []})").failure().code, CniCode::kInvalidConfig);
}

CniAttachment attachment() {
  CniAttachment a;
  a.ifname = "eth0";
  a.mac = "02:fa:00:00:00:05";
  a.sandbox = "/var/run/netns/rkt-3a8f5f0e";
  a.ips = {{4, "10.200.1.5/24", "10.200.1.1"}, {6, "fd00:fa::5/64", "fd00:fa::1"}};
  a.routes = {{"0.0.0.0/0", ""}, {"::/0", ""}};
  return a;
}

TEST(CniResult, LegacyShapeForZeroOneAndZeroTwo) {
  for (const char* version : {"0.1.0", "0.2.0"}) {
    auto r = json::parse(cni_result(attachment(), version));
    EXPECT_EQ(r["cniVersion"], version);
    EXPECT_EQ(r["ip4"]["ip"], "10.200.1.5/24");
    EXPECT_EQ(r["ip4"]["gateway"], "10.200.1.1");
    EXPECT_EQ(r["ip4"]["routes"], json::parse(R"([{"dst": "0.0.0.0/0"}])"));
    EXPECT_EQ(r["ip6"]["ip"], "fd00:fa::5/64");
    EXPECT_EQ(r["ip6"]["routes"], json::parse(R"([{"dst": "::/0"}])"));
    EXPECT_TRUE(r["dns"].is_object());
    EXPECT_FALSE(r.contains("interfaces"));
    EXPECT_FALSE(r.contains("ips"));
  }
}

TEST(CniResult, InterfacesAndIpsFromZeroThree) {
  for (const char* version : {"0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"}) {
    auto r = json::parse(cni_result(attachment(), version));
    EXPECT_EQ(r["cniVersion"], version);
    EXPECT_FALSE(r.contains("ip4"));
    ASSERT_EQ(r["interfaces"].size(), 1u);
    EXPECT_EQ(r["interfaces"][0]["name"], "eth0");
    EXPECT_EQ(r["interfaces"][0]["mac"], "02:fa:00:00:00:05");
    EXPECT_EQ(r["interfaces"][0]["sandbox"], "/var/run/netns/rkt-3a8f5f0e");
    ASSERT_EQ(r["ips"].size(), 2u);
    EXPECT_EQ(r["ips"][0]["address"], "10.200.1.5/24");
    EXPECT_EQ(r["ips"][0]["gateway"], "10.200.1.1");
    EXPECT_EQ(r["ips"][0]["interface"], 0);
    const bool says_version = std::string(version) < "1.0.0";
    EXPECT_EQ(r["ips"][0].contains("version"), says_version) << version;
    if (says_version) {
      EXPECT_EQ(r["ips"][0]["version"], "4");
      EXPECT_EQ(r["ips"][1]["version"], "6");
    }
    EXPECT_EQ(r["routes"], json::parse(R"([{"dst": "0.0.0.0/0"}, {"dst": "::/0"}])"));
  }
}

// Fields that are not known are left out, not written empty; an unknown
// version is answered in the newest.
TEST(CniResult, OnlyWhatIsKnown) {
  CniAttachment a;
  a.ifname = "eth0";
  a.ips = {{4, "10.200.1.5/24", ""}};
  a.routes = {{"0.0.0.0/0", "10.200.1.1"}};
  auto r = json::parse(cni_result(a, "7.7.7"));
  EXPECT_EQ(r["cniVersion"], "1.1.0");
  EXPECT_EQ(r["interfaces"], json::parse(R"([{"name": "eth0"}])"));
  EXPECT_EQ(r["ips"], json::parse(R"([{"address": "10.200.1.5/24", "interface": 0}])"));
  EXPECT_EQ(r["routes"], json::parse(R"([{"dst": "0.0.0.0/0", "gw": "10.200.1.1"}])"));
  auto old = json::parse(cni_result(a, "0.2.0"));
  EXPECT_EQ(old["ip4"], json::parse(R"({"ip": "10.200.1.5/24",
      "routes": [{"dst": "0.0.0.0/0", "gw": "10.200.1.1"}]})"));
  EXPECT_FALSE(old.contains("ip6"));
}

TEST(CniError, ShapeAndUnprintableInput) {
  auto e = json::parse(cni_error(
      {"CNI_IFNAME \"a/b\" is not an interface name", CniCode::kInvalidEnvironment, "more"},
      "0.4.0"));
  EXPECT_EQ(e["cniVersion"], "0.4.0");
  EXPECT_EQ(e["code"], 4);
  EXPECT_EQ(e["msg"], "CNI_IFNAME \"a/b\" is not an interface name");
  EXPECT_EQ(e["details"], "more");
  // An unknown version answers in the newest; bytes that are not UTF-8 do not
  // stop the answer.
  auto odd = json::parse(cni_error({"bad \xff\xfe", CniCode::kInvalidConfig, {}}, "x"));
  EXPECT_EQ(odd["cniVersion"], "1.1.0");
  EXPECT_FALSE(odd.contains("details"));
  // What the parser puts in a message is already printable.
  auto vars = rkt_add();
  vars["CNI_IFNAME"] = "\xff\x01";
  auto env = Env(vars).parse();
  ASSERT_FALSE(env.ok());
  EXPECT_NE(env.error().find("\\xff\\x01"), std::string::npos) << env.error();
}

}  // namespace
}  // namespace faraday::rkt
