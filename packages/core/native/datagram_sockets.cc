#include "datagram_sockets.h"

#include <errno.h>
#include <netinet/in.h>
#include <unistd.h>
#ifdef __linux__
#include <linux/sock_diag.h>
#endif

#include <cstring>

#include "sockets.h"

namespace logcaster {

namespace {

#ifdef MSG_NOSIGNAL
constexpr int kSendFlags = MSG_NOSIGNAL;
#else
constexpr int kSendFlags = 0;
#endif

std::string Describe(const char* what, int err, const std::string& where) {
  return std::string(what) + " " + std::strerror(err) + " " + where;
}

#ifdef SO_RCVBUFFORCE
constexpr int kRcvBufForce = SO_RCVBUFFORCE;
constexpr int kSndBufForce = SO_SNDBUFFORCE;
#else
constexpr int kRcvBufForce = -1;
constexpr int kSndBufForce = -1;
#endif

// The FORCE variant passes net.core.rmem_max / wmem_max where we may (CAP_NET_ADMIN);
// elsewhere the kernel caps the plain option at them, which is not an error.
void SetBuffer(int fd, int force_opt, int opt, int bytes) {
  if (bytes <= 0) return;
  if (force_opt >= 0 && setsockopt(fd, SOL_SOCKET, force_opt, &bytes, sizeof bytes) == 0) return;
  setsockopt(fd, SOL_SOCKET, opt, &bytes, sizeof bytes);
}

void SetBuffers(int fd, const DatagramSpec& spec) {
  SetBuffer(fd, kRcvBufForce, SO_RCVBUF, spec.recv_buffer);
  SetBuffer(fd, kSndBufForce, SO_SNDBUF, spec.send_buffer);
}

bool EnableDropCounter(int fd) {
#ifdef SO_RXQ_OVFL
  int one = 1;
  return setsockopt(fd, SOL_SOCKET, SO_RXQ_OVFL, &one, sizeof one) == 0;
#else
  (void)fd;
  return false;
#endif
}

int UdpSocket(const DatagramSpec& spec, int* bound_port, std::string* err) {
  sockaddr_storage ss;
  unsigned len = 0;
  const std::string where = spec.host + ":" + std::to_string(spec.port);
  int family = ParseAddress(spec.host, spec.port, &ss, &len);
  if (!family) { *err = "not an IP address: " + spec.host; return -EINVAL; }
  int fd = NewSocket(family, SOCK_DGRAM);
  if (fd < 0) { *err = Describe("socket", -fd, where); return fd; }
  if (family == AF_INET6) {
    int v6only = spec.ipv6_only ? 1 : 0;
    setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only, sizeof v6only);
  }
  if (spec.reuse_port) {
#ifdef SO_REUSEPORT
    int one = 1;
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) < 0) {
      int e = errno;
      close(fd);
      *err = Describe("setsockopt(SO_REUSEPORT)", e, where);
      return -e;
    }
#else
    close(fd);
    *err = "reusePort is not supported on this system";
    return -ENOTSUP;
#endif
  }
  SetBuffers(fd, spec);
  if (bind(fd, reinterpret_cast<sockaddr*>(&ss), len) < 0) {
    int e = errno;
    close(fd);
    *err = Describe("bind", e, where);
    return -e;
  }
  if (!spec.connect_host.empty()) {
    sockaddr_storage peer;
    unsigned plen = 0;
    const std::string to = spec.connect_host + ":" + std::to_string(spec.connect_port);
    if (ParseAddress(spec.connect_host, spec.connect_port, &peer, &plen) != family) {
      close(fd);
      *err = "connect: " + spec.connect_host + " is not an address of the socket's family";
      return -EINVAL;
    }
    if (connect(fd, reinterpret_cast<sockaddr*>(&peer), plen) < 0) {
      int e = errno;
      close(fd);
      *err = Describe("connect", e, to);
      return -e;
    }
  }
  sockaddr_storage bound;
  socklen_t blen = sizeof bound;
  getsockname(fd, reinterpret_cast<sockaddr*>(&bound), &blen);
  *bound_port = bound.ss_family == AF_INET6 ? ntohs(reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port)
                                            : ntohs(reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
  return fd;
}

int UnixDgramSocket(const DatagramSpec& spec, BoundPath* bound, std::string* err) {
  int fd = NewSocket(AF_UNIX, SOCK_DGRAM);
  if (fd < 0) { *err = "socket: " + std::string(std::strerror(-fd)); return fd; }
  SetBuffers(fd, spec);
  if (!spec.path.empty()) {
    int r = BindUnixPath(fd, SOCK_DGRAM, spec.path, spec.mode, bound, err);
    if (r < 0) { close(fd); return r; }
  }
  if (!spec.connect_path.empty()) {
    sockaddr_un sa;
    socklen_t len = 0;
    int r = UnixAddress(spec.connect_path, &sa, &len, err);
    if (r == 0 && connect(fd, reinterpret_cast<sockaddr*>(&sa), len) < 0) {
      r = -errno;
      *err = Describe("connect", -r, spec.connect_path);
    }
    if (r < 0) {
      close(fd);
      bound->Unlink();
      return r;
    }
  }
  return fd;
}

}  // namespace

int DatagramSocket(const DatagramSpec& spec, int* bound_port, BoundPath* bound, bool* drop_counter, std::string* err) {
  *bound_port = 0;
  int fd = spec.unix_socket ? UnixDgramSocket(spec, bound, err) : UdpSocket(spec, bound_port, err);
  if (fd >= 0) *drop_counter = EnableDropCounter(fd);
  return fd;
}

