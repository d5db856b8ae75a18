// Small POSIX helpers several backends need: a non-blocking close-on-exec wake
// pipe (select/poll, kqueue without EVFILT_USER) and a monotonic millisecond clock.
#pragma once
#include <errno.h>
#include <fcntl.h>
#include <time.h>
#include <unistd.h>

#include <cstdint>

namespace logcaster {

// fds[0] read end, fds[1] write end, both O_NONBLOCK | FD_CLOEXEC. 0 or -errno.
inline int MakeWakePipe(int fds[2]) {
#if defined(__linux__) || defined(__FreeBSD__) || defined(__NetBSD__) || defined(__OpenBSD__)
  if (pipe2(fds, O_NONBLOCK | O_CLOEXEC) < 0) return -errno;
#else
  if (pipe(fds) < 0) return -errno;
  for (int i = 0; i < 2; ++i) {
    if (fcntl(fds[i], F_SETFD, FD_CLOEXEC) < 0 || fcntl(fds[i], F_SETFL, O_NONBLOCK) < 0) {
      int e = errno;
      close(fds[0]);
      close(fds[1]);
      return -e;
    }
  }
#endif
  return 0;
}

// Empty a non-blocking wake pipe (any number of pending wake-ups collapse into one).
inline void DrainPipe(int fd) {
  char buf[64];
  while (read(fd, buf, sizeof buf) > 0) {
  }
}

inline uint64_t MonoMs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000 + static_cast<uint64_t>(ts.tv_nsec) / 1000000;
}

}  // namespace logcaster
