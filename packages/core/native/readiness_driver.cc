#include "readiness_driver.h"

#include <errno.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "sockets.h"

namespace logcaster {

namespace {
constexpr uint64_t kListenerBit = 1ull << 63;
constexpr size_t kWaitBatch = 1024;
constexpr int kAcceptsPerEvent = 64;  // fairness between new and existing connections
// Edge-triggered: recvmmsg batches read from one datagram socket per round at most.
constexpr int kDatagramBatchesPerRound = 4;
}  // namespace

int ReadinessDriver::Init(DriverHost* host, std::string* err) {
  host_ = host;
  int r = poller_->Open(err);
  if (r < 0) return r;
  edge_ = poller_->EdgeTriggered();
  ready_.reserve(kWaitBatch);
  return 0;
}

void ReadinessDriver::WaitOnThread() {
  // Only called while ready_ is fully consumed (the engine holds the thread until then).
  ready_.clear();
  ready_pos_ = 0;
  poller_->Wait(-1, &ready_, kWaitBatch);
}

bool ReadinessDriver::Harvest(int timeout_ms) {
  // Edge-triggered leftovers first: their readiness will not be reported again.
  if (!read_pending_.empty() || !accept_pending_.empty()) {
    std::vector<int32_t>& conns = read_work_;  // swapped, not reallocated, every round
    std::vector<int32_t>& lsn = accept_work_;
    conns.swap(read_pending_);
    lsn.swap(accept_pending_);
    for (int32_t id : lsn) {
      accept_listed_[id] = 0;
      if (Listener* l = host_->LookupListener(id)) AcceptReady(l);
    }
    for (int32_t id : conns) {
      Conn* c = host_->Lookup(id);
      if (!c) continue;
      WatchOf(c).read_pending = false;
      // Paused since it was listed: resume lists it again.
      if (c->WantsRead()) ReadReady(c, kHangup);
    }
    conns.clear();
    lsn.clear();
    timeout_ms = 0;
  }
  if (ready_pos_ >= ready_.size() && WatchFd() >= 0) {
    ready_.clear();
    ready_pos_ = 0;
    if (!host_->BatchFull()) poller_->Wait(timeout_ms, &ready_, kWaitBatch);
  }
  while (ready_pos_ < ready_.size() && !host_->BatchFull()) {
    Dispatch(ready_[ready_pos_++]);
  }
  return ready_pos_ < ready_.size() || !read_pending_.empty() || !accept_pending_.empty();
}

void ReadinessDriver::Dispatch(const PollEvent& ev) {
  if (ev.token & kListenerBit) {
    if (Listener* l = host_->LookupListener(static_cast<int32_t>(ev.token & 0x7fffffff))) {
      if (!l->accept_paused) AcceptReady(l);
    }
    return;
  }
  Conn* c = host_->Lookup(static_cast<int32_t>(ev.token));
  if (!c || c->closing) return;  // closed earlier in this batch: stale event
  if (c->connecting) {
    if (ev.events & (kWritable | kError | kHangup)) {
      int err = SocketError(c->fd);
      if (err == 0 && (ev.events & kError)) err = ECONNREFUSED;
      host_->OnConnected(c, err);
    }
    return;
  }
  if ((ev.events & kWritable) && c->HasQueuedOutput()) {
    if (c->dgram) FlushDatagrams(c, false);
    else Flush(c, false);
  }
  if (c->closing) return;
  if (ev.events & (kReadable | kHangup | kError)) {
    if (c->WantsRead()) {
      ReadReady(c, ev.events);
    } else if (ev.events & kError) {
      int err = SocketError(c->fd);
      if (c->dgram) {
        if (err) host_->OnDatagramError(c, err, kPhaseRead);  // reading it cleared it
      } else {
        host_->Fail(c, err ? err : EPIPE, kPhaseRead);
      }
    }
  }
}

void ReadinessDriver::AcceptReady(Listener* l) {
  for (int i = 0; edge_ || i < kAcceptsPerEvent; ++i) {
    if (host_->BatchFull()) {
      if (edge_) ListAcceptPending(l);
      return;
    }
    int fd = AcceptSocket(l->fd);
    if (fd >= 0) { host_->OnAccepted(l, fd); continue; }
    int err = -fd;
    if (err == EAGAIN || err == EWOULDBLOCK) return;
    if (err == EINTR || err == ECONNABORTED || err == EPROTO) continue;
    host_->OnAcceptError(l, err);
    return;
  }
}

// Level-triggered: one recv per readiness report (fair; the kernel reports again).
// Edge-triggered: the edge is not repeated, so keep reading while more may wait —
// but at most kMaxReadPerBatch per batch, like level-triggered: a connection still
// full after that is read again next round (read_pending_), so a flood on one
// connection neither takes the whole batch nor arrives in one multi-megabyte gulp.
// A short read with no hang-up reported means the buffer is drained and new data
// will raise a new edge.
void ReadinessDriver::ReadReady(Conn* c, uint32_t events) {
  if (c->dgram) {
    ReadDatagrams(c);
    return;
  }
  size_t got = 0;
  for (;;) {
    size_t avail = 0;
    char* buf = host_->ReadSpace(&avail);
    if (!buf) {
      // Arena full for this turn. Level-triggered: the kernel reports it again.
      if (edge_) ListReadPending(c);
      return;
    }
    size_t want = avail < kMaxReadPerBatch ? avail : kMaxReadPerBatch;
    ssize_t n = recv(c->fd, buf, want, 0);
    if (n > 0) {
      host_->CommitRead(c, static_cast<size_t>(n));
      if (!edge_) return;
      if (static_cast<size_t>(n) < want && !(events & (kHangup | kError))) return;
      if (!c->WantsRead()) return;
      got += static_cast<size_t>(n);
      if (got >= kMaxReadPerBatch) {
        ListReadPending(c);
        return;
      }
      continue;
    }
    if (n == 0) { host_->OnPeerEnd(c); return; }
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) return;
    host_->Fail(c, errno, kPhaseRead);
    return;
  }
}

