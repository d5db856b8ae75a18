// Datagram sockets (UDP over IPv4/IPv6, Unix datagram): creation, batched sends
// (sendmmsg) and batched receives (recvmmsg), shared by every driver that does its
// own syscalls. Where the platform lacks the batched calls (macOS) they are loops.
#pragma once
#include <sys/socket.h>
#include <sys/uio.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "datagram.h"
#include "driver_host.h"

#if defined(__linux__) || defined(__FreeBSD__)
#define LOGCASTER_HAVE_MMSG 1  // recvmmsg / sendmmsg
#endif

namespace logcaster {

struct DatagramSpec {
  bool unix_socket = false;
  // UDP
  std::string host;
  int port = 0;
  bool ipv6_only = false;
  bool reuse_port = false;
  std::string connect_host;  // "" = not connected
  int connect_port = 0;
  // Unix
  std::string path;          // "" = unnamed (a client socket)
  int mode = -1;             // file permissions; -1 = leave the umask's
  std::string connect_path;  // "" = not connected
  // both
  int recv_buffer = 0;       // SO_RCVBUF bytes; 0 = the system default
  int send_buffer = 0;
};

// A bound (and optionally connected) non-blocking datagram socket; fd or -errno with
// *err. UDP: *bound_port gets the port; Unix: *bound the socket file. Sets
// SO_RXQ_OVFL where the system has it (*drop_counter).
int DatagramSocket(const DatagramSpec& spec, int* bound_port, BoundPath* bound, bool* drop_counter, std::string* err);

// Largest datagrams per batched call.
constexpr int kDatagramBatch = 64;
// Space for the SO_RXQ_OVFL control message of one datagram.
constexpr size_t kDatagramControl = 32;

// Send queued datagrams, oldest first, in one sendmmsg: how many the kernel took
// (0 with *blocked when the socket is full), or -errno when it refused the oldest.
long SendDatagrams(int fd, DatagramQueue* queue, bool* blocked);

// The SO_RXQ_OVFL counter a received datagram carries, if any. (The kernel attaches
// it only to datagrams queued after a drop.)
bool DropCounterOf(const msghdr& m, uint32_t* drops);
// The same counter read from the socket now (SO_MEMINFO, Linux): drops at the end of
// a burst show before another datagram arrives to carry them.
bool DropCountNow(int fd, uint32_t* drops);

// A socket's receive batch: up to kDatagramBatch datagrams per recvmmsg into buffers
// of max_message bytes (allocated once; pages are touched only as far as datagrams
// reach). Datagrams the engine had no room for stay here for the next round.
class DatagramReceiver {
 public:
  explicit DatagramReceiver(size_t max_message);
  // Receive a new batch (only when !HasPending()): count, 0 when nothing was
  // waiting, or -errno.
  int Receive(int fd);
  bool HasPending() const { return pos_ < count_; }
  DatagramIn Current() const;  // the next undelivered datagram
  void Next() { pos_++; }

 private:
#ifdef LOGCASTER_HAVE_MMSG
  msghdr& Hdr(int i) const { return msgs_[i].msg_hdr; }
  std::unique_ptr<mmsghdr[]> msgs_;
#else
  msghdr& Hdr(int i) const { return msgs_[i]; }
  std::unique_ptr<msghdr[]> msgs_;
#endif
  size_t slot_;
  std::unique_ptr<char[]> data_;
  std::unique_ptr<iovec[]> iov_;
  std::unique_ptr<sockaddr_storage[]> names_;
  std::unique_ptr<char[]> control_;
  std::unique_ptr<size_t[]> len_;  // bytes received per datagram
  int count_ = 0;
  int pos_ = 0;
};

}  // namespace logcaster
