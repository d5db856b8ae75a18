#include "addon.h"
#include "iouring_driver.h"

namespace {

std::unique_ptr<logcaster::IoDriver> CreateIoUringDriver(const logcaster::EngineOptions& options) {
  return std::make_unique<logcaster::IoUringDriver>(options);
}

const logcaster::BackendDescriptor kIoUringBackend = {"iouring", logcaster::ProbeIoUring, CreateIoUringDriver};

}  // namespace

LOGCASTER_BACKEND_MODULE(kIoUringBackend)
