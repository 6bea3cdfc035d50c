// plugin.cpp: see plugin.h.
#include "rkt/plugin.h"

#include <unistd.h>

#include <algorithm>
#include <cassert>
#include <cerrno>
#include <climits>
#include <cstring>
#include <optional>
#include <set>
#include <utility>
#include <vector>

#include "config.h"
#include "proto/ctl.h"

namespace faraday::rkt {
namespace {

using nlohmann::json;

constexpr const char* kValidAttachments = "cni.dev/valid-attachments";

CniError fail(CniCode code, std::string message, std::string details = {}) {
  return CniError{std::move(message), code, std::move(details)};
}

std::string all_versions() {
  std::string out;
  for (const std::string& v : cni_versions()) out += (out.empty() ? "" : ", ") + v;
  return out;
}

// Whether `version` (one cni_versions() holds) is `min` or later.
bool at_least(std::string_view version, std::string_view min) {
  const auto& v = cni_versions();
  auto at = [&](std::string_view x) { return std::find(v.begin(), v.end(), x) - v.begin(); };
  return at(version) >= at(min);
}

CniError needs_version(const char* command, const NetConf& conf, std::string_view min) {
  return fail(CniCode::kIncompatibleVersion,
              std::string(command) + " is not defined for cniVersion " + conf.cni_version +
                  "; it needs " + std::string(min) + " or later");
}

// The version an error is written in: the one stdin names, or the latest when
// stdin is empty or no JSON object.
std::string error_version(std::string_view stdin_bytes) {
  if (stdin_bytes.find_first_not_of(" \t\r\n") == std::string_view::npos)
    return std::string(kCniLatestVersion);
  auto v = parse_version_request(stdin_bytes);
  return v ? *v : std::string(kCniLatestVersion);
}

// One argument of a request line, named for a message.
struct Word {
  std::string_view what;
  std::string_view value;
};

// "COMMAND WORD...", or why the control socket's grammar cannot carry it.
Result<std::string, CniError> request_line(std::string_view command,
                                           const std::vector<Word>& words) {
  assert(words.size() + 1 <= proto::kCtlMaxWords);
  std::string line(command);
  for (const Word& w : words) {
    const bool printable =
        !w.value.empty() &&
        std::all_of(w.value.begin(), w.value.end(), [](char c) { return c > 0x20 && c < 0x7f; });
    if (!printable)
      return fail(CniCode::kInvalidEnvironment,
                  std::string(w.what) + " " + cni_shown(w.value) +
                      " is empty or holds a space or a byte outside printable ASCII, which "
                      "faradayd's control socket cannot carry");
    line += ' ';
    line += w.value;
  }
  if (line.size() + 1 > proto::kCtlMaxLineBytes)
    return fail(CniCode::kInvalidEnvironment,
                "the " + std::string(command) + " request to faradayd would be " +
                    std::to_string(line.size() + 1) + " bytes, more than the " +
                    std::to_string(proto::kCtlMaxLineBytes) +
                    " its control socket takes: CNI_CONTAINERID or CNI_NETNS is too long");
  return line;
}

using ValidSet = std::set<std::pair<std::string, std::string>>;

// GC's "cni.dev/valid-attachments": (containerID, ifname) pairs. An entry
// that cannot be read is refused, never skipped: skipping it would remove an
// attachment the runtime still uses.
Result<ValidSet, CniError> valid_attachments(const json& raw) {
  ValidSet valid;
  auto it = raw.find(kValidAttachments);
  if (it == raw.end() || it->is_null()) return valid;
  if (!it->is_array())
    return fail(CniCode::kInvalidConfig,
                std::string("\"") + kValidAttachments + "\" must be an array");
  for (const json& entry : *it) {
    const json* id = nullptr;
    const json* ifname = nullptr;
    if (entry.is_object()) {
      auto i = entry.find("containerID");
      auto f = entry.find("ifname");
      if (i != entry.end() && i->is_string()) id = &*i;
      if (f != entry.end() && f->is_string()) ifname = &*f;
    }
    if (!id || !ifname)
      return fail(CniCode::kInvalidConfig, std::string("every entry of \"") + kValidAttachments +
                                               "\" must be an object with the strings "
                                               "\"containerID\" and \"ifname\"");
    valid.emplace(id->get<std::string>(), ifname->get<std::string>());
  }
  return valid;
}

// One invocation after its environment and configuration were read. Each
// command returns what goes to stdout (possibly nothing) or the error.
class Invocation {
 public:
  using Answer = Result<std::string, CniError>;

