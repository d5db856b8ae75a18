#include "iouring_tuning.h"

#include <stdlib.h>

namespace logcaster {

namespace {
// A switch is on when its variable starts with `on`, e.g. "1".
bool Starts(const char* name, char on) {
  const char* v = getenv(name);
  return v && *v == on;
}
}  // namespace

IoUringTuning IoUringTuning::FromEnvironment() {
  IoUringTuning t;
  if (Starts("LOGCASTER_IOURING_DIRECT_SEND", '1')) t.send_mode = kSendDirect;
  else if (Starts("LOGCASTER_IOURING_DIRECT_SEND", '0')) t.send_mode = kSendBatched;
  t.coop_taskrun = !Starts("LOGCASTER_IOURING_COOP", '0');
  t.small_rings = Starts("LOGCASTER_IOURING_SMALL_RINGS", '1');
  t.classic_buffers = t.small_rings || Starts("LOGCASTER_IOURING_CLASSIC_BUFFERS", '1');
  return t;
}

}  // namespace logcaster
