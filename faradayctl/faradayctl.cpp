// faradayctl: the operator's tool. The cluster's certificate authority
// (faradayctl/pki.h): create a CA, issue node and farad certificates, revoke them
// and produce the CRL farad checks. And the node's own status: `status` and
// `query` ask the local faradayd over its control socket (proto/ctl.h).
#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <nlohmann/json.hpp>
#include <string>

#include "config.h"
#include "faradayctl/pki.h"
#include "faradayctl/status_view.h"
#include "proto/ctl.h"

namespace {

namespace pki = faraday::faradayctl::pki;
namespace ctl = faraday::proto;
using faraday::faradayctl::format_status;

constexpr const char* kDefaultInterface = "faraday0";
constexpr double kDefaultTimeoutSeconds = 10;

constexpr const char* kFooter = R"(
Certificates: every node and farad present a certificate from one CA over
mutual TLS 1.3. A node is named by its certificate's subject CN (also its
SAN DNS name); farad's certificate carries the name `farad`, which nodes
check. A CA directory holds ca.key (keep it secret, 0600), ca.pem (give it to
farad and every node as --ca), index.txt (one line per certificate: serial,
name, not-after, revoked-at), and the serial and crlnumber counters.

Typical use:
  faradayctl ca init --dir /etc/faraday/ca
  faradayctl cert issue --dir /etc/faraday/ca farad
  faradayctl cert issue --dir /etc/faraday/ca node1
  faradayctl cert revoke --dir /etc/faraday/ca node1
  faradayctl cert list --dir /etc/faraday/ca
  faradayctl crl --dir /etc/faraday/ca      # then: farad --crl .../crl.pem, SIGHUP

Node status: `status` and `query` ask the faradayd running on this host over
its control socket, /run/faraday/IFNAME.sock (root only; IFNAME is -i,
default faraday0). faradayd serves it in cluster mode.
  faradayctl status                 # this node, its farad session, every peer's link
  faradayctl status --json          # the same answer as JSON, for scripts
  faradayctl query node2            # ask farad (through faradayd) whether node2 is present

Exit status: 0 on success, 1 if the operation failed, 2 on a usage error.
`query` answers in its status too, for scripts: 0 PRESENT, 3 ABSENT,
4 UNKNOWN (1 and 2 as above: no answer, a usage error).
)";

// `query`'s exit status by farad's answer.
constexpr int kQueryPresent = 0;
constexpr int kQueryAbsent = 3;
constexpr int kQueryUnknown = 4;

