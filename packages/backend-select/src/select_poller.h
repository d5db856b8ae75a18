// select(2): the portable O(max_fd) readiness backend.
//
// The master interest sets live here and are only changed under mu_; every Wait
// copies them into working sets (select() overwrites its arguments, so reusing a
// set that select() already modified is the classic bug) together with the
// tokens and the current max_fd, then blocks without the lock. Descriptors at or
// above FD_SETSIZE cannot be represented in an fd_set: Add() refuses them with
// -ERANGE instead of writing past the end of the set.
#pragma once
#include <sys/select.h>

#include <mutex>
#include <vector>

#include "poller.h"
#include "wait_interrupt.h"

namespace logcaster {

class SelectPoller final : public Poller {
 public:
  SelectPoller();

  int Open(std::string* err) override;
  int ReadyFd() const override { return -1; }  // Wait runs on the engine's helper thread
  int Add(int fd, uint64_t token, uint32_t interest) override;
  int Modify(int fd, uint64_t token, uint32_t old_interest, uint32_t new_interest) override;
  int Remove(int fd, uint32_t old_interest) override;
  int Wait(int timeout_ms, std::vector<PollEvent>* out, size_t max) override;
  void Wake() override;

 private:
  void SetLocked(int fd, uint64_t token, uint32_t interest);  // mu_ held
  int Collect(int n, std::vector<PollEvent>* out, size_t max);  // mu_ held
  int CollectBadFds(std::vector<PollEvent>* out, size_t max);   // mu_ held

  // Shared with the JS thread, guarded by mu_.
  std::mutex mu_;
  fd_set master_read_;
  fd_set master_write_;
  std::vector<uint64_t> tokens_;     // by fd (FD_SETSIZE entries)
  std::vector<uint8_t> interest_;    // by fd: kReadable|kWritable, plus kRegistered
  int max_fd_ = -1;                  // highest registered fd, kept exact on Remove
  WaitInterrupt interrupt_;          // its pipe is in every snapshot's read set

  // Only touched by the thread inside Wait.
  fd_set work_read_;
  fd_set work_write_;
  std::vector<uint64_t> work_tokens_;
  int work_max_ = -1;
};

std::string ProbeSelect();

}  // namespace logcaster
