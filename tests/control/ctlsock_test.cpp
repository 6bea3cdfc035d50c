// ctlsock_test.cpp: the local control socket (proto/ctl.h, control/ctl_server.h) over real UNIX
// sockets in a temporary directory: the request parser's table, request and
// answer (direct and asynchronous), every rejection and its counter, the
// timeouts, the client limit, the socket file's life (stale file replaced, a
// live server kept, mode 0600, unlinked only while its own); the status view
// (faradayctl/status_view.h); and faradayctl status / query against a server.
#include "control/ctl_server.h"

#include <fmt/core.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/execution.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <future>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "faradayctl/status_view.h"
#include "tests/lib/programs.h"
#include "tests/lib/temp_dir.h"
#include "tests/lib/unix_socket.h"

namespace faraday::control {
namespace {

namespace asio = boost::asio;
using nlohmann::json;
using Clock = std::chrono::steady_clock;
using namespace faraday::proto;       // the grammar and the client
using namespace faraday::faradayctl;  // the status view

// ---- parse_ctl_request ---------------------------------------------------------

struct ParseCase {
  std::string line;
  std::optional<CtlReject> reject;  // nullopt: parses
  std::vector<std::string> words;   // command then args, when it parses
};

TEST(CtlParse, Table) {
  const std::vector<ParseCase> cases = {
      {"status", std::nullopt, {"status"}},
      {"query n2", std::nullopt, {"query", "n2"}},
      {"a b c d e f g h", std::nullopt, {"a", "b", "c", "d", "e", "f", "g", "h"}},
      {"~!@#$%^&*()_+ {}|:<>?", std::nullopt, {"~!@#$%^&*()_+", "{}|:<>?"}},
      {std::string(1023, 'x'), std::nullopt, {std::string(1023, 'x')}},
      {"a b c d e f g h i", CtlReject::kMalformed, {}},
      {"", CtlReject::kMalformed, {}},
      {" ", CtlReject::kMalformed, {}},
      {" status", CtlReject::kMalformed, {}},
      {"status ", CtlReject::kMalformed, {}},
      {"query  n2", CtlReject::kMalformed, {}},
      {"status\r", CtlReject::kNotAscii, {}},
      {"status\n", CtlReject::kNotAscii, {}},
      {"sta\ttus", CtlReject::kNotAscii, {}},
      {"caf\xc3\xa9", CtlReject::kNotAscii, {}},
      {std::string("nul\0byte", 8), CtlReject::kNotAscii, {}},
      {"del\x7f", CtlReject::kNotAscii, {}},
      {std::string(1024, 'x'), CtlReject::kTooLong, {}},
      {std::string(5000, ' '), CtlReject::kTooLong, {}},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.line.size() > 40 ? fmt::format("{} bytes", c.line.size()) : c.line);
    auto parsed = parse_ctl_request(c.line);
    if (c.reject) {
      ASSERT_FALSE(parsed.ok());
      const CtlBadRequest& bad = parsed.failure();
      EXPECT_EQ(bad.reason, *c.reject) << bad.message;
      EXPECT_FALSE(bad.message.empty());
    } else {
      ASSERT_TRUE(parsed.ok()) << parsed.error();
      const CtlRequest& req = *parsed;
      std::vector<std::string> words = {req.command};
      words.insert(words.end(), req.args.begin(), req.args.end());
      EXPECT_EQ(words, c.words);
    }
  }
}

TEST(CtlParse, MessagesNameTheProblem) {
  auto bad = [](std::string_view line) { return parse_ctl_request(line).failure().message; };
  EXPECT_EQ(bad("status\r"),
            "byte 0x0d at offset 6 is not printable ASCII (end the line with \\n "
            "alone)");
  EXPECT_EQ(bad("caf\xc3\xa9"), "byte 0xc3 at offset 3 is not printable ASCII");
  EXPECT_EQ(bad(""), "empty request line");
  EXPECT_EQ(bad("a b c d e f g h i"), "more than 8 words in the request");
}

TEST(CtlParse, Helpers) {
  EXPECT_EQ(default_ctl_socket("faraday0"), "/run/faraday/faraday0.sock");
  EXPECT_EQ(ctl_error("no \"such\" peer"), R"({"error":"no \"such\" peer"})");
  EXPECT_EQ(json::parse(ctl_error("bad \xff byte"))["error"], "bad \xef\xbf\xbd byte");
  EXPECT_STREQ(to_string(CtlReject::kTooManyClients), "too_many_clients");
}

