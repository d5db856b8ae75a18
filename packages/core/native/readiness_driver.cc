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
}  // namespace

int ReadinessDriver::Init(Engine* engine, std::string* err) {
  engine_ = engine;
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
      if (Listener* l = engine_->LookupListener(id)) { l->accept_pending = false; AcceptReady(l); }
    }
    for (int32_t id : conns) {
      Conn* c = engine_->Lookup(id);
      if (!c) continue;
      c->read_pending = false;
      // Paused since it was listed: resume lists it again.
      if (!c->closing && Engine::WantsRead(c)) ReadReady(c, kHangup);
    }
    conns.clear();
    lsn.clear();
    timeout_ms = 0;
  }
  if (ready_pos_ >= ready_.size() && WatchFd() >= 0) {
    ready_.clear();
    ready_pos_ = 0;
    if (!engine_->BatchFull()) poller_->Wait(timeout_ms, &ready_, kWaitBatch);
  }
  while (ready_pos_ < ready_.size() && !engine_->BatchFull()) {
    Dispatch(ready_[ready_pos_++]);
  }
  return ready_pos_ < ready_.size() || !read_pending_.empty() || !accept_pending_.empty();
}

void ReadinessDriver::Dispatch(const PollEvent& ev) {
  if (ev.token & kListenerBit) {
    if (Listener* l = engine_->LookupListener(static_cast<int32_t>(ev.token & 0x7fffffff))) {
      if (!l->accept_paused) AcceptReady(l);
    }
    return;
  }
  Conn* c = engine_->Lookup(static_cast<int32_t>(ev.token));
  if (!c || c->closing) return;  // closed earlier in this batch: stale event
  if (c->connecting) {
    if (ev.events & (kWritable | kError | kHangup)) {
      int err = SocketError(c->fd);
      if (err == 0 && (ev.events & kError)) err = ECONNREFUSED;
      engine_->OnConnected(c, err);
    }
    return;
  }
  if ((ev.events & kWritable) && !c->wq.empty()) Flush(c, false);
  if (c->closing) return;
  if (ev.events & (kReadable | kHangup | kError)) {
    if (Engine::WantsRead(c)) {
      ReadReady(c, ev.events);
    } else if (ev.events & kError) {
      int err = SocketError(c->fd);
      engine_->Fail(c, err ? err : EPIPE, kPhaseRead);
    }
  }
}

void ReadinessDriver::AcceptReady(Listener* l) {
  for (int i = 0; edge_ || i < kAcceptsPerEvent; ++i) {
    if (engine_->BatchFull()) {
      if (edge_ && !l->accept_pending) { l->accept_pending = true; accept_pending_.push_back(l->id); }
      return;
    }
    int fd = AcceptSocket(l->fd);
    if (fd >= 0) { engine_->OnAccepted(l, fd); continue; }
    int err = -fd;
    if (err == EAGAIN || err == EWOULDBLOCK) return;
    if (err == EINTR || err == ECONNABORTED || err == EPROTO) continue;
    engine_->OnAcceptError(l, err);
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
  size_t got = 0;
  for (;;) {
    size_t avail = 0;
    char* buf = engine_->ReadSpace(&avail);
    if (!buf) {
      // Arena full for this turn. Level-triggered: the kernel reports it again.
      if (edge_ && !c->read_pending) { c->read_pending = true; read_pending_.push_back(c->id); }
      return;
    }
    size_t want = avail < kMaxReadPerBatch ? avail : kMaxReadPerBatch;
    ssize_t n = recv(c->fd, buf, want, 0);
    if (n > 0) {
      engine_->CommitRead(c, static_cast<size_t>(n));
      if (!edge_) return;
      if (static_cast<size_t>(n) < want && !(events & (kHangup | kError))) return;
      if (!Engine::WantsRead(c)) return;
      got += static_cast<size_t>(n);
      if (got >= kMaxReadPerBatch) {
        if (!c->read_pending) { c->read_pending = true; read_pending_.push_back(c->id); }
        return;
      }
      continue;
    }
    if (n == 0) { engine_->OnPeerEnd(c); return; }
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) return;
    engine_->Fail(c, errno, kPhaseRead);
    return;
  }
}

uint32_t ReadinessDriver::WantedInterest(const Conn* c) const {
  if (c->closing) return 0;
  if (c->connecting) return kWritable;
  uint32_t i = 0;
  if (Engine::WantsRead(c)) i |= kReadable;
  if (!c->wq.empty()) i |= kWritable;
  return i;
}

void ReadinessDriver::SetInterest(Conn* c, uint32_t interest) {
  if (!c->registered || c->interest == interest) return;
  uint64_t token = static_cast<uint32_t>(c->id);
  int r = poller_->Modify(c->fd, token, c->interest, interest);
  if (r < 0) { engine_->Fail(c, -r, kPhaseWatch); return; }
  c->interest = interest;
}

int ReadinessDriver::AddListener(Listener* l) {
  return poller_->Add(l->fd, kListenerBit | static_cast<uint32_t>(l->id), kReadable);
}

void ReadinessDriver::PauseAccept(Listener* l) {
  poller_->Modify(l->fd, kListenerBit | static_cast<uint32_t>(l->id), kReadable, 0);
}

void ReadinessDriver::ResumeAccept(Listener* l) {
  poller_->Modify(l->fd, kListenerBit | static_cast<uint32_t>(l->id), 0, kReadable);
  // Edge-triggered: connections that queued while paused produce no new edge.
  if (edge_ && !l->accept_pending) { l->accept_pending = true; accept_pending_.push_back(l->id); Wake(); }
}

void ReadinessDriver::RemoveListener(Listener* l) {
  poller_->Remove(l->fd, l->accept_paused ? 0u : static_cast<uint32_t>(kReadable));
}

int ReadinessDriver::AddConn(Conn* c) {
  uint32_t interest = WantedInterest(c);
  int r = poller_->Add(c->fd, static_cast<uint32_t>(c->id), interest);
  if (r == 0) c->interest = interest;
  return r;
}

void ReadinessDriver::UpdateReading(Conn* c) {
  SetInterest(c, WantedInterest(c));
  // Edge-triggered resume: data that arrived while paused produced its edge already.
  if (edge_ && Engine::WantsRead(c) && !c->read_pending) {
    c->read_pending = true;
    read_pending_.push_back(c->id);
    Wake();
  }
}

long ReadinessDriver::TrySendDirect(Conn* c, const char* data, size_t len) { return SendSome(c->fd, data, len); }

void ReadinessDriver::Flush(Conn* c, bool socket_full) {
  while (!socket_full && !c->wq.empty() && !c->closing) {
    long n = SendQueued(c->fd, c->wq);
    if (n == 0) break;  // full: wait for writability
    if (n < 0) {
      engine_->Fail(c, static_cast<int>(-n), kPhaseWrite);
      return;
    }
    engine_->OnSent(c, static_cast<size_t>(n));
  }
  if (!c->closing) SetInterest(c, WantedInterest(c));
}

void ReadinessDriver::CloseConn(Conn* c) {
  if (c->registered) poller_->Remove(c->fd, c->interest);
  close(c->fd);
  engine_->ReleaseConn(c);
}

}  // namespace logcaster