// Datagrams arrive in recvmmsg batches of up to kDatagramBatch. Level-triggered: one
// batch per readiness report (the kernel reports again while more wait). Edge-
// triggered: on while batches come back full, up to kDatagramBatchesPerRound, then
// the socket is listed for the next round. Datagrams the batch has no room for stay
// in the receiver and are delivered first next round — never dropped.
void ReadinessDriver::ReadDatagrams(Conn* c) {
  DatagramReceiver& rx = *WatchOf(c).rx;
  bool more = true;  // the last batch came back full
  for (int batch = 0;; ++batch) {
    while (rx.HasPending()) {
      if (!host_->OnDatagram(c, rx.Current())) {
        ListReadPending(c);
        return;
      }
      rx.Next();
    }
    if (batch > 0 && (!edge_ || !more)) return;
    if (batch == kDatagramBatchesPerRound) {
      ListReadPending(c);
      return;
    }
    int n = rx.Receive(c->fd);
    if (n == 0) return;
    if (n < 0) {
      // ICMP errors (connected UDP) and the like: reported, not fatal. Datagrams
      // behind the error raise no new edge.
      host_->OnDatagramError(c, -n, kPhaseRead);
      if (edge_) ListReadPending(c);
      return;
    }
    more = n == kDatagramBatch;
  }
}

void ReadinessDriver::ListReadPending(Conn* c) {
  Watch& w = WatchOf(c);
  if (w.read_pending) return;
  w.read_pending = true;
  read_pending_.push_back(c->id);
}

void ReadinessDriver::ListAcceptPending(Listener* l) {
  if (accept_listed_[l->id]) return;
  accept_listed_[l->id] = 1;
  accept_pending_.push_back(l->id);
}

uint32_t ReadinessDriver::WantedInterest(const Conn* c) const {
  if (c->closing) return 0;
  if (c->connecting) return kWritable;
  uint32_t i = 0;
  if (c->WantsRead()) i |= kReadable;
  if (c->HasQueuedOutput()) i |= kWritable;
  return i;
}