// ---- server over real sockets -------------------------------------------------

// A raw client, to send what ctl_call() never would.
class RawClient {
 public:
  explicit RawClient(const std::string& path) : fd_(faraday::testing::unix_connect(path)) {}
  ~RawClient() {
    if (fd_ >= 0) ::close(fd_);
  }
  bool connected() const { return fd_ >= 0; }
  void send(std::string_view bytes) {
    ASSERT_EQ(::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL),
              static_cast<ssize_t>(bytes.size()));
  }
  void shutdown_write() { ::shutdown(fd_, SHUT_WR); }
  // Everything until the server closes (or 3 s pass).
  std::string read_all() {
    std::string out;
    auto deadline = Clock::now() + std::chrono::seconds(3);
    while (Clock::now() < deadline) {
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, 100) <= 0) continue;
      char buf[4096];
      ssize_t n = ::recv(fd_, buf, sizeof(buf), 0);
      if (n <= 0) break;  // EOF, or ECONNRESET after unread request bytes
      out.append(buf, static_cast<size_t>(n));
    }
    return out;
  }
  // The error message of the one JSON answer, or "" if it is not an error.
  std::string read_error() {
    std::string text = read_all();
    EXPECT_FALSE(text.empty());
    EXPECT_EQ(text.back(), '\n');
    json j = json::parse(text, nullptr, false);
    if (!j.is_object() || !j.contains("error")) return "";
    return j["error"].get<std::string>();
  }

 private:
  int fd_ = -1;
};

class CtlServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    thread_ = std::thread([this] { io_.run(); });
  }

  void TearDown() override {
    for (auto& t : repliers_) t.join();
    on_io([&] {
      held_.clear();
      server_.reset();
    });
    work_ = asio::any_io_executor();
    thread_.join();
  }

  // Runs f on the io_context's thread (the server's) and returns its result.
  template <typename F>
  auto on_io(F f) -> decltype(f()) {
    std::packaged_task<decltype(f())()> task(std::move(f));
    auto result = task.get_future();
    asio::post(io_, [&task] { task(); });
    return result.get();
  }

  // Test commands: echo (answers at once), later (answers 50 ms later), hold
  // (keeps its Reply in held_), elsewhere (answers from another thread),
  // throw, drop (never calls its Reply).
  CtlServer::Commands commands() {
    CtlServer::Commands c;
    c["echo"] = [](const CtlRequest& r, CtlServer::Reply reply) {
      reply(json{{"command", r.command}, {"args", r.args}}.dump());
    };
    c["later"] = [this](const CtlRequest&, CtlServer::Reply reply) {
      auto timer = std::make_shared<asio::steady_timer>(io_, std::chrono::milliseconds(50));
      timer->async_wait(
          [timer, reply](const boost::system::error_code&) { reply(R"({"later":true})"); });
    };
    c["hold"] = [this](const CtlRequest&, CtlServer::Reply reply) {
      held_.push_back(std::move(reply));
    };
    c["elsewhere"] = [this](const CtlRequest&, CtlServer::Reply reply) {
      repliers_.emplace_back([reply] { reply(R"({"from":"another thread"})"); });
    };
    c["throw"] = [](const CtlRequest&, CtlServer::Reply) { throw std::runtime_error("boom"); };
    c["drop"] = [](const CtlRequest&, CtlServer::Reply) {};
    return c;
  }

  static CtlServerOptions fast() {
    CtlServerOptions o;
    o.request_timeout = std::chrono::milliseconds(200);
    o.reply_timeout = std::chrono::milliseconds(200);
    return o;
  }

  // Starts a server at `path` on the io thread; "" or why it could not.
  std::string start(CtlServerOptions options = fast(), std::string path = "") {
    if (path.empty()) path = path_;
    return on_io([&]() -> std::string {
      auto result = CtlServer::listen(io_, path, commands(), options);
      if (!result) return result.error();
      server_ = std::move(*result);
      return "";
    });
  }

  CtlServer::Counters counters() {
    return on_io([&] { return server_->counters(); });
  }

  json call(std::string_view line) {
    auto result = ctl_call(path_, line, std::chrono::seconds(2));
    if (!result) {
      ADD_FAILURE() << result.error();
      return nullptr;
    }
    return json::parse(*result, nullptr, false);
  }

  std::string error_of(std::string_view line) {
    json j = call(line);
    if (!j.is_object() || !j.contains("error")) return "(no error: " + j.dump() + ")";
    return j["error"].get<std::string>();
  }

  asio::io_context io_;
  // Keeps io_.run() going until TearDown.
  asio::any_io_executor work_ =
      asio::require(io_.get_executor(), asio::execution::outstanding_work.tracked);
  std::thread thread_;
  faraday::testing::TempDir tmp_{"ctlsock_test"};
  std::string dir_ = tmp_.path();
  std::string path_ = dir_ + "/fd0.sock";
  std::unique_ptr<CtlServer> server_;
  std::vector<CtlServer::Reply> held_;
  std::vector<std::thread> repliers_;  // answering from outside the io thread
};

