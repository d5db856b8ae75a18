// The shared engine: connection table, one loop-wide read arena, write queues with
// a high-water mark, idle-timeout sweep, batching every event of a loop turn into a
// single hand-off to JS, and the integration with Node's (libuv) loop. Compiled into
// every backend addon; the backend supplies only an IoDriver (usually a Poller),
// which sees the engine only as its DriverHost.
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

#include "conn.h"
#include "datagram_sockets.h"
#include "driver_host.h"
#include "engine_tls.h"
#include "io_driver.h"

namespace logcaster {

// Event records handed to JS: 4 x int32 each, after a header of kEventHeader int32s
// (header[0] = record count). Layout is mirrored in core/src/native-events.ts (a
// test there checks that the two agree).
enum EventKind : int32_t {
  kEvOpen = 1,         // id, listener id (-1: outbound connect completed)
  kEvData = 2,         // id, arena offset, length
  kEvDrain = 3,        // id
  kEvEnd = 4,          // id (peer half-closed)
  kEvClose = 5,        // id, errno (0 = clean), phase (kPhase*)
  kEvTimeout = 6,      // id (idle timeout)
  kEvListenError = 7,  // listener id, errno (e.g. EMFILE: accepting paused)
  kEvMessage = 8,      // datagram socket id, arena offset of its record, payload length
  kEvSocketError = 9,  // datagram socket id, errno, phase: reported, the socket stays open
};
constexpr int kEventHeader = 4;
constexpr int kEventInts = 4;
// A datagram's record in the arena: flags (u8: kDatagramTruncated), sender family
// (u8: AddressFamilyCode), port (u16 LE), address length n (u16 LE), n address
// bytes (4 or 16 for IP, the path for Unix), then the payload.
constexpr int kDatagramHeader = 6;
constexpr int kDatagramTruncated = 1;

struct EngineOptions {
  size_t high_water_mark = 64 * 1024;
  DriverOptions driver;
};

struct EngineStats {
  uint64_t accepted = 0, closed = 0, bytes_read = 0, bytes_written = 0;
  uint64_t turns = 0, dispatches = 0, accept_pauses = 0;
  DatagramCounters datagrams;  // every datagram socket's, summed
};

class Engine final : public DriverHost {
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
  // tls_ctx: a server context of CreateTlsContext, or -1 for plain TCP.
  int Listen(const std::string& host, int port, int backlog, bool ipv6_only, int32_t tls_ctx, int* bound_port,
             std::string* err);
  int CloseListener(int32_t lid);
  // tls_ctx: a client context, or -1; servername for SNI and the certificate check,
  // session: bytes of a TlsSession() to resume. Returns id or -errno.
  int Connect(const std::string& ip, int port, int32_t tls_ctx, const std::string& servername,
              const std::string& session, std::string* err);
  EngineTls& tls() { return tls_; }
  // Unix stream sockets: a listener id / a connection id, or -errno with *err.
  int ListenUnix(const std::string& path, int mode, int backlog, std::string* err);
  int ConnectUnix(const std::string& path, std::string* err);
  // A datagram socket (its id) or -errno with *err. *bound_port: UDP's port.
  int BindDatagram(const DatagramSpec& spec, size_t max_message, int* bound_port, std::string* err);
  // Queue a datagram (to host:port / path; "" on a connected socket). 1 below the
  // high-water mark, 0 at or above it (DRAIN follows), -errno (*err says why).
  int SendDatagram(int32_t id, const char* data, size_t len, const std::string& host, int port, std::string* err);
  int SendDatagramToPath(int32_t id, const char* data, size_t len, const std::string& path, std::string* err);
  const DatagramCounters* DatagramStats(int32_t id);
  int LocalAddress(int32_t id, std::string* address, int* port, int* family);
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
  // Bring every datagram socket's kernel drop count up to date (before stats()).
  void RefreshDrops();
  const TlsStats& tls_stats() const { return tls_.stats(); }
  const IoDriver& driver() const { return *driver_; }
  size_t connection_count() const { return live_conns_; }
  size_t listener_count() const { return live_listeners_; }

  // ---- DriverHost (driver_host.h documents each call) ----
  Conn* Lookup(int32_t id) override;
  Listener* LookupListener(int32_t lid) override;
  void OnAccepted(Listener* l, int fd) override;
  void OnAcceptError(Listener* l, int err) override;
  void OnConnected(Conn* c, int err) override;
  void Fail(Conn* c, int err, int32_t phase) override;
  void ReleaseConn(Conn* c) override;
  char* ReadSpace(size_t* avail) override;
  void CommitRead(Conn* c, size_t len) override;
  size_t OpenReadLength(const Conn* c) const override;
  void ExtendRead(Conn* c, size_t len) override;
  void OnPeerEnd(Conn* c) override;
  bool BatchFull() const override;
  uint64_t CurrentBatch() const override { return batch_serial_; }
  bool OnDatagram(Conn* c, const DatagramIn& d) override;
  void OnDatagramError(Conn* c, int err, int32_t phase) override;
  void OnSent(Conn* c, size_t n) override;
  void OnDatagramsSent(Conn* c, size_t n) override;
  void OnDatagramSendError(Conn* c, int err) override;

  // libuv handles live in a heap block freed from their close callbacks, so a
  // late callback after the engine is gone finds engine == nullptr.
  struct Handles;

 private:
  friend class EngineTls;  // TLS sits inside the engine's read and write paths
  Conn* NewConn(int fd, int32_t listener_id);
  // Connect, ConnectUnix (tls_ctx -1: plain)
  int StartOutbound(int fd, bool in_progress, int32_t tls_ctx, const std::string& servername,
                    const std::string& session, std::string* err);
  int AddListener(int fd, BoundPath path, int32_t tls_ctx, std::string* err);  // Listen, ListenUnix
  int QueueDatagram(Conn* c, const char* data, size_t len, const sockaddr* to, socklen_t tolen);
  void FlushDatagrams();  // the sends queued during a dispatch, after it
  void AccountDrops(Conn* c, uint32_t counter);  // a new SO_RXQ_OVFL value for c
  void AfterQueueChange(Conn* c);
  void PeerEnded(Conn* c);     // end of input reached the handler's side: END
  int WriteVerdict(Conn* c);   // Write's answer: push at the high-water mark, 1 below it, 0 over
  bool Harvest(int timeout_ms);  // the driver's Harvest, with TLS work found inside it done after
  void Turn();
  void UpdateRef();
  void ArmTimer();
  void OnTimer();
  void ThreadMain();
  void CountSent(Conn* c, size_t n);  // stats and idle clock for bytes the kernel took
  void Emit(int32_t kind, int32_t id, int32_t a = 0, int32_t b = 0);
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
  // Datagram sockets sent to during a dispatch: flushed (one sendmmsg each) after it.
  std::vector<int32_t> dgram_flush_, dgram_flush_work_;

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

  uint64_t batch_serial_ = 1;  // CurrentBatch(): advances when a batch goes to JS
  EngineStats stats_;
  EngineTls tls_{this};  // declared last, destroyed first: its links go before what they refer to
};

}  // namespace logcaster
