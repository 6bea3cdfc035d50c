// frame.h: the control protocol's framing (farad.proto, "Framing"): a 4-byte
// big-endian length, then one serialized message. FrameDecoder cuts a byte
// stream into frames and refuses a bad length; decode_* parse one frame and
// check the version and the body. Every refusal has a FrameError, so callers
// count and log drops by reason. Pure functions and a value type: any thread,
// one decoder per stream.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "proto/farad.pb.h"

namespace faraday::proto {

inline constexpr uint32_t kProtocolVersion = 1;
inline constexpr size_t kFrameHeaderBytes = 4;
inline constexpr size_t kMaxFrameBytes = 64 * 1024;

enum class FrameError : uint8_t {
  kNone,
  kEmpty,       // a frame of length 0
  kTooLarge,    // a length over kMaxFrameBytes
  kMalformed,   // the payload is not a message of the expected type
  kBadVersion,  // version is not kProtocolVersion
  kNoBody,      // no request/reply body set (or one this version does not know)
  kCount,
};
std::string_view frame_error_name(FrameError e);

// Splits a byte stream into frames. Complete frames in the fed bytes are handed
// out without copying; only a partial frame at the end is buffered, so the
// buffer never exceeds kFrameHeaderBytes + max_frame. After an error the
// decoder stays failed.
class FrameDecoder {
 public:
  explicit FrameDecoder(size_t max_frame = kMaxFrameBytes) : max_frame_(max_frame) {}

  // Calls on_frame(std::span<const uint8_t> payload) for every complete frame,
  // in order; on_frame returns false to stop (the rest of `data` is dropped and
  // the decoder is closed). Returns kNone, or the framing error that stopped it.
  template <typename F>
  FrameError feed(std::span<const uint8_t> data, F&& on_frame);

  FrameError error() const { return error_; }
  size_t buffered() const { return buf_.size(); }
  // The length of the frame being assembled, if its header is complete (for logs).
  size_t pending_frame_size() const { return need_; }

 private:
  FrameError check_length(uint32_t len);
  void release();

  size_t max_frame_;
  std::string buf_;  // the partial frame (header included), or empty
  size_t need_ = 0;  // payload length of the frame in buf_, once known
  FrameError error_ = FrameError::kNone;
  bool stopped_ = false;
};

// Appends one frame holding `msg` to `out`.
void append_frame(const google::protobuf::MessageLite& msg, std::string& out);
// Writes the 4-byte header for a payload of `len` bytes.
inline void put_frame_header(uint32_t len, uint8_t* p) {
  p[0] = static_cast<uint8_t>(len >> 24);
  p[1] = static_cast<uint8_t>(len >> 16);
  p[2] = static_cast<uint8_t>(len >> 8);
  p[3] = static_cast<uint8_t>(len);
}

// Parses one frame's payload; msg is cleared first. kMalformed, kBadVersion or
// kNoBody on failure.
FrameError decode(std::span<const uint8_t> payload, NodeMessage& msg);
FrameError decode(std::span<const uint8_t> payload, FaradMessage& msg);
FrameError decode(std::span<const uint8_t> payload, LinkMessage& msg);

// ---- implementation of the template ----

template <typename F>
FrameError FrameDecoder::feed(std::span<const uint8_t> data, F&& on_frame) {
  if (error_ != FrameError::kNone || stopped_) return error_;
  size_t pos = 0;
  // First finish a frame left over from an earlier feed.
  while (!buf_.empty() && pos < data.size()) {
    if (buf_.size() < kFrameHeaderBytes) {
      size_t take = std::min(kFrameHeaderBytes - buf_.size(), data.size() - pos);
      buf_.append(reinterpret_cast<const char*>(data.data() + pos), take);
      pos += take;
      if (buf_.size() < kFrameHeaderBytes) break;
      const auto* h = reinterpret_cast<const uint8_t*>(buf_.data());
      uint32_t len = (uint32_t{h[0]} << 24) | (uint32_t{h[1]} << 16) | (uint32_t{h[2]} << 8) | h[3];
      if (check_length(len) != FrameError::kNone) return error_;
      buf_.reserve(kFrameHeaderBytes + need_);
    }
    size_t have = buf_.size() - kFrameHeaderBytes;
    size_t take = std::min(need_ - have, data.size() - pos);
    buf_.append(reinterpret_cast<const char*>(data.data() + pos), take);
    pos += take;
    if (buf_.size() - kFrameHeaderBytes < need_) break;
    bool go = on_frame(std::span<const uint8_t>(
        reinterpret_cast<const uint8_t*>(buf_.data()) + kFrameHeaderBytes, need_));
    release();
    if (!go) {
      stopped_ = true;
      return error_;
    }
  }
  // Then frames that lie whole in `data`, without copying.
  while (pos < data.size()) {
    if (data.size() - pos < kFrameHeaderBytes) {
      buf_.assign(reinterpret_cast<const char*>(data.data() + pos), data.size() - pos);
      break;
    }
    const uint8_t* h = data.data() + pos;
    uint32_t len = (uint32_t{h[0]} << 24) | (uint32_t{h[1]} << 16) | (uint32_t{h[2]} << 8) | h[3];
    if (check_length(len) != FrameError::kNone) return error_;
    if (data.size() - pos - kFrameHeaderBytes < len) {
      buf_.reserve(kFrameHeaderBytes + len);
      buf_.assign(reinterpret_cast<const char*>(h), data.size() - pos);
      break;
    }
    pos += kFrameHeaderBytes + len;
    need_ = 0;
    if (!on_frame(std::span<const uint8_t>(h + kFrameHeaderBytes, len))) {
      stopped_ = true;
      return error_;
    }
  }
  return error_;
}

}  // namespace faraday::proto