  Invocation(const CniEnv& env, const NetConf& conf, const CallFn& call, std::string& err)
      : env_(env),
        conf_(conf),
        call_(call),
        err_(err),
        socket_(conf.control_socket.empty() ? proto::default_ctl_socket(conf.interface)
                                            : conf.control_socket) {}

  Answer add() {
    auto line = request_line("cni-add", {{"CNI_CONTAINERID", env_.container_id},
                                         {"CNI_IFNAME", env_.ifname},
                                         {"CNI_NETNS", env_.netns},
                                         {"the network's name", conf_.name}});
    if (!line) return line.failure();
    auto reply = call_(socket_, *line);
    if (!reply) return no_answer(reply.failure(), CniCode::kTryAgainLater);
    auto doc = answer("cni-add", *reply, CniCode::kIoFailure);
    if (!doc) return doc.failure();
    auto made = attachment(*doc);
    if (!made) return made.failure();
    return cni_result(*made, conf_.cni_version) + "\n";
  }

  Answer del() {
    const std::string what = env_.container_id + "/" + env_.ifname;
    std::vector<Word> words = {{"CNI_CONTAINERID", env_.container_id}, {"CNI_IFNAME", env_.ifname}};
    auto line = request_line("cni-del", words);
    if (line && !env_.netns.empty()) {
      words.push_back({"CNI_NETNS", env_.netns});
      auto with_netns = request_line("cni-del", words);
      if (with_netns)
        line = std::move(with_netns);
      else  // faradayd knows the attachment by its ID and interface alone
        warn(with_netns.error() + "; deleting " + what + " without it");
    }
    if (!line) {
      // ADD refuses the same words before asking faradayd: nothing was added.
      warn(line.error() + "; nothing can have been added for " + what);
      return std::string();
    }
    auto reply = call_(socket_, *line);
    if (!reply) {
      if (reply.failure().kind != CallError::Kind::kNotRunning)
        return no_answer(reply.failure(), CniCode::kTryAgainLater);
      warn(not_running_text() + "; nothing to delete for " + what +
           " now (faradayd releases the addresses of containers whose namespace is gone when it "
           "starts again)");
      return std::string();
    }
    auto doc = answer("cni-del", *reply, CniCode::kIoFailure);
    if (!doc) return doc.failure();
    return std::string();
  }

  Answer check() {
    if (!at_least(conf_.cni_version, "0.4.0")) return needs_version("CHECK", conf_, "0.4.0");
    auto line = request_line("cni-check", {{"CNI_CONTAINERID", env_.container_id},
                                           {"CNI_IFNAME", env_.ifname},
                                           {"CNI_NETNS", env_.netns}});
    if (!line) return line.failure();
    auto reply = call_(socket_, *line);
    if (!reply) return no_answer(reply.failure(), CniCode::kTryAgainLater);
    auto doc = answer("cni-check", *reply, CniCode::kIoFailure);
    if (!doc) return doc.failure();
    return std::string();
  }

  Answer status() {
    if (!at_least(conf_.cni_version, "1.1.0")) return needs_version("STATUS", conf_, "1.1.0");
    auto reply = call_(socket_, "cni-status");
    if (!reply) {
      CniError e = no_answer(reply.failure(), CniCode::kPluginNotAvailable);
      e.code = CniCode::kPluginNotAvailable;
      return e;
    }
    auto doc = answer("cni-status", *reply, CniCode::kPluginNotAvailable);
    if (!doc) return doc.failure();
    return std::string();
  }