// `status` or `query NAME` over the control socket at `path`; prints the
// answer and returns the exit status.
int ask_faradayd(const std::string& path, const std::string& line, double timeout_s,
                 bool json_out) {
  auto parsed = ctl::parse_ctl_request(line);
  if (!parsed) {
    std::fprintf(stderr, "faradayctl: error: %s (see --help)\n", parsed.error().c_str());
    return 2;
  }
  const auto& request = *parsed;
  if (request.command == "query" && request.args.size() != 1) {
    std::fprintf(stderr, "faradayctl: error: NAME must be one word (see --help)\n");
    return 2;
  }
  auto timeout = std::chrono::milliseconds(static_cast<int64_t>(timeout_s * 1000));
  auto result = ctl::ctl_call(path, line, timeout);
  if (!result) {
    std::fprintf(stderr, "faradayctl: error: %s\n", result.error().c_str());
    return 1;
  }
  auto answer = nlohmann::json::parse(*result, nullptr, false);
  if (answer.is_discarded() || !answer.is_object()) {
    std::fprintf(stderr, "faradayctl: error: faradayd at %s answered something not a JSON object\n",
                 path.c_str());
    return 1;
  }
  if (auto it = answer.find("error"); it != answer.end()) {
    std::string message = it->is_string()
                              ? it->get<std::string>()
                              : it->dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    std::fprintf(stderr, "faradayctl: error: faradayd: %s\n", message.c_str());
    return 1;
  }
  if (request.command == "status") {
    if (json_out) {
      std::printf("%s\n",
                  answer.dump(2, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
    } else {
      std::fputs(format_status(answer).c_str(), stdout);
    }
    return 0;
  }
  auto state = answer.find("state");
  auto printable = [](const std::string& s) {
    for (char c : s) {
      if (c < 0x20 || c > 0x7e) return false;
    }
    return !s.empty();
  };
  if (state == answer.end() || !state->is_string() || !printable(state->get<std::string>())) {
    std::fprintf(stderr, "faradayctl: error: faradayd at %s answered without a state\n",
                 path.c_str());
    return 1;
  }
  const std::string& said = state->get_ref<const std::string&>();
  const int status = said == "PRESENT"   ? kQueryPresent
                     : said == "ABSENT"  ? kQueryAbsent
                     : said == "UNKNOWN" ? kQueryUnknown
                                         : 1;
  if (status == 1) {
    std::fprintf(stderr, "faradayctl: error: faradayd at %s answered an unknown state \"%s\"\n",
                 path.c_str(), said.c_str());
    return 1;
  }
  std::printf("%s: %s\n", request.args.at(0).c_str(), said.c_str());
  return status;
}

// Every option's value and every subcommand, filled by the add_* functions
// below and read by run().
struct Args {
  std::string dir;
  std::string name;
  CLI::App* ca_init = nullptr;
  std::string ca_name = pki::kDefaultCaName;
  int ca_days = pki::kDefaultCaDays;
  CLI::App* issue = nullptr;
  pki::IssueOptions issue_opt;
  CLI::App* list = nullptr;
  bool list_json = false;
  CLI::App* revoke = nullptr;
  CLI::Option* revoke_name = nullptr;
  CLI::Option* revoke_serial = nullptr;
  std::string serial_text;
  CLI::App* crl = nullptr;
  std::string crl_out;
  int crl_days = pki::kDefaultCrlDays;
  CLI::App* status = nullptr;
  CLI::App* query = nullptr;
  std::string ifname = kDefaultInterface;
  std::string socket_path;
  double timeout_s = kDefaultTimeoutSeconds;
  bool json_out = false;
  std::string peer_name;
};

// faradayctl ca init
void add_ca_commands(CLI::App& app, Args& a) {
  auto* ca = app.add_subcommand("ca", "Manage the certificate authority");
  ca->require_subcommand(1);
  a.ca_init = ca->add_subcommand(
      "init",
      "Create a CA in DIR: an EC P-256 key (DIR/ca.key, 0600) and a self-signed certificate "
      "(DIR/ca.pem), an empty index and the counters. Refuses if DIR already has a CA.");
  a.ca_init->add_option("--dir", a.dir, "CA directory (created 0700 if missing)")->required();
  a.ca_init->add_option("--name", a.ca_name, "The CA certificate's subject CN")
      ->capture_default_str();
  a.ca_init->add_option("--days", a.ca_days, "Validity of the CA certificate in days")
      ->capture_default_str();
}

// faradayctl cert issue | revoke
void add_cert_commands(CLI::App& app, Args& a) {
  auto* cert = app.add_subcommand("cert", "Issue and revoke node and farad certificates");
  cert->require_subcommand(1);
  a.issue = cert->add_subcommand(
      "issue",
      "Issue a certificate for NAME (subject CN=NAME, SAN DNS:NAME) signed by the CA in DIR, "
      "with a new EC P-256 key: PREFIX.pem and PREFIX.key (0600). A node certificate allows "
      "TLS client and server use; with --server, or when NAME is `farad`, it is farad's own "
      "(server only: it cannot join as a node). Never overwrites a file.");
  a.issue->add_option("--dir", a.dir, "CA directory (made by `faradayctl ca init`)")->required();
  a.issue
      ->add_option("name", a.name,
                   "Node name: 1..64 characters from [A-Za-z0-9._-], the first a letter or "
                   "digit (farad's rule); `farad` for farad's certificate")
      ->required();
  a.issue->add_option("--out", a.issue_opt.out_prefix,
                      "Write PREFIX.pem and PREFIX.key (default: DIR/NAME)");
  a.issue
      ->add_option("--days", a.issue_opt.days,
                   "Validity in days (capped at the CA certificate's own expiry)")
      ->capture_default_str();
  a.issue->add_flag("--server", a.issue_opt.server,
                    "farad's certificate: TLS server use only (implied by NAME `farad`)");

  a.list = cert->add_subcommand(
      "list",
      "List every certificate DIR's CA issued, oldest first: name, serial, expiry, and when "
      "it was revoked (or `expired`, `valid`).");
  a.list->add_option("--dir", a.dir, "CA directory")->required();
  a.list->add_flag("--json", a.list_json,
                   "One JSON array instead: {name, serial, notAfter, revokedAt, state}");

  a.revoke = cert->add_subcommand(
      "revoke",
      "Mark certificates revoked in DIR's index: every unrevoked one of NAME, or the one "
      "with --serial. Takes effect once a new CRL (`faradayctl crl`) reaches farad (SIGHUP): "
      "farad disconnects the node and every member drops it at once.");
  a.revoke->add_option("--dir", a.dir, "CA directory")->required();
  a.revoke_name = a.revoke->add_option("name", a.name, "Revoke every certificate of this node");
  a.revoke_serial =
      a.revoke->add_option("--serial", a.serial_text,
                           "Revoke only this certificate: its serial in hex, as in index.txt or "
                           "`openssl x509 -noout -serial`");
  a.revoke_name->excludes(a.revoke_serial);
  a.revoke_serial->excludes(a.revoke_name);
}

// faradayctl crl
void add_crl_command(CLI::App& app, Args& a) {
  a.crl = app.add_subcommand(
      "crl",
      "Write a CRL signed by the CA listing every revoked serial, with the next CRL number. "
      "Give it to farad (--crl) and send SIGHUP; write a new one before it expires (--days), "
      "or farad refuses every node.");
  a.crl->add_option("--dir", a.dir, "CA directory")->required();
  a.crl->add_option("--out", a.crl_out, "Where to write the PEM CRL (default: DIR/crl.pem)");
  a.crl->add_option("--days", a.crl_days, "Days until the CRL's nextUpdate")->capture_default_str();
}

// faradayctl status | query: the local faradayd, over its control socket
void add_node_commands(CLI::App& app, Args& a) {
  auto add_socket_options = [&](CLI::App* sub) {
    auto* iface = sub->add_option("-i,--interface", a.ifname,
                                  "The node's interface; its faradayd serves "
                                  "/run/faraday/IFNAME.sock")
                      ->capture_default_str();
    auto* sock =
        sub->add_option("--socket", a.socket_path, "The control socket's path (instead of -i)");
    iface->excludes(sock);
    sock->excludes(iface);
    sub->add_option("--timeout", a.timeout_s, "Seconds to wait for faradayd's answer")
        ->capture_default_str()
        ->check(CLI::Range(0.1, 3600.0));
  };
  a.status = app.add_subcommand(
      "status",
      "Show this node as its faradayd sees it: name, interface, key, addresses, the farad "
      "session (state, epoch, cursor, last error) and a table of peers (endpoint, link, ping "
      "RTT, last heard, last handshake, bytes, farad's last word on a silent peer).");
  add_socket_options(a.status);
  a.status->add_flag("--json", a.json_out,
                     "Print faradayd's answer as JSON instead (2-space indent)");

  a.query = app.add_subcommand(
      "query",
      "Ask farad, through this node's faradayd, whether NAME is still a member: prints "
      "`NAME: PRESENT`, `NAME: ABSENT` or `NAME: UNKNOWN` (farad restarted too recently to "
      "know) and exits 0, 3 or 4 for them; 1 if farad cannot be reached.");
  add_socket_options(a.query);
  a.query->add_option("name", a.peer_name, "The node to ask about")->required();
}

// Prints why a CA operation failed; the exit status: 2 for a bad argument, else 1.
int failed(const pki::Error& e) {
  std::fprintf(stderr, "faradayctl: error: %s\n", e.message.c_str());
  return e.reason == pki::Error::Reason::kInvalidArgument ? 2 : 1;
}

// faradayctl cert list
int list_certs(const Args& a) {
  auto index = pki::read_index(a.dir);
  if (!index) return failed(index.failure());
  const time_t now = std::time(nullptr);
  const auto state = [now](const pki::IndexEntry& e) -> std::string {
    if (e.revoked_at) return "revoked";
    return e.not_after <= now ? "expired" : "valid";
  };
  if (a.list_json) {
    nlohmann::json out = nlohmann::json::array();
    for (const auto& e : *index)
      out.push_back({{"name", e.name},
                     {"serial", pki::serial_text(e.serial)},
                     {"notAfter", pki::time_text(e.not_after)},
                     {"revokedAt", e.revoked_at ? nlohmann::json(pki::time_text(*e.revoked_at))
                                                : nlohmann::json(nullptr)},
                     {"state", state(e)}});
    std::printf("%s\n", out.dump(2, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
    return 0;
  }
  std::printf("%-24s %-20s %-20s %s\n", "NAME", "SERIAL", "EXPIRES", "STATE");
  for (const auto& e : *index) {
    const std::string st = e.revoked_at ? "revoked " + pki::time_text(*e.revoked_at) : state(e);
    std::printf("%-24s %-20s %-20s %s\n", e.name.c_str(), pki::serial_text(e.serial).c_str(),
                pki::time_text(e.not_after).c_str(), st.c_str());
  }
  return 0;
}

int revoke(const Args& a) {
  if (a.revoke_name->count() == 0 && a.revoke_serial->count() == 0) {
    std::fprintf(stderr, "faradayctl: error: give a NAME or --serial (see --help)\n");
    return 2;
  }
  std::vector<pki::IndexEntry> done;
  if (a.revoke_serial->count()) {
    auto serial = pki::parse_serial(a.serial_text);
    if (!serial) {
      std::fprintf(stderr, "faradayctl: error: --serial %s is not a hex serial number\n",
                   a.serial_text.c_str());
      return 2;
    }
    auto revoked = pki::revoke_serial(a.dir, *serial);
    if (!revoked) return failed(revoked.failure());
    done.push_back(*revoked);
  } else {
    auto revoked = pki::revoke_name(a.dir, a.name);
    if (!revoked) return failed(revoked.failure());
    done = std::move(*revoked);
  }
  for (const auto& e : done) {
    std::printf("revoked %s serial %s at %s\n", e.name.c_str(), pki::serial_text(e.serial).c_str(),
                pki::time_text(*e.revoked_at).c_str());
  }
  std::printf("now run `faradayctl crl --dir %s` and reload farad (SIGHUP)\n", a.dir.c_str());
  return 0;
}

int run(int argc, char** argv) {
  CLI::App app{"faradayctl " FARADAY_VERSION
               ": operator tool for a Faraday cluster: its certificate authority (node and "
               "farad certificates, revocation, the CRL), and the status of the node it runs "
               "on (asking the local faradayd).\n"};
  app.set_version_flag("--version", FARADAY_VERSION);
  app.footer(kFooter);
  app.require_subcommand(1);
  Args a;
  add_ca_commands(app, a);
  add_cert_commands(app, a);
  add_crl_command(app, a);
  add_node_commands(app, a);
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::fprintf(stderr, "faradayctl: error: %s (see --help)\n", e.what());
    return 2;
  }

  if (*a.ca_init) {
    if (pki::Status made = pki::init_ca(a.dir, a.ca_name, a.ca_days); !made) {
      return failed(made.failure());
    }
    std::printf(
        "created CA \"%s\" in %s: %s (give to farad and every node as --ca), %s (keep secret)\n",
        a.ca_name.c_str(), a.dir.c_str(), pki::ca_cert_path(a.dir).c_str(),
        pki::ca_key_path(a.dir).c_str());
  } else if (*a.issue) {
    auto out = pki::issue(a.dir, a.name, a.issue_opt);
    if (!out) return failed(out.failure());
    std::printf("issued %s serial %s valid until %s: %s %s\n", a.name.c_str(),
                pki::serial_text(out->entry.serial).c_str(),
                pki::time_text(out->entry.not_after).c_str(), out->cert_path.c_str(),
                out->key_path.c_str());
  } else if (*a.revoke) {
    return revoke(a);
  } else if (*a.list) {
    return list_certs(a);
  } else if (*a.status || *a.query) {
    return ask_faradayd(a.socket_path.empty() ? ctl::default_ctl_socket(a.ifname) : a.socket_path,
                        *a.status ? "status" : "query " + a.peer_name, a.timeout_s, a.json_out);
  } else if (*a.crl) {
    auto r = pki::write_crl(a.dir, a.crl_out, a.crl_days);
    if (!r) return failed(r.failure());
    std::printf("wrote %s: CRL number %llu, %zu revoked, next update %s\n", r->path.c_str(),
                static_cast<unsigned long long>(r->number), r->revoked,
                pki::time_text(r->next_update).c_str());
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const std::exception& e) {  // out of memory, or a bug: still one line
    std::fprintf(stderr, "faradayctl: error: %s\n", e.what());
    return 1;
  }
}
