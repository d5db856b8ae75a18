// The wake-up side of a poller whose Wait runs on a helper thread over a snapshot of
// the registrations (select, poll): a wake pipe that every snapshot watches, and the
// flags deciding when a registration change or Wake() must interrupt a running wait.
// Every method except read_fd() is called with the poller's mutex held.
#pragma once
#include <cstring>
#include <string>

#include "posix_util.h"

namespace logcaster {

class WaitInterrupt {
 public:
  WaitInterrupt() = default;
  WaitInterrupt(const WaitInterrupt&) = delete;
  WaitInterrupt& operator=(const WaitInterrupt&) = delete;
  ~WaitInterrupt() { Close(); }

  int Open(std::string* err) {
    int fds[2];
    int r = MakeWakePipe(fds);
    if (r < 0) {
      *err = std::string("pipe: ") + std::strerror(-r);
      return r;
    }
    read_ = fds[0];
    write_ = fds[1];
    return 0;
  }
  void Close() {
    if (read_ >= 0) close(read_);
    if (write_ >= 0) close(write_);
    read_ = write_ = -1;
  }
  int read_fd() const { return read_; }

  // A registration changed in a way the running wait's snapshot misses (new interest,
  // or a removed fd whose file the wait still references): make it re-snapshot.
  void OnChange() {
    if (waiting_) Signal();
  }
  // Poller::Wake(): the running or the next wait must return.
  void Wake() {
    wake_requested_ = true;
    Signal();
  }
  // Before taking a snapshot. True: a Wake() is pending (consumed) and the wait
  // returns at once; false: the wait may block (OnChange now interrupts it).
  bool BeginWait() {
    if (wake_requested_) {
      wake_requested_ = false;
      Drained();
      return true;
    }
    waiting_ = true;
    return false;
  }
  // The blocking call returned; pipe_readable: it reported the wake pipe.
  void EndWait(bool pipe_readable) {
    waiting_ = false;
    if (pipe_readable) Drained();
  }
  // After collecting results: whether a Wake() arrived meanwhile (consumed).
  bool TakeWake() {
    bool w = wake_requested_;
    wake_requested_ = false;
    return w;
  }

 private:
  void Signal() {
    if (signalled_) return;  // one byte in the pipe is enough
    char one = 1;
    if (write(write_, &one, 1) == 1) signalled_ = true;
  }
  void Drained() {
    if (!signalled_) return;
    DrainPipe(read_);
    signalled_ = false;
  }

  int read_ = -1;
  int write_ = -1;
  bool waiting_ = false;         // a wait is blocked on a snapshot
  bool wake_requested_ = false;  // Wake() not yet answered by a returning wait
  bool signalled_ = false;       // a byte sits in the pipe
};

// What is left of a Wait(timeout_ms) that may go round several times (-1: forever).
class WaitBudget {
 public:
  explicit WaitBudget(int timeout_ms)
      : timeout_ms_(timeout_ms), deadline_(timeout_ms > 0 ? MonoMs() + static_cast<uint64_t>(timeout_ms) : 0),
        remaining_(timeout_ms) {}
  int remaining() const { return remaining_; }
  // Before going round again: false when the time is up (or it was a poll, 0).
  bool Again() {
    if (timeout_ms_ == 0) return false;
    if (timeout_ms_ > 0) {
      uint64_t now = MonoMs();
      if (now >= deadline_) return false;
      remaining_ = static_cast<int>(deadline_ - now);
    }
    return true;
  }

 private:
  int timeout_ms_;
  uint64_t deadline_;
  int remaining_;
};

}  // namespace logcaster
