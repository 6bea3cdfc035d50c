// rcu.h: grace periods for what the handshake context publishes to the workers
// (the peer table's snapshots, retired peers and keypairs), with quiescent-state
// based RCU from liburcu (its QSBR flavour).
//
// A worker thread holds an RcuReader for as long as it runs. It may use any
// pointer it loaded from a published snapshot until it calls quiescent() (between
// bursts) or offline() (before it sleeps in poll); reading costs nothing more.
// The handshake context publishes a new version with an atomic release store,
// then rcu_synchronize() returns once every registered worker has passed a
// quiescent state or is offline: whatever the old version alone referenced may be
// freed. A thread that only writes (the control thread) does not register.
//
// ThreadSanitizer cannot see liburcu's own synchronization (it is built
// uninstrumented), so in TSan builds the reader's quiescent points release, and
// the end of a grace period acquires, one shared token: TSan then knows that a
// worker's reads happen before the free, as they do.
#pragma once

namespace faraday::dataplane {

class RcuReader {
 public:
  RcuReader();   // registers this thread; online
  ~RcuReader();  // unregisters it
  RcuReader(const RcuReader&) = delete;
  RcuReader& operator=(const RcuReader&) = delete;

  // Nothing loaded before this call is used after it.
  void quiescent();
  // Before blocking (poll, sleep): the thread holds no pointer until online().
  void offline();
  void online();
};

// Waits until every reader has passed a quiescent state or been offline since
// the call began. Must not be called by a thread that holds an online RcuReader.
void rcu_synchronize();

}  // namespace faraday::dataplane
