// plugin_test.cpp: whole faraday-cni invocations (rkt/plugin.h) against a fake
// faradayd that records each request line and answers from a table: every
// command in every spec version's shape, faradayd's error codes passed
// through, DEL and GC when faradayd is not running, the version gates of
// CHECK, STATUS and GC, what GC deletes, and words the control socket cannot
// carry refused before anything is sent. Then the real pieces main() uses:
// read_config() and call_faradayd() against UNIX sockets.
#include "rkt/plugin.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdio>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "tests/lib/temp_dir.h"
#include "tests/lib/unix_socket.h"

namespace faraday::rkt {
namespace {

using nlohmann::json;

using Vars = std::map<std::string, std::string>;

constexpr const char* kId = "3a8f5f0e-8d1b-4b9e-9f3e-2c1f5d7a9b10";
constexpr const char* kNetns = "/var/run/netns/rkt-3a8f5f0e";
constexpr const char* kSocket = "/run/faraday/faraday0.sock";
constexpr const char* kAddReply =
    R"({"interface": "eth0", "mac": "aa:bb:cc:dd:ee:ff", "sandbox": "/var/run/netns/rkt-3a8f5f0e",)"
    R"( "address": "10.99.1.2/24", "gateway": "10.99.1.1", "family": 4})";

// A faradayd that answers from a table: first an exact line, then the
// command word; "{}" when neither is there.
class FakeFaradayd {
 public:
  void answer(const std::string& key, const std::string& reply) { table_[key] = reply; }
  void refuse(const std::string& key, CallError::Kind kind) {
    failures_[key] = CallError{"cannot reach faradayd at the fake socket", kind};
  }

  CallFn fn() {
    return [this](const std::string& socket,
                  const std::string& line) -> Result<std::string, CallError> {
      sockets.push_back(socket);
      lines.push_back(line);
      const std::string command = line.substr(0, line.find(' '));
      for (const std::string& key : {line, command}) {
        if (auto f = failures_.find(key); f != failures_.end()) return f->second;
        if (auto a = table_.find(key); a != table_.end()) return a->second;
      }
      return std::string("{}");
    };
  }

  std::vector<std::string> sockets;
  std::vector<std::string> lines;

