// Per-connection outgoing bytes that the kernel did not take yet. A singly linked
// list of exact-size chunks: an idle connection costs two pointers, not a buffer.
#pragma once
#include <sys/uio.h>
#include <cstdlib>
#include <cstring>
#include <new>

namespace logcaster {

class WriteQueue {
 public:
  WriteQueue() = default;
  WriteQueue(const WriteQueue&) = delete;
  WriteQueue& operator=(const WriteQueue&) = delete;
  ~WriteQueue() { Clear(); }

  size_t size() const { return bytes_; }
  bool empty() const { return bytes_ == 0; }

  // Copies data; false when out of memory. Small writes are packed into the tail
  // chunk, so a burst of tiny writes becomes a few large iovecs (one sendmsg or one
  // io_uring send moves them all) instead of one malloc and one iovec each.
  bool Append(const char* data, size_t len) {
    if (len == 0) return true;
    if (tail_ && tail_->cap - tail_->len >= len) {
      std::memcpy(tail_->data + tail_->len, data, len);
      tail_->len += len;
      bytes_ += len;
      return true;
    }
    size_t cap = len < kMinChunk ? kMinChunk : len;
    Chunk* c = static_cast<Chunk*>(std::malloc(sizeof(Chunk) + cap));
    if (!c) return false;
    c->next = nullptr;
    c->cap = cap;
    c->len = len;
    c->off = 0;
    std::memcpy(c->data, data, len);
    if (tail_) tail_->next = c; else head_ = c;
    tail_ = c;
    bytes_ += len;
    return true;
  }

  // Fill up to max iovecs with the queued bytes, oldest first.
  int Fill(struct iovec* iov, int max) const {
    int n = 0;
    for (Chunk* c = head_; c && n < max; c = c->next, ++n) {
      iov[n].iov_base = c->data + c->off;
      iov[n].iov_len = c->len - c->off;
    }
    return n;
  }

  // Drop n bytes from the front (they were sent).
  void Consume(size_t n) {
    bytes_ -= n;
    while (n > 0 && head_) {
      size_t avail = head_->len - head_->off;
      if (n < avail) { head_->off += n; return; }
      n -= avail;
      Chunk* next = head_->next;
      std::free(head_);
      head_ = next;
    }
    if (!head_) tail_ = nullptr;
  }

  void Clear() {
    while (head_) { Chunk* n = head_->next; std::free(head_); head_ = n; }
    tail_ = nullptr;
    bytes_ = 0;
  }

 private:
  static constexpr size_t kMinChunk = 16 * 1024;
  struct Chunk {
    Chunk* next;
    size_t cap;  // bytes allocated for data
    size_t len;  // bytes filled (data[off, len) is still to send)
    size_t off;
    char data[1];
  };
  Chunk* head_ = nullptr;
  Chunk* tail_ = nullptr;
  size_t bytes_ = 0;
};

}  // namespace logcaster
