// ctl_server.h: faradayd's local control socket server. The protocol (request
// grammar, limits, error replies, the client) is proto/ctl.h.
//
// Threads: a CtlServer belongs to the thread running its io_context
// (faradayd's control thread): create it, use it and destroy it on that
// thread; handlers run there too. A Reply may be called from any thread.
#pragma once

#include <array>
#include <boost/asio/io_context.hpp>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <variant>

#include "proto/ctl.h"

namespace faraday::control {

using proto::CtlReject;
using proto::CtlRequest;

struct CtlServerOptions {
  std::chrono::milliseconds request_timeout = proto::kCtlRequestTimeout;
  std::chrono::milliseconds reply_timeout =
      proto::kCtlReplyTimeout;  // also bounds writing the answer
  size_t max_clients = proto::kCtlMaxClients;
};

class CtlServer {
 public:
  // Answers the request: `json` is one JSON document (nlohmann::json::dump()),
  // sent with a "\n" before the connection closes. Call it once, now or later,
  // from any thread while the io_context exists (the answer is written on the
  // io_context's thread); later calls do nothing, and so does a call after the
  // connection timed out or the server was destroyed. A Reply whose every copy
  // is dropped without being called answers an error (and counts kHandlerFailed).
  using Reply = std::function<void(std::string json)>;
  // Runs on the io_context's thread. May throw (the client gets an error), must
  // not destroy the server.
  using Handler = std::function<void(const CtlRequest& request, Reply reply)>;
  // Command name -> its handler. Requests for other commands are rejected.
  using Commands = std::map<std::string, Handler, std::less<>>;

  struct Counters {
    uint64_t connections = 0;  // accepted, including those refused as too many
    uint64_t requests = 0;     // well-formed requests handed to their handler
    std::array<uint64_t, static_cast<size_t>(CtlReject::kCount)> rejected{};
    uint64_t rejected_by(CtlReject r) const { return rejected[static_cast<size_t>(r)]; }
  };

  // Serves `commands` at `path`: creates the parent directory (0755; not its
  // parents) if it is missing, replaces a stale socket file nothing listens on (refusing with
  // "another faradayd serves PATH" if something answers, and any file that is
  // not a socket), binds, makes the socket 0600 before it accepts anyone, and
  // starts accepting on `io`. Returns the server or why it cannot serve.
  static Result<std::unique_ptr<CtlServer>> listen(boost::asio::io_context& io,
                                                   const std::string& path, Commands commands,
                                                   CtlServerOptions options = {});

  // Closes every connection (their pending Replies then do nothing) and unlinks
  // the socket file if it is still the one this server bound (same dev/inode).
  ~CtlServer();
  CtlServer(const CtlServer&) = delete;
  CtlServer& operator=(const CtlServer&) = delete;

  const std::string& path() const;
  const Counters& counters() const;
  size_t open_connections() const;

  struct Impl;  // opaque; shared with the asynchronous operations in flight

 private:
  explicit CtlServer(std::shared_ptr<Impl> impl);
  std::shared_ptr<Impl> impl_;
};

}  // namespace faraday::control
