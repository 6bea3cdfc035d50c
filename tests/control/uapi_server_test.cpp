// uapi_server_test.cpp: the wg(8) UAPI socket Server over real UNIX sockets in a
// temporary directory, with a fake device behind it.
#include "control/uapi.h"

#include "tests/control/uapi_values.h"
#include "tests/lib/temp_dir.h"
#include "tests/lib/unix_socket.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <net/if.h>
#include <netinet/ip.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

namespace faraday::control::uapi {
namespace {

using dataplane::Endpoint;
using dataplane::Prefix;

using namespace test_values;  // key_of, hex_of, prefix, endpoint

// ---- Server -------------------------------------------------------------------------

// A Server in a private temporary directory, with a fake device behind it.
class UapiServer : public ::testing::Test {
 protected:
  void SetUp() override {
    state_ = sample_state();
    server_ = start(path_);
    ASSERT_NE(server_, nullptr);
  }
  void TearDown() override {
    for (int fd : fds_) ::close(fd);
    server_.reset();
  }

  std::unique_ptr<Server> start(const std::string& path) {
    auto r = Server::listen_at(
        path, [this] { return state_; },
        [this](const SetRequest& req) -> Result<void, Error> {
          applied_.push_back(req);
          if (fail_with_) return Error{fail_with_, "refused by the test", Reject::kApplyFailed};
          if (req.listen_port) state_.listen_port = *req.listen_port;
          return {};
        });
    if (!r) {
      ADD_FAILURE() << r.error();
      return nullptr;
    }
    return *std::move(r);
  }

  int connect_client() {
    int fd = faraday::testing::unix_connect(path_);
    EXPECT_GE(fd, 0) << strerror(errno);
    if (fd >= 0) fds_.push_back(fd);
    return fd;
  }