 private:
  std::map<std::string, std::string> table_;
  std::map<std::string, CallError> failures_;
};

// One invocation's outcome.
struct Outcome {
  int code = -1;
  std::string out, err;
  // stdout as a JSON object (empty when it is not one).
  json doc() const {
    json d = json::parse(out, nullptr, false);
    return d.is_object() ? d : json::object();
  }
  int cni_code() const { return doc().value("code", -1); }
  std::string msg() const { return doc().value("msg", ""); }
};

Outcome run(const Vars& vars, std::string_view stdin_bytes, FakeFaradayd& fake) {
  Outcome o;
  o.code = run_plugin(
      [&](const char* name) -> const char* {
        auto it = vars.find(name);
        return it == vars.end() ? nullptr : it->second.c_str();
      },
      stdin_bytes, o.out, o.err, fake.fn());
  return o;
}

// The environment a runtime sets for `command`.
Vars env(const std::string& command, const std::string& netns = kNetns) {
  Vars v = {{"CNI_COMMAND", command},
            {"CNI_CONTAINERID", kId},
            {"CNI_IFNAME", "eth0"},
            {"CNI_ARGS", ""},
            {"CNI_PATH", "/usr/lib/cni"}};
  if (!netns.empty()) v["CNI_NETNS"] = netns;
  return v;
}

// A network configuration; `version` empty: no "cniVersion" (0.1.0).
std::string conf(const std::string& version, json extra = json::object()) {
  json c = {{"name", "faraday"}, {"type", "faraday-cni"}, {"interface", "faraday0"}};
  if (!version.empty()) c["cniVersion"] = version;
  for (auto& [k, v] : extra.items()) c[k] = v;
  return c.dump();
}

// ---- VERSION and no command ---------------------------------------------------

TEST(Plugin, VersionNeedsNoFaradayd) {
  FakeFaradayd fake;
  auto o = run({{"CNI_COMMAND", "VERSION"}}, R"({"cniVersion": "0.4.0"})", fake);
  EXPECT_EQ(o.code, 0);
  EXPECT_EQ(o.doc()["cniVersion"], "0.4.0");
  EXPECT_EQ(o.doc()["supportedVersions"].size(), cni_versions().size());
  EXPECT_EQ(o.out.back(), '\n');
  EXPECT_TRUE(fake.lines.empty());

  auto empty = run({{"CNI_COMMAND", "VERSION"}}, "", fake);
  EXPECT_EQ(empty.code, 0);
  EXPECT_EQ(empty.doc()["cniVersion"], "0.1.0");

  auto bad = run({{"CNI_COMMAND", "VERSION"}}, "{", fake);
  EXPECT_EQ(bad.code, 1);
  EXPECT_EQ(bad.cni_code(), static_cast<int>(CniCode::kDecodeFailure));
  EXPECT_EQ(bad.doc()["cniVersion"], kCniLatestVersion);
  EXPECT_TRUE(fake.lines.empty());
}

TEST(Plugin, NoCommandSaysWhatItIsOnStderr) {
  FakeFaradayd fake;
  for (const Vars& vars : {Vars{}, Vars{{"CNI_COMMAND", ""}}}) {
    auto o = run(vars, "", fake);
    EXPECT_EQ(o.code, 0);
    EXPECT_EQ(o.out, "");
    EXPECT_NE(o.err.find("CNI protocol versions supported: 0.1.0,"), std::string::npos) << o.err;
  }
  EXPECT_TRUE(fake.lines.empty());
  EXPECT_NE(cni_usage().find("CNI_COMMAND"), std::string::npos);
  EXPECT_NE(cni_usage().find("controlSocket"), std::string::npos);
}

// ---- ADD ---------------------------------------------------------------------

TEST(Plugin, AddInEveryVersionsShape) {
  for (const std::string& version : cni_versions()) {
    SCOPED_TRACE(version);
    FakeFaradayd fake;
    fake.answer("cni-add", kAddReply);
    auto o = run(env("ADD"), conf(version), fake);
    ASSERT_EQ(o.code, 0) << o.out;
    EXPECT_EQ(fake.lines, std::vector<std::string>{std::string("cni-add ") + kId + " eth0 " +
                                                   kNetns + " faraday"});
    EXPECT_EQ(fake.sockets, std::vector<std::string>{kSocket});
    EXPECT_EQ(o.out.back(), '\n');
    const json r = o.doc();
    ASSERT_FALSE(r.empty()) << o.out;
    EXPECT_EQ(r["cniVersion"], version);
    const json route = {{"dst", "0.0.0.0/0"}, {"gw", "10.99.1.1"}};
    if (version == "0.1.0" || version == "0.2.0") {
      EXPECT_EQ(r["ip4"]["ip"], "10.99.1.2/24");
      EXPECT_EQ(r["ip4"]["gateway"], "10.99.1.1");
      EXPECT_EQ(r["ip4"]["routes"], json::array({route}));
      EXPECT_FALSE(r.contains("interfaces"));
      EXPECT_FALSE(r.contains("ip6"));
      continue;
    }
    EXPECT_EQ(r["interfaces"],
              json::array({{{"name", "eth0"}, {"mac", "aa:bb:cc:dd:ee:ff"}, {"sandbox", kNetns}}}));
    json ip = {{"address", "10.99.1.2/24"}, {"gateway", "10.99.1.1"}, {"interface", 0}};
    if (version < "1.0.0") ip["version"] = "4";
    EXPECT_EQ(r["ips"], json::array({ip}));
    EXPECT_EQ(r["routes"], json::array({route}));
    EXPECT_FALSE(r.contains("ip4"));
  }
}

TEST(Plugin, AddWithoutCniVersionIsRkts010) {
  FakeFaradayd fake;
  fake.answer("cni-add", kAddReply);
  auto o = run(env("ADD"), conf(""), fake);
  ASSERT_EQ(o.code, 0) << o.out;
  EXPECT_EQ(o.doc()["cniVersion"], "0.1.0");
  EXPECT_EQ(o.doc()["ip4"]["ip"], "10.99.1.2/24");
}

TEST(Plugin, AddIpv6RoutesDefaultViaGateway) {
  const std::string reply = R"({"interface": "eth0", "mac": "aa:bb:cc:dd:ee:ff", "sandbox": "/ns",)"
                            R"( "address": "fd00:99::2/64", "gateway": "fd00:99::1", "family": 6})";
  FakeFaradayd fake;
  fake.answer("cni-add", reply);
  auto modern = run(env("ADD"), conf("0.4.0"), fake);
  ASSERT_EQ(modern.code, 0) << modern.out;
  EXPECT_EQ(modern.doc()["ips"][0]["version"], "6");
  EXPECT_EQ(modern.doc()["routes"], json::array({{{"dst", "::/0"}, {"gw", "fd00:99::1"}}}));
  auto legacy = run(env("ADD"), conf("0.1.0"), fake);
  ASSERT_EQ(legacy.code, 0) << legacy.out;
  EXPECT_EQ(legacy.doc()["ip6"]["ip"], "fd00:99::2/64");
  EXPECT_FALSE(legacy.doc().contains("ip4"));
}

TEST(Plugin, AddOptionalFieldsDefaultToTheEnvironment) {
  FakeFaradayd fake;
  fake.answer("cni-add", R"({"address": "10.99.1.2/24", "family": 4})");
  auto o = run(env("ADD"), conf("1.0.0"), fake);
  ASSERT_EQ(o.code, 0) << o.out;
  EXPECT_EQ(o.doc()["interfaces"], json::array({{{"name", "eth0"}, {"sandbox", kNetns}}}));
  EXPECT_EQ(o.doc()["routes"], json::array());  // no gateway, no route
}

TEST(Plugin, SocketFromTheConfiguration) {
  FakeFaradayd fake;
  fake.answer("cni-add", kAddReply);
  ASSERT_EQ(run(env("ADD"), conf("1.0.0", {{"interface", "wg7"}}), fake).code, 0);
  ASSERT_EQ(run(env("ADD"), conf("1.0.0", {{"controlSocket", "/tmp/f.sock"}}), fake).code, 0);
  EXPECT_EQ(fake.sockets, (std::vector<std::string>{"/run/faraday/wg7.sock", "/tmp/f.sock"}));
}

TEST(Plugin, AddPassesFaradaydsCodeThrough) {
  struct Case {
    std::string reply;
    int code;
    std::string msg;
  };
  const std::vector<Case> cases = {
      {R"({"error": "no address left", "code": 11})", 11, "no address left"},
      {R"({"error": "busy", "code": 120})", 120, "busy"},
      {R"({"error": "unknown command \"cni-add\""})", 5, "unknown command \"cni-add\""},
      {R"({"error": "x", "code": "7"})", 5, "x"},
      {R"({"error": "x", "code": 0})", 5, "x"},
      {R"({"error": "x", "code": -3})", 5, "x"},
      {R"({"error": 42})", 5, "faradayd refused cni-add"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.reply);
    FakeFaradayd fake;
    fake.answer("cni-add", c.reply);
    auto o = run(env("ADD"), conf("0.3.1"), fake);
    EXPECT_EQ(o.code, 1);
    EXPECT_EQ(o.cni_code(), c.code);
    EXPECT_EQ(o.msg(), c.msg);
    EXPECT_EQ(o.doc()["cniVersion"], "0.3.1");
    EXPECT_NE(o.doc().value("details", "").find(kSocket), std::string::npos);
  }
}

