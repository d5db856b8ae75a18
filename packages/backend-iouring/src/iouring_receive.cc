// The io_uring driver's receive path: multishot recvs over the shared provided-
// buffer ring, bytes copied into the batch's arena (one DATA per connection per
// batch, extended while it is the newest event), the held buffer for bytes that
// cannot be delivered yet, metered single-shot receives for a connection that
// sends faster than it is delivered, and re-arming receives that ENOBUFS ended.
#include <errno.h>

#include <algorithm>
#include <cstring>

#include "iouring_driver.h"

namespace logcaster {

namespace {
constexpr size_t kHeldLimit = 256 * 1024;  // held bytes before the recv is cancelled
constexpr size_t kHeldKeep = 16 * 1024;    // held-buffer capacity kept once drained
}  // namespace

void IoUringDriver::ArmRecv(Conn* c, ConnState* st) {
  if (st->recv_armed || st->starved) return;
  if (c->dgram) {
    ArmRecvMsg(c, st);
    return;
  }
  io_uring_sqe* s = ring_.Sqe();
  s->opcode = IORING_OP_RECV;
  s->fd = c->fd;
  s->flags = IOSQE_BUFFER_SELECT;
  s->buf_group = bufs_.group();
  st->recv_metered = st->metered;
  if (st->metered) {
    s->len = static_cast<uint32_t>(kMaxReadPerBatch);  // one delivery's worth, then ask again
  } else {
    s->ioprio = IORING_RECV_MULTISHOT;
  }
  s->user_data = Ud(kOpRecv, c->id);
  st->recv_armed = true;
  st->recv_cancel = false;
}

void IoUringDriver::RearmStarved() {
  unsigned recycled = bufs_.TakeRecycledCount();
  if (dgram_bufs_open_) recycled += dgram_bufs_.TakeRecycledCount();
  if (starved_.empty()) return;
  // Only once buffers came back (or no completion can be holding any): re-arming
  // into an empty pool would just earn another ENOBUFS per connection.
  if (recycled == 0 && !ring_.CqEmpty()) return;
  std::vector<int32_t>& list = starved_work_;
  list.swap(starved_);
  for (int32_t id : list) {
    Conn* c = host_->Lookup(id);
    if (!c || !State(c)) continue;
    ConnState* s = State(c);
    s->starved = false;
    if (!c->closing && c->WantsRead() && !s->HasHeld()) ArmRecv(c, s);
  }
  list.clear();
}

void IoUringDriver::Hold(Conn* c, ConnState* s, const char* data, size_t len) {
  if (s->held_off > 0 && s->held_off >= s->held.size() / 2) {
    s->held.erase(0, s->held_off);  // delivered prefix; amortized, keeps the string bounded
    s->held_off = 0;
  }
  s->held.append(data, len);
  held_this_round_ += len;
  held_bytes_ += len;
  held_bytes_peak_ = std::max(held_bytes_peak_, held_bytes_);
  // The connection sends faster than it is delivered (or it is paused): a multishot
  // recv would keep draining its socket into memory — megabytes per connection, and
  // an open TCP window the sender never feels. Switch it to metered receives (one
  // recv of at most one delivery per batch, as a readiness backend does) so unread
  // bytes wait in the kernel and flow control works; a short read switches back.
  if (!s->metered && !c->paused) {
    s->metered = true;
    if (s->recv_armed && !s->recv_cancel) {
      Cancel(RecvUd(c));
      s->recv_cancel = true;
    }
  }
  // Bound what we hold: stop receiving until it has been delivered.
  if (s->held.size() - s->held_off > kHeldLimit && s->recv_armed && !s->recv_cancel) {
    Cancel(RecvUd(c));
    s->recv_cancel = true;
  }
  if (!c->paused) MarkReady(c, s);
}

void IoUringDriver::MarkReady(Conn* c, ConnState* s) {
  if (s->in_ready) return;
  s->in_ready = true;
  held_ready_.push_back(c->id);
}

void IoUringDriver::Deliver(Conn* c, ConnState* s, const char* data, size_t len) {
  const uint64_t batch = CurrentBatch();
  if (!c->paused && !s->HasHeld() && s->data_batch == batch) {
    // Consecutive completions of one connection (a multishot recv posts bursts):
    // extend its DATA event in place rather than hold the bytes for the next batch.
    const size_t open = host_->OpenReadLength(c);
    size_t avail = 0;
    if (open > 0 && open + len <= kMaxReadPerBatch) {
      if (char* dst = host_->ReadSpace(&avail); dst && avail >= len) {
        std::memcpy(dst, data, len);
        host_->ExtendRead(c, len);
        return;
      }
    }
  }
  if (c->paused || s->HasHeld() || s->data_batch == batch) {
    Hold(c, s, data, len);  // delivered (coalesced) in the next batch
    return;
  }
  size_t avail = 0;
  char* dst = host_->ReadSpace(&avail);
  if (!dst) {
    Hold(c, s, data, len);  // arena full for this turn: deliver first thing next turn
    return;
  }
  s->data_batch = batch;
  size_t n = std::min({len, avail, kMaxReadPerBatch});
  std::memcpy(dst, data, n);
  host_->CommitRead(c, n);
  if (n < len) Hold(c, s, data + n, len - n);
}

void IoUringDriver::DrainHeld() {
  if (held_ready_.empty()) return;
  std::vector<int32_t>& list = held_work_;
  list.swap(held_ready_);
  for (size_t i = 0; i < list.size(); ++i) {
    Conn* c = host_->Lookup(list[i]);
    if (!c || !State(c)) continue;
    ConnState* s = State(c);
    s->in_ready = false;
    if (c->closing || c->paused) continue;  // resume lists it again
    if (c->dgram) {
      if (!DeliverHeldDatagrams(c, s)) MarkReady(c, s);  // batch full: the rest next round
      else if (!s->recv_armed && c->WantsRead()) ArmRecv(c, s);  // resume() left that to us
      continue;
    }
    if (s->data_batch == CurrentBatch()) {
      MarkReady(c, s);  // already has DATA in this batch
      continue;
    }
    const int32_t id = c->id;
    if (s->held_off < s->held.size()) {
      size_t avail = 0;
      char* dst = host_->ReadSpace(&avail);
      if (dst) {
        s->data_batch = CurrentBatch();
        size_t n = std::min({s->held.size() - s->held_off, avail, kMaxReadPerBatch});
        std::memcpy(dst, s->held.data() + s->held_off, n);
        s->held_off += n;
        held_bytes_ -= n;
        host_->CommitRead(c, n);
        if (s->held_off < s->held.size() && !host_->BatchFull()) {
          MarkReady(c, s);  // more than one delivery's worth: the rest next batch
          continue;
        }
      }
    }
    if (s->held_off < s->held.size()) {
      // Arena full: keep this one and the rest for the next harvest.
      MarkReady(c, s);
      for (size_t j = i + 1; j < list.size(); ++j) {
        Conn* o = host_->Lookup(list[j]);
        if (o && State(o)) {
          State(o)->in_ready = false;
          MarkReady(o, State(o));
        }
      }
      list.clear();
      return;
    }
    // Delivered. Give back a large buffer: a burst must not pin its size per connection.
    if (s->held.capacity() > kHeldKeep) std::string().swap(s->held); else s->held.clear();
    s->held_off = 0;
    if (s->held_err) {
      int err = s->held_err;
      s->held_err = 0;
      s->held_eof = false;
      host_->Fail(c, err, kPhaseRead);
      continue;
    }
    if (s->held_eof) {
      s->held_eof = false;
      host_->OnPeerEnd(c);
      continue;
    }
    if (c->id == id && c->WantsRead() && !s->recv_armed) ArmRecv(c, s);
  }
  list.clear();
}

void IoUringDriver::OnRecvCqe(Conn* c, const io_uring_cqe& cqe) {
  ConnState* s = State(c);
  const int32_t id = c->id;
  const bool more = (cqe.flags & IORING_CQE_F_MORE) != 0;
  if (!more) {
    s->recv_armed = false;
    s->recv_cancel = false;
  }
  if (cqe.flags & IORING_CQE_F_BUFFER) {
    const size_t len = cqe.res > 0 ? static_cast<size_t>(cqe.res) : 0;
    const char* data = bufs_.Take(cqe.flags >> IORING_CQE_BUFFER_SHIFT, len);
    if (data && len > 0 && !c->closing) Deliver(c, s, data, len);
    // A metered recv that came back well short found the socket nearly drained: the
    // sender no longer outpaces us, multishot again. (Well short, not merely short: a
    // flood momentarily drained would otherwise flip back and burst into memory.)
    if (s->recv_metered && s->metered && !more && len < kMaxReadPerBatch / 4 && !s->HasHeld()) s->metered = false;
  }
  if (c->closing) {
    if (!more) MaybeRelease(c);
    return;
  }
  if (cqe.res == 0) {
    if (s->HasHeld() || c->paused) {
      s->held_eof = true;
      if (!c->paused) MarkReady(c, s);
    } else {
      host_->OnPeerEnd(c);
    }
  } else if (cqe.res < 0) {
    int err = -cqe.res;
    if (err != ENOBUFS && err != ECANCELED && err != EINTR && err != EAGAIN) {
      if (s->HasHeld() || c->paused) {
        s->held_err = err;
        if (!c->paused) MarkReady(c, s);
      } else {
        host_->Fail(c, err, kPhaseRead);
      }
    }
    if (err == ENOBUFS && !more && !s->starved) {
      // The pool ran dry and ended this multishot: re-armed from EndTurn once
      // buffers have come back, never here (that would spin on ENOBUFS).
      s->starved = true;
      starved_.push_back(c->id);
      recv_starved_++;
    }
  }
  if (c->id != id) return;  // released by a callback
  if (!more && !s->starved && !c->closing && c->WantsRead() && !s->HasHeld()) ArmRecv(c, s);
  if (!more) MaybeRelease(c);
}

}  // namespace logcaster