void ReadinessDriver::SetInterest(Conn* c, uint32_t interest) {
  Watch& w = WatchOf(c);
  if (!w.registered || w.interest == interest) return;
  uint64_t token = static_cast<uint32_t>(c->id);
  int r = poller_->Modify(c->fd, token, w.interest, interest);
  if (r < 0) { host_->Fail(c, -r, kPhaseWatch); return; }
  w.interest = interest;
}

int ReadinessDriver::AddListener(Listener* l) {
  if (static_cast<size_t>(l->id) >= accept_listed_.size()) accept_listed_.resize(l->id + 1, 0);
  return poller_->Add(l->fd, kListenerBit | static_cast<uint32_t>(l->id), kReadable);
}

void ReadinessDriver::PauseAccept(Listener* l) {
  poller_->Modify(l->fd, kListenerBit | static_cast<uint32_t>(l->id), kReadable, 0);
}

void ReadinessDriver::ResumeAccept(Listener* l) {
  poller_->Modify(l->fd, kListenerBit | static_cast<uint32_t>(l->id), 0, kReadable);
  // Edge-triggered: connections that queued while paused produce no new edge.
  if (edge_) { ListAcceptPending(l); Wake(); }
}

void ReadinessDriver::RemoveListener(Listener* l) {
  poller_->Remove(l->fd, l->accept_paused ? 0u : static_cast<uint32_t>(kReadable));
}

int ReadinessDriver::AddConn(Conn* c) {
  const uint32_t slot = SlotOf(c->id);
  if (slot >= watch_.size()) watch_.resize(slot + 1);
  Watch& w = watch_[slot];
  w.interest = 0;
  w.registered = w.read_pending = false;
  if (c->dgram) w.rx = std::make_unique<DatagramReceiver>(c->dgram->max_message);
  uint32_t interest = WantedInterest(c);
  int r = poller_->Add(c->fd, static_cast<uint32_t>(c->id), interest);
  if (r == 0) {
    w.registered = true;
    w.interest = interest;
  }
  return r;
}

void ReadinessDriver::UpdateReading(Conn* c) {
  SetInterest(c, WantedInterest(c));
  // Edge-triggered resume: data that arrived while paused produced its edge already.
  // Datagrams received earlier that the batch had no room for: no kernel event
  // announces them.
  Watch& w = WatchOf(c);
  const bool held = w.rx && w.rx->HasPending();
  if ((edge_ || held) && c->WantsRead() && !w.read_pending) {
    ListReadPending(c);
    Wake();
  }
}

long ReadinessDriver::TrySendDirect(Conn* c, const char* data, size_t len) { return SendSome(c->fd, data, len); }

void ReadinessDriver::Flush(Conn* c, bool socket_full) {
  if (c->dgram) {
    // Writability armed: the socket was full, the poller says when to try again.
    FlushDatagrams(c, socket_full || (WatchOf(c).interest & kWritable) != 0);
    return;
  }
  while (!socket_full && !c->wq.empty() && !c->closing) {
    long n = SendQueued(c->fd, c->wq);
    if (n == 0) break;  // full: wait for writability
    if (n < 0) {
      host_->Fail(c, static_cast<int>(-n), kPhaseWrite);
      return;
    }
    host_->OnSent(c, static_cast<size_t>(n));
  }
  if (!c->closing) SetInterest(c, WantedInterest(c));
}

// sendmmsg while the kernel takes datagrams; one it refuses is reported and dropped.
void ReadinessDriver::FlushDatagrams(Conn* c, bool socket_full) {
  DatagramQueue& q = c->dgram->queue;
  while (!socket_full && !q.empty() && !c->closing) {
    bool blocked = false;
    long n = SendDatagrams(c->fd, &q, &blocked);
    if (blocked) break;
    if (n < 0) host_->OnDatagramSendError(c, static_cast<int>(-n));
    else host_->OnDatagramsSent(c, static_cast<size_t>(n));
  }
  if (!c->closing) SetInterest(c, WantedInterest(c));
}

void ReadinessDriver::CloseConn(Conn* c) {
  Watch& w = WatchOf(c);
  if (w.registered) poller_->Remove(c->fd, w.interest);
  w.registered = false;
  w.rx.reset();
  close(c->fd);
  host_->ReleaseConn(c);
}

}  // namespace logcaster