TEST_F(CtlServerTest, RequestAndAnswer) {
  ASSERT_EQ(start(), "");
  json j = call("echo a b");
  EXPECT_EQ(j, json::parse(R"({"command":"echo","args":["a","b"]})"));
  EXPECT_EQ(counters().requests, 1u);
  EXPECT_EQ(counters().connections, 1u);
}

TEST_F(CtlServerTest, AsynchronousAnswer) {
  ASSERT_EQ(start(), "");
  auto t0 = Clock::now();
  EXPECT_EQ(call("later"), json::parse(R"({"later":true})"));
  EXPECT_GE(Clock::now() - t0, std::chrono::milliseconds(45));
  EXPECT_EQ(call("elsewhere"), json::parse(R"({"from":"another thread"})"));
}

TEST_F(CtlServerTest, UnknownCommand) {
  ASSERT_EQ(start(), "");
  EXPECT_EQ(error_of("nope x"),
            "unknown command \"nope\" (known: drop, echo, elsewhere, hold, later, throw)");
  EXPECT_EQ(counters().rejected_by(CtlReject::kUnknownCommand), 1u);
  EXPECT_EQ(counters().requests, 0u);
}

TEST_F(CtlServerTest, LineLimit) {
  ASSERT_EQ(start(), "");
  // 1024 bytes with the newline: accepted.
  std::string word(1024 - 1 - 5, 'a');
  json j = call("echo " + word);
  ASSERT_TRUE(j.is_object());
  EXPECT_EQ(j["args"][0], word);
  // ctl_call refuses to send a longer one...
  auto refused = ctl_call(path_, "echo " + word + "a", std::chrono::seconds(1));
  ASSERT_FALSE(refused.ok());
  // ...and the server rejects 1024 bytes without a newline.
  RawClient raw(path_);
  ASSERT_TRUE(raw.connected());
  raw.send(std::string(1024, 'a'));
  EXPECT_EQ(raw.read_error(), "no newline within 1024 bytes");
  EXPECT_EQ(counters().rejected_by(CtlReject::kTooLong), 1u);
}

TEST_F(CtlServerTest, NotAsciiAndMalformed) {
  ASSERT_EQ(start(), "");
  {
    RawClient raw(path_);
    raw.send("echo caf\xc3\xa9\n");
    EXPECT_EQ(raw.read_error(), "byte 0xc3 at offset 8 is not printable ASCII");
  }
  {
    RawClient raw(path_);
    raw.send("echo  a\n");
    EXPECT_NE(raw.read_error().find("single spaces"), std::string::npos);
  }
  {
    RawClient raw(path_);
    raw.send("\n");
    EXPECT_EQ(raw.read_error(), "empty request line");
  }
  EXPECT_EQ(counters().rejected_by(CtlReject::kNotAscii), 1u);
  EXPECT_EQ(counters().rejected_by(CtlReject::kMalformed), 2u);
}

TEST_F(CtlServerTest, BytesAfterTheNewlineAreIgnored) {
  ASSERT_EQ(start(), "");
  RawClient raw(path_);
  raw.send("echo a\nmore junk \xff");
  json j = json::parse(raw.read_all());
  EXPECT_EQ(j["args"], json::parse(R"(["a"])"));
}