TEST(Plugin, AddRefusesAnAnswerItCannotUse) {
  for (const std::string reply :
       {"not json", "[]", R"({"address": "10.99.1.2/24"})",
        R"({"address": "10.99.1.2/24", "family": 5})", R"({"family": 4})",
        R"({"address": "fd00::2/64", "family": 4})", R"({"address": 7, "family": 4})",
        R"({"address": "10.99.1.2/24", "family": 4, "mac": 1})"}) {
    SCOPED_TRACE(reply);
    FakeFaradayd fake;
    fake.answer("cni-add", reply);
    auto o = run(env("ADD"), conf("1.0.0"), fake);
    EXPECT_EQ(o.code, 1);
    EXPECT_EQ(o.cni_code(), static_cast<int>(CniCode::kIoFailure));
    EXPECT_NE(o.msg().find(kSocket), std::string::npos) << o.msg();
  }
}

TEST(Plugin, AddWhenFaradaydIsNotThere) {
  struct Case {
    CallError::Kind kind;
    CniCode code;
  };
  for (const Case& c : {Case{CallError::Kind::kNotRunning, CniCode::kTryAgainLater},
                        Case{CallError::Kind::kTimedOut, CniCode::kTryAgainLater},
                        Case{CallError::Kind::kFailed, CniCode::kIoFailure}}) {
    FakeFaradayd fake;
    fake.refuse("cni-add", c.kind);
    auto o = run(env("ADD"), conf("1.1.0"), fake);
    EXPECT_EQ(o.code, 1);
    EXPECT_EQ(o.cni_code(), static_cast<int>(c.code));
    EXPECT_EQ(o.out.find('\n'), o.out.size() - 1);  // one line, one document
  }
  FakeFaradayd fake;
  fake.refuse("cni-add", CallError::Kind::kNotRunning);
  auto o = run(env("ADD"), conf("1.1.0"), fake);
  EXPECT_EQ(o.msg(), std::string("faradayd is not running for interface faraday0: nothing "
                                 "listens on ") +
                         kSocket);
}

