// The shared engine: connection table, one loop-wide read arena, write queues with
// a high-water mark, idle-timeout sweep, batching every event of a loop turn into a
// single hand-off to JS, and the integration with Node's (libuv) loop. Compiled into
// every backend addon; the backend supplies only an IoDriver (usually a Poller).
#pragma once
#include <uv.h>

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "io_driver.h"
#include "write_queue.h"

namespace logcaster {

// Event records handed to JS: 4 x int32 each, after a header of kEventHeader int32s
// (header[0] = record count). Layout is mirrored in core/src/native-events.ts.
enum EventKind : int32_t {
  kEvOpen = 1,         // id, listener id (-1: outbound connect completed)
  kEvData = 2,         // id, arena offset, length
  kEvDrain = 3,        // id
  kEvEnd = 4,          // id (peer half-closed)
  kEvClose = 5,        // id, errno (0 = clean), phase (kPhase*)
  kEvTimeout = 6,      // id (idle timeout)
  kEvListenError = 7,  // listener id, errno (e.g. EMFILE: accepting paused)
};
enum ClosePhase : int32_t { kPhaseNone = 0, kPhaseConnect = 1, kPhaseRead = 2, kPhaseWrite = 3, kPhaseWatch = 4 };
constexpr int kEventHeader = 4;
constexpr int kEventInts = 4;
// Largest single delivery to a handler (one recv call of a readiness backend, one
// DATA event of a completion backend): a fast sender cannot take a whole batch's
// arena, and every backend hands input over at the same granularity.
constexpr size_t kMaxReadPerBatch = 64 * 1024;

// Connection ids: slot index in the low 20 bits, generation above, so a stale id
// (or a stale poller token) never reaches a recycled slot.
constexpr uint32_t kSlotBits = 20;
constexpr uint32_t kSlotMask = (1u << kSlotBits) - 1;
constexpr uint32_t kMaxGen = (1u << (31 - kSlotBits)) - 1;

struct Conn {
  int fd = -1;
  int32_t id = 0;           // 0 while the slot is free
  int32_t listener_id = -1; // -1 for outbound connections
  uint32_t interest = 0;    // what the poller currently watches (driver-owned)
  uint32_t idle_timeout_ms = 0;
  uint64_t last_active_ms = 0;
  WriteQueue wq;
  void* driver_data = nullptr;  // completion drivers keep per-connection state here
  bool connecting = false;     // outbound, connect() in progress
  bool paused = false;         // JS paused reading
  bool peer_ended = false;     // EOF seen
  bool end_requested = false;  // JS called end(): shut down writing once queue drains
  bool write_shut = false;     // shutdown(SHUT_WR) done
  bool need_drain = false;     // a write returned false: emit DRAIN when queue empties
  bool closing = false;        // teardown started (driver may still hold it)
  bool read_pending = false;   // edge-triggered: input left unread (batch was full)
  bool registered = false;     // the driver watches it (false: AddConn refused the fd)
  int32_t close_err = 0;       // errno reported with CLOSE
  int32_t close_phase = 0;

  void Reset() {
    wq.Clear();
    fd = -1; id = 0; listener_id = -1; interest = 0; idle_timeout_ms = 0; last_active_ms = 0;
    driver_data = nullptr;
    connecting = paused = peer_ended = end_requested = write_shut = need_drain = false;
    closing = read_pending = registered = false;
    close_err = close_phase = 0;
  }
};

struct Listener {
  int fd = -1;
  int32_t id = -1;
  bool accept_paused = false;
  bool accept_pending = false;  // edge-triggered: more connections may be queued
  bool exhausted_reported = false;  // EMFILE reported once until an accept succeeds
  uint64_t paused_at_ms = 0;
  void* driver_data = nullptr;
};

struct EngineOptions {
  size_t high_water_mark = 64 * 1024;
  bool edge_triggered = false;
  bool sqpoll = false;  // io_uring only
};

struct EngineStats {
  uint64_t accepted = 0, closed = 0, bytes_read = 0, bytes_written = 0;
  uint64_t turns = 0, dispatches = 0, accept_pauses = 0;
};

class Engine {
 public:
  // events/arena are JS-owned memory (ArrayBuffers kept alive by the JS wrapper).
  Engine(uv_loop_t* loop, std::unique_ptr<IoDriver> driver, const EngineOptions& opts,
         int32_t* events, size_t event_capacity, char* arena, size_t arena_size);
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  // Returns 0 or -errno (with *err). Must be called once before anything else.
  int Start(std::string* err);
  // Close every connection and listener, stop watching; CLOSE events are queued.
  void Shutdown();
  // After Shutdown and a final dispatch: release libuv handles. `done` runs when
  // libuv has closed them (the engine must stay alive until then).
  void CloseHandles(std::function<void()> done);

  // Called (JS thread) to deliver the queued events; set by the N-API wrapper.
  std::function<void()> dispatch;