TEST_F(CtlServerTest, NoNewlineThenTimeout) {
  ASSERT_EQ(start(), "");
  {
    RawClient raw(path_);  // sends nothing at all
    EXPECT_EQ(raw.read_error(), "no request line within 200 ms");
  }
  {
    RawClient raw(path_);  // half a line, then silence
    raw.send("ech");
    EXPECT_EQ(raw.read_error(), "no request line within 200 ms");
  }
  {
    RawClient raw(path_);  // half a line, then EOF
    raw.send("echo");
    raw.shutdown_write();
    EXPECT_EQ(raw.read_error(), "the request ended without a newline");
  }
  {
    RawClient raw(path_);  // connects and leaves: a probe, not counted
    raw.shutdown_write();
    EXPECT_EQ(raw.read_all(), "");
  }
  EXPECT_EQ(counters().rejected_by(CtlReject::kRequestTimeout), 2u);
  EXPECT_EQ(counters().rejected_by(CtlReject::kNoNewline), 1u);
  auto c = counters();
  uint64_t total = 0;
  for (auto n : c.rejected) total += n;
  EXPECT_EQ(total, 3u);
}

TEST_F(CtlServerTest, HandlerFailures) {
  ASSERT_EQ(start(), "");
  EXPECT_EQ(error_of("throw"), "`throw` failed: boom");
  EXPECT_EQ(error_of("drop"), "`drop` gave no answer");
  EXPECT_EQ(error_of("hold"), "no answer to `hold` within 200 ms");
  EXPECT_EQ(counters().rejected_by(CtlReject::kHandlerFailed), 2u);
  EXPECT_EQ(counters().rejected_by(CtlReject::kReplyTimeout), 1u);
  // The late answer goes nowhere, and a second one neither.
  on_io([&] {
    ASSERT_EQ(held_.size(), 1u);
    held_[0](R"({"late":true})");
    held_[0](R"({"later":true})");
  });
  EXPECT_EQ(call("echo")["command"], "echo");
}