  // Runs the server until fd has a complete reply ("errno=N\n\n") or EOF.
  std::string read_reply(int fd, bool* eof = nullptr) {
    std::string got;
    for (int i = 0; i < 2000; ++i) {
      server_->handle();
      char buf[4096];
      ssize_t n = ::recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
      if (n > 0) got.append(buf, static_cast<size_t>(n));
      if (n == 0 || (n < 0 && errno != EAGAIN)) {
        if (eof) *eof = true;
        return got;
      }
      auto at = got.rfind("errno=");
      if (at != std::string::npos && got.size() >= 2 && got.ends_with("\n\n")) return got;
      if (n < 0) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    ADD_FAILURE() << "no reply, got '" << got << "'";
    return got;
  }

  std::string exchange(int fd, std::string_view request) {
    EXPECT_EQ(::send(fd, request.data(), request.size(), MSG_NOSIGNAL),
              static_cast<ssize_t>(request.size()));
    return read_reply(fd);
  }

  faraday::testing::TempDir tmp_{"uapi_test"};
  std::string dir_ = tmp_.path();
  std::string path_ = dir_ + "/tst0.sock";
  DeviceState state_;
  std::vector<SetRequest> applied_;
  int fail_with_ = 0;
  std::unique_ptr<Server> server_;
  std::vector<int> fds_;
};

TEST_F(UapiServer, SocketModeAndPath) {
  struct stat st {};
  ASSERT_EQ(::stat(path_.c_str(), &st), 0);
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_EQ(server_->path(), path_);
  EXPECT_TRUE(server_->socket_file_present());
  // No temporary name left behind.
  size_t entries = 0;
  for ([[maybe_unused]] auto& e : std::filesystem::directory_iterator(dir_)) ++entries;
  EXPECT_EQ(entries, 1u);
}

TEST_F(UapiServer, GetReturnsTheState) {
  int fd = connect_client();
  EXPECT_EQ(exchange(fd, "get=1\n\n"), format_get(state_));
  EXPECT_EQ(server_->counters().get_requests, 1u);
}

TEST_F(UapiServer, SetThenGetOnOneConnection) {
  int fd = connect_client();
  std::string set = "set=1\nlisten_port=4242\npublic_key=" + hex_of(0x77) +
                    "\nendpoint=[::1]:9\nallowed_ip=10.9.0.0/16\n\n";
  EXPECT_EQ(exchange(fd, set), "errno=0\n\n");
  ASSERT_EQ(applied_.size(), 1u);
  EXPECT_EQ(applied_[0].listen_port, 4242);
  ASSERT_EQ(applied_[0].peers.size(), 1u);
  EXPECT_EQ(applied_[0].peers[0].public_key, key_of(0x77));
  std::string get = exchange(fd, "get=1\n\n");
  EXPECT_NE(get.find("listen_port=4242\n"), std::string::npos) << get;
  EXPECT_EQ(server_->counters().set_requests, 1u);
}

TEST_F(UapiServer, RequestArrivingOneByteAtATime) {
  int fd = connect_client();
  std::string set = "set=1\nfwmark=9\n\n";
  for (char c : set) {
    ASSERT_EQ(::send(fd, &c, 1, MSG_NOSIGNAL), 1);
    server_->handle();
  }
  EXPECT_EQ(read_reply(fd), "errno=0\n\n");
  ASSERT_EQ(applied_.size(), 1u);
  EXPECT_EQ(applied_[0].fwmark, 9u);
}

TEST_F(UapiServer, PipelinedRequestsAnsweredInOrder) {
  int fd = connect_client();
  std::string both = "set=1\nlisten_port=1000\n\nget=1\n\nset=1\nbogus=1\n\n";
  ASSERT_EQ(::send(fd, both.data(), both.size(), MSG_NOSIGNAL), static_cast<ssize_t>(both.size()));
  std::string got;
  for (int i = 0; i < 100 && !got.ends_with("errno=22\n\n"); ++i) got += read_reply(fd);
  state_.listen_port = 1000;
  EXPECT_EQ(got, "errno=0\n\n" + format_get(state_) + "errno=22\n\n");
}

TEST_F(UapiServer, ManyClientsInterleaved) {
  std::vector<int> clients;
  for (int i = 0; i < 8; ++i) clients.push_back(connect_client());
  std::string req = "get=1\n\n";
  for (size_t at = 0; at < req.size(); ++at) {
    for (int fd : clients) ASSERT_EQ(::send(fd, &req[at], 1, MSG_NOSIGNAL), 1);
    server_->handle();
  }
  for (int fd : clients) EXPECT_EQ(read_reply(fd), format_get(state_));
  EXPECT_EQ(server_->counters().connections, 8u);
  EXPECT_EQ(server_->counters().get_requests, 8u);
}

TEST_F(UapiServer, BadSetIsAnsweredAndCountedAndConnectionStaysUsable) {
  int fd = connect_client();
  EXPECT_EQ(exchange(fd, "set=1\nfoo=bar\n\n"), "errno=22\n\n");
  EXPECT_EQ(exchange(fd, "set=1\nlisten_port\n\n"), "errno=71\n\n");  // EPROTO
  EXPECT_EQ(exchange(fd, "set=1\npublic_key=" + hex_of(1) + "\nprotocol_version=2\n\n"),
            "errno=22\n\n");
  EXPECT_EQ(exchange(fd, "get=1\nextra=1\n\n"), "errno=22\n\n");
  EXPECT_TRUE(applied_.empty());
  const auto& c = server_->counters();
  EXPECT_EQ(c.rejected_by(Reject::kUnknownKey), 1u);
  EXPECT_EQ(c.rejected_by(Reject::kMalformedLine), 1u);
  EXPECT_EQ(c.rejected_by(Reject::kProtocolVersion), 1u);
  EXPECT_EQ(c.rejected_by(Reject::kUnknownOperation), 1u);
  ASSERT_TRUE(server_->last_rejection().has_value());
  EXPECT_EQ(exchange(fd, "get=1\n\n"), format_get(state_));
}

TEST_F(UapiServer, ApplyFailureReturnsItsErrno) {
  fail_with_ = EADDRINUSE;
  int fd = connect_client();
  EXPECT_EQ(exchange(fd, "set=1\nlisten_port=53\n\n"),
            "errno=" + std::to_string(EADDRINUSE) + "\n\n");
  EXPECT_EQ(server_->counters().rejected_by(Reject::kApplyFailed), 1u);
}

TEST_F(UapiServer, UnknownOperationIsAnsweredThenClosed) {
  int fd = connect_client();
  ASSERT_GT(::send(fd, "hello=1\n", 8, MSG_NOSIGNAL), 0);
  bool eof = false;
  EXPECT_EQ(read_reply(fd, &eof), "errno=22\n\n");
  std::string rest = read_reply(fd, &eof);
  EXPECT_TRUE(eof);
  EXPECT_TRUE(rest.empty());
  EXPECT_EQ(server_->client_count(), 0u);
  EXPECT_EQ(server_->counters().rejected_by(Reject::kUnknownOperation), 1u);
}

TEST_F(UapiServer, OversizedRequestGetsEmsgsizeAndIsClosed) {
  int fd = connect_client();
  ASSERT_EQ(::fcntl(fd, F_SETFL, O_NONBLOCK), 0);
  std::string chunk = "set=1\n";
  while (chunk.size() < 64 * 1024) chunk += "listen_port=1\n";
  size_t sent = 0;
  std::string reply;
  bool closed = false;
  for (int i = 0; i < 20000 && !closed; ++i) {
    ssize_t n = ::send(fd, chunk.data(), chunk.size(), MSG_NOSIGNAL);
    if (n > 0) sent += static_cast<size_t>(n);
    if (n < 0 && errno != EAGAIN) closed = true;  // EPIPE: the server gave up on us
    server_->handle();
    char buf[256];
    ssize_t r = ::recv(fd, buf, sizeof(buf), 0);
    if (r > 0) reply.append(buf, static_cast<size_t>(r));
    if (r == 0) closed = true;
  }
  EXPECT_TRUE(closed);
  EXPECT_GE(sent, kMaxRequestBytes);
  EXPECT_EQ(reply, "errno=" + std::to_string(EMSGSIZE) + "\n\n");
  EXPECT_EQ(server_->counters().rejected_by(Reject::kTooLarge), 1u);
  EXPECT_TRUE(applied_.empty());
  EXPECT_EQ(server_->client_count(), 0u);
}

TEST_F(UapiServer, ClientHangingUpMidRequestIsForgotten) {
  int fd = connect_client();
  ASSERT_GT(::send(fd, "set=1\nlisten_port=1", 19, MSG_NOSIGNAL), 0);
  server_->handle();
  EXPECT_EQ(server_->client_count(), 1u);
  ::shutdown(fd, SHUT_RDWR);
  server_->handle();
  EXPECT_EQ(server_->client_count(), 0u);
  EXPECT_EQ(server_->counters().aborted_requests, 1u);
  EXPECT_TRUE(applied_.empty());
}

TEST_F(UapiServer, HalfClosedClientStillGetsItsAnswer) {
  int fd = connect_client();
  ASSERT_GT(::send(fd, "get=1\n\n", 7, MSG_NOSIGNAL), 0);
  ::shutdown(fd, SHUT_WR);
  EXPECT_EQ(read_reply(fd), format_get(state_));
  server_->handle();
  EXPECT_EQ(server_->client_count(), 0u);
}

TEST_F(UapiServer, TooManyClientsAreRefused) {
  std::vector<int> clients;
  for (size_t i = 0; i < kMaxClients + 3; ++i) {
    clients.push_back(connect_client());
    server_->handle();  // keep the listen backlog short so connect() never blocks
  }
  EXPECT_EQ(server_->client_count(), kMaxClients);
  EXPECT_EQ(server_->counters().rejected_by(Reject::kTooManyClients), 3u);
  // The first ones still work.
  EXPECT_EQ(exchange(clients[0], "get=1\n\n"), format_get(state_));
}

TEST_F(UapiServer, PollSetCoversListenerAndClients) {
  connect_client();
  server_->handle();
  std::vector<pollfd> fds;
  server_->append_pollfds(fds);
  ASSERT_EQ(fds.size(), 2u);
  EXPECT_EQ(fds[0].events, POLLIN);
  EXPECT_EQ(fds[1].events, POLLIN);
}

TEST_F(UapiServer, RefusesASecondServerWhileLive) {
  auto r = Server::listen_at(
      path_, [] { return DeviceState{}; }, [](const SetRequest&) { return Result<void, Error>{}; });
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.failure().errno_value, EADDRINUSE);
  EXPECT_TRUE(server_->socket_file_present());  // untouched
}

TEST_F(UapiServer, ReplacesAStaleSocketAndUnlinksOnExit) {
  server_.reset();
  EXPECT_FALSE(std::filesystem::exists(path_));
  // A stale socket: bound, then its process "died" without unlinking.
  ASSERT_TRUE(faraday::testing::leave_stale_socket(path_));
  server_ = start(path_);
  ASSERT_NE(server_, nullptr);
  int fd = connect_client();
  EXPECT_EQ(exchange(fd, "get=1\n\n"), format_get(state_));
}

TEST_F(UapiServer, NoticesWhenItsSocketFileIsRemoved) {
  ASSERT_EQ(::unlink(path_.c_str()), 0);
  EXPECT_FALSE(server_->socket_file_present());
}

TEST_F(UapiServer, RefusesToClobberANonSocket) {
  std::string file = dir_ + "/plain.sock";
  ::close(::open(file.c_str(), O_CREAT | O_WRONLY, 0600));
  auto r = Server::listen_at(
      file, [] { return DeviceState{}; }, [](const SetRequest&) { return Result<void, Error>{}; });
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.failure().errno_value, EEXIST);
}

TEST(UapiServerListen, RejectsBadInterfaceNames) {
  auto get = [] { return DeviceState{}; };
  auto set = [](const SetRequest&) { return Result<void, Error>{}; };
  for (const char* name : {"", "..", "a/b", "sixteen-chars-xx"}) {
    auto r = Server::listen(name, get, set);
    ASSERT_FALSE(r.ok()) << name;
    EXPECT_EQ(r.failure().errno_value, EINVAL) << name;
  }
}

}  // namespace
}  // namespace faraday::control::uapi
