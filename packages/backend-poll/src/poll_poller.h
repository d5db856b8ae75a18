// poll(2): the portable O(n) readiness backend without select's FD_SETSIZE limit.
//
// A growable pollfd array (entry 0 is the wake pipe) with O(1) removal: the removed
// entry is overwritten by the last one and an fd -> index map follows the move.
// Every Wait copies the array and its tokens under mu_ and polls the copy without
// the lock, so the JS thread can register and remove descriptors meanwhile.
#pragma once
#include <poll.h>

#include <mutex>
#include <vector>

#include "poller.h"
#include "wait_interrupt.h"

namespace logcaster {

class PollPoller final : public Poller {
 public:
  PollPoller() = default;

  int Open(std::string* err) override;
  int ReadyFd() const override { return -1; }  // Wait runs on the engine's helper thread
  int Add(int fd, uint64_t token, uint32_t interest) override;
  int Modify(int fd, uint64_t token, uint32_t old_interest, uint32_t new_interest) override;
  int Remove(int fd, uint32_t old_interest) override;
  int Wait(int timeout_ms, std::vector<PollEvent>* out, size_t max) override;
  void Wake() override;

 private:
  int IndexOf(int fd) const;  // mu_ held; -1 when not registered
  int Collect(int ready, std::vector<PollEvent>* out, size_t max);  // mu_ held

  // Shared with the JS thread, guarded by mu_.
  std::mutex mu_;
  std::vector<pollfd> fds_;       // master array; .fd is -1 while interest is 0
  std::vector<uint64_t> tokens_;  // parallel to fds_
  std::vector<int> real_fd_;      // parallel to fds_: the descriptor even while .fd is -1
  std::vector<int> index_;        // by fd: position in fds_, or -1
  WaitInterrupt interrupt_;       // its pipe is entry 0 of every snapshot

  // Only touched by the thread inside Wait.
  std::vector<pollfd> work_;
  std::vector<uint64_t> work_tokens_;
  size_t scan_start_ = 1;  // round-robin start when more fds are ready than fit
};

std::string ProbePoll();

}  // namespace logcaster
