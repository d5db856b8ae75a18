#include "select_poller.h"


#include <errno.h>
#include <fcntl.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <cstring>

namespace logcaster {

namespace {

constexpr uint8_t kRegistered = 0x80;  // interest_[fd]: fd is known (interest may be 0)


}  // namespace

SelectPoller::SelectPoller() : tokens_(FD_SETSIZE, 0), interest_(FD_SETSIZE, 0) {
  FD_ZERO(&master_read_);
  FD_ZERO(&master_write_);
  FD_ZERO(&work_read_);
  FD_ZERO(&work_write_);
}

int SelectPoller::Open(std::string* err) {
  int r = interrupt_.Open(err);
  if (r < 0) return r;
  if (interrupt_.read_fd() >= FD_SETSIZE) {
    *err = "select: wake pipe descriptor " + std::to_string(interrupt_.read_fd()) + " is >= FD_SETSIZE (" +
           std::to_string(FD_SETSIZE) + "); too many open files for select()";
    interrupt_.Close();
    return -ERANGE;
  }
  return 0;
}

void SelectPoller::SetLocked(int fd, uint64_t token, uint32_t interest) {
  tokens_[fd] = token;
  interest_[fd] = static_cast<uint8_t>(kRegistered | (interest & (kReadable | kWritable)));
  if (interest & kReadable) FD_SET(fd, &master_read_); else FD_CLR(fd, &master_read_);
  if (interest & kWritable) FD_SET(fd, &master_write_); else FD_CLR(fd, &master_write_);
  if (fd > max_fd_) max_fd_ = fd;
}

int SelectPoller::Add(int fd, uint64_t token, uint32_t interest) {
  if (fd < 0) return -EBADF;
  if (fd >= FD_SETSIZE) return -ERANGE;  // FD_SET would write past the end of fd_set
  std::lock_guard<std::mutex> lk(mu_);
  if (interest_[fd] & kRegistered) return -EEXIST;
  SetLocked(fd, token, interest);
  if (interest & (kReadable | kWritable)) interrupt_.OnChange();
  return 0;
}

int SelectPoller::Modify(int fd, uint64_t token, uint32_t, uint32_t new_interest) {
  if (fd < 0 || fd >= FD_SETSIZE) return -EBADF;
  std::lock_guard<std::mutex> lk(mu_);
  if (!(interest_[fd] & kRegistered)) return -ENOENT;
  uint32_t gained = new_interest & ~static_cast<uint32_t>(interest_[fd]) & (kReadable | kWritable);
  SetLocked(fd, token, new_interest);
  // A running select() does not watch the new bits yet: make it take a fresh snapshot.
  // Lost bits need no wake-up; results are filtered against the current sets.
  if (gained) interrupt_.OnChange();
  return 0;
}

int SelectPoller::Remove(int fd, uint32_t) {
  if (fd < 0 || fd >= FD_SETSIZE) return -EBADF;
  std::lock_guard<std::mutex> lk(mu_);
  if (!(interest_[fd] & kRegistered)) return -ENOENT;
  FD_CLR(fd, &master_read_);
  FD_CLR(fd, &master_write_);
  bool watched = interest_[fd] & (kReadable | kWritable);
  interest_[fd] = 0;
  tokens_[fd] = 0;
  // Keep max_fd exact: a stale maximum would make every select() scan dead slots.
  while (max_fd_ >= 0 && !(interest_[max_fd_] & kRegistered)) --max_fd_;
  // A blocked select() holds a reference to every file in its sets: the caller's
  // close() would not release the socket (no FIN/RST reaches the peer) until select()
  // returns. Interrupt it so it drops the reference and re-snapshots.
  if (watched) interrupt_.OnChange();
  return 0;
}

void SelectPoller::Wake() {
  std::lock_guard<std::mutex> lk(mu_);
  interrupt_.Wake();
}

int SelectPoller::Collect(int n, std::vector<PollEvent>* out, size_t max) {
  int added = 0;
  int seen = 0;
  for (int fd = 0; fd <= work_max_ && seen < n && out->size() < max; ++fd) {
    bool r = FD_ISSET(fd, &work_read_);
    bool w = FD_ISSET(fd, &work_write_);
    if (!r && !w) continue;
    ++seen;
    // Registration may have changed while select() ran: drop readiness for fds that
    // were removed (or removed and reused by another connection: the token differs)
    // and bits nobody is interested in any more.
    if (fd > max_fd_ || !(interest_[fd] & kRegistered) || tokens_[fd] != work_tokens_[fd]) continue;
    uint32_t ev = (r ? kReadable : 0u) | (w ? kWritable : 0u);
    ev &= interest_[fd];
    if (!ev) continue;
    out->push_back(PollEvent{tokens_[fd], ev});
    ++added;
  }
  return added;
}

int SelectPoller::CollectBadFds(std::vector<PollEvent>* out, size_t max) {
  // select() failed with EBADF. Usually a descriptor was removed and closed after our
  // snapshot (the caller retries with a fresh one); a registered descriptor that is
  // really closed is reported as an error so its owner tears it down.
  int added = 0;
  for (int fd = 0; fd <= max_fd_ && out->size() < max; ++fd) {
    if (!(interest_[fd] & kRegistered)) continue;
    if (fcntl(fd, F_GETFD) < 0 && errno == EBADF) {
      out->push_back(PollEvent{tokens_[fd], kError | kHangup});
      ++added;
    }
  }
  return added;
}

int SelectPoller::Wait(int timeout_ms, std::vector<PollEvent>* out, size_t max) {
  WaitBudget budget(timeout_ms);
  const int wake_fd = interrupt_.read_fd();
  for (;;) {
    {
      std::lock_guard<std::mutex> lk(mu_);
      if (interrupt_.BeginWait()) return 0;
      // Fresh working copies every time: select() overwrites its arguments.
      work_read_ = master_read_;
      work_write_ = master_write_;
      work_max_ = max_fd_;
      work_tokens_.assign(tokens_.begin(), tokens_.begin() + (max_fd_ + 1));
    }
    FD_SET(wake_fd, &work_read_);
    int nfds = (work_max_ > wake_fd ? work_max_ : wake_fd) + 1;
    timeval tv;
    timeval* tvp = nullptr;
    if (budget.remaining() >= 0) {
      tv.tv_sec = budget.remaining() / 1000;
      tv.tv_usec = (budget.remaining() % 1000) * 1000;
      tvp = &tv;
    }
    int n = select(nfds, &work_read_, &work_write_, nullptr, tvp);
    int err = n < 0 ? errno : 0;

    std::lock_guard<std::mutex> lk(mu_);
    const bool woken = n > 0 && FD_ISSET(wake_fd, &work_read_);
    interrupt_.EndWait(woken);
    int added = 0;
    if (n < 0) {
      if (err == EINTR) return 0;
      if (err != EBADF) return -err;
      added = CollectBadFds(out, max);
    } else {
      if (woken) {
        FD_CLR(wake_fd, &work_read_);
        --n;
      }
      if (n > 0) added = Collect(n, out, max);
    }
    if (interrupt_.TakeWake() || added > 0) return added;
    // Only a registration change (or readiness nobody wants any more): wait again
    // with a fresh snapshot, unless the caller's timeout has run out.
    if (!budget.Again()) return 0;
  }
}

std::string ProbeSelect() { return ""; }  // select() exists everywhere

}  // namespace logcaster
