// IoDriver for io_uring: completion-based I/O, not a readiness shim. Listeners run
// a multishot accept; datagram sockets a multishot RECVMSG over a buffer ring of
// their own; connections a multishot recv that draws from one provided
// buffer ring (bytes are copied into the engine's read arena and the buffer goes
// straight back), or metered single-shot receives while they send faster than they
// are delivered; writes go out as one SEND/SENDMSG in flight per connection from
// the engine's WriteQueue. SQEs queued during a dispatch round go to the kernel in
// one io_uring_enter, at the next round's Harvest or at EndTurn; reaping CQEs needs
// no syscall. Node's loop watches the ring fd itself (readable while CQEs wait).
// docs/ARCHITECTURE.md ("The io_uring driver") explains the choices.
#pragma once
#include <sys/socket.h>
#include <sys/uio.h>

#include <memory>
#include <string>
#include <vector>

#include "io_driver.h"
#include "iouring_tuning.h"
#include "uring.h"

namespace logcaster {

class IoUringDriver final : public IoDriver {
 public:
  IoUringDriver(const DriverOptions& options, const IoUringTuning& tuning);
  ~IoUringDriver() override;

  int Init(DriverHost* host, std::string* err) override;
  int WatchFd() const override { return ring_.fd(); }
  void Wake() override;
  bool Harvest(int timeout_ms) override;
  void EndTurn() override;

  int AddListener(Listener* l) override;
  void PauseAccept(Listener* l) override;
  void ResumeAccept(Listener* l) override;
  void RemoveListener(Listener* l) override;

  int AddConn(Conn* c) override;
  void UpdateReading(Conn* c) override;
  long TrySendDirect(Conn* c, const char* data, size_t len) override;
  long SendQueuedNow(Conn* c) override;
  void Flush(Conn* c, bool socket_full) override;
  void CloseConn(Conn* c) override;
  void DrainClosing() override;
  void Counters(std::vector<std::pair<const char*, double>>* out) const override;

 private:
  // user_data: operation kind in the high 32 bits, connection or listener id below.
  // Connection ids carry a generation, and a slot is only reused after every
  // operation on it completed, so a CQE always finds the connection it was for.
  enum OpKind : uint32_t {
    kOpAccept = 1, kOpRecv = 2, kOpSend = 3, kOpConnect = 4, kOpWake = 5, kOpCancel = 6,
    kOpRecvMsg = 7,  // a datagram socket's multishot RECVMSG
    kOpPollOut = 8,  // a datagram socket waiting for room to send
  };
  static uint64_t Ud(OpKind kind, int32_t id) { return (static_cast<uint64_t>(kind) << 32) | static_cast<uint32_t>(id); }
  static OpKind KindOf(uint64_t user_data) { return static_cast<OpKind>(user_data >> 32); }
  // The receive operation of c: RECV for a stream, RECVMSG for a datagram socket.
  static uint64_t RecvUd(const Conn* c) { return Ud(c->dgram ? kOpRecvMsg : kOpRecv, c->id); }

  // Per-connection state, one per engine slot (SlotOf(id)), reused; attached from
  // AddConn until the connection is released.
  struct ConnState {
    bool attached = false;
    bool recv_armed = false;        // a multishot recv is outstanding
    bool recv_cancel = false;       // ... and a cancel for it was submitted
    bool send_inflight = false;     // one SEND/SENDMSG outstanding
    bool connect_inflight = false;  // POLL_ADD(POLLOUT) waiting for connect()
    bool in_ready = false;          // listed in held_ready_
    bool send_listed = false;       // listed in send_ready_ (send built at EndTurn)
    bool starved = false;           // recv ended by ENOBUFS, listed in starved_
    bool metered = false;           // single-shot recvs of one delivery (reader lagging)
    bool recv_metered = false;      // the outstanding recv is such a single-shot one
    bool pollout_armed = false;     // datagram socket: POLL_ADD(POLLOUT) outstanding
    bool held_eof = false;          // EOF seen behind held bytes
    int held_err = 0;               // error seen behind held bytes
    uint64_t data_batch = 0;        // host's CurrentBatch() of its last DATA
    std::string held;               // received, not yet delivered (paused / arena full)
    size_t held_off = 0;
    struct msghdr msg;
    std::unique_ptr<struct iovec[]> iov;
    struct msghdr recv_msg;         // datagram socket: the RECVMSG template (name, control sizes)
    // Datagram socket: datagrams received while it was paused (a multishot RECVMSG
    // in flight at pause() completes anyway) or behind such ones; delivered in order.
    struct HeldDatagram {
      sockaddr_storage from;
      socklen_t fromlen;
      std::string data;
      bool truncated;
      bool has_drops;
      uint32_t drops;
    };
    std::vector<HeldDatagram> held_dgrams;
    size_t held_dgram_pos = 0;
    void Reset() {
      recv_armed = recv_cancel = send_inflight = connect_inflight = in_ready = held_eof = send_listed = starved = metered = recv_metered = false;
      pollout_armed = false;
      held_err = 0;
      data_batch = 0;
      held.clear();
      held_off = 0;
      held_dgrams.clear();
      held_dgram_pos = 0;
    }
    bool HasHeld() const { return held_off < held.size() || held_eof || held_err || held_dgram_pos < held_dgrams.size(); }
  };
  struct ListenerState {
    int fd = -1;
    bool armed = false;   // multishot accept outstanding
    bool cancel_sent = false;
    bool want = false;    // should be accepting
    bool removed = false;
  };

