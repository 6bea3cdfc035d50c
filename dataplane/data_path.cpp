// data_path.cpp: see data_path.h.
#include "dataplane/data_path.h"

#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>

namespace faraday::dataplane {

CommandInbox::CommandInbox() : fd_(eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) {
  if (fd_ < 0) error_ = errno;
}

CommandInbox::~CommandInbox() {
  DataPath::Command* c = nullptr;
  while (commands_.pop(c)) delete c;
  if (fd_ >= 0) close(fd_);
}

bool CommandInbox::post(DataPath::Command command) {
  auto* c = new DataPath::Command(std::move(command));
  if (!commands_.push(c)) {
    delete c;
    return false;
  }
  wake();
  return true;
}

void CommandInbox::stop() {
  stop_.store(true, std::memory_order_release);
  wake();
}

void CommandInbox::wake() {
  uint64_t one = 1;
  (void)!write(fd_, &one, sizeof(one));
}

void CommandInbox::run(DataPath& dp) {
  uint64_t n;
  (void)!read(fd_, &n, sizeof(n));
  DataPath::Command* c = nullptr;
  while (commands_.pop(c)) {
    std::unique_ptr<DataPath::Command> owned(c);
    (*owned)(dp);
  }
}

}  // namespace faraday::dataplane
