// fuzz_frame: every byte stream a peer can send on a farad connection (after
// TLS), through the frame decoder in varying chunk sizes, the message decoders
// of both directions and of node-to-node links, NodeInfo's rules, and farad's Membership applying
// each request. Nothing may crash, leak or read out of bounds; the decoder never buffers more than
// one frame; a refused frame stops the stream for good.
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

#include "farad/membership.h"
#include "proto/frame.h"
#include "proto/node_info.h"

namespace {

using namespace faraday;
using namespace std::chrono_literals;

void apply(farad::Membership& m, const proto::NodeMessage& msg, farad::Time now) {
  const std::string name = "fuzzer";
  switch (msg.body_case()) {
    case proto::NodeMessage::kJoin:
      m.join(name, msg.join().node(), now);
      break;
    case proto::NodeMessage::kUpdate:
      m.update(name, msg.update().node(), now);
      break;
    case proto::NodeMessage::kHeartbeat:
      m.heard_from(name, now);
      break;
    case proto::NodeMessage::kQuery:
      if (proto::valid_node_name(msg.query().name())) m.query(msg.query().name(), now);
      break;
    case proto::NodeMessage::kLeave:
      m.leave(name, now);
      break;
    case proto::NodeMessage::BODY_NOT_SET:
      __builtin_trap();  // decode() must refuse these
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  // The first byte picks the chunk size the stream arrives in.
  size_t chunk = 1 + data[0] % 64;
  std::span<const uint8_t> stream(data + 1, size - 1);
  farad::Time t0 = farad::Time(1000s);
  farad::Membership members(1, t0, 30s);
  proto::FrameDecoder decoder;
  proto::NodeMessage node_msg;
  proto::FaradMessage farad_msg;
  proto::LinkMessage link_msg;
  int frames = 0;
  bool stopped = false;
  for (size_t pos = 0; pos < stream.size() && !stopped; pos += chunk) {
    auto piece = stream.subspan(pos, std::min(chunk, stream.size() - pos));
    auto err = decoder.feed(piece, [&](std::span<const uint8_t> payload) {
      if (payload.empty() || payload.size() > proto::kMaxFrameBytes) __builtin_trap();
      ++frames;
      // The same bytes as a reply from farad (what a node parses).
      if (proto::decode(payload, farad_msg) == proto::FrameError::kNone && farad_msg.has_push()) {
        for (const auto& mem : farad_msg.push().members()) {
          (void)proto::check_node_info(mem.node());
          (void)proto::node_info_text(mem.node());
        }
      }
      // The same bytes from another node on a link.
      if (proto::decode(payload, link_msg) == proto::FrameError::kNone &&
          link_msg.body_case() == proto::LinkMessage::BODY_NOT_SET) {
        __builtin_trap();
      }
      if (proto::decode(payload, node_msg) != proto::FrameError::kNone) {
        stopped = true;
        return false;
      }
      apply(members, node_msg, t0 + frames * 1s);
      return true;
    });
    if (decoder.buffered() > proto::kMaxFrameBytes + proto::kFrameHeaderBytes) __builtin_trap();
    if (err != proto::FrameError::kNone) {
      // Refused for good: more input yields no frame.
      int before = frames;
      decoder.feed(stream, [&](std::span<const uint8_t>) { return ++frames, true; });
      if (frames != before || decoder.error() != err) __builtin_trap();
      stopped = true;
    }
  }
  members.expire(t0 + 1h);
  if (members.size() != 0) __builtin_trap();
  return 0;
}
