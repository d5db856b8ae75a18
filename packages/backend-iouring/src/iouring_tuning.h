// The io_uring driver's tuning and test switches. They come from the environment
// (listed in the package README) and are read once, when a driver is created, so
// the driver itself never consults getenv.
#pragma once

namespace logcaster {

struct IoUringTuning {
  // How TrySendDirect treats a write to an idle connection.
  enum SendMode {
    kSendHybrid,   // default: batch small writes made during a turn, send the rest at once
    kSendDirect,   // LOGCASTER_IOURING_DIRECT_SEND=1: always send() directly
    kSendBatched,  // LOGCASTER_IOURING_DIRECT_SEND=0: always through the ring
  };
  SendMode send_mode = kSendHybrid;
  bool coop_taskrun = true;      // LOGCASTER_IOURING_COOP=0 turns COOP_TASKRUN off
  bool small_rings = false;      // LOGCASTER_IOURING_SMALL_RINGS=1: 64-entry SQ, 64 buffers (tests)
  bool classic_buffers = false;  // LOGCASTER_IOURING_CLASSIC_BUFFERS=1 (implied by small_rings)

  static IoUringTuning FromEnvironment();
};

}  // namespace logcaster
