#include "addon.h"
#include "epoll_poller.h"
#include "readiness_driver.h"

namespace {

std::unique_ptr<logcaster::IoDriver> CreateEpollDriver(const logcaster::DriverOptions& options) {
  return std::make_unique<logcaster::ReadinessDriver>(std::make_unique<logcaster::EpollPoller>(options.edge_triggered));
}

const logcaster::BackendDescriptor kEpollBackend = {"epoll", logcaster::ProbeEpoll, CreateEpollDriver};

}  // namespace

LOGCASTER_BACKEND_MODULE(kEpollBackend)
