// rcu.cpp: see rcu.h.
#include "dataplane/rcu.h"

#include <urcu/urcu-qsbr.h>

#if defined(__SANITIZE_THREAD__)
#include <sanitizer/tsan_interface.h>
#define FARADAY_TSAN 1
#endif

namespace faraday::dataplane {

namespace {

#ifdef FARADAY_TSAN
char grace_token;
void release_to_writers() {
  __tsan_release(&grace_token);
}
void acquire_from_readers() {
  __tsan_acquire(&grace_token);
}
#else
void release_to_writers() {}
void acquire_from_readers() {}
#endif

}  // namespace

RcuReader::RcuReader() {
  urcu_qsbr_register_thread();
}

RcuReader::~RcuReader() {
  release_to_writers();
  urcu_qsbr_unregister_thread();
}

void RcuReader::quiescent() {
  release_to_writers();
  urcu_qsbr_quiescent_state();
}

void RcuReader::offline() {
  release_to_writers();
  urcu_qsbr_thread_offline();
}

void RcuReader::online() {
  urcu_qsbr_thread_online();
}

void rcu_synchronize() {
  urcu_qsbr_synchronize_rcu();
  acquire_from_readers();
}

}  // namespace faraday::dataplane