TEST(Plugin, WordsTheSocketCannotCarryAreRefusedBeforeSending) {
  const std::string long_id(1000, 'a');
  struct Case {
    std::string command;
    Vars vars;
  };
  Vars long_add = env("ADD");
  long_add["CNI_CONTAINERID"] = long_id;
  Vars long_check = env("CHECK");
  long_check["CNI_CONTAINERID"] = long_id;
  const std::vector<Case> cases = {
      {"ADD", env("ADD", "/var/run/netns/a b")},
      {"ADD", env("ADD", "/var/run/netns/a\x01")},
      {"ADD", env("ADD", "/var/run/netns/\xc3\xa9t\xc3\xa9")},
      {"CHECK", env("CHECK", "/var/run/netns/a b")},
      {"ADD", long_add},
      {"CHECK", long_check},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.vars.at("CNI_NETNS"));
    FakeFaradayd fake;
    auto o = run(c.vars, conf("1.0.0"), fake);
    EXPECT_EQ(o.code, 1);
    EXPECT_EQ(o.cni_code(), static_cast<int>(CniCode::kInvalidEnvironment));
    EXPECT_TRUE(fake.lines.empty());
    EXPECT_TRUE(o.msg().find("CNI_NETNS") != std::string::npos ||
                o.msg().find("too long") != std::string::npos)
        << o.msg();
  }
}

TEST(Plugin, ErrorsAreInTheConfigurationsVersion) {
  FakeFaradayd fake;
  Vars no_ifname = env("ADD");
  no_ifname.erase("CNI_IFNAME");
  auto env_error = run(no_ifname, conf("0.4.0"), fake);
  EXPECT_EQ(env_error.code, 1);
  EXPECT_EQ(env_error.cni_code(), static_cast<int>(CniCode::kInvalidEnvironment));
  EXPECT_EQ(env_error.doc()["cniVersion"], "0.4.0");

  auto ipam = run(env("ADD"), conf("0.3.0", {{"ipam", {{"type", "host-local"}}}}), fake);
  EXPECT_EQ(ipam.cni_code(), static_cast<int>(CniCode::kUnsupportedField));
  EXPECT_EQ(ipam.doc()["cniVersion"], "0.3.0");

  for (const std::string bad : {"", "{", "[1]"}) {
    auto o = run(env("ADD"), bad, fake);
    EXPECT_EQ(o.code, 1);
    EXPECT_EQ(o.doc()["cniVersion"], kCniLatestVersion) << bad;
  }
  auto unknown = run(env("ADD"), conf("9.9.9"), fake);
  EXPECT_EQ(unknown.cni_code(), static_cast<int>(CniCode::kIncompatibleVersion));
  EXPECT_EQ(unknown.doc()["cniVersion"], kCniLatestVersion);
  EXPECT_TRUE(fake.lines.empty());
}

// ---- DEL ---------------------------------------------------------------------