  ConnState* State(const Conn* c) {
    if (c->id == 0) return nullptr;
    const uint32_t slot = SlotOf(c->id);
    ConnState* s = slot < conns_.size() ? conns_[slot].get() : nullptr;
    return s && s->attached ? s : nullptr;
  }
  void Handle(const io_uring_cqe& cqe);
  void OnAcceptCqe(int32_t lid, const io_uring_cqe& cqe);
  void OnRecvCqe(Conn* c, const io_uring_cqe& cqe);
  void OnSendCqe(Conn* c, const io_uring_cqe& cqe);
  void OnConnectCqe(Conn* c, const io_uring_cqe& cqe);
  void Deliver(Conn* c, ConnState* s, const char* data, size_t len);
  void Hold(Conn* c, ConnState* s, const char* data, size_t len);
  void MarkReady(Conn* c, ConnState* s);
  // One DATA event per connection per batch, like a readiness driver's one read: a
  // handler that pauses in onData then sees nothing more from that batch.
  uint64_t CurrentBatch() const { return host_->CurrentBatch(); }
  void DrainHeld();
  size_t Reap(size_t max);
  void ArmAccept(int32_t lid);
  void ArmRecv(Conn* c, ConnState* s);
  void ArmWake();
  // Datagram sockets (iouring_datagram.cc).
  int OpenDatagramBuffers(std::string* err);
  void ArmRecvMsg(Conn* c, ConnState* s);
  // A RECVMSG completion: false when the batch has no room for its datagram (the CQE
  // then stays in the CQ, untouched, for the next round).
  bool OnRecvMsgCqe(const io_uring_cqe& cqe);
  void HoldDatagram(ConnState* s, const DatagramIn& d);
  // Deliver held datagrams in order; false when the batch filled up first.
  bool DeliverHeldDatagrams(Conn* c, ConnState* s);
  void FlushDatagrams(Conn* c, ConnState* s);
  void OnPollOutCqe(Conn* c, const io_uring_cqe& cqe);
  // Re-arm receives that ENOBUFS ended, once the pool has buffers again.
  void RearmStarved();
  void StartSend(Conn* c, ConnState* s);
  // Start a send now, or — inside a turn — when the round's dispatch is over, so the
  // SEND covers every write the dispatch queued after this one.
  void RequestSend(Conn* c, ConnState* s);
  void StartListedSends();
  void Cancel(uint64_t user_data);
  void MaybeRelease(Conn* c);
  void SubmitNow();
  // Buffers handed back since the last call become visible to the kernel.
  void PublishBuffers() {
    bufs_.Publish();
    if (dgram_bufs_open_) dgram_bufs_.Publish();
  }
  void SubmitIfIdle() { if (!in_turn_) SubmitNow(); }
  bool AcceptsOutstanding() const;

  const DriverOptions opts_;
  const IoUringTuning tuning_;
  DriverHost* host_ = nullptr;
  Ring ring_;
  BufferRing bufs_;
  BufferRing dgram_bufs_;        // datagram receives: whole buffers of one datagram each
  bool dgram_bufs_open_ = false; // opened with the first datagram socket
  int wakefd_ = -1;
  bool in_turn_ = false;     // between Harvest and EndTurn: SQEs wait for the turn's enter
  size_t closing_ = 0;       // connections handed to CloseConn, not yet released
  uint64_t recv_starved_ = 0;  // multishot recvs ended by ENOBUFS (pool ran dry)
  uint64_t dgrams_held_ = 0;   // datagrams that completed while their socket was paused
  size_t held_this_round_ = 0;  // bytes Hold() copied since this round's Harvest began
  size_t held_bytes_ = 0;       // stream bytes held, not yet delivered (all connections)
  size_t held_bytes_peak_ = 0;
  std::vector<std::unique_ptr<ConnState>> conns_;  // by engine slot
  std::vector<ListenerState> listeners_;           // by listener id (never reused)
  std::vector<int32_t> held_ready_;                // conns with deliverable held bytes
  std::vector<int32_t> send_ready_;                // conns whose send is built at EndTurn
  std::vector<int32_t> starved_;                   // conns whose recv waits for buffers
  // Swap partners of the three lists while they are walked (capacity kept).
  std::vector<int32_t> held_work_, send_work_, starved_work_;
};

}  // namespace logcaster
