#include "poll_poller.h"


#include <errno.h>
#include <fcntl.h>
#include <time.h>
#include <unistd.h>

#include <cstring>

namespace logcaster {

namespace {


short ToPoll(uint32_t interest) {
  short e = 0;
  if (interest & kReadable) e |= POLLIN;
  if (interest & kWritable) e |= POLLOUT;
  return e;
}

}  // namespace

int PollPoller::Open(std::string* err) {
  int r = interrupt_.Open(err);
  if (r < 0) return r;
  fds_.push_back(pollfd{interrupt_.read_fd(), POLLIN, 0});
  tokens_.push_back(0);
  real_fd_.push_back(interrupt_.read_fd());
  return 0;
}

int PollPoller::IndexOf(int fd) const {
  if (fd < 0 || static_cast<size_t>(fd) >= index_.size()) return -1;
  return index_[fd];
}

int PollPoller::Add(int fd, uint64_t token, uint32_t interest) {
  if (fd < 0) return -EBADF;
  std::lock_guard<std::mutex> lk(mu_);
  if (IndexOf(fd) >= 0) return -EEXIST;
  if (static_cast<size_t>(fd) >= index_.size()) {
    size_t n = index_.size() ? index_.size() : 64;
    while (n <= static_cast<size_t>(fd)) n *= 2;
    index_.resize(n, -1);
  }
  short ev = ToPoll(interest);
  index_[fd] = static_cast<int>(fds_.size());
  fds_.push_back(pollfd{ev ? fd : -1, ev, 0});  // negative fd: poll() skips the entry
  tokens_.push_back(token);
  real_fd_.push_back(fd);
  if (ev) interrupt_.OnChange();
  return 0;
}

int PollPoller::Modify(int fd, uint64_t token, uint32_t, uint32_t new_interest) {
  std::lock_guard<std::mutex> lk(mu_);
  int i = IndexOf(fd);
  if (i < 0) return -ENOENT;
  short ev = ToPoll(new_interest);
  short old = fds_[i].fd >= 0 ? fds_[i].events : 0;
  // With no interest the entry is parked (fd -1) rather than polled for 0 events:
  // poll() would still report POLLHUP for it, over and over, on a paused socket.
  fds_[i].fd = ev ? fd : -1;
  fds_[i].events = ev;
  tokens_[i] = token;
  // New bits are not watched by a running poll(): make it take a fresh snapshot.
  if (ev & ~old) interrupt_.OnChange();
  return 0;
}

int PollPoller::Remove(int fd, uint32_t) {
  std::lock_guard<std::mutex> lk(mu_);
  int i = IndexOf(fd);
  if (i < 0) return -ENOENT;
  bool watched = fds_[i].fd >= 0;
  size_t last = fds_.size() - 1;
  if (static_cast<size_t>(i) != last) {
    fds_[i] = fds_[last];
    tokens_[i] = tokens_[last];
    real_fd_[i] = real_fd_[last];
    index_[real_fd_[i]] = i;
  }
  fds_.pop_back();
  tokens_.pop_back();
  real_fd_.pop_back();
  index_[fd] = -1;
  // A blocked poll() holds a reference to every file it watches: the caller's close()
  // would not release the socket (the peer sees no FIN/RST) until poll() returns.
  if (watched) interrupt_.OnChange();
  return 0;
}

void PollPoller::Wake() {
  std::lock_guard<std::mutex> lk(mu_);
  interrupt_.Wake();
}

int PollPoller::Collect(int ready, std::vector<PollEvent>* out, size_t max) {
  const size_t n = work_.size();
  if (n <= 1) return 0;
  if (scan_start_ >= n || scan_start_ == 0) scan_start_ = 1;
  int added = 0;
  int seen = 0;
  size_t i = scan_start_;
  for (size_t k = 1; k < n && seen < ready; ++k, i = (i + 1 < n) ? i + 1 : 1) {
    const pollfd& p = work_[i];
    if (!p.revents) continue;
    ++seen;
    if (out->size() >= max) { scan_start_ = i; return added; }  // resume here next time
    // Registration may have changed while poll() ran: drop descriptors that were
    // removed (or closed and reused by another connection: the token differs).
    int cur = IndexOf(p.fd);
    if (cur < 0 || tokens_[cur] != work_tokens_[i] || fds_[cur].fd < 0) continue;
    uint32_t ev = 0;
    if (p.revents & POLLIN) ev |= kReadable;
    if (p.revents & POLLOUT) ev |= kWritable;
    if (p.revents & POLLHUP) ev |= kHangup;
    if (p.revents & (POLLERR | POLLNVAL)) ev |= kError;  // NVAL: registered but closed
    uint32_t want = (fds_[cur].events & POLLIN ? kReadable : 0u) | (fds_[cur].events & POLLOUT ? kWritable : 0u);
    ev &= want | kHangup | kError;
    if (!ev) continue;
    out->push_back(PollEvent{tokens_[cur], ev});
    ++added;
  }
  scan_start_ = i;
  return added;
}

int PollPoller::Wait(int timeout_ms, std::vector<PollEvent>* out, size_t max) {
  WaitBudget budget(timeout_ms);
  for (;;) {
    {
      std::lock_guard<std::mutex> lk(mu_);
      if (interrupt_.BeginWait()) return 0;
      work_.assign(fds_.begin(), fds_.end());
      work_tokens_.assign(tokens_.begin(), tokens_.end());
    }
    int n = poll(work_.data(), static_cast<nfds_t>(work_.size()), budget.remaining());
    int err = n < 0 ? errno : 0;

    std::lock_guard<std::mutex> lk(mu_);
    const bool woken = n > 0 && work_[0].revents;
    interrupt_.EndWait(woken);
    if (n < 0) return err == EINTR ? 0 : -err;
    if (woken) --n;
    int added = n > 0 ? Collect(n, out, max) : 0;
    if (interrupt_.TakeWake() || added > 0) return added;
    // Only a registration change (or readiness nobody wants any more): poll again
    // with a fresh snapshot, unless the caller's timeout has run out.
    if (!budget.Again()) return 0;
  }
}

std::string ProbePoll() { return ""; }  // poll() exists on every platform we build for

}  // namespace logcaster