TEST(Plugin, DelWithAndWithoutNetns) {
  for (const std::string& version : cni_versions()) {
    SCOPED_TRACE(version);
    FakeFaradayd fake;
    auto with = run(env("DEL"), conf(version), fake);
    auto without = run(env("DEL", ""), conf(version), fake);
    EXPECT_EQ(with.code, 0);
    EXPECT_EQ(without.code, 0);
    EXPECT_EQ(with.out + without.out, "");
    EXPECT_EQ(fake.lines,
              (std::vector<std::string>{std::string("cni-del ") + kId + " eth0 " + kNetns,
                                        std::string("cni-del ") + kId + " eth0"}));
  }
}

TEST(Plugin, DelTakesIpamAsGiven) {
  FakeFaradayd fake;
  auto o = run(env("DEL"), conf("1.0.0", {{"ipam", {{"type", "host-local"}}}}), fake);
  EXPECT_EQ(o.code, 0) << o.out;
  EXPECT_EQ(fake.lines.size(), 1u);
}

TEST(Plugin, DelIsIdempotentWhenFaradaydIsNotRunning) {
  FakeFaradayd fake;
  fake.refuse("cni-del", CallError::Kind::kNotRunning);
  auto o = run(env("DEL"), conf("1.0.0"), fake);
  EXPECT_EQ(o.code, 0);
  EXPECT_EQ(o.out, "");
  EXPECT_NE(o.err.find(kSocket), std::string::npos) << o.err;
  EXPECT_NE(o.err.find("not running"), std::string::npos) << o.err;
}

TEST(Plugin, DelFailsWhenFaradaydFailsOrRefuses) {
  FakeFaradayd slow;
  slow.refuse("cni-del", CallError::Kind::kTimedOut);
  auto timed_out = run(env("DEL"), conf("1.0.0"), slow);
  EXPECT_EQ(timed_out.code, 1);
  EXPECT_EQ(timed_out.cni_code(), static_cast<int>(CniCode::kTryAgainLater));

  FakeFaradayd refusing;
  refusing.answer("cni-del", R"({"error": "namespace still busy", "code": 11})");
  auto refused = run(env("DEL"), conf("0.2.0"), refusing);
  EXPECT_EQ(refused.code, 1);
  EXPECT_EQ(refused.cni_code(), 11);
  EXPECT_EQ(refused.msg(), "namespace still busy");
  EXPECT_EQ(refused.doc()["cniVersion"], "0.2.0");
}

TEST(Plugin, DelOfWordsTheSocketCannotCarry) {
  // A namespace path with a space: deleted by ID and interface alone.
  FakeFaradayd fake;
  auto spaced = run(env("DEL", "/var/run/netns/a b"), conf("1.0.0"), fake);
  EXPECT_EQ(spaced.code, 0);
  EXPECT_EQ(spaced.out, "");
  EXPECT_EQ(fake.lines, std::vector<std::string>{std::string("cni-del ") + kId + " eth0"});
  EXPECT_NE(spaced.err.find("CNI_NETNS"), std::string::npos);

  // An ID too long for any request: ADD refused it, so there is nothing.
  FakeFaradayd none;
  Vars vars = env("DEL");
  vars["CNI_CONTAINERID"] = std::string(1020, 'a');
  auto long_id = run(vars, conf("1.0.0"), none);
  EXPECT_EQ(long_id.code, 0);
  EXPECT_EQ(long_id.out, "");
  EXPECT_TRUE(none.lines.empty());
  EXPECT_NE(long_id.err.find("warning"), std::string::npos);
}

// ---- CHECK -------------------------------------------------------------------

TEST(Plugin, CheckFrom040On) {
  for (const std::string& version : cni_versions()) {
    SCOPED_TRACE(version);
    FakeFaradayd fake;
    auto o = run(env("CHECK"), conf(version), fake);
    if (version < "0.4.0") {
      EXPECT_EQ(o.code, 1);
      EXPECT_EQ(o.cni_code(), static_cast<int>(CniCode::kIncompatibleVersion));
      EXPECT_EQ(o.doc()["cniVersion"], version);
      EXPECT_TRUE(fake.lines.empty());
    } else {
      EXPECT_EQ(o.code, 0) << o.out;
      EXPECT_EQ(o.out, "");
      EXPECT_EQ(fake.lines,
                std::vector<std::string>{std::string("cni-check ") + kId + " eth0 " + kNetns});
    }
  }
}

