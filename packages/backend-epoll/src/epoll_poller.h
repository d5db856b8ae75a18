// epoll: level-triggered by default, edge-triggered on request,
// EPOLLRDHUP for half-close, an eventfd in the set for Wake().
#pragma once
#include "poller.h"

namespace logcaster {

class EpollPoller final : public Poller {
 public:
  explicit EpollPoller(bool edge_triggered) : edge_(edge_triggered) {}
  ~EpollPoller() override;

  int Open(std::string* err) override;
  int ReadyFd() const override { return epfd_; }
  bool EdgeTriggered() const override { return edge_; }
  int Add(int fd, uint64_t token, uint32_t interest) override;
  int Modify(int fd, uint64_t token, uint32_t old_interest, uint32_t new_interest) override;
  int Remove(int fd, uint32_t old_interest) override;
  int Wait(int timeout_ms, std::vector<PollEvent>* out, size_t max) override;
  void Wake() override;

 private:
  uint32_t ToEpoll(uint32_t interest) const;
  bool edge_;
  int epfd_ = -1;
  int wakefd_ = -1;
};

// "" when epoll works here, otherwise why not.
std::string ProbeEpoll();

}  // namespace logcaster
