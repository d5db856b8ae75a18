#include "epoll_poller.h"

#include <errno.h>
#include <stdint.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cstring>

namespace logcaster {

namespace {
constexpr uint64_t kWakeToken = ~0ull;  // never a connection id or listener token
}

EpollPoller::~EpollPoller() {
  if (wakefd_ >= 0) close(wakefd_);
  if (epfd_ >= 0) close(epfd_);
}

int EpollPoller::Open(std::string* err) {
  epfd_ = epoll_create1(EPOLL_CLOEXEC);
  if (epfd_ < 0) { int e = errno; *err = std::string("epoll_create1: ") + std::strerror(e); return -e; }
  wakefd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (wakefd_ < 0) {
    int e = errno;
    close(epfd_); epfd_ = -1;
    *err = std::string("eventfd: ") + std::strerror(e);
    return -e;
  }
  epoll_event ev = {};
  ev.events = EPOLLIN;
  ev.data.u64 = kWakeToken;
  if (epoll_ctl(epfd_, EPOLL_CTL_ADD, wakefd_, &ev) < 0) {
    int e = errno;
    close(wakefd_); wakefd_ = -1;
    close(epfd_); epfd_ = -1;
    *err = std::string("epoll_ctl(eventfd): ") + std::strerror(e);
    return -e;
  }
  return 0;
}

uint32_t EpollPoller::ToEpoll(uint32_t interest) const {
  uint32_t e = 0;
  if (interest & kReadable) e |= EPOLLIN | EPOLLRDHUP;
  if (interest & kWritable) e |= EPOLLOUT;
  if (edge_) e |= EPOLLET;
  return e;
}

int EpollPoller::Add(int fd, uint64_t token, uint32_t interest) {
  epoll_event ev = {};
  ev.events = ToEpoll(interest);
  ev.data.u64 = token;
  return epoll_ctl(epfd_, EPOLL_CTL_ADD, fd, &ev) < 0 ? -errno : 0;
}

int EpollPoller::Modify(int fd, uint64_t token, uint32_t, uint32_t new_interest) {
  epoll_event ev = {};
  ev.events = ToEpoll(new_interest);
  ev.data.u64 = token;
  return epoll_ctl(epfd_, EPOLL_CTL_MOD, fd, &ev) < 0 ? -errno : 0;
}

int EpollPoller::Remove(int fd, uint32_t) {
  epoll_event ev = {};  // non-null for kernels before 2.6.9
  return epoll_ctl(epfd_, EPOLL_CTL_DEL, fd, &ev) < 0 ? -errno : 0;
}

int EpollPoller::Wait(int timeout_ms, std::vector<PollEvent>* out, size_t max) {
  epoll_event evs[256];
  int cap = static_cast<int>(max < 256 ? max : 256);
  int n = epoll_wait(epfd_, evs, cap, timeout_ms);
  if (n < 0) return errno == EINTR ? 0 : -errno;
  int added = 0;
  for (int i = 0; i < n; ++i) {
    if (evs[i].data.u64 == kWakeToken) {
      uint64_t v;
      while (read(wakefd_, &v, sizeof v) > 0) {
      }
      continue;
    }
    uint32_t e = 0;
    if (evs[i].events & EPOLLIN) e |= kReadable;
    if (evs[i].events & EPOLLOUT) e |= kWritable;
    if (evs[i].events & (EPOLLRDHUP | EPOLLHUP)) e |= kHangup;
    if (evs[i].events & EPOLLERR) e |= kError;
    out->push_back(PollEvent{evs[i].data.u64, e});
    ++added;
  }
  return added;
}

void EpollPoller::Wake() {
  uint64_t one = 1;
  ssize_t r = write(wakefd_, &one, sizeof one);
  (void)r;  // EAGAIN: already signalled
}

std::string ProbeEpoll() {
  int fd = epoll_create1(EPOLL_CLOEXEC);
  if (fd < 0) return std::string("epoll_create1: ") + std::strerror(errno);
  close(fd);
  return "";
}

}  // namespace logcaster
