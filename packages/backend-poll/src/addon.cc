#include "addon.h"
#include "poll_poller.h"
#include "readiness_driver.h"

namespace {

std::unique_ptr<logcaster::IoDriver> CreatePollDriver(const logcaster::DriverOptions&) {
  // poll() is level-triggered only; options.edge_triggered is ignored.
  return std::make_unique<logcaster::ReadinessDriver>(std::make_unique<logcaster::PollPoller>());
}

const logcaster::BackendDescriptor kPollBackend = {"poll", logcaster::ProbePoll, CreatePollDriver};

}  // namespace

LOGCASTER_BACKEND_MODULE(kPollBackend)
