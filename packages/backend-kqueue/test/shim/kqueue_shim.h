/*
 * TEST-ONLY kqueue-on-epoll shim for Linux. It exists so the real kqueue backend
 * source (src/kqueue_poller.cc) can be compiled and run through the conformance
 * suite on Linux; it is never part of the published package. Real kqueue runs in CI
 * on macOS and FreeBSD (.github/workflows/kqueue.yml).
 *
 * Emulated (what the LogCaster kqueue backend relies on):
 *  - kqueue(): returns an epoll fd; it is readable whenever kevent() would return
 *    something, so Node's loop can watch it just like a real kqueue fd.
 *  - kevent(): the changelist is applied in order before waiting, then events are
 *    collected, in one call. Filters EVFILT_READ and EVFILT_WRITE on descriptors
 *    with EV_ADD, EV_DELETE, EV_ENABLE, EV_DISABLE, EV_CLEAR (-> EPOLLET), EV_RECEIPT;
 *    udata is stored per knote and returned with its events.
 *  - Level-triggered reporting by default; EV_EOF on EVFILT_READ when the peer shut
 *    down its side (EPOLLRDHUP/EPOLLHUP), on EVFILT_WRITE on EPOLLHUP/EPOLLERR.
 *  - EVFILT_USER with EV_ADD/EV_DELETE/EV_ENABLE/EV_DISABLE/EV_CLEAR and NOTE_TRIGGER
 *    (an eventfd in the epoll set), safe to trigger from another thread.
 *  - Change errors: EV_ERROR entries with the errno in data (ENOENT for a missing
 *    knote, EBADF for a bad descriptor, EINVAL for unsupported flags/filters) when the
 *    eventlist has room, else -1/errno and the rest of the changelist is not applied.
 *    A failed change does not stop the wait; as on FreeBSD, a call that reported
 *    errors or receipts returns without waiting.
 *
 * NOT emulated (differences to keep in mind when reading results):
 *  - close() does not drop knotes by itself: epoll forgets a closed file, but the
 *    shim's table keeps the fd's knotes until EV_DELETE; an EV_ADD on a reused
 *    descriptor number is detected (epoll_ctl MOD -> ENOENT) and starts fresh.
 *    Knotes belong to the fd number here, to the open file in epoll (dup()s differ).
 *  - EV_CLEAR is per descriptor (EPOLLET covers both filters): mixing a clear and a
 *    level knote on one fd is refused with EINVAL.
 *  - data is not filled in (real kqueue: bytes readable, send space, backlog) and
 *    fflags on EV_EOF is 0: reading SO_ERROR would clear the socket error the backend
 *    still has to see from recv()/send(). Socket errors surface as EV_EOF.
 *  - EV_ONESHOT, EV_DISPATCH, and every other filter (EVFILT_VNODE, _PROC, _SIGNAL,
 *    _TIMER, _AIO...) are refused with EINVAL.
 *  - With exactly one free eventlist slot, an fd whose read and write knotes are both
 *    ready returns only the read event; the write event is reported by the next call
 *    when level-triggered and is lost under EV_CLEAR (the backend always passes 256).
 *  - kqueue fds are not inherited across fork() on the BSDs; this one is an ordinary
 *    epoll fd.
 */
#ifndef LOGCASTER_KQUEUE_SHIM_H
#define LOGCASTER_KQUEUE_SHIM_H

#include <stdint.h>
#include <time.h>

#ifdef __cplusplus
extern "C" {
#endif

struct kevent {
  uintptr_t ident;
  int16_t filter;
  uint16_t flags;
  uint32_t fflags;
  int64_t data;
  void* udata;
};

#define EVFILT_READ (-1)
#define EVFILT_WRITE (-2)
#define EVFILT_USER (-11)

#define EV_ADD 0x0001
#define EV_DELETE 0x0002
#define EV_ENABLE 0x0004
#define EV_DISABLE 0x0008
#define EV_ONESHOT 0x0010
#define EV_CLEAR 0x0020
#define EV_RECEIPT 0x0040
#define EV_DISPATCH 0x0080
#define EV_ERROR 0x4000
#define EV_EOF 0x8000

#define NOTE_TRIGGER 0x01000000u

#define EV_SET(kevp, a, b, c, d, e, f) \
  do {                                 \
    struct kevent* ev__ = (kevp);      \
    ev__->ident = (a);                 \
    ev__->filter = (b);                \
    ev__->flags = (c);                 \
    ev__->fflags = (d);                \
    ev__->data = (e);                  \
    ev__->udata = (f);                 \
  } while (0)

int kqueue(void);
int kevent(int kq, const struct kevent* changelist, int nchanges, struct kevent* eventlist, int nevents,
           const struct timespec* timeout);
/* close() for a descriptor that may be a shim kqueue: releases its table. */
int logcaster_kqueue_shim_close(int fd);

#ifdef __cplusplus
}
#endif

#endif
