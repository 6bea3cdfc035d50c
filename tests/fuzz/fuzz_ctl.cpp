// fuzz_ctl.cpp: libFuzzer target for the local control socket's outside input
// (proto/ctl.h): a request line as the server frames it (up to the first
// "\n") through parse_ctl_request(), and the same bytes as a `status` answer
// through faradayctl's view (faradayctl/status_view.h). A parsed request joins
// back into its line; a rejected one has a reason and a message that makes a
// valid error answer; the view never throws and always prints a whole text.
#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "faradayctl/status_view.h"
#include "proto/ctl.h"

using namespace faraday::proto;
using namespace faraday::faradayctl;

namespace {

void check_request(std::string_view line) {
  auto parsed = parse_ctl_request(line);
  if (parsed) {
    const CtlRequest& req = *parsed;
    if (req.args.size() + 1 > kCtlMaxWords) __builtin_trap();
    std::string joined = req.command;
    for (const auto& a : req.args) joined += " " + a;
    if (joined != line) __builtin_trap();
    auto check_word = [](const std::string& w) {
      if (w.empty()) __builtin_trap();
      for (char c : w) {
        if (c <= 0x20 || c > 0x7e) __builtin_trap();
      }
    };
    check_word(req.command);
    for (const auto& a : req.args) check_word(a);
  } else {
    const auto& bad = parsed.failure();
    if (bad.message.empty()) __builtin_trap();
    if (bad.reason != CtlReject::kTooLong && bad.reason != CtlReject::kNotAscii &&
        bad.reason != CtlReject::kMalformed) {
      __builtin_trap();
    }
    auto answer = nlohmann::json::parse(ctl_error(bad.message), nullptr, false);
    if (!answer.is_object() || answer["error"] != bad.message) __builtin_trap();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view bytes(reinterpret_cast<const char*>(data), size);
  check_request(bytes.substr(0, bytes.find('\n')));
  check_request(bytes);

  auto status = nlohmann::json::parse(bytes, nullptr, false);
  std::string text = format_status(status);
  if (text.empty() || text.back() != '\n') __builtin_trap();
  return 0;
}
