// What the engine keeps for a datagram socket (UDP or Unix datagram) beside its Conn
// record: the datagrams waiting to be sent, with their destinations, and the
// socket's counters.
#pragma once
#include <sys/socket.h>
#include <sys/uio.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "unix_sockets.h"

namespace logcaster {

// Datagrams not sent yet, oldest first, each with its destination (none on a
// connected socket). Bytes live in one buffer; both arrays keep their capacity, so a
// queue that fills and empties every turn allocates nothing after warming up.
class DatagramQueue {
 public:
  bool empty() const { return head_ == entries_.size(); }
  size_t count() const { return entries_.size() - head_; }
  size_t bytes() const { return bytes_; }

  void Push(const char* data, size_t len, const sockaddr* to, socklen_t tolen) {
    Entry e;
    e.off = data_.size();
    e.len = len;
    e.tolen = to ? tolen : 0;
    if (e.tolen) std::memcpy(&e.to, to, tolen);
    data_.insert(data_.end(), data, data + len);
    entries_.push_back(e);
    bytes_ += len;
  }

  // The i-th queued datagram (0 = oldest) as a msghdr over iov; valid until the
  // next Push or Pop.
  void Describe(size_t i, msghdr* m, iovec* iov) {
    Entry& e = entries_[head_ + i];
    iov->iov_base = data_.data() + e.off;
    iov->iov_len = e.len;
    std::memset(m, 0, sizeof *m);
    m->msg_iov = iov;
    m->msg_iovlen = 1;
    if (e.tolen) {
      m->msg_name = &e.to;
      m->msg_namelen = e.tolen;
    }
  }

  // Drop the n oldest (sent, or refused by the kernel).
  void Pop(size_t n) {
    for (size_t i = 0; i < n && head_ < entries_.size(); ++i) bytes_ -= entries_[head_++].len;
    if (head_ == entries_.size()) {
      Clear();
    } else if (head_ >= 64 && head_ * 2 >= entries_.size()) {
      // Keep the arrays bounded while a blocked socket is appended to.
      const size_t off = entries_[head_].off;
      data_.erase(data_.begin(), data_.begin() + static_cast<std::ptrdiff_t>(off));
      entries_.erase(entries_.begin(), entries_.begin() + static_cast<std::ptrdiff_t>(head_));
      for (Entry& e : entries_) e.off -= off;
      head_ = 0;
    }
  }

  void Clear() {
    entries_.clear();
    data_.clear();
    head_ = 0;
    bytes_ = 0;
  }

 private:
  struct Entry {
    size_t off;
    size_t len;
    sockaddr_storage to;
    socklen_t tolen;
  };
  std::vector<Entry> entries_;
  std::vector<char> data_;
  size_t head_ = 0;
  size_t bytes_ = 0;
};

struct DatagramCounters {
  uint64_t received = 0;     // datagrams delivered to the handler
  uint64_t truncated = 0;    // ... of them cut (larger than the receive limit)
  uint64_t dropped = 0;      // the kernel dropped (receive queue full; SO_RXQ_OVFL)
  uint64_t sent = 0;         // datagrams the kernel took
  uint64_t send_errors = 0;  // datagrams the kernel refused (reported, dropped)
};

struct DatagramEndpoint {
  int family = 0;            // AF_INET, AF_INET6 or AF_UNIX
  bool connected = false;    // connect()ed: no destination per send, one peer only
  bool drop_counter = false; // SO_RXQ_OVFL is on: received datagrams carry the counter
  size_t max_message = 0;    // longer datagrams are delivered cut, flagged truncated
  uint32_t drops_seen = 0;   // last SO_RXQ_OVFL value reported
  DatagramQueue queue;
  DatagramCounters counters;
  BoundPath path;            // Unix: the socket file, removed on close
};

}  // namespace logcaster