TEST(Plugin, CheckReportsWhatFaradaydFound) {
  FakeFaradayd fake;
  fake.answer("cni-check", R"({"error": "no attachment for this container", "code": 3})");
  auto o = run(env("CHECK"), conf("1.0.0"), fake);
  EXPECT_EQ(o.code, 1);
  EXPECT_EQ(o.cni_code(), static_cast<int>(CniCode::kUnknownContainer));

  FakeFaradayd gone;
  gone.refuse("cni-check", CallError::Kind::kNotRunning);
  auto not_running = run(env("CHECK"), conf("1.0.0"), gone);
  EXPECT_EQ(not_running.cni_code(), static_cast<int>(CniCode::kTryAgainLater));
}

// ---- STATUS ------------------------------------------------------------------

TEST(Plugin, StatusIn110Only) {
  const Vars vars = {{"CNI_COMMAND", "STATUS"}};
  for (const std::string& version : cni_versions()) {
    SCOPED_TRACE(version);
    FakeFaradayd fake;
    auto o = run(vars, conf(version), fake);
    if (version != "1.1.0") {
      EXPECT_EQ(o.cni_code(), static_cast<int>(CniCode::kIncompatibleVersion));
      EXPECT_TRUE(fake.lines.empty());
    } else {
      EXPECT_EQ(o.code, 0) << o.out;
      EXPECT_EQ(o.out, "");
      EXPECT_EQ(fake.lines, std::vector<std::string>{"cni-status"});
    }
  }
}

TEST(Plugin, StatusNotAvailable) {
  const Vars vars = {{"CNI_COMMAND", "STATUS"}};
  FakeFaradayd gone;
  gone.refuse("cni-status", CallError::Kind::kNotRunning);
  auto o = run(vars, conf("1.1.0"), gone);
  EXPECT_EQ(o.code, 1);
  EXPECT_EQ(o.cni_code(), 50);
  EXPECT_NE(o.msg().find(kSocket), std::string::npos);

  FakeFaradayd slow;
  slow.refuse("cni-status", CallError::Kind::kTimedOut);
  EXPECT_EQ(run(vars, conf("1.1.0"), slow).cni_code(), 50);

  for (const std::string reply :
       {R"({"error": "not joined yet", "code": 50})", R"({"error": "not joined yet"})"}) {
    FakeFaradayd fake;
    fake.answer("cni-status", reply);
    auto r = run(vars, conf("1.1.0"), fake);
    EXPECT_EQ(r.cni_code(), 50);
    EXPECT_EQ(r.msg(), "not joined yet");
  }
  FakeFaradayd limited;
  limited.answer("cni-status", R"({"error": "farad unreachable", "code": 51})");
  EXPECT_EQ(run(vars, conf("1.1.0"), limited).cni_code(), 51);
}

// ---- GC ----------------------------------------------------------------------

const Vars kGcVars = {{"CNI_COMMAND", "GC"}, {"CNI_PATH", "/usr/lib/cni"}};
constexpr const char* kList =
    R"({"attachments": [{"containerID": "a", "ifname": "eth0"},)"
    R"( {"containerID": "b", "ifname": "eth0"}, {"containerID": "a", "ifname": "eth1"}]})";

TEST(Plugin, GcIn110Only) {
  for (const std::string& version : cni_versions()) {
    if (version == "1.1.0") continue;
    FakeFaradayd fake;
    auto o = run(kGcVars, conf(version), fake);
    EXPECT_EQ(o.cni_code(), static_cast<int>(CniCode::kIncompatibleVersion)) << version;
    EXPECT_TRUE(fake.lines.empty());
  }
}