  Answer gc() {
    if (!at_least(conf_.cni_version, "1.1.0")) return needs_version("GC", conf_, "1.1.0");
    auto valid = valid_attachments(conf_.raw);
    if (!valid) return valid.failure();
    auto reply = call_(socket_, "cni-list");
    if (!reply) {
      if (reply.failure().kind != CallError::Kind::kNotRunning)
        return no_answer(reply.failure(), CniCode::kTryAgainLater);
      warn(not_running_text() +
           "; nothing to collect now (faradayd releases the addresses of containers whose "
           "namespace is gone when it starts again)");
      return std::string();
    }
    auto doc = answer("cni-list", *reply, CniCode::kIoFailure);
    if (!doc) return doc.failure();
    auto list = doc->find("attachments");
    if (list == doc->end() || !list->is_array())
      return fail(CniCode::kIoFailure,
                  "faradayd at " + socket_ + " answered cni-list without an \"attachments\" array");

    std::optional<CniError> first;
    size_t stale = 0, failed = 0;
    for (const json& entry : *list) {
      auto id = entry.is_object() ? entry.find("containerID") : entry.end();
      auto ifname = entry.is_object() ? entry.find("ifname") : entry.end();
      if (!entry.is_object() || id == entry.end() || !id->is_string() || ifname == entry.end() ||
          !ifname->is_string()) {
        warn(
            "faradayd's cni-list holds an entry without the strings \"containerID\" and "
            "\"ifname\"; left alone");
        continue;
      }
      const std::string& id_text = id->get_ref<const std::string&>();
      const std::string& ifname_text = ifname->get_ref<const std::string&>();
      if (valid->count({id_text, ifname_text})) continue;
      // Another network's attachment is that network's GC to collect.
      auto network = entry.find("network");
      if (network != entry.end() && network->is_string() &&
          !network->get_ref<const std::string&>().empty() &&
          network->get_ref<const std::string&>() != conf_.name)
        continue;
      ++stale;
      auto line = request_line("cni-del", {{"the containerID from cni-list", id_text},
                                           {"the ifname from cni-list", ifname_text}});
      if (!line) {
        warn(line.error() + "; left alone");
        continue;
      }
      auto deleted = call_(socket_, *line);
      Result<json, CniError> done =
          deleted ? answer("cni-del", *deleted, CniCode::kIoFailure)
                  : Result<json, CniError>(no_answer(deleted.failure(), CniCode::kTryAgainLater));
      if (!done) {
        ++failed;
        if (!first) first = done.failure();
      }
    }
    if (first) {
      first->details = std::to_string(failed) + " of " + std::to_string(stale) +
                       " stale attachments could not be deleted" +
                       (first->details.empty() ? "" : "; " + first->details);
      return *first;
    }
    return std::string();
  }

 private:
  void warn(const std::string& text) { err_ += "faraday-cni: warning: " + text + "\n"; }

  std::string not_running_text() const {
    return "faradayd is not running for interface " + conf_.interface + ": nothing listens on " +
           socket_;
  }

  // No answer came: `not_running` when nothing listens on the socket.
  CniError no_answer(const CallError& e, CniCode not_running) const {
    switch (e.kind) {
      case CallError::Kind::kNotRunning:
        return fail(not_running, not_running_text(), e.message);
      case CallError::Kind::kTimedOut:
        return fail(CniCode::kTryAgainLater, e.message);
      case CallError::Kind::kFailed:
        break;
    }
    return fail(CniCode::kIoFailure, e.message);
  }