long SendDatagrams(int fd, DatagramQueue* queue, bool* blocked) {
  *blocked = false;
  const int n = static_cast<int>(std::min<size_t>(queue->count(), kDatagramBatch));
  if (n == 0) return 0;
  iovec iov[kDatagramBatch];
#ifdef LOGCASTER_HAVE_MMSG
  mmsghdr msgs[kDatagramBatch];
  for (int i = 0; i < n; ++i) {
    queue->Describe(static_cast<size_t>(i), &msgs[i].msg_hdr, &iov[i]);
    msgs[i].msg_len = 0;
  }
  int r;
  do r = sendmmsg(fd, msgs, static_cast<unsigned>(n), kSendFlags); while (r < 0 && errno == EINTR);
  if (r >= 0) return r;
#else
  int r = 0;
  for (; r < n; ++r) {
    msghdr m;
    queue->Describe(static_cast<size_t>(r), &m, &iov[r]);
    ssize_t s;
    do s = sendmsg(fd, &m, kSendFlags); while (s < 0 && errno == EINTR);
    if (s < 0) break;
  }
  if (r > 0) return r;  // the error, if any, shows again on the next call
#endif
  if (errno == EAGAIN || errno == EWOULDBLOCK) {
    *blocked = true;
    return 0;
  }
  return -errno;
}

bool DropCounterOf(const msghdr& m, uint32_t* drops) {
#ifdef SO_RXQ_OVFL
  if (m.msg_controllen < sizeof(cmsghdr)) return false;
  for (cmsghdr* c = CMSG_FIRSTHDR(const_cast<msghdr*>(&m)); c; c = CMSG_NXTHDR(const_cast<msghdr*>(&m), c)) {
    if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SO_RXQ_OVFL && c->cmsg_len >= CMSG_LEN(sizeof(uint32_t))) {
      std::memcpy(drops, CMSG_DATA(c), sizeof(uint32_t));
      return true;
    }
  }
#else
  (void)m;
  (void)drops;
#endif
  return false;
}

bool DropCountNow(int fd, uint32_t* drops) {
#if defined(SO_MEMINFO) && defined(__linux__)
  uint32_t info[SK_MEMINFO_VARS];
  socklen_t len = sizeof info;
  if (getsockopt(fd, SOL_SOCKET, SO_MEMINFO, info, &len) != 0 || len <= SK_MEMINFO_DROPS * sizeof(uint32_t)) return false;
  *drops = info[SK_MEMINFO_DROPS];
  return true;
#else
  (void)fd;
  (void)drops;
  return false;
#endif
}

DatagramReceiver::DatagramReceiver(size_t max_message)
    : slot_(max_message),
      // new char[] leaves the memory untouched: only the pages datagrams reach get faulted in.
      data_(new char[kDatagramBatch * max_message]),
      iov_(new iovec[kDatagramBatch]),
      names_(new sockaddr_storage[kDatagramBatch]),
      control_(new char[kDatagramBatch * kDatagramControl]),
      len_(new size_t[kDatagramBatch]) {
#ifdef LOGCASTER_HAVE_MMSG
  msgs_.reset(new mmsghdr[kDatagramBatch]);
#else
  msgs_.reset(new msghdr[kDatagramBatch]);
#endif
}

int DatagramReceiver::Receive(int fd) {
  pos_ = count_ = 0;
  for (int i = 0; i < kDatagramBatch; ++i) {
    msghdr& m = Hdr(i);
    std::memset(&m, 0, sizeof m);
    iov_[i].iov_base = data_.get() + static_cast<size_t>(i) * slot_;
    iov_[i].iov_len = slot_;
    m.msg_iov = &iov_[i];
    m.msg_iovlen = 1;
    m.msg_name = &names_[i];
    m.msg_namelen = sizeof(sockaddr_storage);
    m.msg_control = control_.get() + static_cast<size_t>(i) * kDatagramControl;
    m.msg_controllen = kDatagramControl;
  }
  int n;
#ifdef LOGCASTER_HAVE_MMSG
  do n = recvmmsg(fd, msgs_.get(), kDatagramBatch, MSG_DONTWAIT, nullptr); while (n < 0 && errno == EINTR);
  if (n < 0) return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -errno;
  for (int i = 0; i < n; ++i) len_[i] = msgs_[i].msg_len;
#else
  for (n = 0; n < kDatagramBatch; ++n) {
    ssize_t r;
    do r = recvmsg(fd, &msgs_[n], MSG_DONTWAIT); while (r < 0 && errno == EINTR);
    if (r < 0) {
      if (n > 0 || errno == EAGAIN || errno == EWOULDBLOCK) break;
      return -errno;
    }
    len_[n] = static_cast<size_t>(r);
  }
#endif
  count_ = n;
  return n;
}

DatagramIn DatagramReceiver::Current() const {
  const msghdr& m = Hdr(pos_);
  DatagramIn d;
  d.from = m.msg_namelen ? reinterpret_cast<const sockaddr*>(m.msg_name) : nullptr;
  d.fromlen = m.msg_namelen;
  d.data = static_cast<const char*>(m.msg_iov->iov_base);
  d.len = len_[pos_];
  d.truncated = (m.msg_flags & MSG_TRUNC) != 0;
  d.has_drops = DropCounterOf(m, &d.drops);
  return d;
}

}  // namespace logcaster
