#include "addon.h"
#include "readiness_driver.h"
#include "select_poller.h"

namespace {

std::unique_ptr<logcaster::IoDriver> CreateSelectDriver(const logcaster::DriverOptions&) {
  // select() is level-triggered only; options.edge_triggered is ignored.
  return std::make_unique<logcaster::ReadinessDriver>(std::make_unique<logcaster::SelectPoller>());
}

const logcaster::BackendDescriptor kSelectBackend = {"select", logcaster::ProbeSelect, CreateSelectDriver};

}  // namespace

LOGCASTER_BACKEND_MODULE(kSelectBackend)