TEST(Plugin, GcDeletesWhatIsNotValid) {
  FakeFaradayd fake;
  fake.answer("cni-list", kList);
  const json valid = {
      {"cni.dev/valid-attachments", json::array({{{"containerID", "a"}, {"ifname", "eth0"}},
                                                 {{"containerID", "z"}, {"ifname", "eth0"}}})}};
  auto o = run(kGcVars, conf("1.1.0", valid), fake);
  EXPECT_EQ(o.code, 0) << o.out;
  EXPECT_EQ(o.out, "");
  EXPECT_EQ(fake.lines, (std::vector<std::string>{"cni-list", "cni-del b eth0", "cni-del a eth1"}));
}

TEST(Plugin, GcLeavesOtherNetworksAlone) {
  FakeFaradayd fake;
  fake.answer("cni-list",
              R"({"attachments": [{"containerID": "a", "ifname": "eth0", "network": "faraday"},)"
              R"( {"containerID": "b", "ifname": "eth0", "network": "other"},)"
              R"( {"containerID": "c", "ifname": "eth0", "network": ""}]})");
  auto o = run(kGcVars, conf("1.1.0"), fake);
  EXPECT_EQ(o.code, 0) << o.out;
  // b is the network "other"'s; c was added without a name (any network's).
  EXPECT_EQ(fake.lines, (std::vector<std::string>{"cni-list", "cni-del a eth0", "cni-del c eth0"}));
}

TEST(Plugin, GcWithoutValidListDeletesEverything) {
  for (const json& extra : {json::object(), json{{"cni.dev/valid-attachments", nullptr}},
                            json{{"cni.dev/valid-attachments", json::array()}}}) {
    FakeFaradayd fake;
    fake.answer("cni-list", kList);
    auto o = run(kGcVars, conf("1.1.0", extra), fake);
    EXPECT_EQ(o.code, 0) << o.out;
    EXPECT_EQ(fake.lines, (std::vector<std::string>{"cni-list", "cni-del a eth0", "cni-del b eth0",
                                                    "cni-del a eth1"}));
  }
}

TEST(Plugin, GcRefusesAValidListItCannotRead) {
  for (const json& bad : {json("a"), json::array({"a"}), json::array({{{"containerID", "a"}}}),
                          json::array({{{"containerID", "a"}, {"ifname", 3}}})}) {
    FakeFaradayd fake;
    fake.answer("cni-list", kList);
    auto o = run(kGcVars, conf("1.1.0", {{"cni.dev/valid-attachments", bad}}), fake);
    EXPECT_EQ(o.code, 1);
    EXPECT_EQ(o.cni_code(), static_cast<int>(CniCode::kInvalidConfig)) << bad.dump();
    EXPECT_TRUE(fake.lines.empty());
  }
}

TEST(Plugin, GcSkipsEntriesItCannotDelete) {
  FakeFaradayd fake;
  fake.answer("cni-list", R"({"attachments": [{"containerID": "a"}, 7,)"
                          R"( {"containerID": "b c", "ifname": "eth0"},)"
                          R"( {"containerID": "d", "ifname": "eth0"}]})");
  auto o = run(kGcVars, conf("1.1.0"), fake);
  EXPECT_EQ(o.code, 0) << o.out;
  EXPECT_EQ(fake.lines, (std::vector<std::string>{"cni-list", "cni-del d eth0"}));
  EXPECT_NE(o.err.find("warning"), std::string::npos);
}

TEST(Plugin, GcGoesOnAfterAFailedDelete) {
  FakeFaradayd fake;
  fake.answer("cni-list", kList);
  fake.answer("cni-del b eth0", R"({"error": "stuck", "code": 11})");
  auto o = run(kGcVars, conf("1.1.0"), fake);
  EXPECT_EQ(o.code, 1);
  EXPECT_EQ(o.cni_code(), 11);
  EXPECT_EQ(o.msg(), "stuck");
  EXPECT_NE(o.doc().value("details", "").find("1 of 3"), std::string::npos) << o.out;
  EXPECT_EQ(fake.lines.size(), 4u);
}

