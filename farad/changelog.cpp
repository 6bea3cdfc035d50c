// changelog.cpp: see changelog.h.
#include "farad/changelog.h"

#include <algorithm>
#include <cassert>
#include <cstring>

#include "proto/frame.h"

namespace faraday::farad {

namespace {

// Wire tags (field number << 3 | wire type) of the fields written by hand.
constexpr uint8_t kTagVersion = (1 << 3) | 0;   // FaradMessage.version
constexpr uint8_t kTagPush = (13 << 3) | 2;     // FaradMessage.push
constexpr uint8_t kTagEpoch = (1 << 3) | 0;     // Push.epoch
constexpr uint8_t kTagCursor = (2 << 3) | 0;    // Push.cursor
constexpr uint8_t kTagCaughtUp = (3 << 3) | 0;  // Push.caught_up
constexpr uint8_t kTagMembers = (4 << 3) | 2;   // Push.members
constexpr uint8_t kTagRemoved = (5 << 3) | 2;   // Push.removed
constexpr size_t kCompactAbove = 256 * 1024;    // dead bytes worth a compaction

size_t varint_size(uint64_t v) {
  size_t n = 1;
  while (v >= 0x80) {
    v >>= 7;
    ++n;
  }
  return n;
}

uint8_t* put_varint(uint64_t v, uint8_t* p) {
  while (v >= 0x80) {
    *p++ = static_cast<uint8_t>(v | 0x80);
    v >>= 7;
  }
  *p++ = static_cast<uint8_t>(v);
  return p;
}

}  // namespace

void ChangeLog::put(Owner owner, const proto::Member& member) {
  store(owner, member.cursor(), kTagMembers, member.SerializeAsString(), false);
}

void ChangeLog::put(Owner owner, const proto::Removal& removal) {
  store(owner, removal.cursor(), kTagRemoved, removal.SerializeAsString(), true);
}

void ChangeLog::store(Owner owner, uint64_t cursor, uint8_t tag, const std::string& body,
                      bool removal) {
  assert(cursor > head_);
  uint8_t head[11];
  head[0] = tag;
  size_t hlen = put_varint(body.size(), head + 1) - head;
  Slot slot{cursor, static_cast<uint32_t>(bytes_.size()), static_cast<uint32_t>(hlen + body.size()),
            owner, removal};
  bytes_.append(reinterpret_cast<const char*>(head), hlen);
  bytes_.append(body);
  slots_.push_back(slot);
  head_ = cursor;
  ++live_;
}

size_t ChangeLog::first_after(uint64_t cursor) const {
  auto it = std::upper_bound(slots_.begin(), slots_.end(), cursor,
                             [](uint64_t c, const Slot& s) { return c < s.cursor; });
  return static_cast<size_t>(it - slots_.begin());
}

void ChangeLog::erase(uint64_t cursor) {
  auto it = std::lower_bound(slots_.begin(), slots_.end(), cursor,
                             [](const Slot& s, uint64_t c) { return s.cursor < c; });
  if (it == slots_.end() || it->cursor != cursor || !it->owner) return;
  it->owner = nullptr;
  dead_bytes_ += it->len;
  --live_;
  if (dead_bytes_ > kCompactAbove && dead_bytes_ > bytes_.size() / 2) compact();
}

void ChangeLog::compact() {
  std::string bytes;
  bytes.reserve(bytes_.size() - dead_bytes_);
  std::vector<Slot> slots;
  slots.reserve(live_);
  for (const Slot& s : slots_) {
    if (!s.owner) continue;
    Slot moved = s;
    moved.offset = static_cast<uint32_t>(bytes.size());
    bytes.append(bytes_, s.offset, s.len);
    slots.push_back(moved);
  }
  bytes_ = std::move(bytes);
  slots_ = std::move(slots);
  dead_bytes_ = 0;
}

ChangeLog::Batch ChangeLog::append_push_frame(std::string& out, uint64_t epoch, uint64_t after,
                                              Owner skip, size_t max_entry_bytes,
                                              uint64_t removals_after) const {
  auto wanted = [&](const Slot& s) {
    return s.owner && s.owner != skip && !(s.removal && s.cursor <= removals_after);
  };
  // Plan: which slots go in, and how many bytes they make.
  Batch batch;
  size_t begin = first_after(after);
  size_t end = begin;
  size_t entry_bytes = 0;
  for (; end < slots_.size(); ++end) {
    const Slot& s = slots_[end];
    if (!wanted(s)) continue;
    if (batch.entries > 0 && entry_bytes + s.len > max_entry_bytes) break;
    entry_bytes += s.len;
    ++batch.entries;
  }
  batch.caught_up = end == slots_.size();
  batch.cursor = batch.caught_up ? head_ : slots_[end - 1].cursor;
  batch.cursor = std::max(batch.cursor, after);

  // Header: frame length, FaradMessage.version, .push, Push.epoch/cursor/caught_up.
  size_t push_len = 1 + varint_size(epoch) + 1 + varint_size(batch.cursor) +
                    (batch.caught_up ? 2 : 0) + entry_bytes;
  size_t msg_len = 2 + 1 + varint_size(push_len) + push_len;
  size_t at = out.size();
  out.resize(at + proto::kFrameHeaderBytes + msg_len);
  auto* p = reinterpret_cast<uint8_t*>(out.data() + at);
  proto::put_frame_header(static_cast<uint32_t>(msg_len), p);
  p += proto::kFrameHeaderBytes;
  *p++ = kTagVersion;
  *p++ = static_cast<uint8_t>(proto::kProtocolVersion);
  *p++ = kTagPush;
  p = put_varint(push_len, p);
  *p++ = kTagEpoch;
  p = put_varint(epoch, p);
  *p++ = kTagCursor;
  p = put_varint(batch.cursor, p);
  if (batch.caught_up) {
    *p++ = kTagCaughtUp;
    *p++ = 1;
  }
  // Copy contiguous runs of wanted slots in one go.
  size_t i = begin;
  while (i < end) {
    if (!wanted(slots_[i])) {
      ++i;
      continue;
    }
    size_t run_start = slots_[i].offset;
    size_t run_end = run_start + slots_[i].len;
    ++i;
    while (i < end && wanted(slots_[i]) && slots_[i].offset == run_end) {
      run_end += slots_[i].len;
      ++i;
    }
    std::memcpy(p, bytes_.data() + run_start, run_end - run_start);
    p += run_end - run_start;
  }
  assert(p == reinterpret_cast<uint8_t*>(out.data() + out.size()));
  batch.frame_bytes = proto::kFrameHeaderBytes + msg_len;
  return batch;
}

}  // namespace faraday::farad