TEST_F(CtlServerTest, AnswerAfterTheServerIsGone) {
  ASSERT_EQ(start(CtlServerOptions{}), "");
  std::promise<faraday::Result<std::string, CtlError>> got;
  std::thread client([&] { got.set_value(ctl_call(path_, "hold", std::chrono::seconds(3))); });
  // Wait until the handler holds the Reply, then destroy the server and answer.
  auto deadline = Clock::now() + std::chrono::seconds(2);
  while (on_io([&] { return held_.size(); }) == 0 && Clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  on_io([&] {
    ASSERT_EQ(held_.size(), 1u);
    server_.reset();
    held_[0](R"({"too":"late"})");
  });
  client.join();
  auto result = got.get_future().get();
  ASSERT_FALSE(result.ok());
  EXPECT_NE(result.error().find("without answering"), std::string::npos);
}

TEST_F(CtlServerTest, TooManyClients) {
  ASSERT_EQ(start(CtlServerOptions{}), "");
  std::vector<std::unique_ptr<RawClient>> idle;
  for (size_t i = 0; i < kCtlMaxClients; ++i) {
    idle.push_back(std::make_unique<RawClient>(path_));
    ASSERT_TRUE(idle.back()->connected());
  }
  auto deadline = Clock::now() + std::chrono::seconds(2);
  while (on_io([&] { return server_->open_connections(); }) < kCtlMaxClients &&
         Clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  EXPECT_EQ(error_of("echo"), "too many clients");
  EXPECT_EQ(counters().rejected_by(CtlReject::kTooManyClients), 1u);
  for (size_t i = 0; i < idle.size(); ++i) {
    idle[i]->send(fmt::format("echo {}\n", i));
    EXPECT_EQ(json::parse(idle[i]->read_all())["args"][0], std::to_string(i));
  }
  idle.clear();
  EXPECT_EQ(call("echo")["command"], "echo");
  EXPECT_EQ(counters().requests, kCtlMaxClients + 1);
}

TEST_F(CtlServerTest, SocketFileIsRootOnly) {
  ASSERT_EQ(start(), "");
  struct stat st;
  ASSERT_EQ(::stat(path_.c_str(), &st), 0);
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
  EXPECT_EQ(st.st_mode & 07777, 0600u);
  EXPECT_EQ(on_io([&] { return server_->path(); }), path_);
}

TEST_F(CtlServerTest, CreatesItsDirectory) {
  std::string path = dir_ + "/faraday/fd1.sock";
  ASSERT_EQ(start(fast(), path), "");
  struct stat st;
  ASSERT_EQ(::stat((dir_ + "/faraday").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0755u);
  auto result = ctl_call(path, "echo", std::chrono::seconds(1));
  EXPECT_TRUE(result.ok());
}

TEST_F(CtlServerTest, ReplacesAStaleSocket) {
  // A socket file nobody listens on, as a crashed faradayd leaves it.
  ASSERT_TRUE(faraday::testing::leave_stale_socket(path_));
  ASSERT_TRUE(std::filesystem::exists(path_));
  ASSERT_EQ(start(), "");
  EXPECT_EQ(call("echo")["command"], "echo");
}

TEST_F(CtlServerTest, RefusesWhileAnotherServes) {
  ASSERT_EQ(start(), "");
  std::string err = on_io([&]() -> std::string {
    auto second = CtlServer::listen(io_, path_, {}, {});
    return second ? "(listening twice)" : second.error();
  });
  EXPECT_EQ(err, "another faradayd serves " + path_);
  EXPECT_EQ(call("echo")["command"], "echo");                    // the first one is untouched
  EXPECT_EQ(counters().rejected_by(CtlReject::kNoNewline), 0u);  // the probe is not counted
}

TEST_F(CtlServerTest, RefusesAFileThatIsNotASocket) {
  std::ofstream(path_) << "keep me";
  EXPECT_EQ(start(), path_ + " exists and is not a socket; not replacing it");
  std::ifstream in(path_);
  std::string content;
  std::getline(in, content);
  EXPECT_EQ(content, "keep me");
  EXPECT_NE(start(fast(), dir_ + "/" + std::string(120, 'x')).find("longer than 107 bytes"),
            std::string::npos);
}

TEST_F(CtlServerTest, UnlinksItsOwnSocketOnly) {
  ASSERT_EQ(start(), "");
  on_io([&] { server_.reset(); });
  EXPECT_FALSE(std::filesystem::exists(path_));

  // Someone replaced the file: the server leaves the new one alone.
  ASSERT_EQ(start(), "");
  ASSERT_EQ(::unlink(path_.c_str()), 0);
  std::ofstream(path_) << "new";
  on_io([&] { server_.reset(); });
  EXPECT_TRUE(std::filesystem::exists(path_));
}

TEST_F(CtlServerTest, ClientErrors) {
  auto missing = ctl_call(dir_ + "/none.sock", "status", std::chrono::seconds(1));
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error(),
            "cannot reach faradayd at " + dir_ +
                "/none.sock: No such file or directory (is faradayd running in cluster mode on "
                "this interface?)");

  ASSERT_EQ(start(CtlServerOptions{}), "");
  auto slow = ctl_call(path_, "hold", std::chrono::milliseconds(100));
  ASSERT_FALSE(slow.ok());
  EXPECT_EQ(slow.error(), "faradayd at " + path_ + " did not answer within 100 ms");
  auto newline = ctl_call(path_, "echo\nx", std::chrono::seconds(1));
  ASSERT_FALSE(newline.ok());
}

// ---- status view -------------------------------------------------------------

const char* kSample = R"({
  "node": "n1", "interface": "fd1", "public_key": "PUBn1=", "listen_port": 51820,
  "overlay": "10.200.0.1/32", "allowed_ips": ["10.200.0.1/32", "10.201.1.0/24"],
  "underlay": ["10.99.0.11:51820"], "control": "10.99.0.11:7451",
  "farad": {"address": "10.99.0.1:7450", "state": "ready", "joined": true,
            "epoch": 1234, "cursor": 7, "last_error": "", "heartbeat_s": 1.0, "expiry_s": 3.0},
  "peers": [
    {"name": "n2", "public_key": "PUBn2=", "endpoint": "10.99.0.12:51820",
     "allowed_ips": ["10.200.0.2/32"], "control": "10.99.0.12:7451",
     "link": "up", "ping_rtt_ms": 0.41, "last_heard_s": 0.2, "handshake_age_s": 3.1,
     "rx_bytes": 123, "tx_bytes": 1258291, "silent": false, "farad_says": ""},
    {"name": "n3", "endpoint": "10.99.0.13:51820", "link": "down",
     "ping_rtt_ms": null, "last_heard_s": 312, "handshake_age_s": null,
     "rx_bytes": 0, "tx_bytes": 0, "silent": true, "farad_says": "ABSENT"}
  ]
})";

