// Outgoing bytes the kernel did not take yet: per-connection queues of chunks, and
// the per-engine pool their standard-size chunks are recycled through.
#pragma once
#include <sys/uio.h>
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <new>

namespace logcaster {

// Standard-size queue chunks recycled per engine. A completion backend queues every
// small write of a turn and frees the chunk when its send completes, thousands of
// times per turn; through malloc that churn made glibc trim and regrow the heap
// (brk plus a page fault per fresh page). Oversized chunks bypass the pool.
class ChunkPool {
 public:
  static constexpr size_t kChunkBytes = 16 * 1024;  // data bytes of a standard chunk
  ChunkPool() = default;
  ChunkPool(const ChunkPool&) = delete;
  ChunkPool& operator=(const ChunkPool&) = delete;
  ~ChunkPool() {
    while (free_) { Node* n = free_->next; std::free(free_); free_ = n; }
  }
  // Memory for a chunk header plus kChunkBytes, or nullptr.
  void* Get() {
    if (!free_) return std::malloc(kBlockBytes);
    Node* n = free_;
    free_ = n->next;
    cached_--;
    return n;
  }
  void Put(void* block) {
    if (cached_ >= kMaxCached) { std::free(block); return; }
    Node* n = static_cast<Node*>(block);
    n->next = free_;
    free_ = n;
    cached_++;
  }
  static constexpr size_t kBlockBytes = 64 + kChunkBytes;  // >= sizeof(chunk header)

 private:
  static constexpr size_t kMaxCached = 512;  // at most 8 MiB kept for reuse
  struct Node { Node* next; };
  Node* free_ = nullptr;
  size_t cached_ = 0;
};

// Per-connection outgoing bytes that the kernel did not take yet. A singly linked
// list of chunks: an idle connection costs two pointers, not a buffer.
class WriteQueue {
 public:
  WriteQueue() = default;
  WriteQueue(const WriteQueue&) = delete;
  WriteQueue& operator=(const WriteQueue&) = delete;
  ~WriteQueue() { Clear(); }

  // Standard chunks come from (and go back to) pool; set once, before first use.
  void UsePool(ChunkPool* pool) { pool_ = pool; }

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
    const bool standard = len <= ChunkPool::kChunkBytes;
    size_t cap = standard ? ChunkPool::kChunkBytes : len;
    void* mem = standard && pool_ ? pool_->Get() : std::malloc(offsetof(Chunk, data) + cap);
    if (!mem) return false;
    Chunk* c = static_cast<Chunk*>(mem);
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
      Release(head_);
      head_ = next;
    }
    if (!head_) tail_ = nullptr;
  }

  void Clear() {
    while (head_) { Chunk* n = head_->next; Release(head_); head_ = n; }
    tail_ = nullptr;
    bytes_ = 0;
  }

 private:
  struct Chunk {
    Chunk* next;
    size_t cap;  // bytes allocated for data
    size_t len;  // bytes filled (data[off, len) is still to send)
    size_t off;
    char data[1];
  };
  static_assert(offsetof(Chunk, data) <= ChunkPool::kBlockBytes - ChunkPool::kChunkBytes, "chunk header fits");
  void Release(Chunk* c) {
    if (c->cap == ChunkPool::kChunkBytes && pool_) pool_->Put(c); else std::free(c);
  }
  ChunkPool* pool_ = nullptr;
  Chunk* head_ = nullptr;
  Chunk* tail_ = nullptr;
  size_t bytes_ = 0;
};

}  // namespace logcaster
