// A minimal io_uring ring over the raw syscalls (no liburing): set-up, the two
// mmapped rings, SQE allocation with a backlog when the SQ is full, submission,
// CQE peeking, and one provided-buffer ring. One instance per engine; no globals.
#pragma once
#include <linux/io_uring.h>
#include <stddef.h>
#include <stdint.h>

#include <string>
#include <vector>

// Constants newer than the oldest headers we build against (5.19/6.0 uapi).
#ifndef IORING_RECV_MULTISHOT
#define IORING_RECV_MULTISHOT (1U << 1)
#endif
#ifndef IORING_ACCEPT_MULTISHOT
#define IORING_ACCEPT_MULTISHOT (1U << 0)
#endif
#ifndef IORING_SETUP_SUBMIT_ALL
#define IORING_SETUP_SUBMIT_ALL (1U << 7)
#endif
#ifndef IORING_SETUP_COOP_TASKRUN
#define IORING_SETUP_COOP_TASKRUN (1U << 8)
#endif
#ifndef IORING_SETUP_TASKRUN_FLAG
#define IORING_SETUP_TASKRUN_FLAG (1U << 9)
#endif
#ifndef IORING_SQ_TASKRUN
#define IORING_SQ_TASKRUN (1U << 2)
#endif
#ifndef IORING_POLL_ADD_MULTI
#define IORING_POLL_ADD_MULTI (1U << 0)
#endif
// Incrementally consumed provided buffers (Linux 6.12); the enum in newer uapi
// headers is not visible to the preprocessor, so this one is by value.
#define LOGCASTER_IOU_PBUF_RING_INC 2U

namespace logcaster {

// Returns 0 or -errno. Thin wrappers over syscall(2).
int SysUringSetup(unsigned entries, io_uring_params* p);
int SysUringEnter(int fd, unsigned to_submit, unsigned min_complete, unsigned flags, const void* arg, size_t argsz);
int SysUringRegister(int fd, unsigned opcode, const void* arg, unsigned nr_args);

class Ring {
 public:
  Ring() = default;
  ~Ring() { Close(); }
  Ring(const Ring&) = delete;
  Ring& operator=(const Ring&) = delete;

  // 0 or -errno with *err. flags: extra IORING_SETUP_* (CQSIZE is always used).
  int Open(unsigned sq_entries, unsigned cq_entries, unsigned flags, std::string* err);
  void Close();
  int fd() const { return fd_; }
  unsigned features() const { return features_; }
  unsigned cq_entries() const { return cq_mask_ + 1; }
  bool sqpoll() const { return (setup_flags_ & IORING_SETUP_SQPOLL) != 0; }

  // A zeroed SQE to fill; it is part of the next Submit(). Never fails: when the
  // SQ is full the SQE goes to a backlog that later submissions drain.
  io_uring_sqe* Sqe();
  // SQEs written but not yet handed to the kernel (SQ plus backlog).
  bool HasUnsubmitted() const;
  // Hand everything to the kernel; wait_nr > 0 blocks until that many CQEs
  // (timeout_ms < 0: no limit). Returns 0 or -errno (-ETIME, -EINTR, -EBUSY...).
  int Submit(unsigned wait_nr = 0, int timeout_ms = -1);
  // Ask the kernel to move overflowed CQEs into the ring / run deferred task work.
  bool NeedsEnter() const;
  void FlushOverflow();

  // CQ access: Peek returns the oldest unread CQE or nullptr; Advance consumes it.
  io_uring_cqe* Peek() {
    unsigned tail = __atomic_load_n(cq_ktail_, __ATOMIC_ACQUIRE);
    if (cq_head_ == tail) return nullptr;
    return &cqes_[cq_head_ & cq_mask_];
  }
  void Advance() { __atomic_store_n(cq_khead_, ++cq_head_, __ATOMIC_RELEASE); }
  bool CqEmpty() const { return cq_head_ == __atomic_load_n(cq_ktail_, __ATOMIC_ACQUIRE); }
  unsigned CqReady() const { return __atomic_load_n(cq_ktail_, __ATOMIC_ACQUIRE) - cq_head_; }