TEST(Plugin, GcWhenFaradaydIsNotRunningOrAnswersBadly) {
  FakeFaradayd gone;
  gone.refuse("cni-list", CallError::Kind::kNotRunning);
  auto o = run(kGcVars, conf("1.1.0"), gone);
  EXPECT_EQ(o.code, 0);
  EXPECT_EQ(o.out, "");
  EXPECT_NE(o.err.find(kSocket), std::string::npos);

  for (const std::string reply : {"{}", R"({"attachments": {}})"}) {
    FakeFaradayd fake;
    fake.answer("cni-list", reply);
    auto bad = run(kGcVars, conf("1.1.0"), fake);
    EXPECT_EQ(bad.cni_code(), static_cast<int>(CniCode::kIoFailure));
    EXPECT_EQ(fake.lines.size(), 1u);
  }
  FakeFaradayd refusing;
  refusing.answer("cni-list", R"({"error": "later", "code": 11})");
  EXPECT_EQ(run(kGcVars, conf("1.1.0"), refusing).cni_code(), 11);
}

// ---- what main() uses --------------------------------------------------------

TEST(ReadConfig, ReadsAllAndStopsOneByteOverTheLimit) {
  testing::TempDir dir;
  auto file_of = [&](const std::string& bytes) {
    const std::string path = dir.path() + "/conf";
    FILE* f = std::fopen(path.c_str(), "w");
    std::fwrite(bytes.data(), 1, bytes.size(), f);
    std::fclose(f);
    return ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  };
  const std::string small = conf("1.0.0");
  int fd = file_of(small);
  auto got = read_config(fd);
  ::close(fd);
  ASSERT_TRUE(got.ok()) << got.error();
  EXPECT_EQ(*got, small);

  fd = file_of(std::string(kCniMaxConfigBytes + 100, ' '));
  auto big = read_config(fd);
  ::close(fd);
  ASSERT_TRUE(big.ok());
  EXPECT_EQ(big->size(), kCniMaxConfigBytes + 1);
  FakeFaradayd fake;
  auto o = run(env("ADD"), *big, fake);
  EXPECT_EQ(o.cni_code(), static_cast<int>(CniCode::kDecodeFailure));
  EXPECT_NE(o.msg().find("larger than"), std::string::npos) << o.msg();

  auto closed = read_config(-1);
  EXPECT_FALSE(closed.ok());
}

TEST(CallFaradayd, NotRunningWhenTheSocketIsMissingOrStale) {
  testing::TempDir dir;
  auto missing = call_faradayd(dir.path() + "/none.sock", "cni-status");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.failure().kind, CallError::Kind::kNotRunning);

  const std::string stale = dir.path() + "/stale.sock";
  ASSERT_TRUE(testing::leave_stale_socket(stale));
  auto refused = call_faradayd(stale, "cni-status");
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.failure().kind, CallError::Kind::kNotRunning);
  EXPECT_NE(refused.error().find(stale), std::string::npos);
}

TEST(CallFaradayd, OneExchange) {
  testing::TempDir dir;
  const std::string path = dir.path() + "/f.sock";
  int listener = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  const sockaddr_un sa = testing::unix_address(path);
  ASSERT_EQ(::bind(listener, reinterpret_cast<const sockaddr*>(&sa), sizeof(sa)), 0);
  ASSERT_EQ(::listen(listener, 4), 0);
  std::string received;
  std::thread server([&] {
    int c = ::accept(listener, nullptr, nullptr);
    char buf[1024];
    while (received.find('\n') == std::string::npos) {
      ssize_t n = ::read(c, buf, sizeof(buf));
      if (n <= 0) break;
      received.append(buf, static_cast<size_t>(n));
    }
    const std::string reply = std::string(kAddReply) + "\n";
    (void)!::write(c, reply.data(), reply.size());
    ::close(c);
  });
  Vars vars = env("ADD");
  std::string out, err;
  const int code = run_plugin(
      [&](const char* name) -> const char* {
        auto it = vars.find(name);
        return it == vars.end() ? nullptr : it->second.c_str();
      },
      conf("1.0.0", {{"controlSocket", path}}), out, err, call_faradayd);
  server.join();
  ::close(listener);
  EXPECT_EQ(code, 0) << out;
  EXPECT_EQ(received, std::string("cni-add ") + kId + " eth0 " + kNetns + " faraday\n");
  EXPECT_EQ(json::parse(out)["ips"][0]["address"], "10.99.1.2/24");
}

}  // namespace
}  // namespace faraday::rkt
