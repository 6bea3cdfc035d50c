// faradayctl: the operator's tool. The cluster's certificate authority
// (faradayctl/pki.h): create a CA, issue node and farad certificates, revoke them
// and produce the CRL farad checks. And the node's own status: `status` and
// `query` ask the local faradayd over its control socket (proto/ctl.h).
#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>
#include <variant>

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
  faradayctl crl --dir /etc/faraday/ca      # then: farad --crl .../crl.pem, SIGHUP

Node status: `status` and `query` ask the faradayd running on this host over
its control socket, /run/faraday/IFNAME.sock (root only; IFNAME is -i,
default faraday0). faradayd serves it in cluster mode.
  faradayctl status                 # this node, its farad session, every peer's link
  faradayctl status --json          # the same answer as JSON, for scripts
  faradayctl query node2            # ask farad (through faradayd) whether node2 is present

Exit status: 0 on success, 1 if the operation failed, 2 on a usage error.
)";

// `status` or `query NAME` over the control socket at `path`; prints the
// answer and returns the exit status.
int ask_faradayd(const std::string& path, const std::string& line, double timeout_s,
                 bool json_out) {
  auto parsed = ctl::parse_ctl_request(line);
  if (auto* bad = std::get_if<ctl::CtlBadRequest>(&parsed)) {
    std::fprintf(stderr, "faradayctl: error: %s (see --help)\n", bad->message.c_str());
    return 2;
  }
  const auto& request = std::get<ctl::CtlRequest>(parsed);
  if (request.command == "query" && request.args.size() != 1) {
    std::fprintf(stderr, "faradayctl: error: NAME must be one word (see --help)\n");
    return 2;
  }
  auto timeout = std::chrono::milliseconds(static_cast<int64_t>(timeout_s * 1000));
  auto result = ctl::ctl_call(path, line, timeout);
  if (auto* err = std::get_if<ctl::CtlError>(&result)) {
    std::fprintf(stderr, "faradayctl: error: %s\n", err->message.c_str());
    return 1;
  }
  auto answer = nlohmann::json::parse(std::get<std::string>(result), nullptr, false);
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
  std::printf("%s: %s\n", request.args.at(0).c_str(), state->get<std::string>().c_str());
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

  std::string dir;
  std::string name;
  int days = 0;

  // faradayctl ca init
  auto* ca = app.add_subcommand("ca", "Manage the certificate authority");
  ca->require_subcommand(1);
  auto* ca_init = ca->add_subcommand(
      "init",
      "Create a CA in DIR: an EC P-256 key (DIR/ca.key, 0600) and a self-signed certificate "
      "(DIR/ca.pem), an empty index and the counters. Refuses if DIR already has a CA.");
  std::string ca_name = pki::kDefaultCaName;
  int ca_days = pki::kDefaultCaDays;
  ca_init->add_option("--dir", dir, "CA directory (created 0700 if missing)")->required();
  ca_init->add_option("--name", ca_name, "The CA certificate's subject CN")->capture_default_str();
  ca_init->add_option("--days", ca_days, "Validity of the CA certificate in days")
      ->capture_default_str();

  // faradayctl cert issue | revoke
  auto* cert = app.add_subcommand("cert", "Issue and revoke node and farad certificates");
  cert->require_subcommand(1);
  auto* issue = cert->add_subcommand(
      "issue",
      "Issue a certificate for NAME (subject CN=NAME, SAN DNS:NAME) signed by the CA in DIR, "
      "with a new EC P-256 key: PREFIX.pem and PREFIX.key (0600). A node certificate allows "
      "TLS client and server use; with --server, or when NAME is `farad`, it is farad's own "
      "(server only: it cannot join as a node). Never overwrites a file.");
  pki::IssueOptions issue_opt;
  issue->add_option("--dir", dir, "CA directory (made by `faradayctl ca init`)")->required();
  issue
      ->add_option("name", name,
                   "Node name: 1..64 characters from [A-Za-z0-9._-], the first a letter or "
                   "digit (farad's rule); `farad` for farad's certificate")
      ->required();
  issue->add_option("--out", issue_opt.out_prefix,
                    "Write PREFIX.pem and PREFIX.key (default: DIR/NAME)");
  issue
      ->add_option("--days", issue_opt.days,
                   "Validity in days (capped at the CA certificate's own expiry)")
      ->capture_default_str();
  issue->add_flag("--server", issue_opt.server,
                  "farad's certificate: TLS server use only (implied by NAME `farad`)");

  auto* revoke = cert->add_subcommand(
      "revoke",
      "Mark certificates revoked in DIR's index: every unrevoked one of NAME, or the one "
      "with --serial. Takes effect once a new CRL (`faradayctl crl`) reaches farad.");
  std::string serial_text;
  revoke->add_option("--dir", dir, "CA directory")->required();
  auto* revoke_name = revoke->add_option("name", name, "Revoke every certificate of this node");
  auto* revoke_serial =
      revoke->add_option("--serial", serial_text,
                         "Revoke only this certificate: its serial in hex, as in index.txt or "
                         "`openssl x509 -noout -serial`");
  revoke_name->excludes(revoke_serial);
  revoke_serial->excludes(revoke_name);

  // faradayctl crl
  auto* crl = app.add_subcommand(
      "crl",
      "Write a CRL signed by the CA listing every revoked serial, with the next CRL number. "
      "Give it to farad (--crl) and send SIGHUP; write a new one before it expires (--days), "
      "or farad refuses every node.");
  std::string crl_out;
  crl->add_option("--dir", dir, "CA directory")->required();
  crl->add_option("--out", crl_out, "Where to write the PEM CRL (default: DIR/crl.pem)");
  days = pki::kDefaultCrlDays;
  crl->add_option("--days", days, "Days until the CRL's nextUpdate")->capture_default_str();

  // faradayctl status | query: the local faradayd, over its control socket
  std::string ifname = kDefaultInterface;
  std::string socket_path;
  double timeout_s = kDefaultTimeoutSeconds;
  auto add_socket_options = [&](CLI::App* sub) {
    auto* iface = sub->add_option("-i,--interface", ifname,
                                  "The node's interface; its faradayd serves "
                                  "/run/faraday/IFNAME.sock")
                      ->capture_default_str();
    auto* sock =
        sub->add_option("--socket", socket_path, "The control socket's path (instead of -i)");
    iface->excludes(sock);
    sock->excludes(iface);
    sub->add_option("--timeout", timeout_s, "Seconds to wait for faradayd's answer")
        ->capture_default_str()
        ->check(CLI::Range(0.1, 3600.0));
  };
  auto* status = app.add_subcommand(
      "status",
      "Show this node as its faradayd sees it: name, interface, key, addresses, the farad "
      "session (state, epoch, cursor, last error) and a table of peers (endpoint, link, ping "
      "RTT, last heard, last handshake, bytes, farad's last word on a silent peer).");
  add_socket_options(status);
  bool json_out = false;
  status->add_flag("--json", json_out, "Print faradayd's answer as JSON instead (2-space indent)");

  auto* query = app.add_subcommand(
      "query",
      "Ask farad, through this node's faradayd, whether NAME is still a member: prints "
      "`NAME: PRESENT`, `NAME: ABSENT` or `NAME: UNKNOWN` (farad restarted too recently to "
      "know). Fails if farad cannot be reached.");
  add_socket_options(query);
  std::string peer_name;
  query->add_option("name", peer_name, "The node to ask about")->required();

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

  if (*ca_init) {
    pki::init_ca(dir, ca_name, ca_days);
    std::printf(
        "created CA \"%s\" in %s: %s (give to farad and every node as --ca), %s (keep secret)\n",
        ca_name.c_str(), dir.c_str(), pki::ca_cert_path(dir).c_str(),
        pki::ca_key_path(dir).c_str());
  } else if (*issue) {
    pki::Issued out = pki::issue(dir, name, issue_opt);
    std::printf("issued %s serial %s valid until %s: %s %s\n", name.c_str(),
                pki::serial_text(out.entry.serial).c_str(),
                pki::time_text(out.entry.not_after).c_str(), out.cert_path.c_str(),
                out.key_path.c_str());
  } else if (*revoke) {
    if (revoke_name->count() == 0 && revoke_serial->count() == 0) {
      std::fprintf(stderr, "faradayctl: error: give a NAME or --serial (see --help)\n");
      return 2;
    }
    std::vector<pki::IndexEntry> done;
    if (revoke_serial->count()) {
      auto serial = pki::parse_serial(serial_text);
      if (!serial) {
        std::fprintf(stderr, "faradayctl: error: --serial %s is not a hex serial number\n",
                     serial_text.c_str());
        return 2;
      }
      done.push_back(pki::revoke_serial(dir, *serial));
    } else {
      done = pki::revoke_name(dir, name);
    }
    for (const auto& e : done) {
      std::printf("revoked %s serial %s at %s\n", e.name.c_str(),
                  pki::serial_text(e.serial).c_str(), pki::time_text(*e.revoked_at).c_str());
    }
    std::printf("now run `faradayctl crl --dir %s` and reload farad (SIGHUP)\n", dir.c_str());
  } else if (*status || *query) {
    return ask_faradayd(socket_path.empty() ? ctl::default_ctl_socket(ifname) : socket_path,
                        *status ? "status" : "query " + peer_name, timeout_s, json_out);
  } else if (*crl) {
    pki::CrlResult r = pki::write_crl(dir, crl_out, days);
    std::printf("wrote %s: CRL number %llu, %zu revoked, next update %s\n", r.path.c_str(),
                static_cast<unsigned long long>(r.number), r.revoked,
                pki::time_text(r.next_update).c_str());
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const pki::Error& e) {
    std::fprintf(stderr, "faradayctl: error: %s\n", e.what());
    return e.reason() == pki::Error::Reason::kInvalidArgument ? 2 : 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "faradayctl: error: %s\n", e.what());
    return 1;
  }
}
