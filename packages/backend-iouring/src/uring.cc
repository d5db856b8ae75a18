#include "uring.h"

#include <errno.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <cstring>

namespace logcaster {

int SysUringSetup(unsigned entries, io_uring_params* p) {
  long r = syscall(__NR_io_uring_setup, entries, p);
  return r < 0 ? -errno : static_cast<int>(r);
}

int SysUringEnter(int fd, unsigned to_submit, unsigned min_complete, unsigned flags, const void* arg, size_t argsz) {
  long r = syscall(__NR_io_uring_enter, fd, to_submit, min_complete, flags, arg, argsz);
  return r < 0 ? -errno : static_cast<int>(r);
}

int SysUringRegister(int fd, unsigned opcode, const void* arg, unsigned nr_args) {
  long r = syscall(__NR_io_uring_register, fd, opcode, arg, nr_args);
  return r < 0 ? -errno : static_cast<int>(r);
}

int Ring::Open(unsigned sq_entries, unsigned cq_entries, unsigned flags, std::string* err) {
  io_uring_params p;
  std::memset(&p, 0, sizeof p);
  p.flags = flags | IORING_SETUP_CQSIZE;
  p.cq_entries = cq_entries;
  if (flags & IORING_SETUP_SQPOLL) p.sq_thread_idle = 50;
  int fd = SysUringSetup(sq_entries, &p);
  if (fd < 0) {
    *err = std::string("io_uring_setup: ") + std::strerror(-fd);
    return fd;
  }
  fd_ = fd;
  setup_flags_ = p.flags;
  features_ = p.features;

  sq_map_len_ = p.sq_off.array + p.sq_entries * sizeof(unsigned);
  cq_map_len_ = p.cq_off.cqes + p.cq_entries * sizeof(io_uring_cqe);
  const bool single = (p.features & IORING_FEAT_SINGLE_MMAP) != 0;
  if (single && cq_map_len_ > sq_map_len_) sq_map_len_ = cq_map_len_;
  void* sq = mmap(nullptr, sq_map_len_, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, IORING_OFF_SQ_RING);
  if (sq == MAP_FAILED) {
    int e = errno;
    *err = std::string("mmap(io_uring SQ ring): ") + std::strerror(e);
    Close();
    return -e;
  }
  sq_map_ = sq;
  if (single) {
    cq_map_ = sq_map_;
    cq_map_len_ = 0;  // shares the SQ mapping
  } else {
    void* cq = mmap(nullptr, cq_map_len_, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, IORING_OFF_CQ_RING);
    if (cq == MAP_FAILED) {
      int e = errno;
      cq_map_len_ = 0;
      *err = std::string("mmap(io_uring CQ ring): ") + std::strerror(e);
      Close();
      return -e;
    }
    cq_map_ = cq;
  }
  sqes_len_ = p.sq_entries * sizeof(io_uring_sqe);
  void* sqes = mmap(nullptr, sqes_len_, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, IORING_OFF_SQES);
  if (sqes == MAP_FAILED) {
    int e = errno;
    sqes_len_ = 0;
    *err = std::string("mmap(io_uring SQEs): ") + std::strerror(e);
    Close();
    return -e;
  }
  sqes_ = static_cast<io_uring_sqe*>(sqes);

  char* sqb = static_cast<char*>(sq_map_);
  sq_khead_ = reinterpret_cast<unsigned*>(sqb + p.sq_off.head);
  sq_ktail_ = reinterpret_cast<unsigned*>(sqb + p.sq_off.tail);
  sq_kflags_ = reinterpret_cast<unsigned*>(sqb + p.sq_off.flags);
  sq_mask_ = *reinterpret_cast<unsigned*>(sqb + p.sq_off.ring_mask);
  sq_entries_ = p.sq_entries;
  unsigned* array = reinterpret_cast<unsigned*>(sqb + p.sq_off.array);
  for (unsigned i = 0; i < sq_entries_; ++i) array[i] = i;  // identity: SQE slot i is entry i
  sq_tail_ = *sq_ktail_;

  char* cqb = static_cast<char*>(cq_map_);
  cq_khead_ = reinterpret_cast<unsigned*>(cqb + p.cq_off.head);
  cq_ktail_ = reinterpret_cast<unsigned*>(cqb + p.cq_off.tail);
  cq_mask_ = *reinterpret_cast<unsigned*>(cqb + p.cq_off.ring_mask);
  cqes_ = reinterpret_cast<io_uring_cqe*>(cqb + p.cq_off.cqes);
  cq_head_ = *cq_khead_;
  return 0;
}

void Ring::Close() {
  if (sqes_) munmap(sqes_, sqes_len_);
  if (cq_map_ && cq_map_ != sq_map_ && cq_map_len_) munmap(cq_map_, cq_map_len_);
  if (sq_map_) munmap(sq_map_, sq_map_len_);
  sqes_ = nullptr;
  cq_map_ = sq_map_ = nullptr;
  if (fd_ >= 0) close(fd_);
  fd_ = -1;
  backlog_.clear();
}

unsigned Ring::SqSpace() const {
  return sq_entries_ - (sq_tail_ - __atomic_load_n(sq_khead_, __ATOMIC_ACQUIRE));
}

void Ring::CopyBacklog() {
  size_t i = 0;
  while (i < backlog_.size() && SqSpace() > 0) {
    sqes_[sq_tail_ & sq_mask_] = backlog_[i++];
    sq_tail_++;
  }
  backlog_.erase(backlog_.begin(), backlog_.begin() + i);
}

io_uring_sqe* Ring::Sqe() {
  if (backlog_.empty() && SqSpace() == 0 && !sqpoll()) Submit();  // make room now
  if (backlog_.empty() && SqSpace() > 0) {
    io_uring_sqe* s = &sqes_[sq_tail_ & sq_mask_];
    sq_tail_++;
    std::memset(s, 0, sizeof *s);
    return s;
  }
  backlog_.emplace_back();
  std::memset(&backlog_.back(), 0, sizeof(io_uring_sqe));
  return &backlog_.back();  // valid until the next Sqe() call
}

bool Ring::HasUnsubmitted() const {
  if (!backlog_.empty()) return true;
  if (sqpoll()) return sq_tail_ != *sq_ktail_;
  return sq_tail_ != __atomic_load_n(sq_khead_, __ATOMIC_ACQUIRE);
}

bool Ring::NeedsEnter() const {
  return (__atomic_load_n(sq_kflags_, __ATOMIC_RELAXED) & (IORING_SQ_CQ_OVERFLOW | IORING_SQ_TASKRUN)) != 0;
}

void Ring::FlushOverflow() { SysUringEnter(fd_, 0, 0, IORING_ENTER_GETEVENTS, nullptr, 0); }

int Ring::Submit(unsigned wait_nr, int timeout_ms) {
  for (int pass = 0;; ++pass) {
    CopyBacklog();
    __atomic_store_n(sq_ktail_, sq_tail_, __ATOMIC_RELEASE);
    unsigned to_submit = 0;
    unsigned flags = 0;
    if (sqpoll()) {
      __atomic_thread_fence(__ATOMIC_SEQ_CST);
      if (__atomic_load_n(sq_kflags_, __ATOMIC_RELAXED) & IORING_SQ_NEED_WAKEUP) flags |= IORING_ENTER_SQ_WAKEUP;
    } else {
      to_submit = sq_tail_ - __atomic_load_n(sq_khead_, __ATOMIC_ACQUIRE);
    }
    unsigned want = pass == 0 ? wait_nr : 0;
    if (to_submit == 0 && want == 0 && flags == 0) return 0;
    __kernel_timespec ts;
    io_uring_getevents_arg arg;
    const void* argp = nullptr;
    size_t argsz = 0;
    if (want) {
      flags |= IORING_ENTER_GETEVENTS;
      if (timeout_ms >= 0) {
        ts.tv_sec = timeout_ms / 1000;
        ts.tv_nsec = static_cast<long long>(timeout_ms % 1000) * 1000000;
        std::memset(&arg, 0, sizeof arg);
        arg.sigmask = 0;
        arg.sigmask_sz = _NSIG / 8;
        arg.ts = reinterpret_cast<uint64_t>(&ts);
        flags |= IORING_ENTER_EXT_ARG;
        argp = &arg;
        argsz = sizeof arg;
      }
    }
    int r = SysUringEnter(fd_, to_submit, want, flags, argp, argsz);
    if (r < 0 && r != -EINTR) return r;
    // The kernel took what it could; continue with what the backlog still holds.
    if (backlog_.empty() || (r >= 0 && static_cast<unsigned>(r) == 0 && to_submit > 0)) return r < 0 ? r : 0;
  }
}

int BufferRing::Open(Ring* ring, uint16_t group, unsigned count, unsigned size, bool incremental,
                     std::string* err) {
  count_ = count;
  size_ = size;
  group_ = group;
  long page = sysconf(_SC_PAGESIZE);
  ring_len_ = (count * sizeof(io_uring_buf) + page - 1) / page * page;
  void* rm = mmap(nullptr, ring_len_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (rm == MAP_FAILED) {
    int e = errno;
    *err = std::string("mmap(buffer ring): ") + std::strerror(e);
    return -e;
  }
  ring_ = static_cast<io_uring_buf_ring*>(rm);
  // Fault the pages in before registering: the kernel pins the pages present now,
  // and an untouched private mapping would pin the shared zero page instead.
  std::memset(ring_, 0, ring_len_);
  data_len_ = static_cast<size_t>(count) * size;
  void* dm = mmap(nullptr, data_len_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (dm == MAP_FAILED) {
    int e = errno;
    *err = std::string("mmap(receive buffers): ") + std::strerror(e);
    Close();
    return -e;
  }
  data_ = static_cast<char*>(dm);
  owner_ = ring;
  int r = incremental ? Register(LOGCASTER_IOU_PBUF_RING_INC) : -EINVAL;
  incremental_ = r == 0;
  if (r == -EINVAL) r = Register(0);  // kernel before 6.12: classic buffers
  if (r < 0) {
    *err = std::string("io_uring_register(PBUF_RING): ") + std::strerror(-r);
    Close();
    return r;
  }
  registered_ = true;
  consumed_.assign(incremental_ ? count : 0, 0);
  tail_ = published_ = 0;
  for (unsigned i = 0; i < count; ++i) Recycle(i);
  recycled_ = 0;
  Publish();
  return 0;
}

int BufferRing::Register(unsigned flags) {
  // io_uring_buf_reg with the field that older uapi headers still call "pad".
  struct {
    uint64_t ring_addr;
    uint32_t ring_entries;
    uint16_t bgid;
    uint16_t flags;
    uint64_t resv[3];
  } reg;
  static_assert(sizeof reg == sizeof(io_uring_buf_reg), "io_uring_buf_reg layout");
  std::memset(&reg, 0, sizeof reg);
  reg.ring_addr = reinterpret_cast<uint64_t>(ring_);
  reg.ring_entries = count_;
  reg.bgid = group_;
  reg.flags = static_cast<uint16_t>(flags);
  return SysUringRegister(owner_->fd(), IORING_REGISTER_PBUF_RING, &reg, 1);
}

const char* BufferRing::Take(unsigned bid, size_t len) {
  if (bid >= count_) return nullptr;
  if (!incremental_) {
    Recycle(bid);
    return Buffer(bid);
  }
  // The kernel moves past a buffer only once every byte of it was used, so it is
  // ours again exactly when the bytes handed out reach its size. (Counting bytes,
  // not trusting IORING_CQE_F_BUF_MORE, also covers zero-length completions at
  // EOF, which report the buffer without consuming any of it.)
  uint32_t& used = consumed_[bid];
  const char* at = Buffer(bid) + used;
  used += static_cast<uint32_t>(len);
  if (used >= size_) {
    used = 0;
    Recycle(bid);
  }
  return at;
}

void BufferRing::Recycle(unsigned bid) {
  // Not ring_->bufs: in C++ the uapi's __DECLARE_FLEX_ARRAY puts an empty struct
  // (size 1, not 0 as in C) before the array and shifts it by 8 bytes.
  io_uring_buf* b = reinterpret_cast<io_uring_buf*>(ring_) + (tail_ & (count_ - 1));
  b->addr = reinterpret_cast<uint64_t>(Buffer(bid));
  b->len = size_;
  b->bid = static_cast<uint16_t>(bid);
  tail_++;
  recycled_++;
}

void BufferRing::Close() {
  if (registered_ && owner_ && owner_->fd() >= 0) {
    io_uring_buf_reg reg;
    std::memset(&reg, 0, sizeof reg);
    reg.bgid = group_;
    SysUringRegister(owner_->fd(), IORING_UNREGISTER_PBUF_RING, &reg, 1);
  }
  registered_ = false;
  owner_ = nullptr;
  if (data_) munmap(data_, data_len_);
  if (ring_) munmap(ring_, ring_len_);
  data_ = nullptr;
  ring_ = nullptr;
}

}  // namespace logcaster
