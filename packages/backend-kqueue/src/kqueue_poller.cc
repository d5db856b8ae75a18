#include "kqueue_poller.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <type_traits>

#ifdef LOGCASTER_KQUEUE_SHIM
#include "kqueue_shim_close.h"  // last: routes close() of the kqueue fd through the shim
#endif

namespace logcaster {

namespace {

constexpr uint64_t kWakeToken = ~0ull;  // never a connection id or listener token
constexpr int kMaxEvents = 256;

static_assert(sizeof(void*) >= sizeof(uint64_t) || sizeof(intptr_t) >= sizeof(uint64_t),
              "kqueue udata must hold a 64-bit token");

// udata is void* on macOS/FreeBSD/OpenBSD and intptr_t on older NetBSD.
template <typename T>
T ToUdata(uint64_t token) {
  if constexpr (std::is_pointer_v<T>) {
    return reinterpret_cast<T>(static_cast<uintptr_t>(token));
  } else {
    return static_cast<T>(token);
  }
}
template <typename T>
uint64_t FromUdata(T udata) {
  if constexpr (std::is_pointer_v<T>) {
    return static_cast<uint64_t>(reinterpret_cast<uintptr_t>(udata));
  } else {
    return static_cast<uint64_t>(udata);
  }
}

void SetKevent(struct kevent* kev, uintptr_t ident, int16_t filter, uint16_t flags, uint32_t fflags,
               uint64_t token) {
  std::memset(kev, 0, sizeof *kev);
  kev->ident = ident;
  kev->filter = filter;
  kev->flags = flags;
  kev->fflags = fflags;
  kev->udata = ToUdata<decltype(kev->udata)>(token);
}

}  // namespace

KqueuePoller::~KqueuePoller() {
#ifndef EVFILT_USER
  if (wake_r_ >= 0) close(wake_r_);
  if (wake_w_ >= 0) close(wake_w_);
#endif
  if (kq_ >= 0) close(kq_);
}

int KqueuePoller::Open(std::string* err) {
  kq_ = kqueue();
  if (kq_ < 0) { int e = errno; *err = std::string("kqueue: ") + std::strerror(e); return -e; }
  // Not inherited across fork on the BSDs anyway; CLOEXEC for exec on the others.
  fcntl(kq_, F_SETFD, FD_CLOEXEC);
  struct kevent kev;
#ifdef EVFILT_USER
  SetKevent(&kev, 0, EVFILT_USER, EV_ADD | EV_CLEAR, 0, kWakeToken);
  if (kevent(kq_, &kev, 1, nullptr, 0, nullptr) < 0) {
    int e = errno;
    close(kq_); kq_ = -1;
    *err = std::string("kevent(EVFILT_USER): ") + std::strerror(e);
    return -e;
  }
#else
  int fds[2];
  if (pipe2(fds, O_NONBLOCK | O_CLOEXEC) < 0) {
    int e = errno;
    close(kq_); kq_ = -1;
    *err = std::string("pipe: ") + std::strerror(e);
    return -e;
  }
  wake_r_ = fds[0];
  wake_w_ = fds[1];
  SetKevent(&kev, static_cast<uintptr_t>(wake_r_), EVFILT_READ, EV_ADD, 0, kWakeToken);
  if (kevent(kq_, &kev, 1, nullptr, 0, nullptr) < 0) {
    int e = errno;
    close(wake_r_); wake_r_ = -1;
    close(wake_w_); wake_w_ = -1;
    close(kq_); kq_ = -1;
    *err = std::string("kevent(wake pipe): ") + std::strerror(e);
    return -e;
  }
#endif
  changes_.reserve(64);
  return 0;
}

void KqueuePoller::Queue(int fd, int16_t filter, uint16_t flags, uint64_t token) {
  struct kevent kev;
  SetKevent(&kev, static_cast<uintptr_t>(fd), filter, flags, 0, token);
  changes_.push_back(kev);
}

// Queued changes reach the kernel with the next Wait. Node's loop only runs a Wait
// when the kqueue fd is readable, so the first change of a batch triggers the wake
// event: one extra kevent() per batch, however many changes it holds.
void KqueuePoller::RequestFlush() {
  if (flush_requested_) return;
  flush_requested_ = true;
  Wake();
}

int KqueuePoller::Add(int fd, uint64_t token, uint32_t interest) {
  if (fd < 0) return -EBADF;
  const uint16_t clear = edge_ ? EV_CLEAR : 0;
  Queue(fd, EVFILT_READ, EV_ADD | clear | ((interest & kReadable) ? EV_ENABLE : EV_DISABLE), token);
  Queue(fd, EVFILT_WRITE, EV_ADD | clear | ((interest & kWritable) ? EV_ENABLE : EV_DISABLE), token);
  RequestFlush();
  return 0;
}

int KqueuePoller::Modify(int fd, uint64_t token, uint32_t old_interest, uint32_t new_interest) {
  // The token of a registered fd never changes (the driver passes the same one), so
  // enabling/disabling the existing knotes is enough.
  uint32_t changed = old_interest ^ new_interest;
  if (changed & kReadable) Queue(fd, EVFILT_READ, (new_interest & kReadable) ? EV_ENABLE : EV_DISABLE, token);
  if (changed & kWritable) Queue(fd, EVFILT_WRITE, (new_interest & kWritable) ? EV_ENABLE : EV_DISABLE, token);
  if (changed & (kReadable | kWritable)) RequestFlush();
  return 0;
}

int KqueuePoller::Remove(int fd, uint32_t) {
  // Changes still queued for fd must not reach the kernel after the caller closes it
  // (the number may be reused by the next accept). If its EV_ADD was among them the
  // kernel never saw the fd: nothing to delete.
  bool added_pending = false;
  auto it = std::remove_if(changes_.begin(), changes_.end(), [&](const struct kevent& k) {
    if (k.ident != static_cast<uintptr_t>(fd)) return false;
    if (k.flags & EV_ADD) added_pending = true;
    return true;
  });
  changes_.erase(it, changes_.end());
  if (added_pending) return 0;
  // Deleted now, not queued: closing the fd would drop the knotes anyway, but the
  // contract allows Remove without close.
  struct kevent del[2];
  SetKevent(&del[0], static_cast<uintptr_t>(fd), EVFILT_READ, EV_DELETE, 0, 0);
  SetKevent(&del[1], static_cast<uintptr_t>(fd), EVFILT_WRITE, EV_DELETE, 0, 0);
#ifdef EV_RECEIPT
  del[0].flags |= EV_RECEIPT;
  del[1].flags |= EV_RECEIPT;
  struct kevent res[2];
  int n = kevent(kq_, del, 2, res, 2, nullptr);
  if (n < 0) return -errno;
  for (int i = 0; i < n; ++i) {
    if ((res[i].flags & EV_ERROR) && res[i].data != 0 && res[i].data != ENOENT) return -static_cast<int>(res[i].data);
  }
#else
  for (auto& d : del) {
    if (kevent(kq_, &d, 1, nullptr, 0, nullptr) < 0 && errno != ENOENT) return -errno;
  }
#endif
  return 0;
}

int KqueuePoller::Translate(const struct kevent* evs, int n, std::vector<PollEvent>* out) {
  int added = 0;
  for (int i = 0; i < n; ++i) {
    const struct kevent& ev = evs[i];
    uint64_t token = FromUdata(ev.udata);
    if (token == kWakeToken) {
#ifndef EVFILT_USER
      char buf[64];
      while (read(wake_r_, buf, sizeof buf) > 0) {
      }
#endif
      continue;
    }
    if (ev.flags & EV_ERROR) {
      // A queued change failed. ENOENT/EBADF: the fd was closed meanwhile (harmless);
      // anything else leaves the fd unwatched: report it so its owner fails it.
      if (ev.data == 0 || ev.data == ENOENT || ev.data == EBADF) continue;
      out->push_back(PollEvent{token, kError | kHangup});
      ++added;
      continue;
    }
    uint32_t e = 0;
    if (ev.filter == EVFILT_READ) e |= kReadable;
    else if (ev.filter == EVFILT_WRITE) e |= kWritable;
    else continue;
    if (ev.flags & EV_EOF) {
      e |= kHangup;                // read side: peer shut down writing; write side: cannot send
      if (ev.fflags) e |= kError;  // fflags carries the pending socket error
    }
    // Read and write knotes of one fd often come back side by side: merge them.
    if (added > 0 && out->back().token == token) {
      out->back().events |= e;
      continue;
    }
    out->push_back(PollEvent{token, e});
    ++added;
  }
  return added;
}

int KqueuePoller::ApplyOneByOne(std::vector<PollEvent>* out) {
  // kevent() failed outright: an error it had no room to report stopped it part way
  // through the changelist. Apply each change alone (EV_ADD/ENABLE/DISABLE are
  // idempotent) and report the failures.
  int added = 0;
  for (const struct kevent& c : changes_) {
    if (kevent(kq_, &c, 1, nullptr, 0, nullptr) < 0 && errno != ENOENT && errno != EBADF) {
      out->push_back(PollEvent{FromUdata(c.udata), kError | kHangup});
      ++added;
    }
  }
  return added;
}

int KqueuePoller::Wait(int timeout_ms, std::vector<PollEvent>* out, size_t max) {
  struct kevent evs[kMaxEvents];
  int cap = static_cast<int>(std::min<size_t>(max, kMaxEvents));
  if (cap <= 0) return 0;
  timespec ts;
  timespec* tsp = nullptr;
  if (timeout_ms >= 0) {
    ts.tv_sec = timeout_ms / 1000;
    ts.tv_nsec = static_cast<long>(timeout_ms % 1000) * 1000000L;
    tsp = &ts;
  }
  int nch = static_cast<int>(changes_.size());
  int n = kevent(kq_, changes_.data(), nch, evs, cap, tsp);
  if (n < 0) {
    int e = errno;
    int added = 0;
    // EINTR: every change has been applied. Otherwise retry them one at a time.
    if (e != EINTR && nch > 0) added = ApplyOneByOne(out);
    changes_.clear();
    flush_requested_ = false;
    if (e == EINTR || nch > 0) return added;
    return -e;
  }
  changes_.clear();
  flush_requested_ = false;
  return Translate(evs, n, out);
}

void KqueuePoller::Wake() {
#ifdef EVFILT_USER
  struct kevent kev;
  SetKevent(&kev, 0, EVFILT_USER, 0, NOTE_TRIGGER, kWakeToken);
  kevent(kq_, &kev, 1, nullptr, 0, nullptr);
#else
  char one = 1;
  ssize_t r = write(wake_w_, &one, 1);
  (void)r;  // EAGAIN: a wake-up is pending already
#endif
}

std::string ProbeKqueue() {
  int kq = kqueue();
  if (kq < 0) return std::string("kqueue: ") + std::strerror(errno);
  close(kq);
  return "";
}

}  // namespace logcaster