TEST(CtlStatusView, FullSample) {
  EXPECT_EQ(
      format_status(json::parse(kSample)),
      "node:        n1\n"
      "interface:   fd1\n"
      "public key:  PUBn1=\n"
      "listen port: 51820\n"
      "overlay:     10.200.0.1/32\n"
      "allowed ips: 10.200.0.1/32, 10.201.1.0/24\n"
      "underlay:    10.99.0.11:51820\n"
      "control:     10.99.0.11:7451\n"
      "farad:       10.99.0.1:7450, state ready, joined yes, epoch 1234, cursor 7\n"
      "\n"
      "peers: 2\n"
      "NAME  ENDPOINT          LINK               RTT  HEARD      HANDSHAKE     RX       TX  "
      "FARAD\n"
      "n2    10.99.0.12:51820  up             0.41 ms  0.2s ago   3.1s ago   123 B  1.2 MiB  -\n"
      "n3    10.99.0.13:51820  down (silent)        -  5m12s ago  never        0 B      0 B  "
      "ABSENT\n");
}

TEST(CtlStatusView, WhyALinkIsDown) {
  json j = json::parse(kSample);
  j["peers"][1]["link_error"] = "connect: Connection refused";
  j["peers"][0]["link_error"] = "an old error of a link that is up again";
  std::string text = format_status(j);
  EXPECT_NE(text.find("\nlink to n3: connect: Connection refused\n"), std::string::npos) << text;
  EXPECT_EQ(text.find("link to n2"), std::string::npos) << text;
}

TEST(CtlStatusView, FaradError) {
  json j = json::parse(kSample);
  j["farad"]["state"] = "waiting";
  j["farad"]["joined"] = false;
  j["farad"]["last_error"] = "connect: Connection refused";
  std::string text = format_status(j);
  EXPECT_NE(
      text.find("farad:       10.99.0.1:7450, state waiting, joined no, epoch 1234, cursor 7\n"
                "farad error: connect: Connection refused\n"),
      std::string::npos)
      << text;
}

TEST(CtlStatusView, EmptyObject) {
  EXPECT_EQ(format_status(json::object()),
            "node:        -\n"
            "interface:   -\n"
            "public key:  -\n"
            "listen port: -\n"
            "overlay:     -\n"
            "allowed ips: -\n"
            "underlay:    -\n"
            "control:     -\n"
            "farad:       -\n"
            "\n"
            "peers: -\n");
  json no_peers = {{"peers", json::array()}, {"allowed_ips", json::array()}};
  std::string text = format_status(no_peers);
  EXPECT_NE(text.find("peers: none\n"), std::string::npos);
  EXPECT_NE(text.find("allowed ips: none\n"), std::string::npos);
}

