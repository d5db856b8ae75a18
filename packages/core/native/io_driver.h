// The engine-facing I/O contract. Readiness backends get it for free from
// ReadinessDriver (a Poller plus accept/recv/send done when an fd is ready);
// completion backends (io_uring) implement it directly with submitted operations.
//
// The engine calls a driver only through this interface, and a driver calls the
// engine only through the DriverHost it is given in Init (driver_host.h): that pair
// is the whole seam. State a mechanism keeps per connection or listener (interest
// sets, in-flight operations, held bytes) lives in the driver, indexed by SlotOf(id)
// or by listener id.
#pragma once
#include <string>
#include <utility>
#include <vector>

#include "driver_host.h"

namespace logcaster {

// What the reactor's options say about the mechanism (the backend's factory gets it).
struct DriverOptions {
  bool edge_triggered = false;  // epoll, kqueue: report readiness once per edge
  bool sqpoll = false;          // io_uring: kernel-side submission polling
};

class IoDriver {
 public:
  virtual ~IoDriver() = default;

  // Set up kernel objects. 0 or -errno with *err describing the failure. host
  // outlives the driver's use of it (the engine destroys the driver last).
  virtual int Init(DriverHost* host, std::string* err) = 0;

  // fd for Node's loop to watch (readable => a turn should run), or -1: the engine
  // then runs a helper thread that calls WaitOnThread() and hands off to the JS thread.
  virtual int WatchFd() const = 0;
  // Helper-thread wait (only when WatchFd() == -1). Blocks until something is ready
  // or Wake(); keeps the results for the next Harvest on the JS thread.
  virtual void WaitOnThread() {}
  // Interrupt WaitOnThread or make WatchFd readable. Any thread.
  virtual void Wake() = 0;

  // JS thread: process what is ready (timeout_ms 0 = never block), feeding the host
  // (OnAccepted, ReadSpace/CommitRead, OnPeerEnd, OnSent, Fail...).
  // Stops early when the engine says the batch is full. Returns true when work
  // remains that a further Harvest would pick up without new kernel readiness.
  virtual bool Harvest(int timeout_ms) = 0;
  // JS thread: the turn that started with Harvest is over (its events were
  // dispatched). Completion drivers submit the operations JS queued during the
  // turn here, in one system call. Readiness drivers need nothing.
  virtual void EndTurn() {}

  virtual int AddListener(Listener* l) = 0;  // start accepting; 0 or -errno
  virtual void PauseAccept(Listener* l) = 0;  // fd exhaustion: stop accepting for now
  virtual void ResumeAccept(Listener* l) = 0;
  virtual void RemoveListener(Listener* l) = 0;  // stop; the engine closes the fd after

  // A connection exists (accepted, or connecting when conn->connecting): start I/O.
  // 0 or -errno (-ERANGE: the mechanism can never watch this fd).
  virtual int AddConn(Conn* c) = 0;
  // Reading paused/resumed or end-of-input seen: re-evaluate read interest.
  virtual void UpdateReading(Conn* c) = 0;
  // Try to send data directly from the caller's memory before anything is queued.
  // Returns bytes sent (0 is fine), or -errno for a fatal socket error. Completion
  // drivers that cannot send from transient memory return 0.
  virtual long TrySendDirect(Conn* c, const char* data, size_t len) = 0;
  // The write queue just reached the high-water mark. A driver that defers sends
  // (to batch them) may push the queue into the socket now; returns bytes sent (the
  // engine consumes them) or -errno. Readiness drivers: a queue means the socket
  // is full, so 0.
  virtual long SendQueuedNow(Conn*) { return 0; }
  // The write queue is non-empty: make progress sending it, reporting with
  // DriverHost::OnSent; arm writability as needed. socket_full: the caller just saw
  // EAGAIN, so only arm writability (saves a syscall).
  virtual void Flush(Conn* c, bool socket_full) = 0;
  // Tear down: stop all I/O on c and close its fd. When nothing in flight refers
  // to c any more (immediately for readiness drivers) call DriverHost::ReleaseConn(c).
  virtual void CloseConn(Conn* c) = 0;
  // Engine shutdown: block until every connection handed to CloseConn has been
  // released (completion drivers wait for their cancellations here).
  virtual void DrainClosing() {}

  // Mechanism-specific counters for Reactor.stats().driver (name, value).
  virtual void Counters(std::vector<std::pair<const char*, double>>*) const {}
};

}  // namespace logcaster
