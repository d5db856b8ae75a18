#include "sockets.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>

#include "unix_sockets.h"
#include "write_queue.h"

namespace logcaster {

int SetNonBlocking(int fd) {
  int fl = fcntl(fd, F_GETFL);
  if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0) return -errno;
  if (fcntl(fd, F_SETFD, FD_CLOEXEC) < 0) return -errno;
  return 0;
}

int NewSocket(int family, int type) {
#ifdef SOCK_NONBLOCK
  int fd = socket(family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return -errno;
#else
  int fd = socket(family, type, 0);
  if (fd < 0) return -errno;
  int r = SetNonBlocking(fd);
  if (r < 0) { close(fd); return r; }
#endif
#ifdef SO_NOSIGPIPE
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_NOSIGPIPE, &one, sizeof one);
#endif
  return fd;
}

int ParseAddress(const std::string& ip, int port, ::sockaddr_storage* ss, unsigned* len) {
  std::memset(ss, 0, sizeof *ss);
  auto* v4 = reinterpret_cast<sockaddr_in*>(ss);
  if (inet_pton(AF_INET, ip.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(static_cast<uint16_t>(port));
    *len = sizeof(sockaddr_in);
    return AF_INET;
  }
  auto* v6 = reinterpret_cast<sockaddr_in6*>(ss);
  if (inet_pton(AF_INET6, ip.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(static_cast<uint16_t>(port));
    *len = sizeof(sockaddr_in6);
    return AF_INET6;
  }
  return 0;
}

static std::string Describe(const char* what, int err, const std::string& ip, int port) {
  return std::string(what) + " " + std::strerror(err) + " " + ip + ":" + std::to_string(port);
}

int ListenSocket(const std::string& host, int port, int backlog, bool ipv6_only, int* bound_port, std::string* err) {
  sockaddr_storage ss;
  unsigned len = 0;
  int family = ParseAddress(host, port, &ss, &len);
  if (!family) { *err = "not an IP address: " + host; return -EINVAL; }
  int fd = NewSocket(family, SOCK_STREAM);
  if (fd < 0) { *err = Describe("socket", -fd, host, port); return fd; }
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (family == AF_INET6) {
    int v6only = ipv6_only ? 1 : 0;
    setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only, sizeof v6only);
  }
  if (bind(fd, reinterpret_cast<sockaddr*>(&ss), len) < 0) {
    int e = errno; close(fd);
    *err = Describe("bind", e, host, port);
    return -e;
  }
  // The kernel clamps the backlog to net.core.somaxconn: asking for a large value
  // means "the system maximum" instead of the 5-128 that loses SYNs under bursts.
  if (listen(fd, backlog > 0 ? backlog : 65535) < 0) {
    int e = errno; close(fd);
    *err = Describe("listen", e, host, port);
    return -e;
  }
  sockaddr_storage bound;
  socklen_t blen = sizeof bound;
  getsockname(fd, reinterpret_cast<sockaddr*>(&bound), &blen);
  *bound_port = bound.ss_family == AF_INET6 ? ntohs(reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port)
                                            : ntohs(reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
  return fd;
}

int ConnectSocket(const std::string& ip, int port, bool* in_progress, std::string* err) {
  sockaddr_storage ss;
  unsigned len = 0;
  int family = ParseAddress(ip, port, &ss, &len);
  if (!family) { *err = "not an IP address: " + ip; return -EINVAL; }
  int fd = NewSocket(family, SOCK_STREAM);
  if (fd < 0) { *err = Describe("socket", -fd, ip, port); return fd; }
  SetNoDelay(fd);
  *in_progress = false;
  if (connect(fd, reinterpret_cast<sockaddr*>(&ss), len) < 0) {
    if (errno == EINPROGRESS) {
      *in_progress = true;
    } else {
      int e = errno; close(fd);
      *err = Describe("connect", e, ip, port);
      return -e;
    }
  }
  return fd;
}

int AcceptSocket(int listen_fd) {
#if defined(__linux__) || defined(__FreeBSD__)
  int fd = accept4(listen_fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
  return fd < 0 ? -errno : fd;
#else
  int fd = accept(listen_fd, nullptr, nullptr);
  if (fd < 0) return -errno;
  int r = SetNonBlocking(fd);
  if (r < 0) { close(fd); return r; }
#ifdef SO_NOSIGPIPE
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_NOSIGPIPE, &one, sizeof one);
#endif
  return fd;
#endif
}

void SetNoDelay(int fd) {
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

int SocketError(int fd) {
  int e = 0;
  socklen_t l = sizeof e;
  if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &l) < 0) return errno;
  return e;
}

int AddressText(const sockaddr* sa, socklen_t len, std::string* text, int* port, int* family) {
  char buf[INET6_ADDRSTRLEN];
  if (!sa || len < static_cast<socklen_t>(sizeof(sa_family_t))) {
    *text = "";
    *port = 0;
    *family = kFamilyUnix;  // an unnamed Unix socket reports no address at all
    return 0;
  }
  switch (sa->sa_family) {
    case AF_INET6: {
      auto* a = reinterpret_cast<const sockaddr_in6*>(sa);
      inet_ntop(AF_INET6, &a->sin6_addr, buf, sizeof buf);
      *text = buf;
      *port = ntohs(a->sin6_port);
      *family = kFamilyIPv6;
      return 0;
    }
    case AF_INET: {
      auto* a = reinterpret_cast<const sockaddr_in*>(sa);
      inet_ntop(AF_INET, &a->sin_addr, buf, sizeof buf);
      *text = buf;
      *port = ntohs(a->sin_port);
      *family = kFamilyIPv4;
      return 0;
    }
    case AF_UNIX:
      *text = UnixPathOf(sa, len);
      *port = 0;
      *family = kFamilyUnix;
      return 0;
    default:
      return -EAFNOSUPPORT;
  }
}

int PeerAddress(int fd, std::string* ip, int* port, int* family) {
  sockaddr_storage ss;
  socklen_t len = sizeof ss;
  if (getpeername(fd, reinterpret_cast<sockaddr*>(&ss), &len) < 0) return -errno;
  return AddressText(reinterpret_cast<sockaddr*>(&ss), len, ip, port, family);
}

namespace {
#ifdef MSG_NOSIGNAL
constexpr int kSendFlags = MSG_NOSIGNAL;
#else
constexpr int kSendFlags = 0;  // SO_NOSIGPIPE is set on the socket instead
#endif

// EINTR retried, EAGAIN is "full" (0).
long SendResult(ssize_t n) { return n >= 0 ? static_cast<long>(n) : (errno == EAGAIN || errno == EWOULDBLOCK) ? 0 : -errno; }
}  // namespace

long SendSome(int fd, const char* data, size_t len) {
  ssize_t n;
  do n = send(fd, data, len, kSendFlags); while (n < 0 && errno == EINTR);
  return SendResult(n);
}

long SendQueued(int fd, const WriteQueue& wq) {
  struct iovec iov[kMaxSendIov];
  struct msghdr msg = {};
  msg.msg_iov = iov;
  msg.msg_iovlen = static_cast<size_t>(wq.Fill(iov, kMaxSendIov));
  if (msg.msg_iovlen == 0) return 0;
  ssize_t n;
  do n = sendmsg(fd, &msg, kSendFlags); while (n < 0 && errno == EINTR);
  return SendResult(n);
}

}  // namespace logcaster