TEST(CtlStatusView, WrongTypes) {
  json j = json::parse(R"({
    "node": 5, "interface": null, "public_key": ["x"], "listen_port": "51820",
    "allowed_ips": "10.0.0.1/32", "underlay": [1, "10.99.0.11:51820"], "control": {},
    "farad": {"address": 1, "state": false, "joined": "yes", "epoch": -3, "cursor": 1.5,
              "last_error": 7},
    "peers": [7, {"name": 7, "endpoint": [], "link": 1, "ping_rtt_ms": "fast",
                  "last_heard_s": -4, "handshake_age_s": true, "rx_bytes": "a",
                  "tx_bytes": -1, "silent": "yes", "farad_says": null}]
  })");
  std::string text;
  EXPECT_NO_THROW(text = format_status(j));
  EXPECT_NE(text.find("node:        -\n"), std::string::npos) << text;
  EXPECT_NE(text.find("underlay:    -, 10.99.0.11:51820\n"), std::string::npos) << text;
  EXPECT_NE(text.find("farad:       -, state -, joined -, epoch -3, cursor 1.5\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("peers: 2\n"), std::string::npos) << text;
  EXPECT_NE(text.find("\n-     -         -       -  -      -           -   -  -\n"),
            std::string::npos)
      << text;
  for (const json& odd : {json(nullptr), json(42), json("status"), json::array({1, 2})}) {
    EXPECT_NE(format_status(odd).find("node:        -\n"), std::string::npos);
  }
}

TEST(CtlStatusView, NoTerminalControl) {
  json j = {{"node", "\x1b[31mred\x1b[0m"}, {"peers", {{{"name", "n\xc3\xa9\n"}}}}};
  std::string text = format_status(j);
  EXPECT_NE(text.find("node:        ?[31mred?[0m\n"), std::string::npos) << text;
  EXPECT_NE(text.find("\nn???  "), std::string::npos) << text;
}

TEST(CtlStatusView, SizesAndAges) {
  EXPECT_EQ(format_size(0), "0 B");
  EXPECT_EQ(format_size(1023), "1023 B");
  EXPECT_EQ(format_size(1024), "1.0 KiB");
  EXPECT_EQ(format_size(1.2 * 1024 * 1024), "1.2 MiB");
  EXPECT_EQ(format_size(5.0 * 1024 * 1024 * 1024), "5.0 GiB");
  EXPECT_EQ(format_size(3e15), "2728.5 TiB");
  EXPECT_EQ(format_size(-1), "-");
  EXPECT_EQ(format_size(std::nan("")), "-");
  EXPECT_EQ(format_age(0), "0.0s ago");
  EXPECT_EQ(format_age(0.2), "0.2s ago");
  EXPECT_EQ(format_age(42.7), "42s ago");
  EXPECT_EQ(format_age(312), "5m12s ago");
  EXPECT_EQ(format_age(11040), "3h4m ago");
  EXPECT_EQ(format_age(183600), "2d3h ago");
  EXPECT_EQ(format_age(1e300), "long ago");
  EXPECT_EQ(format_age(-1), "-");
  EXPECT_EQ(format_age(INFINITY), "-");
}

// ---- faradayctl status / query ------------------------------------------------

using ToolRun = faraday::testing::ShellRun;

// faradayctl ARGS, with stdout and stderr together in `out`.
ToolRun faradayctl(const std::string& args) {
  return faraday::testing::run_shell(std::string(faraday::testing::program_path("FARADAYCTL")) +
                                     " " + args + " 2>&1");
}

class CtlFaradayctlTest : public CtlServerTest {
 protected:
  // Adds status and query to the test commands.
  void start_node() {
    std::string err = on_io([&]() -> std::string {
      auto c = commands();
      c["status"] = [](const CtlRequest&, CtlServer::Reply reply) {
        reply(json::parse(kSample).dump());
      };
      c["query"] = [](const CtlRequest& r, CtlServer::Reply reply) {
        if (r.args.size() != 1) return reply(ctl_error("usage: query NAME"));
        if (r.args[0] == "ghost") return reply(ctl_error("farad is not reachable"));
        reply(json{{"name", r.args[0]}, {"state", "PRESENT"}}.dump());
      };
      auto result = CtlServer::listen(io_, path_, std::move(c), {});
      if (!result) return result.error();
      server_ = std::move(*result);
      return "";
    });
    ASSERT_EQ(err, "");
  }
};

TEST_F(CtlFaradayctlTest, Status) {
  start_node();
  ToolRun human = faradayctl("status --socket " + path_);
  EXPECT_EQ(human.status, 0) << human.out;
  EXPECT_EQ(human.out, format_status(json::parse(kSample)));

  ToolRun raw = faradayctl("status --json --socket " + path_);
  EXPECT_EQ(raw.status, 0) << raw.out;
  EXPECT_EQ(raw.out, json::parse(kSample).dump(2) + "\n");
}

TEST_F(CtlFaradayctlTest, Query) {
  start_node();
  ToolRun ok = faradayctl("query --socket " + path_ + " n2");
  EXPECT_EQ(ok.status, 0);
  EXPECT_EQ(ok.out, "n2: PRESENT\n");

  ToolRun failed = faradayctl("query --socket " + path_ + " ghost");
  EXPECT_EQ(failed.status, 1);
  EXPECT_EQ(failed.out, "faradayctl: error: faradayd: farad is not reachable\n");

  ToolRun usage = faradayctl("query --socket " + path_ + " 'a b'");
  EXPECT_EQ(usage.status, 2) << usage.out;
  ToolRun both = faradayctl("query -i fd0 --socket " + path_ + " n2");
  EXPECT_EQ(both.status, 2) << both.out;
}

TEST_F(CtlFaradayctlTest, Unreachable) {
  ToolRun r = faradayctl("status --socket " + dir_ + "/none.sock");
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.out.find("cannot reach faradayd at " + dir_ + "/none.sock"), std::string::npos)
      << r.out;
  ToolRun help = faradayctl("--help");
  EXPECT_EQ(help.status, 0);
  EXPECT_NE(help.out.find("status"), std::string::npos);
  EXPECT_NE(help.out.find("/run/faraday/IFNAME.sock"), std::string::npos);
}

}  // namespace
}  // namespace faraday::control