  // ---- API used by the JS wrapper (JS thread) ----
  int Listen(const std::string& host, int port, int backlog, bool ipv6_only, int* bound_port, std::string* err);
  int CloseListener(int32_t lid);
  int Connect(const std::string& ip, int port, std::string* err);  // returns id or -errno
  int Write(int32_t id, const char* data, size_t len);  // 1 below HWM, 0 over HWM, -errno
  int End(int32_t id);
  int Destroy(int32_t id);
  int SetPaused(int32_t id, bool paused);
  int SetIdleTimeout(int32_t id, uint32_t ms);
  int RemoteAddress(int32_t id, std::string* ip, int* port, int* family);
  size_t QueuedBytes(int32_t id);
  void SetRef(bool ref) { user_ref_ = ref; UpdateRef(); }
  // Called by JS after its dispatch loop finished; resets the batch.
  void DispatchPending();
  // Blocking mode: one turn that may block up to timeout_ms in the kernel.
  void RunOnce(int timeout_ms);
  const EngineStats& stats() const { return stats_; }
  const IoDriver& driver() const { return *driver_; }
  size_t connection_count() const { return live_conns_; }
  size_t listener_count() const { return live_listeners_; }
  const EngineOptions& options() const { return opts_; }

  // ---- API used by drivers ----
  Conn* Lookup(int32_t id);
  Listener* LookupListener(int32_t lid);
  // A connection arrived on listener l (fd is non-blocking, CLOEXEC). Takes ownership.
  void OnAccepted(Listener* l, int fd);
  // accept() failed with err; EMFILE/ENFILE/ENOBUFS/ENOMEM pause accepting for a while.
  void OnAcceptError(Listener* l, int err);
  // Outbound connect finished (err 0 = connected).
  void OnConnected(Conn* c, int err);
  // Room left in this turn's read arena; nullptr when full (stop reading, more later).
  char* ReadSpace(size_t* avail);
  // len bytes were written at the pointer ReadSpace returned.
  void CommitRead(Conn* c, size_t len);
  // Bytes of c's DATA event when it is the batch's newest event and ends where
  // ReadSpace() would write next (so more bytes can extend it), else 0.
  size_t OpenReadLength(const Conn* c) const;
  // len more bytes were written at ReadSpace(): they extend that DATA event.
  void ExtendRead(Conn* c, size_t len);
  void OnPeerEnd(Conn* c);
  void OnSent(Conn* c, size_t n);  // consume n from the queue; drain/shutdown bookkeeping
  // Fatal error on c (err > 0 errno, 0 = clean close): tear down and emit CLOSE.
  void Fail(Conn* c, int err, int32_t phase);
  // Driver has nothing in flight for c any more: free it and emit CLOSE.
  void ReleaseConn(Conn* c);
  bool BatchFull() const;  // event buffer or arena nearly full: stop harvesting
  // True while c wants to read (not paused, no EOF yet, not closing).
  static bool WantsRead(const Conn* c) { return !c->paused && !c->peer_ended && !c->closing && !c->connecting; }
  void Emit(int32_t kind, int32_t id, int32_t a = 0, int32_t b = 0);

  // libuv handles live in a heap block freed from their close callbacks, so a
  // late callback after the engine is gone finds engine == nullptr.
  struct Handles;

 private:
  Conn* NewConn(int fd, int32_t listener_id);
  void AfterQueueChange(Conn* c);
  void Turn();
  void UpdateRef();
  void ArmTimer();
  void OnTimer();
  void ThreadMain();
  void CountSent(Conn* c, size_t n);  // stats and idle clock for bytes the kernel took
  uint64_t NowMs() const;

  uv_loop_t* loop_;
  std::unique_ptr<IoDriver> driver_;
  EngineOptions opts_;
  int32_t* events_;
  size_t event_capacity_;
  char* arena_;
  size_t arena_size_;
  size_t arena_used_ = 0;
  std::vector<int32_t> overflow_;  // events that did not fit the shared buffer

  ChunkPool chunk_pool_;  // recycles write-queue chunks; outlives the Conns (deleted in ~Engine)
  std::vector<Conn*> slots_;
  std::vector<uint32_t> free_slots_;
  std::vector<uint32_t> slot_gen_;  // last generation handed out per slot
  // Released slots whose CLOSE JS has not seen yet: reusing one earlier would let a
  // connection opened during the dispatch shadow the pending CLOSE.
  std::vector<uint32_t> closing_slots_;
  std::vector<std::unique_ptr<Listener>> listeners_;
  size_t live_conns_ = 0;
  size_t live_listeners_ = 0;
  size_t timed_conns_ = 0;
  size_t paused_listeners_ = 0;

  Handles* handles_ = nullptr;
  bool started_ = false;
  bool shut_down_ = false;
  bool in_dispatch_ = false;
  bool in_turn_ = false;
  bool user_ref_ = true;
  bool timer_running_ = false;
  uint64_t last_sweep_ms_ = 0;

  // Helper thread for drivers without a watchable fd (select, poll).
  std::thread thread_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool thread_posted_ = false;  // thread has results waiting for a turn
  bool thread_stop_ = false;

  EngineStats stats_;
  friend struct EngineAccess;
};

}  // namespace logcaster
