// The io_uring driver's datagram sockets. Receives: one multishot RECVMSG per socket
// over a buffer ring of their own (whole buffers, one datagram each, laid out by the
// kernel as io_uring_recvmsg_out, sender name, control messages, payload); a
// datagram is copied into the batch's arena as it is reaped, and one the batch has
// no room for stays in the CQ until the next round. Sends: the queue leaves in one
// sendmmsg after each dispatch (datagram order kept, any number per system call);
// when the socket is full a POLL_ADD(POLLOUT) says when to go on.
#include <errno.h>
#include <poll.h>

#include <cstring>

#include "datagram_sockets.h"
#include "iouring_driver.h"

namespace logcaster {

namespace {
constexpr uint16_t kDgramBufGroup = 1;
// One buffer holds the header, the sender's name, the control messages and the
// largest UDP payload; rounded to whole pages (only the pages a datagram reaches are
// ever touched).
constexpr size_t kDgramNameLen = sizeof(sockaddr_storage);
constexpr size_t kDgramBufPayload = 64 * 1024;
constexpr unsigned kDgramBufSize =
    (sizeof(io_uring_recvmsg_out) + kDgramNameLen + kDatagramControl + kDgramBufPayload + 4095) / 4096 * 4096;
constexpr unsigned kDgramBufCount = 256;  // a power of two
constexpr unsigned kDgramBufCountSmall = 16;

uint32_t PollOutMask() {
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
  return (static_cast<uint32_t>(POLLOUT) << 16);  // poll32_events is stored half-word swapped
#else
  return POLLOUT;
#endif
}
}  // namespace

int IoUringDriver::OpenDatagramBuffers(std::string* err) {
  if (dgram_bufs_open_) return 0;
  const unsigned count = tuning_.small_rings ? kDgramBufCountSmall : kDgramBufCount;
  int r = dgram_bufs_.Open(&ring_, kDgramBufGroup, count, kDgramBufSize, false, err);
  if (r == 0) dgram_bufs_open_ = true;
  return r;
}

void IoUringDriver::ArmRecvMsg(Conn* c, ConnState* st) {
  // The kernel reads only the name and control lengths of this template (and keeps
  // its own copy for the multishot's life).
  std::memset(&st->recv_msg, 0, sizeof st->recv_msg);
  st->recv_msg.msg_namelen = kDgramNameLen;
  st->recv_msg.msg_controllen = c->dgram->drop_counter ? kDatagramControl : 0;
  io_uring_sqe* s = ring_.Sqe();
  s->opcode = IORING_OP_RECVMSG;
  s->fd = c->fd;
  s->addr = reinterpret_cast<uint64_t>(&st->recv_msg);
  s->len = 1;
  s->flags = IOSQE_BUFFER_SELECT;
  s->buf_group = kDgramBufGroup;
  s->ioprio = IORING_RECV_MULTISHOT;
  s->user_data = Ud(kOpRecvMsg, c->id);
  st->recv_armed = true;
  st->recv_cancel = false;
}

bool IoUringDriver::OnRecvMsgCqe(const io_uring_cqe& cqe) {
  const int32_t id = static_cast<int32_t>(cqe.user_data & 0xffffffffu);
  const bool more = (cqe.flags & IORING_CQE_F_MORE) != 0;
  const bool has_buf = (cqe.flags & IORING_CQE_F_BUFFER) != 0;
  const unsigned bid = cqe.flags >> IORING_CQE_BUFFER_SHIFT;
  Conn* c = host_->Lookup(id);
  ConnState* s = c ? State(c) : nullptr;
  if (!s) {
    // Cannot happen (slots are held until their last completion); return the buffer.
    if (has_buf) dgram_bufs_.Take(bid, 0);
    return true;
  }
  if (has_buf && cqe.res > 0 && !c->closing) {
    const char* buf = dgram_bufs_.Peek(bid);
    const size_t got = static_cast<size_t>(cqe.res);
    const size_t head = sizeof(io_uring_recvmsg_out) + s->recv_msg.msg_namelen + s->recv_msg.msg_controllen;
    if (buf && got >= head) {
      io_uring_recvmsg_out out;
      std::memcpy(&out, buf, sizeof out);
      DatagramIn d;
      if (out.namelen > 0) {
        d.from = reinterpret_cast<const sockaddr*>(buf + sizeof out);
        d.fromlen = static_cast<socklen_t>(std::min<size_t>(out.namelen, s->recv_msg.msg_namelen));
      }
      d.data = buf + head;
      d.len = got - head;
      d.truncated = (out.flags & MSG_TRUNC) != 0 || out.payloadlen > d.len;
      if (out.controllen > 0) {
        msghdr m;
        std::memset(&m, 0, sizeof m);
        m.msg_control = const_cast<char*>(buf + sizeof out + s->recv_msg.msg_namelen);
        m.msg_controllen = out.controllen;
        d.has_drops = DropCounterOf(m, &d.drops);
      }
      if (c->paused || s->HasHeld()) {
        HoldDatagram(s, d);  // in flight at pause(), or behind ones that were
        if (!c->paused) MarkReady(c, s);
      } else if (!host_->OnDatagram(c, d)) {
        return false;  // no room: nothing changed, it stays in the CQ
      }
    }
  }
  if (has_buf) dgram_bufs_.Take(bid, 0);
  if (!more) {
    s->recv_armed = false;
    s->recv_cancel = false;
  }
  if (c->closing) {
    if (!more) MaybeRelease(c);
    return true;
  }
  if (cqe.res < 0) {
    const int err = -cqe.res;
    if (err == ENOBUFS) {
      // The datagram buffers ran dry (the reaper lags): datagrams wait in the socket
      // meanwhile; re-armed from EndTurn once buffers have come back.
      if (!more && !s->starved) {
        s->starved = true;
        starved_.push_back(c->id);
        recv_starved_++;
      }
    } else if (err != ECANCELED && err != EINTR && err != EAGAIN) {
      host_->OnDatagramError(c, err, kPhaseRead);  // ICMP unreachable & co.: not fatal
    }
  }
  if (c->id != id) return true;
  if (!more && !s->starved && c->WantsRead()) ArmRecvMsg(c, s);
  return true;
}

void IoUringDriver::HoldDatagram(ConnState* s, const DatagramIn& d) {
  ConnState::HeldDatagram h;
  h.fromlen = d.from ? std::min<socklen_t>(d.fromlen, sizeof h.from) : 0;
  if (h.fromlen) std::memcpy(&h.from, d.from, h.fromlen);
  h.data.assign(d.data, d.len);
  h.truncated = d.truncated;
  h.has_drops = d.has_drops;
  h.drops = d.drops;
  s->held_dgrams.push_back(std::move(h));
  dgrams_held_++;
}

bool IoUringDriver::DeliverHeldDatagrams(Conn* c, ConnState* s) {
  while (s->held_dgram_pos < s->held_dgrams.size()) {
    const ConnState::HeldDatagram& h = s->held_dgrams[s->held_dgram_pos];
    DatagramIn d;
    d.from = h.fromlen ? reinterpret_cast<const sockaddr*>(&h.from) : nullptr;
    d.fromlen = h.fromlen;
    d.data = h.data.data();
    d.len = h.data.size();
    d.truncated = h.truncated;
    d.has_drops = h.has_drops;
    d.drops = h.drops;
    if (!host_->OnDatagram(c, d)) return false;
    s->held_dgram_pos++;
  }
  s->held_dgrams.clear();
  s->held_dgram_pos = 0;
  return true;
}

void IoUringDriver::FlushDatagrams(Conn* c, ConnState* s) {
  if (s->pollout_armed) return;  // full: the poll completion goes on
  DatagramQueue& q = c->dgram->queue;
  while (!q.empty() && !c->closing) {
    bool blocked = false;
    long n = SendDatagrams(c->fd, &q, &blocked);
    if (blocked) {
      io_uring_sqe* sqe = ring_.Sqe();
      sqe->opcode = IORING_OP_POLL_ADD;
      sqe->fd = c->fd;
      sqe->poll32_events = PollOutMask();
      sqe->user_data = Ud(kOpPollOut, c->id);
      s->pollout_armed = true;
      SubmitIfIdle();
      return;
    }
    if (n < 0) host_->OnDatagramSendError(c, static_cast<int>(-n));
    else host_->OnDatagramsSent(c, static_cast<size_t>(n));
  }
}

void IoUringDriver::OnPollOutCqe(Conn* c, const io_uring_cqe& cqe) {
  ConnState* s = State(c);
  s->pollout_armed = false;
  if (c->closing) {
    MaybeRelease(c);
    return;
  }
  (void)cqe;  // writable or an error: the next sendmmsg tells which
  FlushDatagrams(c, s);
}

}  // namespace logcaster
