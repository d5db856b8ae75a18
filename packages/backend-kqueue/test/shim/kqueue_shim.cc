// TEST-ONLY kqueue-on-epoll shim: what it emulates and what not is listed at the top
// of kqueue_shim.h. Never shipped; see ../../README.md "Testing on Linux".
#include "kqueue_shim.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <memory>
#include <mutex>
#include <unordered_map>

namespace {

constexpr uint64_t kUserTag = ~0ull;  // epoll data of the eventfd behind EVFILT_USER
constexpr int kMaxEpollEvents = 256;

struct Knote {
  bool on = false;
  bool enabled = false;
  bool clear = false;
  void* udata = nullptr;
};

struct FdKnotes {
  Knote rd, wr;
  bool in_epoll = false;
};

struct UserKnote {
  bool enabled = true;
  bool clear = false;
  bool triggered = false;
  void* udata = nullptr;
};

struct Kq {
  int epfd = -1;
  int evfd = -1;
  std::mutex mu;  // kevent() may be called from several threads, like the real one
  std::unordered_map<uintptr_t, FdKnotes> fds;
  std::unordered_map<uintptr_t, UserKnote> users;
};

// The open shim kqueues of this process: the stand-in for the kernel's table.
struct Registry {
  std::mutex mu;
  std::unordered_map<int, std::shared_ptr<Kq>> kqs;
};
Registry& Reg() {
  static Registry r;
  return r;
}

std::shared_ptr<Kq> Find(int kq) {
  Registry& r = Reg();
  std::lock_guard<std::mutex> lk(r.mu);
  auto it = r.kqs.find(kq);
  return it == r.kqs.end() ? nullptr : it->second;
}

void Signal(Kq& q) {
  uint64_t one = 1;
  ssize_t r = write(q.evfd, &one, sizeof one);
  (void)r;
}

// Bring the epoll registration of fd in line with its knotes. 0 or errno.
int SyncFd(Kq& q, int fd, FdKnotes& f) {
  uint32_t mask = 0;
  bool clear = false;
  if (f.rd.on && f.rd.enabled) mask |= EPOLLIN | EPOLLRDHUP;
  if (f.wr.on && f.wr.enabled) mask |= EPOLLOUT;
  if ((f.rd.on && f.rd.clear) || (f.wr.on && f.wr.clear)) clear = true;
  if (mask == 0) {
    // Nothing enabled: leave the epoll set entirely (epoll would still report
    // EPOLLHUP/EPOLLERR for a zero mask, which a disabled knote never does).
    if (f.in_epoll) epoll_ctl(q.epfd, EPOLL_CTL_DEL, fd, nullptr);
    f.in_epoll = false;
    return 0;
  }
  epoll_event ev = {};
  ev.events = mask | (clear ? static_cast<uint32_t>(EPOLLET) : 0u);
  ev.data.u64 = static_cast<uint64_t>(fd);
  if (f.in_epoll) {
    if (epoll_ctl(q.epfd, EPOLL_CTL_MOD, fd, &ev) == 0) return 0;
    if (errno != ENOENT) return errno;
    // The descriptor was closed (and maybe reused) behind our back: start fresh.
  }
  if (epoll_ctl(q.epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
    if (errno != EEXIST) return errno;
    if (epoll_ctl(q.epfd, EPOLL_CTL_MOD, fd, &ev) < 0) return errno;
  }
  f.in_epoll = true;
  return 0;
}

int ApplyUser(Kq& q, const struct kevent& c) {
  auto it = q.users.find(c.ident);
  if (c.flags & EV_ADD) {
    if (it == q.users.end()) {
      it = q.users.emplace(c.ident, UserKnote{}).first;
      it->second.enabled = !(c.flags & EV_DISABLE);
    }
    it->second.udata = c.udata;
    it->second.clear = (c.flags & EV_CLEAR) != 0;
  } else if (it == q.users.end()) {
    return ENOENT;
  }
  if (c.flags & EV_DELETE) {
    q.users.erase(it);
    return 0;
  }
  UserKnote& u = it->second;
  if (c.flags & EV_ENABLE) u.enabled = true;
  if (c.flags & EV_DISABLE) u.enabled = false;
  if (c.fflags & NOTE_TRIGGER) u.triggered = true;
  if (u.triggered && u.enabled) Signal(q);
  return 0;
}

int ApplyFd(Kq& q, const struct kevent& c) {
  if (c.ident > static_cast<uintptr_t>(INT_MAX)) return EBADF;
  int fd = static_cast<int>(c.ident);
  auto it = q.fds.find(c.ident);
  if (c.flags & EV_ADD) {
    if (fcntl(fd, F_GETFD) < 0) return EBADF;
    bool created = it == q.fds.end();
    if (created) it = q.fds.emplace(c.ident, FdKnotes{}).first;
    FdKnotes& f = it->second;
    Knote& k = c.filter == EVFILT_READ ? f.rd : f.wr;
    const Knote& other = c.filter == EVFILT_READ ? f.wr : f.rd;
    bool clear = (c.flags & EV_CLEAR) != 0;
    if (other.on && other.clear != clear) {
      if (created) q.fds.erase(it);
      return EINVAL;  // EPOLLET is per descriptor (see kqueue_shim.h)
    }
    Knote before = k;
    if (!k.on) k.enabled = true;
    k.on = true;
    k.udata = c.udata;
    k.clear = clear;
    if (c.flags & EV_DISABLE) k.enabled = false;
    if (c.flags & EV_ENABLE) k.enabled = true;
    int e = SyncFd(q, fd, f);
    if (e) {
      k = before;
      if (!f.rd.on && !f.wr.on) q.fds.erase(it);
    }
    return e;
  }
  if (it == q.fds.end()) return ENOENT;
  FdKnotes& f = it->second;
  Knote& k = c.filter == EVFILT_READ ? f.rd : f.wr;
  if (!k.on) return ENOENT;
  if (c.flags & EV_DELETE) {
    k = Knote{};
    SyncFd(q, fd, f);
    if (!f.rd.on && !f.wr.on) {
      if (f.in_epoll) epoll_ctl(q.epfd, EPOLL_CTL_DEL, fd, nullptr);
      q.fds.erase(it);
    }
    return 0;
  }
  if (c.flags & EV_ENABLE) k.enabled = true;
  if (c.flags & EV_DISABLE) k.enabled = false;
  return SyncFd(q, fd, f);
}

int ApplyOne(Kq& q, const struct kevent& c) {
  if (c.flags & (EV_ONESHOT | EV_DISPATCH)) return EINVAL;
  if (c.filter == EVFILT_USER) return ApplyUser(q, c);
  if (c.filter == EVFILT_READ || c.filter == EVFILT_WRITE) return ApplyFd(q, c);
  return EINVAL;
}

int TimeoutMs(const struct timespec* ts) {
  if (!ts) return -1;
  long long ms = static_cast<long long>(ts->tv_sec) * 1000 + (ts->tv_nsec + 999999) / 1000000;
  if (ms < 0) return 0;
  return ms > INT_MAX ? INT_MAX : static_cast<int>(ms);
}

}  // namespace

extern "C" int kqueue(void) {
  auto q = std::make_shared<Kq>();
  q->epfd = epoll_create1(EPOLL_CLOEXEC);
  if (q->epfd < 0) return -1;
  q->evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (q->evfd < 0) {
    int e = errno;
    close(q->epfd);
    errno = e;
    return -1;
  }
  epoll_event ev = {};
  ev.events = EPOLLIN;
  ev.data.u64 = kUserTag;
  if (epoll_ctl(q->epfd, EPOLL_CTL_ADD, q->evfd, &ev) < 0) {
    int e = errno;
    close(q->evfd);
    close(q->epfd);
    errno = e;
    return -1;
  }
  Registry& r = Reg();
  std::lock_guard<std::mutex> lk(r.mu);
  r.kqs[q->epfd] = q;  // replaces the table of an fd closed with plain close()
  return q->epfd;
}

extern "C" int logcaster_kqueue_shim_close(int fd) {
  std::shared_ptr<Kq> q;
  {
    Registry& r = Reg();
    std::lock_guard<std::mutex> lk(r.mu);
    auto it = r.kqs.find(fd);
    if (it != r.kqs.end()) {
      q = it->second;
      r.kqs.erase(it);
    }
  }
  if (q) close(q->evfd);
  return close(fd);
}

extern "C" int kevent(int kq, const struct kevent* changelist, int nchanges, struct kevent* eventlist, int nevents,
                      const struct timespec* timeout) {
  std::shared_ptr<Kq> q = Find(kq);
  if (!q) { errno = EBADF; return -1; }
  if (nchanges < 0 || nevents < 0) { errno = EINVAL; return -1; }
  int used = 0;
  {
    std::lock_guard<std::mutex> lk(q->mu);
    for (int i = 0; i < nchanges; ++i) {
      const struct kevent& c = changelist[i];
      int e = ApplyOne(*q, c);
      if (!e && !(c.flags & EV_RECEIPT)) continue;
      if (used < nevents) {
        eventlist[used] = c;
        eventlist[used].flags = EV_ERROR;
        eventlist[used].data = e;
        ++used;
      } else if (e) {
        errno = e;  // no room to report it: fail, leaving the rest unapplied
        return -1;
      }
    }
  }
  if (nevents == 0 || used > 0) return used;

  epoll_event evs[kMaxEpollEvents];
  int maxev = nevents / 2;  // each descriptor may yield a read and a write event
  if (maxev < 1) maxev = 1;
  if (maxev > kMaxEpollEvents) maxev = kMaxEpollEvents;
  int n = epoll_wait(q->epfd, evs, maxev, TimeoutMs(timeout));
  if (n < 0) return -1;

  std::lock_guard<std::mutex> lk(q->mu);
  int out = 0;
  for (int i = 0; i < n; ++i) {
    if (evs[i].data.u64 == kUserTag) {
      uint64_t v;
      while (read(q->evfd, &v, sizeof v) > 0) {
      }
      bool still = false;
      for (auto& [ident, u] : q->users) {
        if (!u.triggered || !u.enabled) continue;
        if (out >= nevents) { still = true; continue; }
        struct kevent& k = eventlist[out++];
        EV_SET(&k, ident, EVFILT_USER, u.clear ? EV_CLEAR : 0, 0, 0, u.udata);
        if (u.clear) u.triggered = false; else still = true;
      }
      if (still) Signal(*q);  // level-style user knotes stay ready
      continue;
    }
    auto it = q->fds.find(static_cast<uintptr_t>(evs[i].data.u64));
    if (it == q->fds.end()) continue;  // deleted after epoll_wait returned
    const FdKnotes& f = it->second;
    const uint32_t e = evs[i].events;
    if (f.rd.on && f.rd.enabled && (e & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) && out < nevents) {
      uint16_t flags = ((e & (EPOLLRDHUP | EPOLLHUP)) ? EV_EOF : 0) | (f.rd.clear ? EV_CLEAR : 0);
      EV_SET(&eventlist[out], it->first, EVFILT_READ, flags, 0, 0, f.rd.udata);
      ++out;
    }
    if (f.wr.on && f.wr.enabled && (e & (EPOLLOUT | EPOLLHUP | EPOLLERR)) && out < nevents) {
      uint16_t flags = ((e & (EPOLLHUP | EPOLLERR)) ? EV_EOF : 0) | (f.wr.clear ? EV_CLEAR : 0);
      EV_SET(&eventlist[out], it->first, EVFILT_WRITE, flags, 0, 0, f.wr.udata);
      ++out;
    }
  }
  return out;
}