 private:
  unsigned SqSpace() const;
  void CopyBacklog();

  int fd_ = -1;
  unsigned setup_flags_ = 0;
  unsigned features_ = 0;
  void* sq_map_ = nullptr;
  size_t sq_map_len_ = 0;
  void* cq_map_ = nullptr;  // == sq_map_ with IORING_FEAT_SINGLE_MMAP
  size_t cq_map_len_ = 0;
  io_uring_sqe* sqes_ = nullptr;
  size_t sqes_len_ = 0;

  unsigned* sq_khead_ = nullptr;
  unsigned* sq_ktail_ = nullptr;
  unsigned* sq_kflags_ = nullptr;
  unsigned sq_mask_ = 0;
  unsigned sq_entries_ = 0;
  unsigned sq_tail_ = 0;  // local copy of the tail we publish

  unsigned* cq_khead_ = nullptr;
  unsigned* cq_ktail_ = nullptr;
  unsigned cq_mask_ = 0;
  unsigned cq_head_ = 0;
  io_uring_cqe* cqes_ = nullptr;

  std::vector<io_uring_sqe> backlog_;  // SQEs that did not fit the SQ yet
};

// A provided-buffer ring (IORING_REGISTER_PBUF_RING): count buffers of size bytes
// in one mapping, shared by every connection's multishot recv.
//
// Where the kernel supports it (6.12+) the ring is registered for incremental
// consumption: a recv takes only the bytes it needs from the head buffer, so small
// messages from thousands of connections pack densely into a few large buffers
// (few pages touched, few buffers outstanding) instead of costing one whole buffer
// each. Older kernels get the classic mode, one buffer per completion.
class BufferRing {
 public:
  BufferRing() = default;
  ~BufferRing() { Close(); }
  BufferRing(const BufferRing&) = delete;
  BufferRing& operator=(const BufferRing&) = delete;

  // incremental: try IOU_PBUF_RING_INC first (classic mode if the kernel refuses).
  int Open(Ring* ring, uint16_t group, unsigned count, unsigned size, bool incremental, std::string* err);
  void Close();
  bool incremental() const { return incremental_; }
  uint16_t group() const { return group_; }
  size_t bytes() const { return data_len_; }

  // A recv completion reported len bytes in buffer bid: returns where they are and
  // queues the buffer for reuse once the kernel is done with it (classic: always;
  // incremental: when its last byte has been handed out). The bytes stay valid
  // until the next Publish.
  const char* Take(unsigned bid, size_t len);
  // Classic mode: where buffer bid's bytes are, without handing it back (a consumer
  // that may have to leave the completion for later looks first, then Takes).
  const char* Peek(unsigned bid) const { return bid < count_ ? data_ + static_cast<size_t>(bid) * size_ : nullptr; }
  // Buffers handed back since the last call (so a starved recv may be re-armed).
  unsigned TakeRecycledCount() {
    unsigned n = recycled_;
    recycled_ = 0;
    return n;
  }
  // Makes queued buffers visible to the kernel.
  void Publish() {
    if (tail_ != published_) {
      __atomic_store_n(&ring_->tail, tail_, __ATOMIC_RELEASE);
      published_ = tail_;
    }
  }

 private:
  char* Buffer(unsigned bid) { return data_ + static_cast<size_t>(bid) * size_; }
  void Recycle(unsigned bid);
  int Register(unsigned flags);

  Ring* owner_ = nullptr;
  io_uring_buf_ring* ring_ = nullptr;
  size_t ring_len_ = 0;
  char* data_ = nullptr;
  size_t data_len_ = 0;
  unsigned count_ = 0;
  unsigned size_ = 0;
  uint16_t group_ = 0;
  uint16_t tail_ = 0;
  uint16_t published_ = 0;
  unsigned recycled_ = 0;
  bool registered_ = false;
  bool incremental_ = false;
  std::vector<uint32_t> consumed_;  // incremental: bytes of each buffer handed out
};

}  // namespace logcaster
