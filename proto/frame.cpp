// frame.cpp: see frame.h.
#include "proto/frame.h"

#include <google/protobuf/stubs/logging.h>

#include "common/names.h"
namespace faraday::proto {

std::string_view frame_error_name(FrameError e) {
  static constexpr std::array<const char*, 6> kNames = {"none",
                                                        "empty frame",
                                                        "frame too large",
                                                        "malformed message",
                                                        "unsupported protocol version",
                                                        "message without a known body"};
  return names::name_of(kNames, e);
}

FrameError FrameDecoder::check_length(uint32_t len) {
  if (len == 0) {
    error_ = FrameError::kEmpty;
  } else if (len > max_frame_) {
    error_ = FrameError::kTooLarge;
    need_ = len;
  } else {
    need_ = len;
    return FrameError::kNone;
  }
  release();
  return error_;
}

void FrameDecoder::release() {
  need_ = error_ == FrameError::kTooLarge ? need_ : 0;
  // A frame can be up to 64 KiB; keep no buffer between frames so an idle
  // connection costs nothing here.
  std::string().swap(buf_);
}

void append_frame(const google::protobuf::MessageLite& msg, std::string& out) {
  size_t len = msg.ByteSizeLong();
  size_t at = out.size();
  out.resize(at + kFrameHeaderBytes + len);
  auto* p = reinterpret_cast<uint8_t*>(out.data() + at);
  put_frame_header(static_cast<uint32_t>(len), p);
  msg.SerializeWithCachedSizesToArray(p + kFrameHeaderBytes);
}

namespace {

// protobuf logs every string field that is not UTF-8 on its own, one stderr
// line per hostile frame, outside the daemons' counted and rate-limited
// reporting of dropped frames. The parse fails all the same (kMalformed,
// counted by the caller): its log adds nothing, so it is off, once, before
// the first frame is read.
void quiet_protobuf_log() {
  static const bool quiet = [] {
    google::protobuf::SetLogHandler(nullptr);
    return true;
  }();
  (void)quiet;
}

template <typename M>
FrameError parse(std::span<const uint8_t> payload, M& msg) {
  quiet_protobuf_log();
  msg.Clear();
  if (payload.size() > kMaxFrameBytes ||
      !msg.ParseFromArray(payload.data(), static_cast<int>(payload.size()))) {
    return FrameError::kMalformed;
  }
  if (msg.version() != kProtocolVersion) return FrameError::kBadVersion;
  if (msg.body_case() == M::BODY_NOT_SET) return FrameError::kNoBody;
  return FrameError::kNone;
}

}  // namespace

FrameError decode(std::span<const uint8_t> payload, NodeMessage& msg) {
  return parse(payload, msg);
}
FrameError decode(std::span<const uint8_t> payload, FaradMessage& msg) {
  return parse(payload, msg);
}
FrameError decode(std::span<const uint8_t> payload, LinkMessage& msg) {
  return parse(payload, msg);
}

}  // namespace faraday::proto
