// kqueue(2) (macOS, FreeBSD, OpenBSD, NetBSD).
//
// Each descriptor gets two knotes, EVFILT_READ and EVFILT_WRITE, added together
// (EV_ADD, with EV_DISABLE for the side nobody wants yet); interest changes are
// EV_ENABLE/EV_DISABLE. Changes are queued and handed to the kernel in the same
// kevent() call that collects events, so accepting 100 connections costs one
// syscall, not 100. The kqueue descriptor itself is what Node's loop watches.
#pragma once
#include <vector>

#include "kqueue_sys.h"
#include "poller.h"

namespace logcaster {

class KqueuePoller final : public Poller {
 public:
  explicit KqueuePoller(bool edge_triggered) : edge_(edge_triggered) {}
  ~KqueuePoller() override;

  int Open(std::string* err) override;
  int ReadyFd() const override { return kq_; }
  bool EdgeTriggered() const override { return edge_; }
  int Add(int fd, uint64_t token, uint32_t interest) override;
  int Modify(int fd, uint64_t token, uint32_t old_interest, uint32_t new_interest) override;
  int Remove(int fd, uint32_t old_interest) override;
  int Wait(int timeout_ms, std::vector<PollEvent>* out, size_t max) override;
  void Wake() override;

 private:
  void Queue(int fd, int16_t filter, uint16_t flags, uint64_t token);
  void RequestFlush();
  int Translate(const struct kevent* evs, int n, std::vector<PollEvent>* out);
  int ApplyOneByOne(std::vector<PollEvent>* out);

  const bool edge_;
  int kq_ = -1;
  std::vector<struct kevent> changes_;  // queued for the next kevent() (JS thread only)
  bool flush_requested_ = false;        // a wake-up is pending to get changes_ submitted
#ifndef EVFILT_USER
  int wake_r_ = -1;  // OpenBSD (no EVFILT_USER): a self-pipe instead
  int wake_w_ = -1;
#endif
};

std::string ProbeKqueue();

}  // namespace logcaster
