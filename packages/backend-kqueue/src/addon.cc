#include "addon.h"
#include "kqueue_poller.h"
#include "readiness_driver.h"

namespace {

std::unique_ptr<logcaster::IoDriver> CreateKqueueDriver(const logcaster::DriverOptions& options) {
  // edgeTriggered: EV_CLEAR on every knote.
  return std::make_unique<logcaster::ReadinessDriver>(std::make_unique<logcaster::KqueuePoller>(options.edge_triggered));
}

const logcaster::BackendDescriptor kKqueueBackend = {"kqueue", logcaster::ProbeKqueue, CreateKqueueDriver};

}  // namespace

LOGCASTER_BACKEND_MODULE(kKqueueBackend)
