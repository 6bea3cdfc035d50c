// changelog.h: the membership as pushes see it. Every current member's entry is
// stored once, in wire form (one `members` field of a Push), in the order of
// the cursor of its latest change. A connection that has been sent everything
// up to cursor c is sent the entries after c; all connections share these
// bytes, so a fan-out to ten thousand members copies bytes and encodes nothing.
// A changed member's old entry becomes a hole; holes are compacted away when
// they outweigh the live entries.
//
// A member removed for lost trust (farad.proto, Sessions 7) leaves a Removal
// entry at its own cursor, so nodes that were connected, or resume from an
// older cursor, drop that peer; a node that joined after it (a snapshot) is
// not sent it.
//
// Threads: not thread-safe; farad's single io thread owns it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "proto/farad.pb.h"

namespace faraday::farad {

class ChangeLog {
 public:
  using Owner = const void*;  // identifies a member, to skip a node's own entry

  // Stores `member` (whose cursor must be above every stored cursor) for owner.
  void put(Owner owner, const proto::Member& member);
  // Stores a Removal entry the same way (its cursor above every stored one).
  void put(Owner owner, const proto::Removal& removal);
  // Removes the entry stored at `cursor`, if any.
  void erase(uint64_t cursor);

  struct Batch {
    uint64_t cursor = 0;     // the receiver's cursor after this push
    bool caught_up = false;  // nothing after `cursor` remains
    size_t entries = 0;
    size_t frame_bytes = 0;  // the whole frame, header included
  };
  // Appends one frame, FaradMessage{version, push{epoch, cursor, caught_up,
  // members, removed}}, carrying the entries after cursor `after` except
  // skip's and except Removals at or before `removals_after`, at least one
  // entry and then as many as fit in max_entry_bytes.
  Batch append_push_frame(std::string& out, uint64_t epoch, uint64_t after, Owner skip,
                          size_t max_entry_bytes, uint64_t removals_after = 0) const;

  // The newest cursor stored (0 if none ever was).
  uint64_t head() const { return head_; }
  size_t live_entries() const { return live_; }
  size_t live_bytes() const { return bytes_.size() - dead_bytes_; }
  size_t stored_bytes() const { return bytes_.capacity(); }

 private:
  struct Slot {
    uint64_t cursor;
    uint32_t offset;
    uint32_t len;
    Owner owner;  // nullptr: a hole
    bool removal;
  };
  void store(Owner owner, uint64_t cursor, uint8_t tag, const std::string& body, bool removal);
  size_t first_after(uint64_t cursor) const;
  void compact();

  std::vector<Slot> slots_;
  std::string bytes_;
  size_t dead_bytes_ = 0;
  size_t live_ = 0;
  uint64_t head_ = 0;
};

}  // namespace faraday::farad
