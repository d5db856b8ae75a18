// The records the engine keeps per connection and per listener. The engine owns
// every field; drivers read them (fd, id, the write queue, the state flags) but
// keep whatever they need of their own in their own per-slot tables — nothing
// mechanism-specific lives here.
#pragma once
#include <cstdint>
#include <memory>

#include "datagram.h"
#include "unix_sockets.h"
#include "write_queue.h"

namespace logcaster {

// Connection ids: slot index in the low 20 bits, generation above, so a stale id
// (or a stale poller token) never reaches a recycled slot.
constexpr uint32_t kSlotBits = 20;
constexpr uint32_t kSlotMask = (1u << kSlotBits) - 1;
constexpr uint32_t kMaxGen = (1u << (31 - kSlotBits)) - 1;

// The table slot of a live id; drivers index their per-connection state with it.
inline uint32_t SlotOf(int32_t id) { return static_cast<uint32_t>(id) & kSlotMask; }

// Why a connection closed (CLOSE event, mirrored in core/src/native-events.ts).
enum ClosePhase : int32_t { kPhaseNone = 0, kPhaseConnect = 1, kPhaseRead = 2, kPhaseWrite = 3, kPhaseWatch = 4, kPhaseTls = 5 };

// A connection, or a datagram socket (dgram set): both share the id space, the
// table and the close protocol, so drivers and JS track them the same way.
struct Conn {
  int fd = -1;
  int32_t id = 0;           // 0 while the slot is free
  int32_t listener_id = -1; // -1 for outbound connections
  uint32_t idle_timeout_ms = 0;
  uint64_t last_active_ms = 0;
  WriteQueue wq;                            // streams
  std::unique_ptr<DatagramEndpoint> dgram;  // datagram sockets only
  bool connecting = false;     // outbound, connect() in progress
  bool paused = false;         // JS paused reading
  bool peer_ended = false;     // EOF seen
  bool end_requested = false;  // JS called end(): shut down writing once queue drains
  bool write_shut = false;     // shutdown(SHUT_WR) done
  bool need_drain = false;     // a write returned false: emit DRAIN when queue empties
  bool closing = false;        // teardown started (driver may still hold it)
  int32_t close_err = 0;       // errno reported with CLOSE
  int32_t close_phase = 0;

  // True while the connection wants input (not paused, no EOF yet, not closing).
  bool WantsRead() const { return !paused && !peer_ended && !closing && !connecting; }
  // Output waits for the kernel (bytes or datagrams queued).
  bool HasQueuedOutput() const { return dgram ? !dgram->queue.empty() : !wq.empty(); }

  void Reset() {
    wq.Clear();
    dgram.reset();
    fd = -1; id = 0; listener_id = -1; idle_timeout_ms = 0; last_active_ms = 0;
    connecting = paused = peer_ended = end_requested = write_shut = need_drain = closing = false;
    close_err = close_phase = 0;
  }
};

// Listener ids index the engine's listener table and are never reused.
struct Listener {
  int fd = -1;
  int32_t id = -1;
  bool accept_paused = false;       // descriptor exhaustion: not accepting for now
  bool exhausted_reported = false;  // EMFILE reported once until an accept succeeds
  uint64_t paused_at_ms = 0;
  BoundPath unix_path;              // a Unix listener's socket file, removed on close
};

}  // namespace logcaster