  // faradayd's answer as an object, or its {"error", "code"} as a CniError
  // (`fallback` when it gives no usable code).
  Result<json, CniError> answer(const char* command, const std::string& reply,
                                CniCode fallback) const {
    json doc = json::parse(reply, nullptr, /*allow_exceptions=*/false);
    if (doc.is_discarded() || !doc.is_object())
      return fail(CniCode::kIoFailure, "faradayd at " + socket_ + " answered " + command +
                                           " with something that is not a JSON object");
    auto error = doc.find("error");
    if (error == doc.end()) return doc;
    CniError e{error->is_string() && !error->get_ref<const std::string&>().empty()
                   ? error->get<std::string>()
                   : std::string("faradayd refused ") + command,
               fallback, "faradayd at " + socket_ + " refused " + command};
    auto code = doc.find("code");
    if (code != doc.end() && code->is_number_unsigned()) {
      const uint64_t n = code->get<uint64_t>();
      if (n >= 1 && n <= INT_MAX) e.code = static_cast<CniCode>(static_cast<int>(n));
    }
    return e;
  }

  // cni-add's answer as the attachment ADD reports.
  Result<CniAttachment, CniError> attachment(const json& doc) const {
    auto bad = [&](const std::string& why) {
      return fail(CniCode::kIoFailure, "faradayd at " + socket_ + " answered cni-add " + why);
    };
    // A string field: its value, `fallback` when absent or null.
    auto text = [&](const char* key, std::string fallback) -> Result<std::string, CniError> {
      auto it = doc.find(key);
      if (it == doc.end() || it->is_null()) return fallback;
      if (!it->is_string()) return bad(std::string("with a \"") + key + "\" that is no string");
      return it->get<std::string>();
    };
    CniAttachment a;
    CniAddress ip;
    auto family = doc.find("family");
    if (family == doc.end() || !family->is_number_unsigned() ||
        (family->get<uint64_t>() != 4 && family->get<uint64_t>() != 6))
      return bad("without a \"family\" of 4 or 6");
    ip.family = static_cast<int>(family->get<uint64_t>());
    auto address = text("address", "");
    if (!address) return address.failure();
    if (address->empty()) return bad("without an \"address\"");
    if ((address->find(':') != std::string::npos) != (ip.family == 6))
      return bad("with \"address\" " + cni_shown(*address) + " that is not of family " +
                 std::to_string(ip.family));
    ip.address = *address;
    auto gateway = text("gateway", "");
    if (!gateway) return gateway.failure();
    ip.gateway = *gateway;
    auto ifname = text("interface", env_.ifname);
    if (!ifname) return ifname.failure();
    a.ifname = *ifname;
    auto mac = text("mac", "");
    if (!mac) return mac.failure();
    a.mac = *mac;
    auto sandbox = text("sandbox", env_.netns);
    if (!sandbox) return sandbox.failure();
    a.sandbox = *sandbox;
    if (!ip.gateway.empty())
      a.routes.push_back({ip.family == 6 ? "::/0" : "0.0.0.0/0", ip.gateway});
    a.ips.push_back(std::move(ip));
    return a;
  }

