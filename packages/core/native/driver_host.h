// The whole seam between an IoDriver and the engine that runs it: everything a
// driver may ask of the engine or report to it. Drivers get this interface, never
// the Engine itself, so the engine's JS-facing API, its tables and its libuv
// integration stay out of their reach. All calls are made on the JS thread.
#pragma once
#include <sys/socket.h>

#include <cstddef>
#include <cstdint>

#include "conn.h"

namespace logcaster {

// Largest single delivery to a handler (one recv call of a readiness backend, one
// DATA event of a completion backend): a fast sender cannot take a whole batch's
// arena, and every backend hands input over at the same granularity.
constexpr size_t kMaxReadPerBatch = 64 * 1024;

// One received datagram as a driver reports it (the bytes stay the driver's).
struct DatagramIn {
  const sockaddr* from = nullptr;  // sender; nullptr or fromlen 0: unnamed (a Unix socket)
  socklen_t fromlen = 0;
  const char* data = nullptr;
  size_t len = 0;          // bytes at data
  bool truncated = false;  // the kernel cut it to fit the receive buffer
  bool has_drops = false;  // the socket reported its SO_RXQ_OVFL counter with it
  uint32_t drops = 0;      // ... its value: datagrams the kernel dropped so far
};

class DriverHost {
 public:
  // ---- lookups (nullptr when the id is stale, closed or unknown) ----
  virtual Conn* Lookup(int32_t id) = 0;
  virtual Listener* LookupListener(int32_t lid) = 0;

  // ---- connections coming and going ----
  // A connection arrived on l (fd non-blocking, close-on-exec); the engine takes
  // ownership and calls IoDriver::AddConn for it.
  virtual void OnAccepted(Listener* l, int fd) = 0;
  // accept() failed with err; EMFILE/ENFILE/ENOBUFS/ENOMEM pause that listener
  // (IoDriver::PauseAccept) until a descriptor frees up or a retry interval passes.
  virtual void OnAcceptError(Listener* l, int err) = 0;
  // An outbound connect finished (err 0 = connected).
  virtual void OnConnected(Conn* c, int err) = 0;
  // Fatal error on c (err > 0 errno, 0 = clean close): the engine marks it closing
  // and calls IoDriver::CloseConn.
  virtual void Fail(Conn* c, int err, int32_t phase) = 0;
  // Nothing in flight refers to c any more: the engine frees the slot, emits CLOSE.
  virtual void ReleaseConn(Conn* c) = 0;

  // ---- input: bytes go into the batch's read arena ----
  // Room left in this batch's arena; nullptr when full (stop reading, more later).
  virtual char* ReadSpace(size_t* avail) = 0;
  // len bytes were written at the pointer ReadSpace returned: one DATA event.
  virtual void CommitRead(Conn* c, size_t len) = 0;
  // Bytes of c's DATA event when it is the batch's newest event and ends where
  // ReadSpace() would write next (so ExtendRead can grow it), else 0.
  virtual size_t OpenReadLength(const Conn* c) const = 0;
  // len more bytes were written at ReadSpace(): they extend that DATA event.
  virtual void ExtendRead(Conn* c, size_t len) = 0;
  // The peer half-closed (EOF). The engine updates reading (IoDriver::UpdateReading).
  virtual void OnPeerEnd(Conn* c) = 0;
  // Event buffer or arena nearly full: stop harvesting, the rest waits a round.
  virtual bool BatchFull() const = 0;
  // Identifies the batch events are being added to; it changes every time a batch
  // is handed to JS. Lets a driver deliver at most one DATA per connection per batch.
  virtual uint64_t CurrentBatch() const = 0;

  // ---- datagram sockets (c->dgram set) ----
  // A datagram arrived on c. false: the batch has no room for it; nothing was taken,
  // offer it again in a later round. Never false while the batch is empty (a
  // datagram larger than the whole arena is delivered cut to fit, flagged truncated).
  virtual bool OnDatagram(Conn* c, const DatagramIn& d) = 0;
  // The kernel reported err for c (ICMP unreachable on connected UDP...): reported
  // to the handler; the socket stays open.
  virtual void OnDatagramError(Conn* c, int err, int32_t phase) = 0;

  // ---- output ----
  // The kernel took n bytes from the head of c's write queue: the engine consumes
  // them and does the drain / shutdown bookkeeping.
  virtual void OnSent(Conn* c, size_t n) = 0;
  // The kernel took the first n datagrams of c's datagram queue.
  virtual void OnDatagramsSent(Conn* c, size_t n) = 0;
  // The kernel refused the head datagram of c's queue with err (EMSGSIZE,
  // ENETUNREACH...): it is dropped and the error reported; the socket stays open.
  virtual void OnDatagramSendError(Conn* c, int err) = 0;

 protected:
  ~DriverHost() = default;
};

}  // namespace logcaster
