// The io_uring driver: ring and buffer set-up, submission, the loop turn and the
// reaping of completions, listeners, connections and sends. The receive path is in
// iouring_receive.cc, the probe in iouring_probe.cc.
#include "iouring_driver.h"

#include <errno.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>

#include "posix_util.h"
#include "sockets.h"

namespace logcaster {

namespace {

constexpr unsigned kSqEntries = 4096;
// The CQ cannot overflow in practice: outstanding CQEs are bounded by the provided
// buffers (one per unreaped recv CQE) plus a few per connection (final recv, send,
// connect, cancel). 65536 is the kernel maximum; overflow is still handled (NODROP).
constexpr unsigned kCqEntries = 65536;
constexpr unsigned kCqEntriesSmall = 16384;
constexpr uint16_t kBufGroup = 0;
// Receive buffers. Incremental mode: 128 x 64 KiB (8 MiB of address space, touched
// only as far as bytes actually arrive; a 64-byte message uses 64 bytes). Classic
// mode (kernels before 6.12): every completion takes a whole buffer, so many small ones.
constexpr unsigned kIncBufCount = 128;  // powers of two
constexpr unsigned kIncBufSize = 64 * 1024;
constexpr unsigned kBufCount = 4096;
constexpr unsigned kBufSize = 4096;
constexpr int kDrainTimeoutMs = 10000;
constexpr size_t kBatchSendMax = 16 * 1024;  // larger writes are sent directly
constexpr size_t kReapPerHarvest = 1024;
// Bytes a round may copy into held buffers before it stops reaping. Past one
// delivery per connection per batch (kMaxReadPerBatch) a completion is copied and
// held; left unbounded, a round reaped up to kReapPerHarvest completions whatever
// the arena could take, and 100 streaming connections held 33 MB in copies. Left in
// the CQ, the rest keeps its provided buffer, so the ring bounds what is taken from
// the kernel and the sockets' own buffers (and TCP flow control) hold the remainder.
constexpr size_t kHeldPerRound = kMaxReadPerBatch;
constexpr size_t kReapAll = ~size_t{0};

uint32_t PollMask(uint32_t events) {
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
  return (events << 16) | (events >> 16);  // poll32_events is stored half-word swapped
#else
  return events;
#endif
}

}  // namespace

IoUringDriver::IoUringDriver(const DriverOptions& options, const IoUringTuning& tuning)
    : opts_(options), tuning_(tuning) {}

IoUringDriver::~IoUringDriver() {
  dgram_bufs_.Close();
  bufs_.Close();
  ring_.Close();  // cancels what is left (the wake poll)
  if (wakefd_ >= 0) close(wakefd_);
}

int IoUringDriver::Init(DriverHost* host, std::string* err) {
  host_ = host;
  unsigned base = opts_.sqpoll ? IORING_SETUP_SQPOLL : 0;
  // COOP_TASKRUN: completions do not interrupt the JS thread with an IPI each; their
  // task work runs at our next syscall (epoll_wait in libuv, send, io_uring_enter),
  // and a thread sleeping in epoll_wait is still woken. TASKRUN_FLAG tells us when
  // work is pending so Harvest can enter for it. Not valid with SQPOLL.
  const bool coop = !opts_.sqpoll && tuning_.coop_taskrun;
  unsigned extra = coop ? IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG : 0;
  // Small rings (tests): a 64-entry SQ and 64 classic buffers, so a few hundred
  // connections reach the limits 10,000 reach with the real sizes.
  const bool small = tuning_.small_rings;
  const unsigned sq = small ? 64 : kSqEntries;
  int r = ring_.Open(sq, kCqEntries, base | extra | IORING_SETUP_SUBMIT_ALL, err);
  if (r == -EINVAL) r = ring_.Open(sq, kCqEntries, base | IORING_SETUP_SUBMIT_ALL, err);
  if (r == -EINVAL) r = ring_.Open(sq, kCqEntries, base, err);
  if (r == -EINVAL || r == -ENOMEM) r = ring_.Open(sq, kCqEntriesSmall, base, err);
  if (r < 0) return r;
  // Classic buffers forced: the pre-6.12 buffer mode (tests).
  const bool classic = tuning_.classic_buffers;
  r = classic ? -EINVAL : bufs_.Open(&ring_, kBufGroup, kIncBufCount, kIncBufSize, true, err);
  if (r == 0 && !bufs_.incremental()) bufs_.Close();
  if (classic || (r == 0 && !bufs_.incremental())) {
    r = bufs_.Open(&ring_, kBufGroup, small ? 64 : kBufCount, kBufSize, false, err);
  }
  if (r < 0) {
    ring_.Close();
    return r;
  }
  wakefd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (wakefd_ < 0) {
    int e = errno;
    *err = std::string("eventfd: ") + std::strerror(e);
    bufs_.Close();
    ring_.Close();
    return -e;
  }
  ArmWake();
  r = ring_.Submit();
  if (r < 0) {
    *err = std::string("io_uring_enter: ") + std::strerror(-r);
    bufs_.Close();
    ring_.Close();
    close(wakefd_);
    wakefd_ = -1;
    return r;
  }
  return 0;
}

// ---- submission helpers ----

void IoUringDriver::SubmitNow() {
  PublishBuffers();
  if (ring_.HasUnsubmitted()) {
    int r = ring_.Submit();
    if (r == -EBUSY) {
      // CQ overflow backlog: the kernel refuses new work until we reap. The SQEs
      // stay queued; make sure a turn runs to reap and resubmit.
      Wake();
    }
  }
}

void IoUringDriver::ArmWake() {
  io_uring_sqe* s = ring_.Sqe();
  s->opcode = IORING_OP_POLL_ADD;
  s->fd = wakefd_;
  s->len = IORING_POLL_ADD_MULTI;
  s->poll32_events = PollMask(POLLIN);
  s->user_data = Ud(kOpWake, 0);
}

void IoUringDriver::Wake() {
  uint64_t one = 1;
  ssize_t n = write(wakefd_, &one, sizeof one);
  (void)n;  // EAGAIN: the counter is saturated, a wake-up is pending anyway
}

void IoUringDriver::Cancel(uint64_t user_data) {
  io_uring_sqe* s = ring_.Sqe();
  s->opcode = IORING_OP_ASYNC_CANCEL;
  s->fd = -1;
  s->addr = user_data;
  s->user_data = Ud(kOpCancel, 0);
}

void IoUringDriver::ArmAccept(int32_t lid) {
  ListenerState& ls = listeners_[lid];
  io_uring_sqe* s = ring_.Sqe();
  s->opcode = IORING_OP_ACCEPT;
  s->fd = ls.fd;
  s->accept_flags = SOCK_NONBLOCK | SOCK_CLOEXEC;
  s->ioprio = IORING_ACCEPT_MULTISHOT;
  s->user_data = Ud(kOpAccept, lid);
  ls.armed = true;
  ls.cancel_sent = false;
}

void IoUringDriver::StartSend(Conn* c, ConnState* st) {
  struct iovec iov[kMaxSendIov];
  int cnt = c->wq.Fill(iov, kMaxSendIov);
  if (cnt <= 0) return;
  io_uring_sqe* s = ring_.Sqe();
  s->fd = c->fd;
  s->msg_flags = MSG_NOSIGNAL;
  s->user_data = Ud(kOpSend, c->id);
  if (cnt == 1) {
    s->opcode = IORING_OP_SEND;
    s->addr = reinterpret_cast<uint64_t>(iov[0].iov_base);
    s->len = static_cast<uint32_t>(iov[0].iov_len);
  } else {
    // The kernel may read the msghdr/iovecs after submission: keep them per connection.
    if (!st->iov) st->iov.reset(new struct iovec[kMaxSendIov]);
    std::memcpy(st->iov.get(), iov, sizeof(struct iovec) * cnt);
    std::memset(&st->msg, 0, sizeof st->msg);
    st->msg.msg_iov = st->iov.get();
    st->msg.msg_iovlen = cnt;
    s->opcode = IORING_OP_SENDMSG;
    s->addr = reinterpret_cast<uint64_t>(&st->msg);
    s->len = 1;
  }
  st->send_inflight = true;
}

// ---- the loop turn ----

bool IoUringDriver::Harvest(int timeout_ms) {
  // A further round of the same turn: the previous round's dispatch is complete,
  // so its sends go out now. The kernel runs them inside this enter, which keeps
  // that cost within the round (and the engine's turn budget) instead of piling
  // every round's sends into one long EndTurn.
  if (in_turn_) StartListedSends();
  in_turn_ = true;
  held_this_round_ = 0;
  const bool wait = timeout_ms != 0 && ring_.CqEmpty() && held_ready_.empty();
  if (wait || ring_.HasUnsubmitted() || ring_.NeedsEnter()) {
    PublishBuffers();
    int r = ring_.Submit(wait ? 1 : 0, timeout_ms > 0 ? timeout_ms : -1);
    if (r == -EBUSY || ring_.NeedsEnter()) ring_.FlushOverflow();
  }
  DrainHeld();
  // A bounded share per harvest, like a readiness backend's one epoll_wait of 1024
  // events: every CQE reaped now is a send submitted at EndTurn, and the kernel runs
  // those sends (plus pending receive work) inside that one io_uring_enter. Reaping
  // a whole 10,000-connection CQ at once made single turns last 100 ms.
  size_t reaped = Reap(kReapPerHarvest);
  if (ring_.NeedsEnter() && !host_->BatchFull() && reaped < kReapPerHarvest) {
    ring_.FlushOverflow();  // overflowed CQEs move into the ring now there is room
    Reap(kReapPerHarvest - reaped);
  }
  PublishBuffers();
  return !ring_.CqEmpty() || !held_ready_.empty() || ring_.NeedsEnter();
}

void IoUringDriver::StartListedSends() {
  if (send_ready_.empty()) return;
  std::vector<int32_t>& list = send_work_;  // swapped, not reallocated, every round
  list.swap(send_ready_);
  for (int32_t id : list) {
    Conn* c = host_->Lookup(id);
    if (!c) continue;
    ConnState* s = State(c);
    if (!s) continue;
    s->send_listed = false;
    if (!c->closing && !c->connecting && !s->send_inflight && !c->wq.empty()) StartSend(c, s);
  }
  list.clear();
}

void IoUringDriver::EndTurn() {
  in_turn_ = false;
  StartListedSends();
  RearmStarved();
  SubmitNow();
  // Held bytes became deliverable during the dispatch (resume, arena full): no
  // kernel event will announce them, so make sure another turn runs.
  if (!held_ready_.empty()) Wake();
}

size_t IoUringDriver::Reap(size_t max) {
  // At most the CQEs present now: handlers may submit (a full SQ is flushed at once)
  // and completions posted meanwhile belong to the next turn, so a turn always ends.
  // max == kReapAll: shutdown drain, no batch to respect.
  const bool ignore_batch = max == kReapAll;
  size_t n = 0;
  for (size_t left = std::min<size_t>(ring_.CqReady(), max); left > 0 && (ignore_batch || (!host_->BatchFull() && held_this_round_ < kHeldPerRound)); --left) {
    io_uring_cqe* p = ring_.Peek();
    if (!p) break;
    if (KindOf(p->user_data) == kOpRecvMsg) {
      // A datagram goes to the arena before its CQE is consumed: one the batch has
      // no room for waits in the CQ for the next round.
      if (!OnRecvMsgCqe(*p)) break;
      ring_.Advance();
      n++;
      continue;
    }
    io_uring_cqe cqe = *p;
    ring_.Advance();  // the provided buffer stays ours until Recycle
    Handle(cqe);
    n++;
  }
  return n;
}

void IoUringDriver::Handle(const io_uring_cqe& cqe) {
  const OpKind kind = KindOf(cqe.user_data);
  const int32_t id = static_cast<int32_t>(cqe.user_data & 0xffffffffu);
  switch (kind) {
    case kOpAccept:
      OnAcceptCqe(id, cqe);
      return;
    case kOpWake: {
      uint64_t v;
      while (read(wakefd_, &v, sizeof v) > 0) {}
      if (!(cqe.flags & IORING_CQE_F_MORE)) ArmWake();
      return;
    }
    case kOpCancel:
      return;  // result of a cancellation: the cancelled op reports itself
    case kOpRecv:
    case kOpSend:
    case kOpConnect:
    case kOpPollOut:
      break;
    default:
      return;
  }
  Conn* c = host_->Lookup(id);
  if (!c || !State(c)) {
    // Cannot happen (slots are held until their last completion); account the buffer.
    if (cqe.flags & IORING_CQE_F_BUFFER) bufs_.Take(cqe.flags >> IORING_CQE_BUFFER_SHIFT, cqe.res > 0 ? cqe.res : 0);
    return;
  }
  if (kind == kOpRecv) OnRecvCqe(c, cqe);
  else if (kind == kOpSend) OnSendCqe(c, cqe);
  else if (kind == kOpPollOut) OnPollOutCqe(c, cqe);
  else OnConnectCqe(c, cqe);
}

void IoUringDriver::OnAcceptCqe(int32_t lid, const io_uring_cqe& cqe) {
  if (lid < 0 || static_cast<size_t>(lid) >= listeners_.size()) {
    if (cqe.res >= 0) close(cqe.res);
    return;
  }
  ListenerState& ls = listeners_[lid];
  const bool more = (cqe.flags & IORING_CQE_F_MORE) != 0;
  if (!more) ls.armed = false;
  Listener* l = ls.removed ? nullptr : host_->LookupListener(lid);
  bool rearm = true;
  if (cqe.res >= 0) {
    if (l) host_->OnAccepted(l, cqe.res); else close(cqe.res);
  } else {
    int err = -cqe.res;
    if (err == ECANCELED || err == EINTR || err == EAGAIN || err == ECONNABORTED || err == EPROTO) {
      // transient, or our own cancellation: re-arm if still wanted
    } else if (l) {
      host_->OnAcceptError(l, err);  // EMFILE & co. pause accepting (PauseAccept)
      if (err != EMFILE && err != ENFILE && err != ENOBUFS && err != ENOMEM) rearm = false;
    }
  }
  ListenerState& ls2 = listeners_[lid];  // (vector is not resized by callbacks, but be safe)
  if (rearm && !ls2.armed && ls2.want && !ls2.removed && host_->LookupListener(lid)) {
    ArmAccept(lid);
  }
}

void IoUringDriver::OnSendCqe(Conn* c, const io_uring_cqe& cqe) {
  ConnState* s = State(c);
  const int32_t id = c->id;
  s->send_inflight = false;
  if (c->closing) {
    MaybeRelease(c);
    return;
  }
  if (cqe.res > 0) {
    host_->OnSent(c, static_cast<size_t>(cqe.res));
  } else if (cqe.res != -EINTR && cqe.res != -EAGAIN) {
    host_->Fail(c, cqe.res < 0 ? -cqe.res : EPIPE, kPhaseWrite);
  }
  if (c->id != id) return;
  if (!c->closing && !c->wq.empty()) RequestSend(c, s);
  MaybeRelease(c);
}

void IoUringDriver::OnConnectCqe(Conn* c, const io_uring_cqe& cqe) {
  ConnState* s = State(c);
  s->connect_inflight = false;
  if (c->closing) {
    MaybeRelease(c);
    return;
  }
  if (!c->connecting) return;  // connect() had completed at once
  int err = cqe.res < 0 ? -cqe.res : SocketError(c->fd);
  if (err == 0 && cqe.res > 0 && (cqe.res & (POLLERR | POLLHUP)) && !(cqe.res & POLLOUT)) err = ECONNREFUSED;
  host_->OnConnected(c, err);
}

// ---- listeners ----

int IoUringDriver::AddListener(Listener* l) {
  if (static_cast<size_t>(l->id) >= listeners_.size()) listeners_.resize(l->id + 1);
  ListenerState& ls = listeners_[l->id];
  ls = ListenerState();
  ls.fd = l->fd;
  ls.want = true;
  ArmAccept(l->id);
  SubmitIfIdle();
  return 0;
}

void IoUringDriver::PauseAccept(Listener* l) {
  ListenerState& ls = listeners_[l->id];
  ls.want = false;
  if (ls.armed && !ls.cancel_sent) {
    Cancel(Ud(kOpAccept, l->id));
    ls.cancel_sent = true;
  }
  SubmitIfIdle();
}

void IoUringDriver::ResumeAccept(Listener* l) {
  ListenerState& ls = listeners_[l->id];
  ls.want = true;
  if (!ls.armed) ArmAccept(l->id);  // else: a pending cancel's completion re-arms
  SubmitIfIdle();
}

void IoUringDriver::RemoveListener(Listener* l) {
  ListenerState& ls = listeners_[l->id];
  ls.want = false;
  ls.removed = true;
  if (ls.armed && !ls.cancel_sent) {
    Cancel(Ud(kOpAccept, l->id));
    ls.cancel_sent = true;
  }
  // Now, not at the end of the turn: the accept holds the socket open until cancelled.
  SubmitNow();
}

bool IoUringDriver::AcceptsOutstanding() const {
  for (const ListenerState& ls : listeners_) {
    if (ls.armed && ls.removed) return true;
  }
  return false;
}

// ---- connections ----

int IoUringDriver::AddConn(Conn* c) {
  if (c->dgram) {
    std::string err;
    int r = OpenDatagramBuffers(&err);
    if (r < 0) return r;
  }
  const uint32_t slot = SlotOf(c->id);
  if (slot >= conns_.size()) conns_.resize(slot + 1);
  if (!conns_[slot]) conns_[slot] = std::make_unique<ConnState>();
  ConnState* s = conns_[slot].get();
  s->Reset();
  s->attached = true;
  if (c->connecting) {
    io_uring_sqe* q = ring_.Sqe();
    q->opcode = IORING_OP_POLL_ADD;
    q->fd = c->fd;
    q->poll32_events = PollMask(POLLOUT | POLLERR | POLLHUP);
    q->user_data = Ud(kOpConnect, c->id);
    s->connect_inflight = true;
  } else {
    ArmRecv(c, s);
  }
  SubmitIfIdle();
  return 0;
}

void IoUringDriver::UpdateReading(Conn* c) {
  ConnState* s = State(c);
  if (!s || c->closing) return;
  if (c->WantsRead()) {
    if (s->HasHeld()) {
      MarkReady(c, s);
      if (!in_turn_) Wake();  // a turn must run to deliver them (EndTurn does it otherwise)
    } else if (!s->recv_armed) {
      ArmRecv(c, s);
    }
    // recv_armed with a cancel in flight: its completion re-arms.
  } else if (s->recv_armed && !s->recv_cancel) {
    Cancel(RecvUd(c));
    s->recv_cancel = true;
  }
  SubmitIfIdle();
}

long IoUringDriver::TrySendDirect(Conn* c, const char* data, size_t len) {
  // Batched: queue it; its SEND goes to the kernel with every other SQE of this round
  // in one io_uring_enter. Large writes (and writes from outside a turn, e.g. timers)
  // go out directly; a queue reaching the high-water mark is pushed by SendQueuedNow.
  // So write() returns false only when the kernel would not take the bytes, as on epoll.
  if (tuning_.send_mode == IoUringTuning::kSendBatched) return 0;
  if (tuning_.send_mode == IoUringTuning::kSendHybrid && in_turn_ && len <= kBatchSendMax) return 0;
  return SendSome(c->fd, data, len);
}

long IoUringDriver::SendQueuedNow(Conn* c) {
  // The dispatch queued a high-water mark's worth for one connection before its
  // batched SEND could go out: move it into the socket now, as a readiness backend's
  // direct send would have, so write() reports backpressure only when the kernel
  // really refuses bytes. Not while a SEND is in flight: it owns the queue's head.
  ConnState* s = State(c);
  if (!s || tuning_.send_mode == IoUringTuning::kSendBatched || s->send_inflight || c->closing || c->connecting) return 0;
  return SendQueued(c->fd, c->wq);
}

void IoUringDriver::Flush(Conn* c, bool) {
  ConnState* s = State(c);
  if (s && c->dgram) {
    if (!c->closing) FlushDatagrams(c, s);
    return;
  }
  if (!s || c->closing || c->connecting || s->send_inflight || c->wq.empty()) return;
  RequestSend(c, s);
}

void IoUringDriver::RequestSend(Conn* c, ConnState* s) {
  if (!in_turn_) {
    StartSend(c, s);
    SubmitNow();
    return;
  }
  if (!s->send_listed) {
    s->send_listed = true;
    send_ready_.push_back(c->id);
  }
}

void IoUringDriver::CloseConn(Conn* c) {
  ConnState* s = State(c);
  closing_++;
  if (s) {
    if (s->recv_armed && !s->recv_cancel) {
      Cancel(RecvUd(c));
      s->recv_cancel = true;
    }
    if (s->send_inflight) Cancel(Ud(kOpSend, c->id));
    if (s->connect_inflight) Cancel(Ud(kOpConnect, c->id));
    if (s->pollout_armed) Cancel(Ud(kOpPollOut, c->id));
  }
  // In-flight operations hold their own reference to the socket; the fd number can
  // go now (operations are matched by user_data, never by fd).
  if (c->fd >= 0) close(c->fd);
  c->fd = -1;
  MaybeRelease(c);
  SubmitIfIdle();
}

void IoUringDriver::MaybeRelease(Conn* c) {
  if (!c->closing) return;
  ConnState* s = State(c);
  if (s && (s->recv_armed || s->send_inflight || s->connect_inflight || s->pollout_armed)) return;
  if (s) {
    held_bytes_ -= s->held.size() - s->held_off;
    s->held.clear();
    s->held.shrink_to_fit();
    s->held_off = 0;
    std::vector<ConnState::HeldDatagram>().swap(s->held_dgrams);
    s->held_dgram_pos = 0;
    s->iov.reset();
  }
  if (s) s->attached = false;
  closing_--;
  host_->ReleaseConn(c);
}

void IoUringDriver::Counters(std::vector<std::pair<const char*, double>>* out) const {
  out->emplace_back("recvBufferBytes", static_cast<double>(bufs_.bytes()));
  out->emplace_back("recvBuffersIncremental", bufs_.incremental() ? 1 : 0);
  out->emplace_back("recvStarved", static_cast<double>(recv_starved_));
  out->emplace_back("datagramBufferBytes", static_cast<double>(dgram_bufs_open_ ? dgram_bufs_.bytes() : 0));
  out->emplace_back("datagramsHeld", static_cast<double>(dgrams_held_));
  out->emplace_back("heldBytes", static_cast<double>(held_bytes_));
  out->emplace_back("heldBytesPeak", static_cast<double>(held_bytes_peak_));
}

void IoUringDriver::DrainClosing() {
  uint64_t deadline = MonoMs() + kDrainTimeoutMs;
  while (closing_ > 0 || AcceptsOutstanding()) {
    PublishBuffers();
    int r = ring_.Submit(ring_.CqEmpty() ? 1 : 0, 100);
    if (r == -EBUSY || ring_.NeedsEnter()) ring_.FlushOverflow();
    Reap(kReapAll);
    if (MonoMs() > deadline) break;  // never hang shutdown on a kernel that forgot an op
  }
  PublishBuffers();
}

}  // namespace logcaster