  const CniEnv& env_;
  const NetConf& conf_;
  const CallFn& call_;
  std::string& err_;
  const std::string socket_;
};

}  // namespace

Result<std::string, CallError> call_faradayd(const std::string& socket, const std::string& line) {
  const auto start = std::chrono::steady_clock::now();
  auto reply = proto::ctl_call(socket, line, kCniCallTimeout);
  if (reply) return std::move(*reply);
  CallError e{reply.error(), CallError::Kind::kFailed};
  auto probe = proto::ctl_probe(socket);
  if (probe && (*probe == proto::CtlProbe::kGone || *probe == proto::CtlProbe::kStale))
    e.kind = CallError::Kind::kNotRunning;
  else if (std::chrono::steady_clock::now() - start >= kCniCallTimeout)
    e.kind = CallError::Kind::kTimedOut;
  return e;
}

Result<std::string, CniError> read_config(int fd) {
  std::string data;
  char chunk[64 * 1024];
  while (data.size() <= kCniMaxConfigBytes) {
    const size_t want = std::min(sizeof(chunk), kCniMaxConfigBytes + 1 - data.size());
    const ssize_t n = ::read(fd, chunk, want);
    if (n > 0) {
      data.append(chunk, static_cast<size_t>(n));
    } else if (n == 0) {
      break;
    } else if (errno != EINTR) {
      return fail(CniCode::kIoFailure, std::string("cannot read the network configuration from "
                                                   "stdin: ") +
                                           std::strerror(errno));
    }
  }
  return data;
}

int run_plugin(const std::function<const char*(const char*)>& getenv, std::string_view stdin_bytes,
               std::string& out, std::string& err, const CallFn& call) {
  const char* command = getenv("CNI_COMMAND");
  if (!command || !*command) {
    err += "faraday-cni " FARADAY_VERSION
           ": the CNI plugin that attaches containers to the Faraday WireGuard mesh through "
           "the local faradayd (faraday-cni --help)\n"
           "CNI protocol versions supported: " +
           all_versions() + "\n";
    return 0;
  }
  auto refuse = [&](const CniError& e, std::string_view version) {
    out += cni_error(e, version) + "\n";
    return 1;
  };
  auto env = parse_cni_env(getenv);
  if (!env) return refuse(env.failure(), error_version(stdin_bytes));
  if (env->command == CniCommand::kVersion) {
    auto asked = parse_version_request(stdin_bytes);
    if (!asked) return refuse(asked.failure(), kCniLatestVersion);
    out += cni_version_reply(*asked) + "\n";
    return 0;
  }
  auto conf = parse_netconf(stdin_bytes, env->command);
  if (!conf) return refuse(conf.failure(), error_version(stdin_bytes));

  Invocation run(*env, *conf, call, err);
  Invocation::Answer answer = std::string();
  switch (env->command) {
    case CniCommand::kAdd:
      answer = run.add();
      break;
    case CniCommand::kDel:
      answer = run.del();
      break;
    case CniCommand::kCheck:
      answer = run.check();
      break;
    case CniCommand::kStatus:
      answer = run.status();
      break;
    case CniCommand::kGc:
      answer = run.gc();
      break;
    case CniCommand::kVersion:
      break;  // answered above
  }
  if (!answer) return refuse(answer.failure(), conf->cni_version);
  out += *answer;
  return 0;
}

std::string cni_usage() {
  return "faraday-cni " FARADAY_VERSION
         ": the CNI plugin of Faraday. It attaches a container to the WireGuard\n"
         "mesh of the faradayd running on this host, which gives the container its\n"
         "interface and its address.\n"
         "\n"
         "It is run by a container runtime (rkt, containerd, CRI-O, Podman, ...), not by\n"
         "hand: the runtime sets CNI_COMMAND (ADD, DEL, CHECK, VERSION, STATUS or GC),\n"
         "CNI_CONTAINERID, CNI_NETNS, CNI_IFNAME, CNI_ARGS and CNI_PATH, writes the\n"
         "network configuration to stdin and reads the result or the error (JSON) from\n"
         "stdout. CNI versions " +
         all_versions() +
         ".\n"
         "\n"
         "Network configuration (in the runtime's net.d directory):\n"
         "  \"type\": \"faraday-cni\"\n"
         "  \"interface\": faradayd's WireGuard interface (default \"faraday0\")\n"
         "  \"controlSocket\": faradayd's control socket (default\n"
         "                   /run/faraday/INTERFACE.sock)\n"
         "No \"ipam\": faradayd allocates the container's address itself.\n"
         "\n"
         "Example: {\"cniVersion\": \"1.0.0\", \"name\": \"faraday\", \"type\": \"faraday-cni\",\n"
         "          \"interface\": \"faraday0\"}\n"
         "faradayd must be running (`faradayd cluster`) for ADD to succeed.\n";
}

}  // namespace faraday::rkt
